package merge

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

var ctx = context.Background()

type fixture struct {
	t  *testing.T
	st *object.Store
	k  *object.Chunker
}

func newFixture(t *testing.T) *fixture {
	st, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k, _ := object.NewChunker(object.Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}, 1)
	return &fixture{t: t, st: st, k: k}
}

// files maps a slash path to content; a value starting with "->" is a
// symlink, with "x:" an executable.
type files map[string]string

// tree writes files as a tree and returns its ID.
func (f *fixture) tree(fs files, b *object.Batch) object.ID {
	type dir struct {
		entries map[string]object.Entry
		subs    map[string]*dir
	}
	root := &dir{entries: map[string]object.Entry{}, subs: map[string]*dir{}}
	for p, content := range fs {
		parts := strings.Split(p, "/")
		d := root
		for _, c := range parts[:len(parts)-1] {
			if d.subs[c] == nil {
				d.subs[c] = &dir{entries: map[string]object.Entry{}, subs: map[string]*dir{}}
			}
			d = d.subs[c]
		}
		name := parts[len(parts)-1]
		switch {
		case strings.HasPrefix(content, "->"):
			id, _ := b.Put(object.TypeChunk, []byte(content[2:]))
			d.entries[name] = object.Entry{Name: name, Kind: object.KindSymlink, Size: int64(len(content) - 2), ID: id}
		default:
			kind := object.KindFile
			if strings.HasPrefix(content, "x:") {
				kind, content = object.KindExec, content[2:]
			}
			id, n, err := f.k.WriteFile(ctx, b, strings.NewReader(content), int64(len(content)))
			if err != nil {
				f.t.Fatal(err)
			}
			d.entries[name] = object.Entry{Name: name, Kind: kind, Size: n, ID: id}
		}
	}
	var build func(d *dir) object.ID
	build = func(d *dir) object.ID {
		for name, s := range d.subs {
			d.entries[name] = object.Entry{Name: name, Kind: object.KindDir, ID: build(s)}
		}
		t := &object.Tree{}
		for _, name := range sortedKeys(d.entries) {
			t.Entries = append(t.Entries, d.entries[name])
		}
		body, err := t.Encode()
		if err != nil {
			f.t.Fatal(err)
		}
		id, _ := b.Put(object.TypeTree, body)
		return id
	}
	return build(root)
}

