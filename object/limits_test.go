package object

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestExpandBombs: a commit stated or compressed to expand past its
// type's limit is refused, and one that expands past its stated size
// never gets more memory than it stated.
func TestExpandBombs(t *testing.T) {
	s, _ := newStore(t)
	enc, _ := zstd.NewWriter(nil)
	huge := enc.EncodeAll(make([]byte, 64<<20), nil) // 64 MiB of zeros, a few KB
	if len(huge) > 64<<10 {
		t.Fatalf("the bomb is %d bytes", len(huge))
	}
	// States its real size: over a commit's limit, refused before
	// anything is decompressed.
	if _, err := s.Expand(Raw{Type: TypeCommit, Comp: compZstd, Size: 64 << 20, Data: huge}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a 64 MiB commit: %v", err)
	}
	// States 1 KiB and expands to 64 MiB: cut at 1 KiB.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := s.Expand(Raw{Type: TypeChunk, Comp: compZstd, Size: 1 << 10, Data: huge})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("a chunk that expands past its stated size: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("expanding a 1 KiB chunk allocated %d MiB", grew>>20)
	}
	// A store refuses to write an object over its type's limit.
	b := s.NewBatch()
	defer b.Abort()
	if _, err := b.Put(TypeCommit, make([]byte, MaxCommitSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("writing a commit over the limit: %v", err)
	}
}

// TestManyParents: duplicate parents are found in O(n log n): 200,000
// parents decode in well under the seconds the pairwise check took for
// 60,000 (no timing is asserted; the duplicate check is).
func TestManyParents(t *testing.T) {
	c := &Commit{Tree: EmptyTreeID, Device: "d", Author: "a", Message: "m"}
	for i := range 200000 {
		var id ID
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		c.Parents = append(c.Parents, id)
	}
	body := c.Encode()
	t0 := time.Now()
	got, err := DecodeCommit(body)
	if err != nil || len(got.Parents) != 200000 {
		t.Fatalf("decode: %v", err)
	}
	t.Logf("200,000 parents decoded in %v", time.Since(t0))
	c.Parents = append(c.Parents, c.Parents[12345])
	if _, err := DecodeCommit(c.Encode()); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("a duplicate parent: %v", err)
	}
}
