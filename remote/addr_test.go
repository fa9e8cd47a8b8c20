package remote

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckDialAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:7420", "host.example:1", "[2001:db8::1]:65535"} {
		if err := CheckDialAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"nonsense", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:x", ":7420", "0.0.0.0:7420", "[::]:7420", ""} {
		if err := CheckDialAddr(bad); !errors.Is(err, ErrBadAddr) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestAdvertised(t *testing.T) {
	if a, err := Advertised("127.0.0.1:7420", ""); err != nil || a != "127.0.0.1:7420" {
		t.Errorf("a specific bind host is advertised as it is: %s %v", a, err)
	}
	if a, err := Advertised("[::]:7420", "192.0.2.10"); err != nil || a != "192.0.2.10:7420" {
		t.Errorf("--advertise wins: %s %v", a, err)
	}
	// A wildcard bind advertises an interface address, never the
	// wildcard; on a machine with none it asks for --advertise.
	a, err := Advertised("[::]:7420", "")
	switch {
	case err == nil && CheckDialAddr(a) != nil:
		t.Errorf("advertised %s", a)
	case err != nil && !strings.Contains(err.Error(), "--advertise HOST"):
		t.Errorf("no interface address, and the error does not say what to do: %v", err)
	}
}
