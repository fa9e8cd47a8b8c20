package repo

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"golang.org/x/text/unicode/norm"
)

// linuxNames is a tree only a Linux folder holds as it is: a case clash,
// a device name, a colon, a trailing dot, an NFD name beside the NFC form
// of the same name, and a directory Windows cannot name.
var linuxNames = map[string]string{
	"A.txt":           "upper\n",
	"a.txt":           "lower\n",
	"aux.txt":         "device\n",
	"x:y":             "colon\n",
	"name.":           "dot\n",
	"cafe\u0301.txt":  "nfd\n",
	"caf\u00e9.txt":   "nfc\n",
	"x:dir/inner.txt": "inner\n",
	"x:dir/A.md":      "inner upper\n",
	"x:dir/a.md":      "inner lower\n",
	"plain.txt":       "plain\n",
	"back\\slash.txt": "backslash\n",
}

// folderFiles lists the files under root (not .mesh): folder path →
// content.
func folderFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".mesh" {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

// checkHoldable fails unless a folder with rules r could hold every name
// under root: no two names of a directory are one to it, and each is one
// Windows takes where its rules apply.
func checkHoldable(t *testing.T, root string, r worktree.FolderRules) {
	t.Helper()
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if !fi.IsDir() || filepath.Base(p) == ".mesh" {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		ents, _ := os.ReadDir(p)
		seen := map[string]string{}
		for _, e := range ents {
			if r.WindowsNames && worktree.WindowsInvalid(e.Name()) != "" {
				t.Errorf("%s: %q cannot exist on Windows", p, e.Name())
			}
			k := worktree.FoldKey(e.Name(), r)
			if other, ok := seen[k]; ok {
				t.Errorf("%s: %q and %q are one file to this folder", p, other, e.Name())
			}
			seen[k] = e.Name()
		}
		return nil
	})
}