func (f *fixture) commit(fs files, device string, time int64, parents ...object.ID) object.ID {
	b := f.st.NewBatch()
	c := &object.Commit{Tree: f.tree(fs, b), Parents: parents, Device: device, Author: device, Time: time, Message: device}
	id, _ := b.Put(object.TypeCommit, c.Encode())
	if err := b.Finish(); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// read returns the files of a commit's tree.
func (f *fixture) read(commit object.ID) files {
	c, err := f.st.ReadCommit(commit)
	if err != nil {
		f.t.Fatal(err)
	}
	out := files{}
	var walk func(prefix string, id object.ID)
	walk = func(prefix string, id object.ID) {
		t, err := f.st.ReadTree(id)
		if err != nil {
			f.t.Fatalf("tree %q of %s: %v", prefix, commit.Short(), err)
		}
		for _, e := range t.Entries {
			p := path.Join(prefix, e.Name)
			switch e.Kind {
			case object.KindDir:
				walk(p, e.ID)
			case object.KindSymlink:
				b, _ := f.st.ReadChunk(e.ID)
				out[p] = "->" + string(b)
			default:
				var buf bytes.Buffer
				f.st.WriteFileTo(ctx, &buf, e.ID)
				if e.Kind == object.KindExec {
					out[p] = "x:" + buf.String()
				} else {
					out[p] = buf.String()
				}
			}
		}
	}
	walk("", c.Tree)
	return out
}

func (f *fixture) merge(a, b object.ID, markers bool) *Result {
	batch := f.st.NewBatch()
	r, err := Commits(ctx, f.st, batch, a, b, TreeOptions{Chunker: f.k, Markers: markers})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := batch.Finish(); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func TestTreeCases(t *testing.T) {
	f := newFixture(t)
	base := files{"keep": "k\n", "text": "1\n2\n3\n4\n5\n", "del": "d\n", "moddel": "m\n", "dir/a": "a\n", "mode": "m\n", "bin": "\x00b"}
	b0 := f.commit(base, "base", 100)
	ours := files{"keep": "k\n", "text": "ONE\n2\n3\n4\n5\n", "moddel": "m changed\n", "dir/a": "a\n", "mode": "x:m\n", "bin": "\x00ours", "added": "same\n", "fd": "file\n"}
	theirs := files{"keep": "k\n", "text": "1\n2\n3\n4\nFIVE\n", "del": "d\n", "dir/a": "a\n", "dir/b": "new\n", "mode": "m\n", "bin": "\x00theirs", "added": "same\n", "fd/inside": "x\n"}
	delete(theirs, "del")
	a := f.commit(ours, "laptop", 200, b0)
	b := f.commit(theirs, "phone", 300, b0) // later: phone wins
	r := f.merge(a, b, false)
	got := f.read(r.ID)
	want := map[string]string{
		"keep": "k\n", "text": "ONE\n2\n3\n4\nFIVE\n", "moddel": "m changed\n", "dir/a": "a\n", "dir/b": "new\n",
		"mode": "x:m\n", "bin": "\x00theirs", "added": "same\n", "fd/inside": "x\n",
	}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s = %q, want %q", p, got[p], c)
		}
	}
	if _, ok := got["del"]; ok {
		t.Error("del was deleted on one side and unchanged on the other, but survived")
	}
	var binCopy, fdCopy bool
	for p, c := range got {
		if strings.HasPrefix(p, "bin.conflict-laptop-") && c == "\x00ours" {
			binCopy = true
		}
		if strings.HasPrefix(p, "fd.conflict-laptop-") && c == "file\n" {
			fdCopy = true
		}
	}
	if !binCopy || !fdCopy {
		t.Errorf("conflict copies missing: %v", keys(got))
	}
	paths := map[string]bool{}
	for _, c := range r.Conflicts {
		paths[c.Path] = true
	}
	for _, p := range []string{"bin", "fd", "moddel"} {
		if !paths[p] {
			t.Errorf("conflict at %s not recorded: %+v", p, r.Conflicts)
		}
	}
	if again := f.merge(b, a, false); again.ID != r.ID {
		t.Fatal("merge(b,a) differs from merge(a,b)")
	}
	// A text conflict keeps the loser beside, or writes markers.
	ct := f.commit(files{"t": "1\nours\n3\n"}, "laptop", 400, b0)
	dt := f.commit(files{"t": "1\ntheirs\n3\n"}, "phone", 401, b0)
	rc := f.merge(ct, dt, false)
	gc := f.read(rc.ID)
	if gc["t"] != "1\ntheirs\n3\n" || len(gc) != 2 {
		t.Fatalf("text conflict: %v", gc)
	}
	rm := f.merge(ct, dt, true)
	gm := f.read(rm.ID)
	if !strings.Contains(gm["t"], "<<<<<<< phone\n") || !strings.Contains(gm["t"], "ours\n") || len(rm.Conflicts) != 1 {
		t.Fatalf("markers: %q %+v", gm["t"], rm.Conflicts)
	}
	// Fast-forward and already-merged.
	child := f.commit(ours, "laptop", 500, a)
	if r := f.merge(a, child, false); !r.FastForward || r.ID != child {
		t.Fatalf("fast-forward: %+v", r)
	}
}

