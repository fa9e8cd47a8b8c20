package object

import (
	"bytes"
	"errors"
	"math/rand"
	"sync"
	"testing"
)

// randomChunk is n random bytes (incompressible, so stored as they are
// and, from laneMin up, written to a parallel lane).
func randomChunk(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestReadableBatch: what a readable batch was given is found by
// HasPending and GetPending at once, never by Has; once finished it is
// in the store; an aborted batch leaves nothing; a plain batch shows
// nothing before it is finished.
func TestReadableBatch(t *testing.T) {
	s, _ := newStore(t)
	small, big := []byte("a small chunk"), randomChunk(1, laneMin+1000)
	b := s.NewReadableBatch()
	var ids []ID
	for _, body := range [][]byte{small, big} {
		id, err := b.Put(TypeChunk, body)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if s.Has(id) {
			t.Fatalf("chunk %d: Has sees an unfinished batch", i)
		}
		if !s.HasPending(id) {
			t.Fatalf("chunk %d: HasPending does not see it", i)
		}
		r, err := s.GetPending(id)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		body, err := s.Expand(r)
		if err != nil || Hash(TypeChunk, body) != id {
			t.Fatalf("chunk %d from the unfinished pack: %v, hash %v", i, err, Hash(TypeChunk, body) == id)
		}
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if !s.Has(id) || s.HasPending(id) {
			t.Fatalf("chunk %d after Finish: Has %v, HasPending %v", i, s.Has(id), s.HasPending(id))
		}
		if r, err := s.GetPending(id); err != nil || r.Size == 0 {
			t.Fatalf("chunk %d after Finish: GetPending %v", i, err)
		}
	}

	// Aborted: gone from both.
	b = s.NewReadableBatch()
	gone, err := b.Put(TypeChunk, randomChunk(2, laneMin+10))
	if err != nil || !s.HasPending(gone) {
		t.Fatalf("put: %v, pending %v", err, s.HasPending(gone))
	}
	b.Abort()
	if s.Has(gone) || s.HasPending(gone) {
		t.Fatal("an aborted batch's chunk is still found")
	}
	if _, err := s.GetPending(gone); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetPending of an aborted chunk: %v", err)
	}

	// A plain batch: nothing before Finish.
	p := s.NewBatch()
	hidden, err := p.Put(TypeChunk, randomChunk(3, laneMin+10))
	if err != nil {
		t.Fatal(err)
	}
	if s.HasPending(hidden) {
		t.Fatal("a plain batch's chunk is pending-visible")
	}
	p.Abort()
}

// TestReadableBatchConcurrent: a reader takes every chunk put so far from
// a readable batch while two writers put more into its lanes; every read
// has the right bytes, and all are in the store after Finish.
func TestReadableBatchConcurrent(t *testing.T) {
	s, _ := newStore(t)
	b := s.NewReadableBatch()
	const n = 48
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = randomChunk(int64(100+i), laneMin+i*4096)
	}
	put := make(chan ID, n)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				id, err := b.Put(TypeChunk, bodies[i])
				if err != nil {
					t.Error(err)
					return
				}
				put <- id
			}
		}()
	}
	done := make(chan struct{})
	var got []ID
	go func() {
		defer close(done)
		for id := range put {
			got = append(got, id)
			for _, g := range got {
				r, err := s.GetPending(g)
				if err != nil {
					t.Errorf("chunk %s: %v", g.Short(), err)
					return
				}
				body, err := s.Expand(r)
				if err != nil || Hash(TypeChunk, body) != g {
					t.Errorf("chunk %s read back wrong (%v)", g.Short(), err)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(put)
	<-done
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	for i, body := range bodies {
		_, back, err := s.Get(Hash(TypeChunk, body))
		if err != nil || !bytes.Equal(back, body) {
			t.Fatalf("chunk %d after Finish: %v", i, err)
		}
	}
}
