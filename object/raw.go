package object

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Raw is an object in its stored form: compressed or not, as a pack keeps
// it. Moving objects between stores as Raw spares the sender
// decompressing and the receiver compressing again; the receiver still
// expands and hashes each one before it keeps it.
type Raw struct {
	Type Type
	// Comp is the compression: 0 none, 1 zstd.
	Comp uint8
	// Size is the object's length once expanded.
	Size int
	Data []byte
}

// Stored is body in the form this store keeps it: compressed when that
// saves more than 1/32.
func (s *Store) Stored(t Type, body []byte) Raw {
	data, comp := s.compress(body)
	return Raw{Type: t, Comp: comp, Size: len(body), Data: data}
}

// RawOf is body in stored form, uncompressed.
func RawOf(t Type, body []byte) Raw {
	return Raw{Type: t, Size: len(body), Data: body}
}

// GetRaw reads id as stored, without expanding or checking it: for a
// caller that passes it on to something that will (a fetch's receiver).
func (s *Store) GetRaw(id ID) (Raw, error) {
	if err := s.load(); err != nil {
		return Raw{}, err
	}
	var raw Raw
	err := s.located(id, func(loc location) error {
		if loc.raw > maxChunkLen || loc.stored > maxChunkLen || !loc.typ.Valid() {
			return fmt.Errorf("object %s in pack %s: index entry out of bounds: %w", id.Short(), loc.pack.name[:12], ErrCorrupt)
		}
		data := make([]byte, loc.stored)
		if err := loc.pack.readAt(data, loc.off); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("object %s in pack %s: pack truncated: %w", id.Short(), loc.pack.name[:12], ErrCorrupt)
			}
			return fmt.Errorf("read object %s from pack %s: %w", id.Short(), loc.pack.name[:12], err)
		}
		raw = Raw{Type: loc.typ, Comp: loc.comp, Size: int(loc.raw), Data: data}
		return nil
	})
	return raw, err
}

// MaxExpand bounds what Expand accepts: the largest chunk a mesh may cut
// (Chunking.Max) and more than any tree needs.
const MaxExpand = 64 << 20

// Limits on object bodies by type, far below MaxExpand for the ones a
// fetch holds in memory: a commit is IDs, names and a message; a tree of
// 32 MiB is a directory of some 300,000 entries; a file object of 64 MiB
// lists a file of terabytes. Stores refuse to write larger ones and
// decoders to expand them, whoever sent them.
const (
	MaxCommitSize = 4 << 20
	MaxTreeSize   = 32 << 20
)

// MaxSize is the largest body of type t.
func MaxSize(t Type) int {
	switch t {
	case TypeCommit:
		return MaxCommitSize
	case TypeTree:
		return MaxTreeSize
	}
	return MaxExpand
}

// ErrTooLarge is the kind of error for an object over its type's limit.
var ErrTooLarge = errors.New("object over its type's size limit")

func checkSize(t Type, n int) error {
	if n > MaxSize(t) {
		return fmt.Errorf("a %s of %d bytes, over the limit of %d for its type: %w (%w)", t, n, MaxSize(t), ErrTooLarge, ErrMalformed)
	}
	return nil
}

var (
	expandOnce sync.Once
	expandDec  *zstd.Decoder
)

// Expand returns r's content, checking its stated size; r may come from
// anywhere (a peer), so the size is bounded before anything is allocated,
// and decompression stops at MaxExpand whatever the data claims.
func (s *Store) Expand(r Raw) ([]byte, error) {
	if r.Size < 0 || r.Size > MaxExpand || !r.Type.Valid() {
		return nil, fmt.Errorf("a %d-byte object of type %d: %w", r.Size, r.Type, ErrMalformed)
	}
	if err := checkSize(r.Type, r.Size); err != nil {
		return nil, err
	}
	switch r.Comp {
	case compNone:
		if len(r.Data) != r.Size {
			return nil, fmt.Errorf("%d bytes where %d are stated: %w", len(r.Data), r.Size, ErrMalformed)
		}
		return r.Data, nil
	case compZstd:
		expandOnce.Do(func() {
			// DecodeAll writes at most cap(dst): the size the sender
			// states, checked above, whatever the data expands to.
			expandDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
				zstd.WithDecoderMaxMemory(MaxExpand), zstd.WithDecoderLowmem(true), zstd.WithDecodeAllCapLimit(true))
		})
		out, err := expandDec.DecodeAll(r.Data, make([]byte, 0, r.Size))
		if err != nil {
			return nil, fmt.Errorf("cannot decompress: %v: %w", err, ErrMalformed)
		}
		if len(out) != r.Size {
			return nil, fmt.Errorf("%d bytes where %d are stated: %w", len(out), r.Size, ErrMalformed)
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression %d: %w", r.Comp, ErrMalformed)
}

// PutRaw stores r under id as it is, for a caller that has expanded r and
// checked that it hashes to id (see Expand). Anything else corrupts the
// store.
func (b *Batch) PutRaw(id ID, r Raw) error {
	b.mu.Lock()
	if _, ok := b.pending[id]; ok || (!b.force && b.s.Has(id)) {
		b.mu.Unlock()
		return nil
	}
	b.pending[id] = struct{}{}
	b.mu.Unlock()
	return b.place(id, r.Type, r.Comp, r.Size, r.Data)
}