func keys(m files) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestMergeIsPureAndLosesNothing: over many random histories, merge(a,b)
// and merge(b,a) give the same commit ID, merging several heads in any
// arrival order gives the same final commit, and every version either
// side wrote is in the result (at its path, beside it, or between
// markers).
func TestMergeIsPureAndLosesNothing(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	f := newFixture(t)
	for iter := 0; iter < 60; iter++ {
		base := files{}
		for i := 0; i < 6; i++ {
			base[fmt.Sprintf("d%d/f%d", i%2, i)] = fmt.Sprintf("l1\nl2 %d\nl3\nl4\nl5\n", i)
		}
		b0 := f.commit(base, "base", 1000)
		var heads []object.ID
		var sides []files
		for s := 0; s < 3; s++ {
			fs := files{}
			for k, v := range base {
				fs[k] = v
			}
			for e := 0; e < 3; e++ {
				k := fmt.Sprintf("d%d/f%d", r.Intn(2), r.Intn(8))
				switch r.Intn(4) {
				case 0:
					delete(fs, k)
				case 1:
					fs[k] = fmt.Sprintf("l1\nside %d iter %d\nl3\nl4\nl5\n", s, iter)
				case 2:
					fs[k] = fmt.Sprintf("l1\nl2\nl3\nl4\nside %d\n", s)
				default:
					fs[k] = "\x00binary " + fmt.Sprint(s)
				}
			}
			sides = append(sides, fs)
			heads = append(heads, f.commit(fs, fmt.Sprintf("dev%d", s), int64(2000+r.Intn(3)), b0))
		}
		ab := f.merge(heads[0], heads[1], false)
		ba := f.merge(heads[1], heads[0], false)
		if ab.ID != ba.ID {
			t.Fatalf("iteration %d: merge(a,b) %s != merge(b,a) %s", iter, ab.ID.Short(), ba.ID.Short())
		}
		merged := f.read(ab.ID)
		for s, fs := range sides[:2] {
			for p, v := range fs {
				if base[p] == v {
					continue // unchanged: may be deleted by the other side
				}
				if !containsVersion(merged, v) {
					t.Fatalf("iteration %d: side %d's %s (%q) was lost: %v", iter, s, p, v, merged)
				}
			}
		}
		var finals []object.ID
		for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
			hs := []object.ID{heads[order[0]], heads[order[1]], heads[order[2]]}
			batch := f.st.NewBatch()
			res, err := Heads(ctx, f.st, batch, hs, TreeOptions{Chunker: f.k})
			if err != nil {
				t.Fatal(err)
			}
			batch.Finish()
			finals = append(finals, res.ID)
		}
		if finals[0] != finals[1] || finals[1] != finals[2] {
			t.Fatalf("iteration %d: arrival order changed the final commit", iter)
		}
	}
}

// containsVersion: v is some file's content, or is inside a merged text
// (a clean line merge keeps its changed lines, markers keep all of it).
func containsVersion(merged files, v string) bool {
	for _, c := range merged {
		if c == v {
			return true
		}
	}
	changed := strings.Split(v, "\n")
	for _, c := range merged {
		all := true
		for _, l := range changed {
			if strings.HasPrefix(l, "side") && !strings.Contains(c, l) {
				all = false
			}
		}
		if all && strings.Contains(v, "side") {
			return true
		}
	}
	return false
}

// TestRenameFollowsEdit: one side renames a file, the other edits it; the
// edit lands at the new name and the old name is gone.
func TestRenameFollowsEdit(t *testing.T) {
	f := newFixture(t)
	text := "l1\nl2\nl3\nl4\n"
	b0 := f.commit(files{"old/name.txt": text, "other": "o\n"}, "base", 100)
	mover := f.commit(files{"new/dir/name.txt": text, "other": "o\n"}, "mover", 200, b0)
	editor := f.commit(files{"old/name.txt": "l1\nl2 edited\nl3\nl4\n", "other": "o\n"}, "editor", 300, b0)
	for _, r := range []*Result{f.merge(mover, editor, false), f.merge(editor, mover, false)} {
		got := f.read(r.ID)
		if got["new/dir/name.txt"] != "l1\nl2 edited\nl3\nl4\n" || len(got) != 2 || len(r.Conflicts) != 0 {
			t.Fatalf("rename+edit merged to %v, conflicts %+v", got, r.Conflicts)
		}
	}
	// A rename with edits is still a rename when the files are at least
	// half alike (git's -M50%): both edits meet at the new name.
	both := f.commit(files{"new/dir/name.txt": "l1\nl2\nl3\nl4 moved\n", "other": "o\n"}, "mover", 400, b0)
	for _, r := range []*Result{f.merge(both, editor, false), f.merge(editor, both, false)} {
		got := f.read(r.ID)
		if got["new/dir/name.txt"] != "l1\nl2 edited\nl3\nl4 moved\n" || len(got) != 2 || len(r.Conflicts) != 0 {
			t.Fatalf("rename with edits on both sides: %v %+v", got, r.Conflicts)
		}
	}
	// A file rewritten past recognition is a delete and an add, and the
	// delete meets an edit: nothing is lost, the edit stays at the old
	// name, recorded as a conflict.
	rewritten := f.commit(files{"new/dir/name.txt": "x1\nx2\nx3\nl4\n", "other": "o\n"}, "mover", 500, b0)
	r := f.merge(rewritten, editor, false)
	got := f.read(r.ID)
	if got["old/name.txt"] != "l1\nl2 edited\nl3\nl4\n" || got["new/dir/name.txt"] != "x1\nx2\nx3\nl4\n" {
		t.Fatalf("rewrite against an edit: %v", got)
	}
	if len(r.Conflicts) != 1 || r.Conflicts[0].Path != "old/name.txt" {
		t.Fatalf("modify/delete not recorded: %+v", r.Conflicts)
	}
}

