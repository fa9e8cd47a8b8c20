package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/object"
)

func deviceOf(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// testNet makes nodes on one memberlist.MockNetwork. The mock wants every
// transport made before any node starts, so they are all made up front.
type testNet struct {
	t          *testing.T
	net        *memberlist.MockNetwork
	keys       []ed25519.PrivateKey
	transports []*memberlist.MockTransport
}

func newNet(t *testing.T, n int) *testNet {
	tn := &testNet{t: t, net: &memberlist.MockNetwork{}}
	for i := 0; i < n; i++ {
		_, key, _ := ed25519.GenerateKey(nil)
		tn.keys = append(tn.keys, key)
		tn.transports = append(tn.transports, tn.net.NewTransport(deviceOf(key.Public().(ed25519.PublicKey))))
	}
	return tn
}

func (tn *testNet) node(secret []byte) *Node {
	tn.t.Helper()
	key, tr := tn.keys[0], tn.transports[0]
	tn.keys, tn.transports = tn.keys[1:], tn.transports[1:]
	dev := deviceOf(key.Public().(ed25519.PublicKey))
	n, err := Start(Config{
		Device: dev, Key: key, DeviceOf: deviceOf, SecretKey: secret, Label: "mesh-test",
		Transport: tr, Fast: true, FetchAddr: "127.0.0.1:1",
	})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { n.Shutdown() })
	return n
}

func secret(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// eventually polls cond for up to 20 s: gossip is asynchronous, and this
// bounds the test without asserting how fast it is.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 20 s", what)
}

func knows(n *Node, dev string, c object.ID) bool {
	for _, h := range n.Heads() {
		if h.Device == dev && h.Commit == c {
			return true
		}
	}
	return false
}

func TestHeadsReachEveryNode(t *testing.T) {
	tn := newNet(t, 7)
	var nodes []*Node
	for i := 0; i < 6; i++ {
		nodes = append(nodes, tn.node(secret(1)))
	}
	for _, n := range nodes[1:] {
		if _, err := n.Join([]string{nodes[0].Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	c1 := object.Hash(object.TypeCommit, []byte("one"))
	c2 := object.Hash(object.TypeCommit, []byte("two"))
	nodes[3].Announce("main", c1)
	nodes[3].Announce("main", c2) // the newer replaces the older
	for i, n := range nodes {
		eventually(t, fmt.Sprintf("node %d learns the head", i), func() bool { return knows(n, nodes[3].cfg.Device, c2) })
		if knows(n, nodes[3].cfg.Device, c1) {
			t.Fatalf("node %d keeps the older head too", i)
		}
	}
	select {
	case <-nodes[0].Changed():
	default:
		t.Fatal("no change was signalled")
	}
	// A node that joins later learns every head through push/pull.
	late := tn.node(secret(1))
	if _, err := late.Join([]string{nodes[5].Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a late node learns the head", func() bool { return knows(late, nodes[3].cfg.Device, c2) })
	eventually(t, "a late node sees the six others", func() bool { return len(late.Peers()) == 6 })
}

func TestWrongSecretIsKeptOut(t *testing.T) {
	tn := newNet(t, 2)
	a, b := tn.node(secret(1)), tn.node(secret(2))
	a.Announce("main", object.Hash(object.TypeCommit, []byte("x")))
	if _, err := b.Join([]string{a.Addr()}); err == nil {
		t.Fatal("a node with another secret joined")
	}
	if len(b.Heads()) != 0 || len(a.Peers()) != 0 {
		t.Fatalf("heads leaked: %v / peers %v", b.Heads(), a.Peers())
	}
}

func TestForgedHeadsAreIgnored(t *testing.T) {
	tn := newNet(t, 1)
	a := tn.node(secret(1))
	_, other, _ := ed25519.GenerateKey(nil)
	h := &Head{Device: "someone-else", Branch: "main", Commit: object.Hash(object.TypeCommit, []byte("x")), Seq: 1}
	h.Sign(other) // signed, but not by someone-else's key
	if a.learn(h) {
		t.Fatal("a head signed by another device's key was taken")
	}
	h2 := &Head{Device: deviceOf(other.Public().(ed25519.PublicKey)), Branch: "main", Commit: h.Commit, Seq: 1}
	h2.Sign(other)
	h2.Seq = 2 // changed after signing
	if a.learn(h2) {
		t.Fatal("a tampered head was taken")
	}
	h2.Seq = 1
	if !a.learn(h2) {
		t.Fatal("a good head was refused")
	}
	if _, err := decodeHead(make([]byte, maxHeadSize+1)); err == nil {
		t.Fatal("an oversized head parsed")
	}
}