func contents(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// TestNamesAcrossPlatforms: a tree committed on Linux with names another
// folder cannot hold, checked out into a simulated case-insensitive,
// normalizing folder under Windows's rules, keeps every version (under an
// escaped or clash name), shows a clean status, and a commit from there
// changes nothing; listing the names NFD (as HFS+ does) changes nothing
// either; an edit of an escaped file goes back under its own name; and
// the tree round-trips byte for byte to the Linux folder.
func TestNamesAcrossPlatforms(t *testing.T) {
	a := newRepo(t)
	for p, c := range linuxNames {
		write(t, a, p, c)
	}
	os.Chmod(filepath.Join(a.Root, "plain.txt"), 0o755)
	if err := os.Symlink("plain.txt", filepath.Join(a.Root, "link")); err != nil {
		t.Fatal(err)
	}
	commit(t, a, "names only Linux holds")
	_, aTree, _ := a.headTree()
	if aTree.IsZero() {
		t.Fatal("no tree")
	}

	b := joined(t, a)
	rules := worktree.FolderRules{CaseInsensitive: true, Normalizing: true, WindowsNames: true, NoExecBits: true, NoSymlinks: true}
	if err := worktree.SaveFolderRules(b.Meta, rules); err != nil {
		t.Fatal(err)
	}
	if err := b.AddRemote(ctx, "a", a.Root, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pull(ctx, "a", MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	got := folderFiles(t, b.Root)
	if got["link"] != "plain.txt" {
		t.Fatalf("the link is not a file holding its target: %q", got["link"])
	}
	delete(got, "link")
	if strings.Join(contents(got), "") != strings.Join(contents(linuxNames), "") {
		t.Fatalf("the folder does not hold every version:\n%q", got)
	}
	checkHoldable(t, b.Root, rules)
	if got["plain.txt"] != "plain\n" || got["A.txt"] != "upper\n" || got["au\uF078.txt"] != "device\n" || got["x\uF03Ay"] != "colon\n" {
		t.Errorf("names kept: %q", got)
	}
	clean := func(when string) {
		t.Helper()
		st, err := b.Status(ctx)
		if err != nil || len(st.Changes) != 0 {
			t.Fatalf("%s: status %+v %v", when, st, err)
		}
		res, err := b.Commit(ctx, CommitOptions{Message: "nothing"})
		if err != nil || res.Created {
			t.Fatalf("%s: a commit from this folder changed history: %+v %v", when, res, err)
		}
	}
	clean("after checkout")
	for disk, want := range map[string]string{
		"x\uF03Adir/a.name-clash-1.md": "x:dir/a.md", "X\uF03ADIR/INNER.TXT": "x:dir/inner.txt",
		"cafe\u0301.name-clash-1.txt": "caf\u00e9.txt", "au\uF078.txt": "aux.txt", "new\uF03Aname": "new:name",
	} {
		if got, err := b.RelPath(filepath.Join(b.Root, disk)); err != nil || got != want {
			t.Errorf("RelPath(%q) = %q, %v; want %q", disk, got, err, want)
		}
	}
	st, _ := b.Status(ctx)
	kept := map[string]string{}
	for _, k := range st.Kept {
		kept[k.Path] = k.As
		if k.Why == "" || got[k.As] == "" && !strings.HasPrefix(k.As, "x\uF03Adir") {
			t.Errorf("kept name %+v: no reason, or nothing there", k)
		}
	}
	wantKept := map[string]string{
		"a.txt": "a.name-clash-1.txt", "aux.txt": "au\uF078.txt", "x:y": "x\uF03Ay", "name.": "name\uF02E",
		"caf\u00e9.txt": "caf\u00e9.name-clash-1.txt", "x:dir": "x\uF03Adir", "x:dir/a.md": "x\uF03Adir/a.name-clash-1.md",
		"back\\slash.txt": "back\uF05Cslash.txt",
	}
	if len(kept) != len(wantKept) {
		t.Errorf("status lists kept names %q, want %q", kept, wantKept)
	}
	for p, as := range wantKept {
		if kept[p] != as {
			t.Errorf("status: %q kept as %q, want %q", p, kept[p], as)
		}
	}

	// HFS+ lists every name NFD, whatever it was written as.
	for p := range got {
		if d := norm.NFD.String(p); d != p {
			if _, err := os.Stat(filepath.Join(b.Root, d)); err == nil {
				continue // the NFD form is another file's (the clash)
			}
			if err := os.Rename(filepath.Join(b.Root, p), filepath.Join(b.Root, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	clean("names listed NFD")

	// NTFS shows no exec bit, FAT one on every file: history's kinds stay.
	chmodAll := func(mode os.FileMode) {
		filepath.Walk(b.Root, func(p string, fi os.FileInfo, err error) error {
			if fi.Mode().IsRegular() && !strings.Contains(p, ".mesh") {
				os.Chmod(p, mode)
			}
			return nil
		})
	}
	chmodAll(0o644)
	clean("no exec bits")
	chmodAll(0o755)
	clean("every exec bit")
	write(t, b, "new.sh", "new\n")
	os.Chmod(filepath.Join(b.Root, "new.sh"), 0o755)
	added := commit(t, b, "a new file where every file shows +x")
	nc, _ := b.Store.ReadCommit(added)
	if e, err := object.Lookup(b.Store, nc.Tree, "new.sh"); err != nil || e.Kind != object.KindFile {
		t.Fatalf("new.sh committed as %v (%v), want a plain file", e.Kind, err)
	}
	if e, err := object.Lookup(b.Store, nc.Tree, "plain.txt"); err != nil || e.Kind != object.KindExec {
		t.Fatalf("plain.txt committed as %v (%v), want exec as history has it", e.Kind, err)
	}
	os.Remove(filepath.Join(b.Root, "new.sh"))
	commit(t, b, "remove new.sh")
	_, aTree, _ = b.headTree()

	// An edit under an escaped name is an edit of history's name.
	write(t, b, "x\uF03Ay", "colon, edited\n")
	edit := commit(t, b, "edit the colon file")
	ec, _ := b.Store.ReadCommit(edit)
	changes, err := object.DiffTrees(b.Store, aTree, ec.Tree)
	if err != nil || len(changes) != 1 || changes[0].Path != "x:y" || changes[0].Old == nil || changes[0].New == nil {
		t.Fatalf("the edit changed %+v %v", changes, err)
	}

	// Back on Linux: every name as it was, the edit in place.
	if err := a.AddRemote(ctx, "b", b.Root, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pull(ctx, "b", MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for p, c := range linuxNames {
		want[p] = c
	}
	want["x:y"] = "colon, edited\n"
	if target, err := os.Readlink(filepath.Join(a.Root, "link")); err != nil || target != "plain.txt" {
		t.Errorf("the link came back as %q, %v", target, err)
	}
	if back := folderFiles(t, a.Root); len(back) != len(want) {
		t.Fatalf("round trip: %q", back)
	} else {
		for p, c := range want {
			if back[p] != c {
				t.Errorf("round trip: %q holds %q, want %q", p, back[p], c)
			}
		}
	}

	if fi, err := os.Stat(filepath.Join(a.Root, "plain.txt")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("plain.txt lost its exec bit on the way: %v %v", fi.Mode(), err)
	}

	// A.txt goes: a.txt, kept under a clash name beside it, takes its
	// own name on the case-insensitive folder.
	if err := os.Remove(filepath.Join(a.Root, "A.txt")); err != nil {
		t.Fatal(err)
	}
	commit(t, a, "remove A.txt")
	if _, err := b.Pull(ctx, "a", MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	after := folderFiles(t, b.Root)
	if after["a.txt"] != "lower\n" || len(after) != len(linuxNames) { // less A.txt, plus the link's stand-in
		t.Fatalf("after A.txt went: %q", after)
	}
	checkHoldable(t, b.Root, rules)
	clean("after the plan changed")
	st, _ = b.Status(ctx)
	for _, k := range st.Kept {
		if k.Path == "a.txt" {
			t.Errorf("a.txt is still listed as kept elsewhere: %+v", k)
		}
	}
}