// TestRenamePicksMostSimilar: of two added files alike enough, the edit
// follows the more similar one, whichever side is the winner.
func TestRenamePicksMostSimilar(t *testing.T) {
	f := newFixture(t)
	var base strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&base, "line %d\n", i)
	}
	text := base.String()
	near := strings.Replace(text, "line 3\n", "line three\n", 1)
	far := strings.Replace(strings.Replace(strings.Replace(text, "line 3\n", "x\n", 1), "line 4\n", "y\n", 1), "line 5\n", "z\n", 1)
	b0 := f.commit(files{"a.txt": text}, "base", 100)
	mover := f.commit(files{"far.txt": far, "near.txt": near}, "mover", 200, b0)
	editor := f.commit(files{"a.txt": strings.Replace(text, "line 15\n", "line fifteen\n", 1)}, "editor", 300, b0)
	for _, r := range []*Result{f.merge(mover, editor, false), f.merge(editor, mover, false)} {
		got := f.read(r.ID)
		if len(r.Conflicts) != 0 || got["far.txt"] != far || !strings.Contains(got["near.txt"], "line three\n") || !strings.Contains(got["near.txt"], "line fifteen\n") || len(got) != 2 {
			t.Fatalf("merged to %v, conflicts %+v", got, r.Conflicts)
		}
	}
}

