package worktree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"a", "a/b", "a/.meshx", "x.mesh"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", ".mesh/config", "a/.MESH/x", "a//b", `a\..\b`} {
		if err := CheckPath(p); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("CheckPath(%q) = %v, want ErrUnsafePath", p, err)
		}
	}
}

func TestSafeJoinRefusesSymlinkedParent(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "esc"))
	if _, err := safeJoin(root, "esc/pwned", nil); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("write through symlink: %v", err)
	}
	if p, err := safeJoin(root, "new/dir/file", nil); err != nil || p != filepath.Join(root, "new", "dir", "file") {
		t.Fatalf("plain path: %q %v", p, err)
	}
}

func testStore(t *testing.T) *object.Store {
	s, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func scan(t *testing.T, root string, sink object.Sink, ix *Index) *Snapshot {
	t.Helper()
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 2)
	snap, err := Scan(context.Background(), root, ScanOptions{Sink: sink, Chunker: k, Index: ix})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func write(t *testing.T, root, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, filepath.FromSlash(p))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(full, mode)
}

// TestScanApplyRoundTrip writes a scanned tree into an empty directory and
// scans that: the same root ID means every kind survived.
func TestScanApplyRoundTrip(t *testing.T) {
	src := t.TempDir()
	write(t, src, "a.txt", "hello\n", 0o644)
	write(t, src, "bin/run", "#!/bin/sh\n", 0o755)
	write(t, src, "deep/er/x", string(make([]byte, 200000)), 0o644)
	os.MkdirAll(filepath.Join(src, "empty"), 0o755)
	os.Symlink("a.txt", filepath.Join(src, "link"))
	os.Symlink("../../outside", filepath.Join(src, "deep", "rel"))
	write(t, src, ".meshignore", "*.o\n", 0o644)
	write(t, src, "junk.o", "x", 0o644)
	os.MkdirAll(filepath.Join(src, ".mesh"), 0o755)
	write(t, src, ".mesh/config", "not content", 0o644)
	s := testStore(t)
	b := s.NewBatch()
	snap := scan(t, src, b, nil)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	root, _ := snap.ReadTree(snap.Root)
	for _, e := range root.Entries {
		if e.Name == "junk.o" || e.Name == ".mesh" {
			t.Fatalf("%s was not ignored", e.Name)
		}
	}
	changes, err := object.DiffTrees(s, object.ZeroID, snap.Root)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := Apply(context.Background(), dst, changes, ApplyOptions{Store: s}); err != nil {
		t.Fatal(err)
	}
	again := scan(t, dst, object.HashSink{}, nil)
	if again.Root != snap.Root {
		t.Fatal("restored folder scans to a different tree")
	}
	if fi, _ := os.Stat(filepath.Join(dst, "bin", "run")); fi.Mode()&0o100 == 0 {
		t.Fatal("executable bit lost")
	}
	if target, _ := os.Readlink(filepath.Join(dst, "deep", "rel")); target != "../../outside" {
		t.Fatalf("symlink target %q", target)
	}
}

func TestStatCacheSkipsUnchangedFiles(t *testing.T) {
	root := t.TempDir()
	write(t, root, "a", "one", 0o644)
	write(t, root, "b", "two", 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(root, "a"), old, old)
	os.Chtimes(filepath.Join(root, "b"), old, old)
	first := scan(t, root, object.HashSink{}, nil)
	if first.HashedFiles != 2 {
		t.Fatalf("first scan hashed %d files", first.HashedFiles)
	}
	ixPath := filepath.Join(t.TempDir(), "index")
	if err := first.Index.Save(ixPath); err != nil {
		t.Fatal(err)
	}
	ix := LoadIndex(ixPath)
	defer ix.Close()
	if ix.Len() != 2 {
		t.Fatalf("index holds %d entries", ix.Len())
	}
	second := scan(t, root, object.HashSink{}, ix)
	if second.HashedFiles != 0 || second.Root != first.Root {
		t.Fatalf("clean rescan hashed %d files", second.HashedFiles)
	}
	// Same size, same mtime, other content: ctime/inode still differ
	// because the file was rewritten.
	write(t, root, "a", "ONE", 0o644)
	os.Chtimes(filepath.Join(root, "a"), old, old)
	third := scan(t, root, object.HashSink{}, ix)
	if third.HashedFiles != 1 || third.Root == first.Root {
		t.Fatalf("changed file: hashed %d, same root %v", third.HashedFiles, third.Root == first.Root)
	}
	// A file modified right around the scan is never trusted from the cache.
	write(t, root, "b", "two", 0o644)
	fi, _ := os.Stat(filepath.Join(root, "b"))
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 2)
	fourth, err := Scan(context.Background(), root, ScanOptions{Sink: object.HashSink{}, Chunker: k,
		Now: func() time.Time { return fi.ModTime().Add(time.Millisecond) }})
	if err != nil {
		t.Fatal(err)
	}
	fourth.Index.Save(ixPath)
	ix2 := LoadIndex(ixPath)
	defer ix2.Close()
	if fifth := scan(t, root, object.HashSink{}, ix2); fifth.HashedFiles == 0 {
		t.Fatal("racily clean file trusted from the cache")
	}
}

