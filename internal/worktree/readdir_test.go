package worktree

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// goTree is the Go distribution's source tree, the yardstick of listing
// benchmarks.
func goTree(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "src")
}

// walkWith lists dir and everything under it with read, returning the
// entries seen.
func walkWith(tb testing.TB, read func(string) ([]dirEntry, error), dir string, seen map[string]statInfo) {
	ents, err := read(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.name)
		if e.st.mode.IsDir() {
			seen[p] = statInfo{mode: e.st.mode}
			walkWith(tb, read, p, seen)
			continue
		}
		seen[p] = e.st
	}
}

// TestReadDirPortableAgrees: the portable listing (Windows's, and any OS's
// without a fast path) sees the same entries, in the same order, with the
// same stat cache fields, as this platform's own.
func TestReadDirPortableAgrees(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755)
	for _, n := range []string{"b.txt", "a.txt", "sub/c", "sub/deeper/d", "Z"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "a.txt"), 0o755)
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fast, portable := map[string]statInfo{}, map[string]statInfo{}
	walkWith(t, readDir, dir, fast)
	walkWith(t, readDirPortable, dir, portable)
	if len(fast) != 8 || !reflect.DeepEqual(fast, portable) {
		t.Fatalf("listings differ:\nfast     %v\nportable %v", fast, portable)
	}
	a, b := must(readDir(dir)), must(readDirPortable(dir))
	for i := range a {
		if a[i].name != b[i].name {
			t.Fatalf("order differs at %d: %q vs %q", i, a[i].name, b[i].name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkReadDir lists the Go tree with this platform's fast path and
// with the portable one (what Windows runs), alternating: go test
// ./internal/worktree -run '^$' -bench ReadDir -count 8.
func BenchmarkReadDir(b *testing.B) {
	root := goTree(b)
	for _, c := range []struct {
		name string
		read func(string) ([]dirEntry, error)
	}{{"fast", readDir}, {"portable", readDirPortable}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				walkWith(b, c.read, root, map[string]statInfo{})
			}
		})
	}
}

// BenchmarkStatusGoTree times a clean scan of the Go tree with a warm stat
// cache (a clean status) three ways: this platform's listing, the portable
// listing (Windows's), and the portable listing with a macOS folder's
// names mapped (case-insensitive, normalizing: every directory's names
// planned against HEAD's tree). Run each alone, alternating:
// go test ./internal/worktree -run '^$' -bench 'StatusGoTree/portable$' -count 1.
func BenchmarkStatusGoTree(b *testing.B) {
	root := goTree(b)
	s, err := object.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 2)
	batch := s.NewBatch()
	first, err := Scan(context.Background(), root, ScanOptions{Sink: batch, Chunker: k, KeepIndex: true, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil || batch.Finish() != nil {
		b.Fatal(err)
	}
	mac := &Names{Rules: FolderRules{CaseInsensitive: true, Normalizing: true}, Trees: s}
	for _, c := range []struct {
		name  string
		list  func(string) ([]dirEntry, error)
		names *Names
	}{{"native", readDir, nil}, {"portable", readDirPortable, nil}, {"portable+names", readDirPortable, mac}} {
		b.Run(c.name, func(b *testing.B) {
			listDir = c.list
			defer func() { listDir = readDir }()
			for b.Loop() {
				snap, err := Scan(context.Background(), root, ScanOptions{Sink: object.HashSink{}, Chunker: k, Index: first.Index, Stored: s.Has, Names: c.names, Head: first.Root})
				if err != nil || snap.Root != first.Root || snap.HashedFiles != 0 {
					b.Fatalf("clean scan: %v, %d files read, same tree %v", err, snap.HashedFiles, snap.Root == first.Root)
				}
			}
		})
	}
}
