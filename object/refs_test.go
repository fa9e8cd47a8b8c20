package object

import (
	"context"
	"testing"
)

// TestRefSeenIsLogged: a reader that does not take the refs lock and sees
// a ref's new value finds that move in its reflog (the log is written
// first), however the reads and the writes interleave.
func TestRefSeenIsLogged(t *testing.T) {
	refs := OpenRefs(t.TempDir())
	ctx := context.Background()
	const moves = 200
	ids := make([]ID, moves)
	for i := range ids {
		ids[i] = Hash(TypeChunk, []byte{byte(i), byte(i >> 8)})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		old := ZeroID
		for _, id := range ids {
			if err := refs.Update(ctx, "heads/x", old, id, "move"); err != nil {
				t.Error(err)
				return
			}
			old = id
		}
	}()
	defer func() { <-done }() // the writer ends before the test does, pass or fail
	checked := 0
	for {
		select {
		case <-done:
			if checked == 0 {
				t.Fatal("the reader never saw the ref move: the test did not test")
			}
			return
		default:
		}
		cur, _, err := refs.Get("heads/x")
		if err != nil {
			t.Fatal(err)
		}
		if cur.IsZero() {
			continue
		}
		log, err := refs.Log("heads/x")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range log {
			found = found || e.New == cur
		}
		if !found {
			t.Fatalf("heads/x is %s, which its reflog of %d moves does not have", cur.Short(), len(log))
		}
		checked++
	}
}
