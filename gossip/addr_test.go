package gossip

import (
	"crypto/ed25519"
	"net"
	"strconv"
	"testing"
)

// TestAdvertisesBoundPort: a node bound to a fixed port says that port
// (memberlist's AdvertisePort defaults to 7946 otherwise), and one bound
// to port 0 the port it picked; a second node joins it at that address.
func TestAdvertisesBoundPort(t *testing.T) {
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	start := func(port int) *Node {
		_, key, _ := ed25519.GenerateKey(nil)
		n, err := Start(Config{Device: deviceOf(key.Public().(ed25519.PublicKey)), Key: key, DeviceOf: deviceOf,
			SecretKey: make([]byte, 32), Label: "m", BindAddr: "127.0.0.1", BindPort: port, AdvertiseAddr: "127.0.0.1", Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		return n
	}
	fixed := start(port)
	if want := "127.0.0.1:" + strconv.Itoa(port); fixed.Addr() != want || fixed.Port() != port {
		t.Fatalf("bound to %s, advertises %s (port %d)", want, fixed.Addr(), fixed.Port())
	}
	picked := start(0)
	if picked.Port() == 0 || picked.Addr() != "127.0.0.1:"+strconv.Itoa(picked.Port()) {
		t.Fatalf("port 0 advertises %s", picked.Addr())
	}
	if k, err := picked.Join([]string{fixed.Addr()}); err != nil || k != 1 {
		t.Fatalf("join the fixed-port node at its advertised address: %d %v", k, err)
	}
}
