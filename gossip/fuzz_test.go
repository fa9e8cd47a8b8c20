package gossip

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

func signedHead(key ed25519.PrivateKey) []byte {
	h := &Head{Device: deviceOf(key.Public().(ed25519.PublicKey)), Branch: "main", Commit: object.EmptyTreeID, Seq: 7, Addr: "127.0.0.1:7420"}
	h.Sign(key)
	b, _ := json.Marshal(h)
	return b
}

// FuzzHead: an announcement either decodes and verifies (then it is
// signed by the device it names) or is refused as a bad head.
func FuzzHead(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	f.Add(signedHead(key))
	f.Add([]byte(`{"d":"x","b":"main","c":"00","s":1,"k":"","g":""}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHead(b)
		if err != nil {
			if !errors.Is(err, ErrBadHead) {
				t.Fatalf("refused without ErrBadHead: %v", err)
			}
			return
		}
		if err := h.Verify(deviceOf); err == nil && h.Device != deviceOf(ed25519.PublicKey(h.Key)) {
			t.Fatalf("verified a head of %s signed by another key", h.Device)
		}
	})
}

// FuzzState: whatever push/pull state a peer sends, merging it keeps only
// verified heads and never panics.
func FuzzState(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	one := signedHead(key)
	f.Add(append(append([]byte("["), one...), ']'))
	f.Add([]byte(`[{"d":"x"}]`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := &Node{cfg: Config{Device: "me", DeviceOf: deviceOf}, log: slog.New(slog.DiscardHandler),
			heads: map[string]*Head{}, contact: map[string]time.Time{}, members: map[string]member{}, changed: make(chan struct{}, 1)}
		(*delegate)(n).MergeRemoteState(b, false)
		for _, h := range n.Heads() {
			if err := h.Verify(deviceOf); err != nil {
				t.Fatalf("kept an unverified head: %v", err)
			}
		}
	})
}
