package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenStore(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func put(t *testing.T, s *Store, objs ...[]byte) []ID {
	t.Helper()
	b := s.NewBatch()
	var ids []ID
	for _, o := range objs {
		id, err := b.Put(TypeChunk, o)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestStorePutGet(t *testing.T) {
	s, _ := newStore(t)
	compressible := bytes.Repeat([]byte("mesh "), 10000)
	random := make([]byte, 100000)
	rand.New(rand.NewSource(1)).Read(random)
	ids := put(t, s, compressible, random, []byte("x"), compressible)
	if ids[0] != ids[3] {
		t.Fatal("same content, different IDs")
	}
	if n, _ := s.NewBatch().Written(); n != 0 {
		t.Fatal("fresh batch reports writes")
	}
	for i, want := range [][]byte{compressible, random, []byte("x")} {
		typ, got, err := s.Get(ids[i])
		if err != nil || typ != TypeChunk || !bytes.Equal(got, want) {
			t.Fatalf("object %d: %v, type %v, equal %v", i, err, typ, bytes.Equal(got, want))
		}
	}
	// A second store instance (another process) sees the objects.
	s2, err := OpenStore(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.Has(ids[1]) {
		t.Fatal("reopened store misses an object")
	}
	if _, _, err := s2.Get(Hash(TypeChunk, []byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing object: %v", err)
	}
	// Stored size shows compression happened for the repetitive chunk only.
	b := s.NewBatch()
	b.force = true
	b.Put(TypeChunk, compressible)
	b.Put(TypeChunk, random)
	b.Finish()
	if _, stored := b.Written(); stored >= int64(len(compressible)+len(random)) || stored < int64(len(random)) {
		t.Fatalf("stored %d bytes for %d+%d: compression not applied as expected", stored, len(compressible), len(random))
	}
}

// TestCorruptByteIsDetected flips one byte of a pack: reading that object
// fails naming it, other objects still read.
func TestCorruptByteIsDetected(t *testing.T) {
	s, _ := newStore(t)
	a := bytes.Repeat([]byte("a"), 5000)
	bb := make([]byte, 5000)
	rand.New(rand.NewSource(2)).Read(bb)
	ids := put(t, s, a, bb)
	loc, _ := s.lookup(ids[1])
	raw, _ := os.ReadFile(loc.pack.path)
	raw[loc.off+100] ^= 0xff
	if err := os.WriteFile(loc.pack.path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	_, _, err := s2.Get(ids[1])
	if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(ids[1].Short())) {
		t.Fatalf("corrupt read: %v", err)
	}
	if _, _, err := s2.Get(ids[0]); err != nil {
		t.Fatalf("intact object: %v", err)
	}
}

func TestCorruptIndexIsRefused(t *testing.T) {
	s, _ := newStore(t)
	put(t, s, []byte("hello"))
	idx, _ := filepath.Glob(filepath.Join(s.Dir(), "*.idx"))
	raw, _ := os.ReadFile(idx[0])
	raw[20] ^= 1
	os.Chmod(idx[0], 0o644)
	os.WriteFile(idx[0], raw, 0o644)
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	if _, _, err := s2.Get(Hash(TypeChunk, []byte("hello"))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged index: %v", err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, _ := newStore(t)
	b := s.NewBatch()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				b.Put(TypeChunk, []byte(fmt.Sprint(i))) // every goroutine writes the same 200
			}
		}()
	}
	wg.Wait()
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Written(); n != 200 {
		t.Fatalf("wrote %d objects, want 200 (deduplicated)", n)
	}
	for i := 0; i < 200; i++ {
		if _, _, err := s.Get(Hash(TypeChunk, []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAbortedBatchLeavesNothingVisible(t *testing.T) {
	s, _ := newStore(t)
	b := s.NewBatch()
	id, _ := b.Put(TypeChunk, []byte("never finished"))
	b.Abort()
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	if s2.Has(id) {
		t.Fatal("object of an aborted batch is visible")
	}
	if m, _ := filepath.Glob(filepath.Join(s.Dir(), TempPrefix+"*")); len(m) != 0 {
		t.Fatalf("aborted batch left %v", m)
	}
}

// commitOf writes a one-file commit and returns its ID.
func commitOf(t *testing.T, s *Store, content string, parents ...ID) ID {
	t.Helper()
	b := s.NewBatch()
	chunk, _ := b.Put(TypeChunk, []byte(content))
	file, _ := b.Put(TypeFile, (&File{Chunks: []ChunkRef{{ID: chunk, Size: int64(len(content))}}}).Encode())
	tb, _ := (&Tree{Entries: []Entry{{Name: "f", Kind: KindFile, Size: int64(len(content)), ID: file}}}).Encode()
	tree, _ := b.Put(TypeTree, tb)
	c, _ := b.Put(TypeCommit, (&Commit{Tree: tree, Parents: parents, Message: content}).Encode())
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFsckAndGC(t *testing.T) {
	s, dir := newStore(t)
	refs := OpenRefs(dir)
	ctx := context.Background()
	c1 := commitOf(t, s, "one")
	c2 := commitOf(t, s, "two", c1)
	if err := refs.Update(ctx, "heads/main", ZeroID, c2, "test"); err != nil {
		t.Fatal(err)
	}
	orphan := commitOf(t, s, "orphan")
	rep, err := Fsck(ctx, s, refs, true)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck of a healthy store: %v %+v", err, rep.Problems)
	}
	if rep.Unreachable != 4 {
		t.Fatalf("unreachable = %d, want the orphan's 4 objects", rep.Unreachable)
	}
	// Within the grace period nothing goes.
	res, err := GC(ctx, s, refs, time.Hour, time.Now())
	if err != nil || res.ObjectsDropped != 0 {
		t.Fatalf("gc inside grace: %v %+v", err, res)
	}
	res, err = GC(ctx, s, refs, time.Hour, time.Now().Add(2*time.Hour))
	if err != nil || res.ObjectsDropped != 4 {
		t.Fatalf("gc: %v %+v", err, res)
	}
	if s.Has(orphan) {
		t.Fatal("orphan survived gc")
	}
	for _, id := range []ID{c1, c2} {
		if _, err := s.ReadCommit(id); err != nil {
			t.Fatalf("gc lost %s: %v", id.Short(), err)
		}
	}
	rep, err = Fsck(ctx, s, refs, true)
	if err != nil || len(rep.Problems) != 0 || rep.Unreachable != 0 {
		t.Fatalf("fsck after gc: %v %+v", err, rep)
	}
	// A deleted chunk is reported against the file that needs it.
	os.Remove(filepath.Join(dir, "refs", "heads", "main"))
	refs.Update(ctx, "heads/main", ZeroID, c2, "again")
	loc, _ := s.lookup(Hash(TypeChunk, []byte("two")))
	raw, _ := os.ReadFile(loc.pack.path)
	raw[loc.off] ^= 0xff
	os.WriteFile(loc.pack.path, raw, 0o644)
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	rep, err = Fsck(ctx, s2, refs, true)
	if err != nil || len(rep.Problems) == 0 {
		t.Fatalf("fsck --read-data missed a corrupt chunk: %v %+v", err, rep)
	}
}

func TestRefsCompareAndSwap(t *testing.T) {
	dir := t.TempDir()
	refs := OpenRefs(dir)
	ctx := context.Background()
	a, b := Hash(TypeCommit, []byte("a")), Hash(TypeCommit, []byte("b"))
	if err := refs.Update(ctx, "heads/main", ZeroID, a, "first"); err != nil {
		t.Fatal(err)
	}
	if err := refs.Update(ctx, "heads/main", ZeroID, b, "stale"); !errors.Is(err, ErrRefMoved) {
		t.Fatalf("stale CAS: %v", err)
	}
	// Concurrent movers from the same old value: exactly one wins.
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := refs.Update(ctx, "heads/main", a, Hash(TypeCommit, []byte(fmt.Sprint(i))), "race")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if errors.Is(err, ErrRefMoved) {
				losses++
			} else {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || losses != 7 {
		t.Fatalf("wins %d losses %d", wins, losses)
	}
	log, err := refs.Log("heads/main")
	if err != nil || len(log) != 2 || log[0].New != a || log[1].Old != a {
		t.Fatalf("reflog: %v %+v", err, log)
	}
	for _, bad := range []string{"", "heads/../x", "heads/.hidden", "heads/a.lock", "heads/a b", "/abs"} {
		if err := refs.Update(ctx, bad, ZeroID, a, ""); err == nil {
			t.Errorf("ref name %q accepted", bad)
		}
	}
}

func TestLockWaitsThenFails(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l1, err := AcquireLock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := AcquireLock(ctx, p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l1.Release()
	l2, err := AcquireLock(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

// TestMetadataPackFinishesLast: a file object never becomes visible before
// its chunks, however the chunk packs fill up.
func TestMetadataPackFinishesLast(t *testing.T) {
	s, _ := newStore(t)
	b := s.NewBatch()
	big := make([]byte, laneMin)
	rand.New(rand.NewSource(9)).Read(big)
	var refs []ChunkRef
	for i := 0; i < 4; i++ {
		big[0] = byte(i)
		id, err := b.Put(TypeChunk, big)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ChunkRef{ID: id, Size: int64(len(big))})
	}
	file, _ := b.Put(TypeFile, (&File{Chunks: refs}).Encode())
	if s.Has(file) {
		t.Fatal("file object visible before Finish")
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if !s.Has(r.ID) {
			t.Fatal("chunk missing after Finish")
		}
	}
	if !s.Has(file) {
		t.Fatal("file object missing after Finish")
	}
}

// TestFsckScansPackHeaders: a damaged per-object header in a pack, which
// reads never look at, is found by fsck --read-data.
func TestFsckScansPackHeaders(t *testing.T) {
	s, dir := newStore(t)
	ids := put(t, s, []byte("first object"), []byte("second object"))
	loc, _ := s.lookup(ids[1])
	raw, _ := os.ReadFile(loc.pack.path)
	raw[loc.off-IDSize] ^= 1 // a byte of the ID in the object's header
	os.WriteFile(loc.pack.path, raw, 0o644)
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	if _, _, err := s2.Get(ids[1]); err != nil {
		t.Fatalf("the object itself still reads: %v", err)
	}
	rep, err := Fsck(context.Background(), s2, OpenRefs(dir), true)
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, "does not match the index") {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
	if rep, _ := Fsck(context.Background(), s2, OpenRefs(dir), false); len(rep.Problems) != 0 {
		t.Fatalf("quick fsck reads pack headers: %+v", rep.Problems)
	}
}

// TestFsckTreeSizeClaim: a tree whose entry states the wrong size for its
// file is reported against the tree.
func TestFsckTreeSizeClaim(t *testing.T) {
	s, dir := newStore(t)
	b := s.NewBatch()
	chunk, _ := b.Put(TypeChunk, []byte("12345"))
	file, _ := b.Put(TypeFile, (&File{Chunks: []ChunkRef{{ID: chunk, Size: 5}}}).Encode())
	tb, _ := (&Tree{Entries: []Entry{{Name: "f", Kind: KindFile, Size: 7, ID: file}}}).Encode()
	tree, _ := b.Put(TypeTree, tb)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	rep, err := Fsck(context.Background(), s, OpenRefs(dir), false)
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Object != tree || !strings.Contains(rep.Problems[0].What, "has 5 bytes, tree says 7") {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}

// failAfter is a writer that takes n bytes and then fails.
type failAfter struct {
	n   int
	got bytes.Buffer
}

var errFull = errors.New("disk full")

func (w *failAfter) Write(b []byte) (int, error) {
	if w.got.Len()+len(b) > w.n {
		k := w.n - w.got.Len()
		w.got.Write(b[:k])
		return k, errFull
	}
	return w.got.Write(b)
}

// TestWriteFileToReadsAhead: a file of many chunks, compressed and not, of
// growing and shrinking sizes (so the reused buffers are both too small
// and too large), reads back byte for byte; a damaged chunk in its middle
// stops the write after exactly the chunks before it, naming the chunk; a
// failing writer and a cancelled context end it with their own errors.
func TestWriteFileToReadsAhead(t *testing.T) {
	s, _ := newStore(t)
	rng := rand.New(rand.NewSource(9))
	var parts [][]byte
	var want []byte
	for i := range 12 {
		n := 1000 + (i*7919)%20000
		p := make([]byte, n)
		if i%2 == 0 {
			rng.Read(p)
		} else {
			for j := range p {
				p[j] = "abc\n"[rng.Intn(4)]
			}
		}
		parts = append(parts, p)
		want = append(want, p...)
	}
	ids := put(t, s, parts...)
	f := &File{}
	for i, id := range ids {
		f.Chunks = append(f.Chunks, ChunkRef{ID: id, Size: int64(len(parts[i]))})
	}
	b := s.NewBatch()
	fid, err := b.Put(TypeFile, f.Encode())
	if err != nil || b.Finish() != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	if n, err := s.WriteFileTo(ctx, &out, fid); err != nil || n != int64(len(want)) || !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("read back %d bytes, err %v", n, err)
	}

	w := &failAfter{n: len(want) / 2}
	if n, err := s.WriteFileTo(ctx, w, fid); !errors.Is(err, errFull) || n != int64(len(want)/2) || !bytes.Equal(w.got.Bytes(), want[:len(want)/2]) {
		t.Fatalf("failing writer: %d bytes, %v", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WriteFileTo(cancelled, io.Discard, fid); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	const bad = 7
	loc, _ := s.lookup(ids[bad])
	raw, _ := os.ReadFile(loc.pack.path)
	raw[loc.off+int64(loc.stored)/2] ^= 0xff
	if err := os.WriteFile(loc.pack.path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := OpenStore(s.Dir())
	defer s2.Close()
	out.Reset()
	before := 0
	for _, p := range parts[:bad] {
		before += len(p)
	}
	n, err := s2.WriteFileTo(ctx, &out, fid)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ids[bad].Short()) || n != int64(before) || !bytes.Equal(out.Bytes(), want[:before]) {
		t.Fatalf("damaged chunk: wrote %d of the %d bytes before it, err %v", n, before, err)
	}
}