// TestSignatureSimilarity: the score counts bytes in common against the
// larger file, by lines in text and 64-byte blocks in binary.
func TestSignatureSimilarity(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"a\nb\nc\nd\n", "a\nb\nc\nd\n", 100},
		{"a\nb\nc\nd\n", "a\nb\nX\nY\n", 50},
		{"a\nb\nc\nd\n", "a\nb\n", 50},
		{"a\nb\n", "", 0},
		{strings.Repeat("\x00", 128), strings.Repeat("\x00", 64) + strings.Repeat("\x01", 64), 50},
	}
	for _, c := range cases {
		if got := newSignature([]byte(c.a)).similarity(newSignature([]byte(c.b))); got != c.want {
			t.Errorf("similarity(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestCrissCrossMerge: two devices merged each other's work at the same
// time, then both edited again; the merge of those heads has two bases
// and uses their merge as a virtual base. It is symmetric and keeps both
// edits.
func TestCrissCrossMerge(t *testing.T) {
	f := newFixture(t)
	b0 := f.commit(files{"t": "1\n2\n3\n4\n5\n6\n7\n", "gone": "g\n"}, "base", 100)
	x := f.commit(files{"t": "1 x\n2\n3\n4\n5\n6\n7\n", "gone": "g\n"}, "x", 200, b0)
	y := f.commit(files{"t": "1\n2\n3\n4\n5\n6\n7 y\n"}, "y", 200, b0)
	mx := f.commit(files{"t": "1 x\n2\n3\n4\n5\n6\n7 y\n"}, "x", 300, x, y)
	my := f.commit(files{"t": "1 x\n2\n3\n4\n5\n6\n7 y\n"}, "y", 300, y, x)
	ax := f.commit(files{"t": "1 x\n2\n3 ax\n4\n5\n6\n7 y\n"}, "x", 400, mx)
	ay := f.commit(files{"t": "1 x\n2\n3\n4\n5 ay\n6\n7 y\n"}, "y", 400, my)
	if bases, _ := Bases(&CachedCommits{R: f.st}, ax, ay); len(bases) != 2 {
		t.Fatalf("criss-cross has %d bases", len(bases))
	}
	r1, r2 := f.merge(ax, ay, false), f.merge(ay, ax, false)
	if r1.ID != r2.ID {
		t.Fatal("criss-cross merge depends on argument order")
	}
	got := f.read(r1.ID)
	if got["t"] != "1 x\n2\n3 ax\n4\n5 ay\n6\n7 y\n" || len(got) != 1 || len(r1.Conflicts) != 0 {
		t.Fatalf("criss-cross merge: %v %+v", got, r1.Conflicts)
	}
}

func TestDeleteDelete(t *testing.T) {
	f := newFixture(t)
	b0 := f.commit(files{"a": "a\n", "b": "b\n"}, "base", 100)
	x := f.commit(files{"b": "b\n", "x": "x\n"}, "x", 200, b0)
	y := f.commit(files{"b": "b\n", "y": "y\n"}, "y", 201, b0)
	r := f.merge(x, y, false)
	got := f.read(r.ID)
	if _, ok := got["a"]; ok || got["x"] != "x\n" || got["y"] != "y\n" || len(r.Conflicts) != 0 {
		t.Fatalf("delete/delete: %v %+v", got, r.Conflicts)
	}
}

// BenchmarkBasesStore: merge base of a 10,000-commit trunk and a branch
// that left it at the root, with commits read from a real store.
func BenchmarkBasesStore(b *testing.B) {
	st, err := object.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	batch := st.NewBatch()
	tree, _ := batch.Put(object.TypeTree, []byte{object.FormatVersion, 0})
	put := func(t int64, parents ...object.ID) object.ID {
		id, _ := batch.Put(object.TypeCommit, (&object.Commit{Tree: tree, Parents: parents, Time: t}).Encode())
		return id
	}
	root := put(0)
	trunk := root
	for i := 1; i < 10000; i++ {
		trunk = put(int64(i), trunk)
	}
	side := put(5000, root)
	if err := batch.Finish(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Bases(&CachedCommits{R: st}, trunk, side)
		if err != nil || len(got) != 1 || got[0] != root {
			b.Fatalf("bases %v %v", got, err)
		}
	}
}

// TestDropRedundantCopies: a copy holding the version now at its path, or
// the same version as another copy of the path, is removed with its
// record; a copy with a version kept nowhere else stays.
func TestDropRedundantCopies(t *testing.T) {
	f := newFixture(t)
	c := f.commit(files{
		"d/t.txt":              "A\n",
		"d/t.conflict-x-1.txt": "A\n", // the version at the path
		"d/t.conflict-y-2.txt": "B\n",
		"d/t.conflict-z-3.txt": "B\n", // the same as y's
		"d/t.conflict-w-4.txt": "C\n",
	}, "dev", 100)
	cm, _ := f.st.ReadCommit(c)
	var all []object.Conflict
	for _, cp := range []string{"d/t.conflict-w-4.txt", "d/t.conflict-x-1.txt", "d/t.conflict-y-2.txt", "d/t.conflict-z-3.txt"} {
		all = append(all, object.Conflict{Path: "d/t.txt", Copy: cp})
	}
	sortConflicts(all)
	batch := f.st.NewBatch()
	out, tree, err := dropRedundantCopies(f.st, batch, cm.Tree, all)
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Finish(); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range out {
		left = append(left, k.Copy)
	}
	if strings.Join(left, " ") != "d/t.conflict-w-4.txt d/t.conflict-y-2.txt" {
		t.Fatalf("records left: %v", left)
	}
	b := f.st.NewBatch()
	got := f.read(func() object.ID {
		id, _ := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Device: "dev", Author: "a", Time: 1, Message: "m"}).Encode())
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		return id
	}())
	if len(got) != 3 || got["d/t.txt"] != "A\n" || got["d/t.conflict-y-2.txt"] != "B\n" || got["d/t.conflict-w-4.txt"] != "C\n" {
		t.Fatalf("tree holds %v", got)
	}
}
