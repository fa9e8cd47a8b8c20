package cloud

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// ErrBadObject is the kind of error for a bucket object that opens but
// does not decode or check out.
var ErrBadObject = errors.New("bad bucket object")

// Where each object of a pack is and what it is.
type indexEntry struct {
	ID   object.ID
	Type object.Type
	Comp uint8
	Size uint32 // expanded
	Off  int64  // of the sealed record in the pack
	Len  uint32 // of the sealed record
	// Bases are, for a chunk kept as a delta (Comp compDelta), the
	// ranges of other chunks it was made against; each is in the bucket
	// whole, never itself a delta.
	Bases []remote.DeltaBase
}

// compDelta marks an object kept as a delta against its Bases.
const compDelta = 2

const indexHeader = "mesh cloud index 1\n"

// maxIndexEntries bounds a decoded index (a pack of 1 TiB of 64 KiB
// chunks has 16M; a pack is far smaller).
const maxIndexEntries = 1 << 24

// encodeIndex is the plaintext of a pack's index.
func encodeIndex(es []indexEntry) []byte {
	b := append([]byte(indexHeader), binary.AppendUvarint(nil, uint64(len(es)))...)
	for _, e := range es {
		b = append(b, e.ID[:]...)
		b = append(b, byte(e.Type), e.Comp)
		b = binary.AppendUvarint(b, uint64(e.Size))
		b = binary.AppendUvarint(b, uint64(e.Off))
		b = binary.AppendUvarint(b, uint64(e.Len))
		if e.Comp == compDelta {
			b = append(b, byte(len(e.Bases)))
			for _, base := range e.Bases {
				b = append(b, base.ID[:]...)
				b = binary.AppendUvarint(b, uint64(base.Off))
				b = binary.AppendUvarint(b, uint64(base.N))
			}
		}
	}
	return b
}

// decodeIndex reads what encodeIndex wrote, checking every field.
func decodeIndex(b []byte) ([]indexEntry, error) {
	rest, ok := bytes.CutPrefix(b, []byte(indexHeader))
	if !ok {
		return nil, fmt.Errorf("index: no header: %w", ErrBadObject)
	}
	uv := func() (uint64, bool) {
		v, k := binary.Uvarint(rest)
		if k <= 0 {
			return 0, false
		}
		rest = rest[k:]
		return v, true
	}
	n, ok := uv()
	if !ok || n > maxIndexEntries || n > uint64(len(rest))/(object.IDSize+5) {
		return nil, fmt.Errorf("index: entry count: %w", ErrBadObject)
	}
	es := make([]indexEntry, 0, n)
	for i := uint64(0); i < n; i++ {
		if len(rest) < object.IDSize+2 {
			return nil, fmt.Errorf("index: entry %d cut short: %w", i, ErrBadObject)
		}
		var e indexEntry
		copy(e.ID[:], rest)
		e.Type, e.Comp = object.Type(rest[object.IDSize]), rest[object.IDSize+1]
		rest = rest[object.IDSize+2:]
		size, ok1 := uv()
		off, ok2 := uv()
		l, ok3 := uv()
		switch {
		case !ok1 || !ok2 || !ok3:
			return nil, fmt.Errorf("index: entry %d cut short: %w", i, ErrBadObject)
		case !e.Type.Valid() || e.Comp > compDelta || e.Comp == compDelta && e.Type != object.TypeChunk:
			return nil, fmt.Errorf("index: entry %d: type %d, compression %d: %w", i, e.Type, e.Comp, ErrBadObject)
		case size > maxObject || l > maxObject+sealOverhead || l < sealOverhead || off > 1<<50:
			return nil, fmt.Errorf("index: entry %d out of bounds: %w", i, ErrBadObject)
		}
		e.Size, e.Off, e.Len = uint32(size), int64(off), uint32(l)
		if e.Comp == compDelta {
			if len(rest) < 1 || rest[0] == 0 || int(rest[0]) > remote.MaxDeltaBases {
				return nil, fmt.Errorf("index: entry %d: a delta's bases: %w", i, ErrBadObject)
			}
			n := int(rest[0])
			rest = rest[1:]
			for k := 0; k < n; k++ {
				if len(rest) < object.IDSize {
					return nil, fmt.Errorf("index: entry %d cut short: %w", i, ErrBadObject)
				}
				var base remote.DeltaBase
				copy(base.ID[:], rest)
				rest = rest[object.IDSize:]
				bo, ok1 := uv()
				bn, ok2 := uv()
				if !ok1 || !ok2 || bo+bn > maxObject || bn == 0 {
					return nil, fmt.Errorf("index: entry %d: a delta's base out of bounds: %w", i, ErrBadObject)
				}
				base.Off, base.N = uint32(bo), uint32(bn)
				e.Bases = append(e.Bases, base)
			}
		}
		es = append(es, e)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("index: %d bytes after the entries: %w", len(rest), ErrBadObject)
	}
	return es, nil
}

// maxObject bounds one object as stored (a chunk is at most a few MiB).
const maxObject = 64 << 20

// Ref is one device's head of one branch, as the device signed it.
type Ref struct {
	Device string    `json:"device"`
	Branch string    `json:"branch"`
	Commit object.ID `json:"commit"`
	// Seq grows with each of the device's pushes of the branch: a
	// reader refuses one lower than it saw before.
	Seq  uint64 `json:"seq"`
	Time int64  `json:"time"` // Unix seconds, as the device's clock said
	Key  []byte `json:"key"`
	Sig  []byte `json:"sig"`
}

func (r *Ref) signed() []byte {
	var b bytes.Buffer
	b.WriteString("mesh cloud ref 1\x00")
	for _, s := range []string{r.Device, r.Branch} {
		binary.Write(&b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	b.Write(r.Commit[:])
	binary.Write(&b, binary.BigEndian, r.Seq)
	binary.Write(&b, binary.BigEndian, r.Time)
	return b.Bytes()
}

// sign sets Key and Sig with the device's key.
func (r *Ref) sign(key ed25519.PrivateKey) {
	r.Key = key.Public().(ed25519.PublicKey)
	r.Sig = ed25519.Sign(key, r.signed())
}

// maxRef bounds an encoded ref.
const maxRef = 4 << 10

// decodeRef parses a ref and checks its signature, that the key is its
// device's, and its branch name.
func decodeRef(b []byte) (*Ref, error) {
	if len(b) > maxRef {
		return nil, fmt.Errorf("ref: %d bytes: %w", len(b), ErrBadObject)
	}
	var r Ref
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ref: %v: %w", err, ErrBadObject)
	}
	if len(r.Key) != ed25519.PublicKeySize || !ed25519.Verify(r.Key, r.signed(), r.Sig) {
		return nil, fmt.Errorf("ref of device %s: signature does not verify: %w", r.Device, ErrBadObject)
	}
	if remote.DeviceIDOf(r.Key).String() != r.Device {
		return nil, fmt.Errorf("ref of device %s: signed by another device's key: %w", r.Device, ErrBadObject)
	}
	if !object.ValidRefName("heads/"+r.Branch) || r.Commit.IsZero() {
		return nil, fmt.Errorf("ref of device %s: branch %q at %s: %w", r.Device, r.Branch, r.Commit.Short(), ErrBadObject)
	}
	return &r, nil
}
