package worktree

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// storeFolder scans a folder made of files into s and returns its tree.
func storeFolder(t *testing.T, s *object.Store, files map[string]string) object.ID {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		write(t, dir, p, c, 0o644)
	}
	b := s.NewBatch()
	snap := scan(t, dir, b, nil)
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return snap.Root
}

// TestApplyMovesKeptNames: on a case-insensitive folder, a.txt kept as
// a.name-clash-1.txt beside A.txt moves to its own name when A.txt goes,
// and a.name-clash-1.txt, a name of history of its own now, takes the
// place a.txt left; a move whose source a killed run already took away
// writes the entry again from the store.
func TestApplyMovesKeptNames(t *testing.T) {
	s := testStore(t)
	rules := FolderRules{CaseInsensitive: true}
	from := storeFolder(t, s, map[string]string{"A.txt": "upper", "a.txt": "lower", "d/B": "b upper", "d/b": "b lower"})
	to := storeFolder(t, s, map[string]string{"a.txt": "lower", "a.name-clash-1.txt": "its own", "d/b": "b lower"})
	for _, killed := range []bool{false, true} {
		root := t.TempDir()
		n := &Names{Rules: rules, Trees: s}
		all, _ := object.DiffTrees(s, object.ZeroID, from)
		if err := Apply(context.Background(), root, all, ApplyOptions{Store: s, Names: n, To: from}); err != nil {
			t.Fatal(err)
		}
		if got := folderOf(t, root); len(got) != 4 || got["a.name-clash-1.txt"] != "lower" || got["d/b.name-clash-1"] != "b lower" {
			t.Fatalf("checkout of the clash: %q", got)
		}
		if killed {
			os.Remove(filepath.Join(root, "d", "b.name-clash-1"))
		}
		changes, _ := object.DiffTrees(s, from, to)
		tmp := t.TempDir()
		if err := Apply(context.Background(), root, changes, ApplyOptions{Store: s, Names: n, From: from, To: to, TempDir: tmp}); err != nil {
			t.Fatal(err)
		}
		got := folderOf(t, root)
		want := map[string]string{"a.txt": "lower", "a.name-clash-1.txt": "its own", "d/b": "b lower"}
		if len(got) != len(want) {
			t.Fatalf("killed %v: after the move %q", killed, got)
		}
		for p, c := range want {
			if got[p] != c {
				t.Fatalf("killed %v: %s holds %q, want %q (%q)", killed, p, got[p], c, got)
			}
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Fatalf("moves left %d files in the temporary directory", len(ents))
		}
	}
}

func folderOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			b, _ := os.ReadFile(p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

// TestProbeFolder: a Linux folder (ext4, tmpfs, overlay) holds every name
// and has exec bits, and the probe leaves nothing behind; the rules are
// then kept in .mesh and read from there, whatever the folder is.
func TestProbeFolder(t *testing.T) {
	dir := t.TempDir()
	r, err := ProbeFolder(dir)
	if err != nil || r.Any() {
		t.Fatalf("probe of a Linux folder: %+v %v", r, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the probe left %d files", len(ents))
	}
	meta := t.TempDir()
	if r, err := LoadFolderRules(meta, filepath.Join(meta, "tmp")); err != nil || r.Any() {
		t.Fatalf("first load: %+v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(meta, folderFile)); err != nil {
		t.Fatalf("the rules were not kept: %v", err)
	}
	sim := FolderRules{CaseInsensitive: true, Normalizing: true}
	if err := SaveFolderRules(meta, sim); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadFolderRules(meta, filepath.Join(meta, "tmp")); err != nil || r != sim {
		t.Fatalf("kept rules: %+v %v", r, err)
	}
}

// TestApplyTakesItsOwnEarlierWrite: a file a killed checkout already
// wrote under a clash name (which the scan after the kill could not know
// for the checkout's) is not taken for a user's file when it holds
// exactly that content; anything else there still is.
func TestApplyTakesItsOwnEarlierWrite(t *testing.T) {
	s := testStore(t)
	n := &Names{Rules: FolderRules{CaseInsensitive: true}, Trees: s}
	to := storeFolder(t, s, map[string]string{"A.txt": "upper", "a.txt": "lower"})
	all, _ := object.DiffTrees(s, object.ZeroID, to)
	for _, c := range []struct {
		there string
		ok    bool
	}{{"lower", true}, {"a user's file", false}} {
		root := t.TempDir()
		write(t, root, "a.name-clash-1.txt", c.there, 0o644)
		err := Apply(context.Background(), root, all, ApplyOptions{Store: s, Names: n, To: to})
		if (err == nil) != c.ok {
			t.Fatalf("%q already there: %v", c.there, err)
		}
		if got := folderOf(t, root)["a.name-clash-1.txt"]; !c.ok && got != c.there {
			t.Fatalf("the user's file became %q", got)
		}
	}
}
