package object

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestGeometricPlan(t *testing.T) {
	cases := []struct {
		sizes []int64
		want  int
	}{
		{nil, 0},
		{[]int64{5}, 0},
		{[]int64{1, 2, 4, 8}, 0},      // already a progression
		{[]int64{1, 1}, 2},            // two alike: merge
		{[]int64{1, 1, 1, 1, 100}, 4}, // the small ones roll up, the big one stays
		{[]int64{1, 1, 3, 100}, 3},    // 1+1=2 is not half of 3: merged too
		{[]int64{10, 11, 12, 13, 50}, 5},
		{[]int64{1, 4, 5, 100}, 3},
	}
	for _, c := range cases {
		if got := geometricPlan(c.sizes); got != c.want {
			t.Errorf("geometricPlan(%v) = %d, want %d", c.sizes, got, c.want)
		}
	}
}

// putMany writes n one-object packs, as n commits would.
func putMany(t *testing.T, s *Store, n int, tag string) []ID {
	var ids []ID
	for i := 0; i < n; i++ {
		ids = append(ids, put(t, s, []byte(fmt.Sprintf("%s object %d %s", tag, i, strings.Repeat("x", i))))...)
	}
	return ids
}

func checkAll(t *testing.T, s *Store, ids []ID) {
	t.Helper()
	for _, id := range ids {
		if _, _, err := s.Get(id); err != nil {
			t.Fatalf("object %s: %v", id.Short(), err)
		}
	}
}

// TestAutoRepackKeepsFewPacks: repacking after every write keeps about
// log2 of the store's packs, and every object stays readable.
func TestAutoRepackKeepsFewPacks(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var ids []ID
	for i := 0; i < 300; i++ {
		ids = append(ids, putMany(t, s, 1, fmt.Sprint(i))...)
		if _, err := s.AutoRepack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, limit := s.PackCount(), bits.Len(uint(len(ids)))+1; n > limit {
		t.Fatalf("%d packs for %d objects, want at most %d", n, len(ids), limit)
	}
	checkAll(t, s, ids)
	// A second store on the same directory (another process) sees them.
	o, err := OpenStore(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	checkAll(t, o, ids)
	// Repack all makes one pack.
	res, err := s.Repack(ctx, true, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.PackCount() != 1 || res.PacksAfter != 1 || res.Objects != len(ids) {
		t.Fatalf("repack all: %+v, %d packs", res, s.PackCount())
	}
	checkAll(t, s, ids)
	if names, _ := filepath.Glob(filepath.Join(s.Dir(), "*.pack")); len(names) != 1 {
		t.Fatalf("%d pack files on disk", len(names))
	}
}

// TestRepackUnderOtherReader: a store that loaded its indexes before
// another one repacked (another process) finds every object in the new
// pack when the old one is gone.
func TestRepackUnderOtherReader(t *testing.T) {
	s, _ := newStore(t)
	ids := putMany(t, s, 20, "r")
	o, err := OpenStore(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !o.Has(ids[0]) { // loads every index; opens no pack file
		t.Fatal("other store does not see the objects")
	}
	if _, err := s.Repack(context.Background(), true, false, 0); err != nil {
		t.Fatal(err)
	}
	checkAll(t, o, ids)
	for _, id := range ids {
		if _, err := o.GetRaw(id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRepackWhileWritingAndReading: repacks run while other goroutines
// write new packs and read every object (run under -race): no read fails,
// nothing is lost.
func TestRepackWhileWritingAndReading(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	base := putMany(t, s, 30, "base")
	var mu sync.Mutex
	all := append([]ID(nil), base...)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})
	wg.Add(2)
	go func() { // a fetch writing
		defer wg.Done()
		for i := 0; i < 60; i++ {
			b := s.NewBatch()
			id, err := b.Put(TypeChunk, []byte(fmt.Sprintf("fetched %d", i)))
			if err == nil {
				err = b.Finish()
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			all = append(all, id)
			mu.Unlock()
		}
	}()
	go func() { // a reader
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			ids := append([]ID(nil), all...)
			mu.Unlock()
			for _, id := range ids {
				if _, _, err := s.Get(id); err != nil {
					errs <- fmt.Errorf("read %s: %w", id.Short(), err)
					return
				}
			}
		}
	}()
	for i := 0; i < 30; i++ {
		if _, err := s.Repack(ctx, i%5 == 4, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkAll(t, s, all)
}

// TestRepackInterrupted: a repack killed after its new pack was durable
// (its record written, the old packs not yet all deleted) is finished by
// the next opening of the store; a copied object is never lost.
func TestRepackInterrupted(t *testing.T) {
	for _, stage := range []string{"record written", "one index deleted", "one pack deleted"} {
		t.Run(stage, func(t *testing.T) {
			s, _ := newStore(t)
			ids := putMany(t, s, 6, "i")
			s.mu.RLock()
			old := append([]*packFile(nil), s.packs...)
			s.mu.RUnlock()
			np, _, err := s.writeMerged(context.Background(), old)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range old {
				names = append(names, p.name)
			}
			if err := WriteFileAtomic(filepath.Join(s.Dir(), np.name+supersededSuffix), []byte(strings.Join(names, "\n")+"\n"), 0o644, true); err != nil {
				t.Fatal(err)
			}
			switch stage {
			case "one index deleted":
				os.Remove(filepath.Join(s.Dir(), names[0]+".idx"))
			case "one pack deleted":
				os.Remove(filepath.Join(s.Dir(), names[0]+".idx"))
				os.Remove(filepath.Join(s.Dir(), names[0]+".pack"))
			}
			s.Close()
			o, err := OpenStore(s.Dir())
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			checkAll(t, o, ids)
			packs, _ := filepath.Glob(filepath.Join(o.Dir(), "*.pack"))
			idxs, _ := filepath.Glob(filepath.Join(o.Dir(), "*.idx"))
			recs, _ := filepath.Glob(filepath.Join(o.Dir(), "*"+supersededSuffix))
			if len(packs) != 1 || len(idxs) != 1 || len(recs) != 0 || len(o.IndexProblems()) != 0 {
				t.Fatalf("after reopening: packs %v, indexes %v, records %v, problems %v", packs, idxs, recs, o.IndexProblems())
			}
		})
	}
}

// TestRepackRefusesDamage: a damaged object is not copied into the new
// pack, and nothing is deleted.
func TestRepackRefusesDamage(t *testing.T) {
	s, _ := newStore(t)
	ids := putMany(t, s, 3, "d")
	loc, _ := s.lookup(ids[1])
	b, _ := os.ReadFile(loc.pack.path)
	b[loc.off] ^= 0xff
	os.WriteFile(loc.pack.path, b, 0o644)
	before, _ := filepath.Glob(filepath.Join(s.Dir(), "*.pack"))
	if _, err := s.Repack(context.Background(), true, false, 0); err == nil || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("repack of a damaged store: %v", err)
	}
	after, _ := filepath.Glob(filepath.Join(s.Dir(), "*.pack"))
	if len(after) != len(before) {
		t.Fatalf("packs %d before, %d after", len(before), len(after))
	}
	if _, _, err := s.Get(ids[0]); err != nil {
		t.Fatal(err)
	}
}
