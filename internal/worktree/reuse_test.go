package worktree

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// TestApplyReusesChunksOfTheOldFile: replacing a large file with a version
// that has 64 KiB inserted copies the shared chunks from the file on disk,
// and the result is the new version byte for byte. A file the scan cannot
// vouch for (racily clean) comes from the store.
func TestApplyReusesChunksOfTheOldFile(t *testing.T) {
	s := testStore(t)
	v1 := make([]byte, 12<<20)
	rand.New(rand.NewSource(1)).Read(v1)
	ins := make([]byte, 64<<10)
	rand.New(rand.NewSource(2)).Read(ins)
	v2 := append(append(append([]byte{}, v1[:5<<20]...), ins...), v1[5<<20:]...)

	src := t.TempDir()
	write(t, src, "big", string(v1), 0o644)
	b := s.NewBatch()
	snap1 := scan(t, src, b, nil)
	write(t, src, "big", string(v2), 0o644)
	snap2 := scan(t, src, b, nil)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	changes, err := object.DiffTrees(s, snap1.Root, snap2.Root)
	if err != nil || len(changes) != 1 {
		t.Fatalf("changes %v %v", changes, err)
	}

	for _, trusted := range []bool{true, false} {
		root := t.TempDir()
		write(t, root, "big", string(v1), 0o644)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(filepath.Join(root, "big"), old, old)
		ix := scan(t, root, object.HashSink{}, nil).Index
		if !trusted {
			// A scan that took place within the file's timestamp
			// granularity cannot vouch for it.
			ix.Scanned = old.Add(time.Millisecond).UnixNano()
		}
		before := reusedBytes.Load()
		if err := Apply(context.Background(), root, changes, ApplyOptions{Store: s, Index: ix}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(root, "big"))
		if !bytes.Equal(got, v2) {
			t.Fatalf("trusted=%v: the new version differs from what was committed", trusted)
		}
		reused := reusedBytes.Load() - before
		if trusted && reused < int64(len(v1))*3/4 {
			t.Fatalf("only %d of %d bytes were reused from the old file", reused, len(v1))
		}
		if !trusted && reused != 0 {
			t.Fatalf("%d bytes were reused from a file touched after the scan", reused)
		}
	}
}

// TestApplyRestampsTheIndex: entries Apply wrote are measured from after
// the writes, so they are not all "racy" for the next scan.
func TestApplyRestampsTheIndex(t *testing.T) {
	s := testStore(t)
	src := t.TempDir()
	write(t, src, "f", "content", 0o644)
	b := s.NewBatch()
	snap := scan(t, src, b, nil)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	changes, err := object.DiffTrees(s, object.ZeroID, snap.Root)
	if err != nil {
		t.Fatal(err)
	}
	ix := &Index{Scanned: time.Now().Add(-time.Hour).UnixNano()}
	before := time.Now().UnixNano()
	if err := Apply(context.Background(), t.TempDir(), changes, ApplyOptions{Store: s, Index: ix}); err != nil {
		t.Fatal(err)
	}
	if ix.Scanned < before {
		t.Fatalf("index stamped %d, before Apply's writes (%d)", ix.Scanned, before)
	}
	if e, ok := ix.get([]byte("f")); !ok || e.ID != changes[0].New.ID {
		t.Fatalf("entry for f: %+v %v", e, ok)
	}
}

func TestRacyWindowByFilesystem(t *testing.T) {
	// procfs is not among the filesystems known to keep fine timestamps.
	if w := RacyWindow("/proc"); w != racyWindow {
		t.Fatalf("racy window on /proc: %v", time.Duration(w))
	}
	if w := RacyWindow(t.TempDir()); w != racyWindow && w != int64(50*time.Millisecond) {
		t.Fatalf("racy window on the temp dir: %v", time.Duration(w))
	}
}

// TestApplyKeepsAnEditMadeWhileItRuns: a file edited after the scan that
// found it clean is neither replaced nor removed.
func TestApplyKeepsAnEditMadeWhileItRuns(t *testing.T) {
	s := testStore(t)
	src := t.TempDir()
	write(t, src, "f", "v1\n", 0o644)
	write(t, src, "g", "gone soon\n", 0o644)
	b := s.NewBatch()
	snap1 := scan(t, src, b, nil)
	write(t, src, "f", "v2\n", 0o644)
	os.Remove(filepath.Join(src, "g"))
	snap2 := scan(t, src, b, nil)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	changes, _ := object.DiffTrees(s, snap1.Root, snap2.Root)
	for _, path := range []string{"f", "g"} {
		root := t.TempDir()
		write(t, root, "f", "v1\n", 0o644)
		write(t, root, "g", "gone soon\n", 0o644)
		ix := scan(t, root, object.HashSink{}, nil).Index
		write(t, root, path, "the user's edit, longer\n", 0o644)
		err := Apply(context.Background(), root, changes, ApplyOptions{Store: s, Index: ix})
		if !errors.Is(err, ErrWouldOverwrite) {
			t.Fatalf("edit of %s during Apply: %v", path, err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, path)); string(got) != "the user's edit, longer\n" {
			t.Fatalf("the edit of %s was lost: %q", path, got)
		}
	}
}
