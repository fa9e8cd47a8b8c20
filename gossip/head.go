package gossip

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/object"
)

// Head is one device's announcement: its branch is at Commit, fetchable
// from Addr. Seq grows with every announcement of the device, so the
// newest wins without comparing clocks.
type Head struct {
	Device string    `json:"d"`
	Branch string    `json:"b"`
	Commit object.ID `json:"c"`
	Seq    uint64    `json:"s"`
	Addr   string    `json:"a,omitempty"`
	Key    []byte    `json:"k"`
	Sig    []byte    `json:"g"`
}

// ErrBadHead is the kind of error for an announcement that does not parse
// or whose signature or device does not check out.
var ErrBadHead = errors.New("bad head announcement")

// maxHeadSize bounds one encoded announcement.
const maxHeadSize = 1024

func (h *Head) signed() []byte {
	var b bytes.Buffer
	b.WriteString("mesh-head-v1\x00")
	for _, s := range []string{h.Device, h.Branch, h.Addr} {
		binary.Write(&b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	b.Write(h.Commit[:])
	binary.Write(&b, binary.BigEndian, h.Seq)
	return b.Bytes()
}

// Sign sets Key and Sig with the device's key.
func (h *Head) Sign(key ed25519.PrivateKey) {
	h.Key = key.Public().(ed25519.PublicKey)
	h.Sig = ed25519.Sign(key, h.signed())
}

// Verify checks the signature and that the key is the device's, by
// deviceOf (the device ID derivation of package remote).
func (h *Head) Verify(deviceOf func(ed25519.PublicKey) string) error {
	if len(h.Key) != ed25519.PublicKeySize || !ed25519.Verify(h.Key, h.signed(), h.Sig) {
		return fmt.Errorf("head of %s: signature does not verify: %w", h.Device, ErrBadHead)
	}
	if deviceOf(h.Key) != h.Device {
		return fmt.Errorf("head of %s: signed by another device's key: %w", h.Device, ErrBadHead)
	}
	if !object.ValidRefName("heads/"+h.Branch) || h.Commit.IsZero() {
		return fmt.Errorf("head of %s: branch %q at %s: %w", h.Device, h.Branch, h.Commit.Short(), ErrBadHead)
	}
	return nil
}

func decodeHead(b []byte) (*Head, error) {
	if len(b) > maxHeadSize {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrBadHead)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadHead)
	}
	return &h, nil
}

func (h *Head) key() string { return h.Device + "/" + h.Branch }

// broadcast is a head in memberlist's queue, named per device and branch
// so that a newer head replaces a queued older one.
type broadcast struct {
	name string
	msg  []byte
}

// Invalidates: the queue replaces by Name; nothing else is invalidated.
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool { return false }
func (b *broadcast) Message() []byte                             { return b.msg }
func (b *broadcast) Finished()                                   {}
func (b *broadcast) Name() string                                { return b.name }
