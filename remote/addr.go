package remote

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ErrBadAddr is the kind of error for an address another device could not
// dial: no host, an unspecified one (0.0.0.0, ::), or no valid port.
var ErrBadAddr = errors.New("not an address another device can dial")

// CheckDialAddr checks that addr is HOST:PORT with a host other devices
// can dial (a name or a specific IP) and a port from 1 to 65535.
func CheckDialAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v: %w; give HOST:PORT", addr, err, ErrBadAddr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535: %w", addr, port, ErrBadAddr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host: %w; give the address other devices reach this one at", addr, ErrBadAddr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q is the wildcard address, which means \"every address of this machine\" to a listener: %w; give the address other devices reach this one at", addr, ErrBadAddr)
	}
	return nil
}

// Unspecified reports whether host is empty or a wildcard address, so
// that a listener bound to it is reachable at every address of the
// machine and none of them can be told from the bind address alone.
func Unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// RoutableHost picks the address other machines most likely reach this
// one at, for a listener bound to every address: the first IPv4 address
// of an interface that is up and not loopback (private ranges first, as
// memberlist does), else such an IPv6 one. It fails when the machine has
// none: then only an explicit address helps.
func RoutableHost() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	var private, public, v6 []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			switch ip := ipn.IP; {
			case ip.To4() != nil && ip.IsPrivate():
				private = append(private, ip.String())
			case ip.To4() != nil:
				public = append(public, ip.String())
			default:
				v6 = append(v6, ip.String())
			}
		}
	}
	for _, l := range [][]string{private, public, v6} {
		if len(l) > 0 {
			return l[0], nil
		}
	}
	return "", errors.New("this machine has no network address but loopback")
}

// Advertised is the address other devices dial for a listener bound to
// bound (host:port, the port as bound): host when given, else the bound
// host when it is a specific one, else RoutableHost. It says in the
// error what to give when none fits.
func Advertised(bound, host string) (string, error) {
	bh, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("listening on %q: %w", bound, err)
	}
	if host == "" {
		host = bh
	}
	if Unspecified(host) {
		if host, err = RoutableHost(); err != nil {
			return "", fmt.Errorf("listening on all addresses (%s), and %v: give --advertise HOST, the address other devices reach this one at", bound, err)
		}
	}
	addr := net.JoinHostPort(host, port)
	return addr, CheckDialAddr(addr)
}