func TestDamagedIndexIsIgnored(t *testing.T) {
	p := filepath.Join(t.TempDir(), "index")
	os.WriteFile(p, []byte("MESHWTI1 garbage garbage garbage garbage garbage"), 0o644)
	ix := LoadIndex(p)
	defer ix.Close()
	if ix.Len() != 0 {
		t.Fatal("damaged index yielded entries")
	}
}

func TestApplyRefusesUntrackedAndEscapes(t *testing.T) {
	s := testStore(t)
	src := t.TempDir()
	write(t, src, "f", "committed", 0o644)
	b := s.NewBatch()
	snap := scan(t, src, b, nil)
	b.Finish()
	changes, _ := object.DiffTrees(s, object.ZeroID, snap.Root)

	dst := t.TempDir()
	write(t, dst, "f", "untracked work", 0o644)
	if err := Apply(context.Background(), dst, changes, ApplyOptions{Store: s}); !errors.Is(err, ErrWouldOverwrite) {
		t.Fatalf("overwrite of untracked file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "untracked work" {
		t.Fatal("untracked file was changed")
	}
	// A change whose path escapes is refused before anything is written.
	evil := append([]object.Change{{Path: "ok", New: changes[0].New}}, object.Change{Path: "../evil", New: changes[0].New})
	dst2 := t.TempDir()
	if err := Apply(context.Background(), dst2, evil, ApplyOptions{Store: s}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("escaping path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst2, "ok")); err == nil {
		t.Fatal("a file was written before the unsafe path was refused")
	}
}

// changingSink appends to a file each time a chunk of it is stored, for
// the first n chunks: the file changes while it is read.
type changingSink struct {
	path string
	n    int
}

func (c *changingSink) Put(t object.Type, body []byte) (object.ID, error) {
	if t == object.TypeChunk && c.n > 0 {
		c.n--
		f, err := os.OpenFile(c.path, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("more")
			f.Close()
		}
	}
	return object.Hash(t, body), nil
}

// TestScanChangingFile: a file that changes while it is read is read
// again; one that changes during both reads is refused by a commit's scan
// (never stored torn) and left out of the stat cache by a status scan.
func TestScanChangingFile(t *testing.T) {
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 2)
	root := t.TempDir()
	p := filepath.Join(root, "grows.log")
	write(t, root, "grows.log", strings.Repeat("line\n", 1000), 0o644)

	// Changed during the first read only: the second read is what counts.
	snap, err := Scan(context.Background(), root, ScanOptions{Sink: &changingSink{path: p, n: 1}, Chunker: k, RefuseChanging: true})
	if err != nil {
		t.Fatalf("changed once: %v", err)
	}
	b, _ := os.ReadFile(p)
	e := snap.Trees[snap.Root].Entries[0]
	want, _, err := k.WriteFile(context.Background(), object.HashSink{}, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != int64(len(b)) || e.ID != want {
		t.Fatalf("stored %d bytes (%s), the file has %d (%s)", e.Size, e.ID.Short(), len(b), want.Short())
	}

	// Changing during both reads: a commit refuses, naming the file.
	_, err = Scan(context.Background(), root, ScanOptions{Sink: &changingSink{path: p, n: 1 << 20}, Chunker: k, RefuseChanging: true})
	if !errors.Is(err, ErrChanging) || !strings.Contains(err.Error(), "grows.log") {
		t.Fatalf("changing twice, commit scan: %v", err)
	}
	// A status scan goes on, and does not cache what it read.
	ix := LoadIndex(filepath.Join(t.TempDir(), "index"))
	snap, err = Scan(context.Background(), root, ScanOptions{Sink: &changingSink{path: p, n: 1 << 20}, Chunker: k, Index: ix, KeepIndex: true})
	if err != nil {
		t.Fatalf("changing twice, status scan: %v", err)
	}
	if ent, ok := snap.Index.get([]byte("grows.log")); ok && ent.Mtime != 0 {
		t.Fatalf("a torn read was cached: %+v", ent)
	}
}

// TestScanBuildsTreesAsItWalks: folders with nothing to read are made
// into trees during the walk and let go. The trees are the same as a
// scan from scratch makes; trees the store holds are not kept; and a
// status that reads one file still saves a stat cache of every file.
func TestScanBuildsTreesAsItWalks(t *testing.T) {
	root := t.TempDir()
	files := []string{"top", "a/one", "a/b/two", "a/b/three", "c/four", "c/d/five", "c/d/six"}
	for i, p := range files {
		write(t, root, p, fmt.Sprintf("content %d\n", i), 0o644)
	}
	os.Symlink("../four", filepath.Join(root, "c", "d", "link"))
	os.MkdirAll(filepath.Join(root, "e"), 0o755)
	old := time.Now().Add(-time.Hour)
	for _, p := range files {
		os.Chtimes(filepath.Join(root, filepath.FromSlash(p)), old, old)
	}
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 2)
	scanWith := func(ix *Index, keep bool, stored map[object.ID]*object.Tree) *Snapshot {
		t.Helper()
		o := ScanOptions{Sink: object.HashSink{}, Chunker: k, Index: ix, KeepIndex: keep}
		if stored != nil {
			o.Stored = func(id object.ID) bool { return stored[id] != nil }
		}
		snap, err := Scan(context.Background(), root, o)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	save := func(s *Snapshot) *Index {
		t.Helper()
		p := filepath.Join(t.TempDir(), "index")
		if err := s.Index.Save(p); err != nil {
			t.Fatal(err)
		}
		ix := LoadIndex(p)
		t.Cleanup(ix.Close)
		return ix
	}
	first := scanWith(nil, false, nil)
	if first.HashedFiles != len(files) || first.Index.Len() != len(files) || len(first.Trees) != 6 {
		t.Fatalf("first scan: %d hashed, %d indexed, %d trees", first.HashedFiles, first.Index.Len(), len(first.Trees))
	}
	ix := save(first)

	clean := scanWith(ix, false, first.Trees)
	if clean.Root != first.Root || clean.HashedFiles != 0 || len(clean.Trees) != 0 || clean.Index.Len() != 0 {
		t.Fatalf("clean scan: same root %v, %d hashed, %d trees kept, %d indexed", clean.Root == first.Root, clean.HashedFiles, len(clean.Trees), clean.Index.Len())
	}

	write(t, root, "c/d/five", "edited\n", 0o644)
	os.Chtimes(filepath.Join(root, "c", "d", "five"), old, old)
	edited := scanWith(ix, false, first.Trees)
	fresh := scanWith(nil, true, nil)
	if edited.Root != fresh.Root || edited.HashedFiles != 1 {
		t.Fatalf("after an edit: same root as a fresh scan %v, %d hashed", edited.Root == fresh.Root, edited.HashedFiles)
	}
	// The new trees are c/d, c and the root; a, a/b and e are held.
	if len(edited.Trees) != 3 {
		t.Fatalf("%d trees kept, want the 3 that changed", len(edited.Trees))
	}
	if got, want := edited.Index.entries(), fresh.Index.entries(); !slices.EqualFunc(got, want, func(a, b pathEntry) bool { return a.path == b.path && a.ID == b.ID && a.Size == b.Size }) {
		t.Fatalf("stat cache after an edit:\n%v\nwant\n%v", got, want)
	}
	cached := save(edited)
	again := scanWith(cached, false, fresh.Trees)
	if again.HashedFiles != 0 || again.Root != fresh.Root {
		t.Fatalf("after the edit was cached: %d hashed", again.HashedFiles)
	}
	// A scan that keeps the cache (a commit's) records, as it walks, the
	// same entries a fresh scan does.
	kept := scanWith(cached, true, nil)
	if got, want := kept.Index.entries(), fresh.Index.entries(); kept.HashedFiles != 0 || !slices.Equal(got, want) {
		t.Fatalf("kept stat cache (%d hashed):\n%v\nwant\n%v", kept.HashedFiles, got, want)
	}
}
