package gitio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	gitobj "github.com/go-git/go-git/v5/plumbing/object"
	"github.com/mesh-sync/mesh/object"
)

// builder writes git objects by hand, so a test controls every mode,
// name and parent.
type builder struct {
	t *testing.T
	r *git.Repository
	n int
}

func newBuilder(t *testing.T) (*builder, string) {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &builder{t: t, r: r}, dir
}

func (b *builder) blob(content string) plumbing.Hash {
	obj := b.r.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, _ := obj.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := b.r.Storer.SetEncodedObject(obj)
	if err != nil {
		b.t.Fatal(err)
	}
	return h
}

type ent struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

func (b *builder) tree(es ...ent) plumbing.Hash {
	t := &gitobj.Tree{}
	for _, e := range es {
		t.Entries = append(t.Entries, gitobj.TreeEntry{Name: e.name, Mode: e.mode, Hash: e.hash})
	}
	sortEntries(t.Entries)
	obj := b.r.Storer.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		b.t.Fatal(err)
	}
	h, err := b.r.Storer.SetEncodedObject(obj)
	if err != nil {
		b.t.Fatal(err)
	}
	return h
}

func (b *builder) commit(tree plumbing.Hash, msg string, parents ...plumbing.Hash) plumbing.Hash {
	b.n++
	when := time.Date(2026, 1, 1, 0, b.n, 0, 0, time.FixedZone("", 90*60))
	c := &gitobj.Commit{
		Author:       gitobj.Signature{Name: "Ada", Email: "ada@example.org", When: when},
		Committer:    gitobj.Signature{Name: "Bob", Email: "bob@example.org", When: when.Add(time.Minute)},
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: parents,
	}
	obj := b.r.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		b.t.Fatal(err)
	}
	h, err := b.r.Storer.SetEncodedObject(obj)
	if err != nil {
		b.t.Fatal(err)
	}
	return h
}

func (b *builder) branch(name string, h plumbing.Hash) {
	if err := b.r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), h)); err != nil {
		b.t.Fatal(err)
	}
	b.r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(name)))
}

func sortEntries(es []gitobj.TreeEntry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && gitobj.TreeEntrySorter(es).Less(j, j-1); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

type meshSide struct {
	store   *object.Store
	chunker *object.Chunker
	mapPath string
}

func newMesh(t *testing.T) *meshSide {
	s, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	k, err := object.NewChunker(object.Chunking{Algorithm: "fastcdc-v1.0.0", Min: 1 << 10, Normal: 4 << 10, Max: 16 << 10}, runtime.GOMAXPROCS(0))
	if err != nil {
		t.Fatal(err)
	}
	return &meshSide{store: s, chunker: k, mapPath: filepath.Join(t.TempDir(), "git.map")}
}

func (m *meshSide) importGit(t *testing.T, dir, branch string) *ImportResult {
	t.Helper()
	g, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	idm, err := LoadIDMap(m.mapPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&Importer{Git: g, Dir: dir, Store: m.store, Chunker: m.chunker, Map: idm, Device: "git"}).Import(context.Background(), branch)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// roundTrip imports the git repository at dir, exports the result into a
// new git repository, and checks that every commit of the original has an
// exported counterpart with the same tree ID, parents and message.
func roundTrip(t *testing.T, dir, branch string) (*meshSide, int) {
	t.Helper()
	m := newMesh(t)
	ir := m.importGit(t, dir, branch)
	out := t.TempDir()
	g2, created, err := OpenOrInit(out, ir.Branch)
	if err != nil || !created {
		t.Fatalf("init export target: %v %v", created, err)
	}
	exMap, _ := LoadIDMap(filepath.Join(t.TempDir(), "export.map"))
	ex := &Exporter{Git: g2, Dir: out, Store: m.store, Map: exMap}
	er, err := ex.Export(context.Background(), ir.Head, ir.Branch)
	if err != nil {
		t.Fatal(err)
	}
	if er.Exported != ir.Imported {
		t.Fatalf("imported %d commits, exported %d", ir.Imported, er.Exported)
	}
	imMap, _ := LoadIDMap(m.mapPath)
	g1, _ := Open(dir)
	iter, err := g1.Log(&git.LogOptions{From: plumbing.NewHash(ir.GitHead)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = iter.ForEach(func(c *gitobj.Commit) error {
		n++
		id, ok := imMap.Mesh(c.Hash)
		if !ok {
			t.Fatalf("git commit %s was not imported", c.Hash)
		}
		eh, ok := exMap.Git(id)
		if !ok {
			t.Fatalf("mesh commit %s was not exported", id.Short())
		}
		ec, err := g2.CommitObject(eh)
		if err != nil {
			t.Fatal(err)
		}
		if ec.TreeHash != c.TreeHash {
			t.Fatalf("commit %s: exported tree %s, original %s", c.Hash, ec.TreeHash, c.TreeHash)
		}
		if len(ec.ParentHashes) != len(c.ParentHashes) || !strings.HasPrefix(ec.Message, c.Message) || !strings.Contains(ec.Message, Trailer+id.String()) {
			t.Fatalf("commit %s: exported as %d parents, message %q", c.Hash, len(ec.ParentHashes), ec.Message)
		}
		if !ec.Author.When.Equal(c.Author.When) || ec.Author.Name != c.Author.Name || ec.Author.Email != c.Author.Email {
			t.Fatalf("commit %s: author %v, original %v", c.Hash, ec.Author, c.Author)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, n
}

func TestRoundTrip(t *testing.T) {
	b, dir := newBuilder(t)
	readme := b.blob("hello\n")
	script := b.blob("#!/bin/sh\necho hi\n")
	big := b.blob(strings.Repeat("0123456789abcdef", 8192)) // several chunks
	sub := b.tree(ent{"b.txt", filemode.Regular, b.blob("b\n")}, ent{"deeper", filemode.Dir, b.tree(ent{"x", filemode.Regular, readme})})
	t1 := b.tree(
		ent{"README", filemode.Regular, readme},
		ent{"run.sh", filemode.Executable, script},
		ent{"link", filemode.Symlink, b.blob("README")},
		ent{"caf\xe9.txt", filemode.Regular, b.blob("latin-1 name\n")},
		ent{"big.bin", filemode.Regular, big},
		ent{"empty", filemode.Regular, b.blob("")},
		ent{"dir", filemode.Dir, sub},
		ent{"dir.txt", filemode.Regular, readme}, // sorts after dir/ in git, before it in mesh
	)
	c1 := b.commit(t1, "first\n")
	// rename dir/b.txt to dir/c.txt, make run.sh plain, edit README
	sub2 := b.tree(ent{"c.txt", filemode.Regular, b.blob("b\n")}, ent{"deeper", filemode.Dir, b.tree(ent{"x", filemode.Regular, readme})})
	t2 := b.tree(
		ent{"README", filemode.Regular, b.blob("hello, world\n")},
		ent{"run.sh", filemode.Regular, script},
		ent{"link", filemode.Symlink, b.blob("README")},
		ent{"caf\xe9.txt", filemode.Regular, b.blob("latin-1 name\n")},
		ent{"big.bin", filemode.Regular, big},
		ent{"empty", filemode.Regular, b.blob("")},
		ent{"dir", filemode.Dir, sub2},
		ent{"dir.txt", filemode.Regular, readme},
	)
	c2 := b.commit(t2, "rename and edit\n", c1)
	side := b.commit(b.tree(ent{"README", filemode.Regular, readme}, ent{"side", filemode.Regular, b.blob("side\n")}), "side branch\n", c1)
	merged := b.commit(t2, "Merge side\n\nwith a body\n", c2, side)
	empty := b.commit(t2, "empty commit\n", merged)
	b.branch("main", empty)

	m, n := roundTrip(t, dir, "")
	if n != 5 {
		t.Fatalf("walked %d commits", n)
	}
	// Running the import again converts nothing, and counts the whole
	// history as here already; a new commit is the only one.
	if r := m.importGit(t, dir, "main"); r.Imported != 0 || r.Known != n {
		t.Fatalf("second import: %+v", r)
	}
	next := b.commit(t1, "back to the first tree\n", empty)
	b.branch("main", next)
	r := m.importGit(t, dir, "main")
	if r.Imported != 1 || r.Known != n {
		t.Fatalf("incremental import: %+v", r)
	}
	// The imported history in mesh: the merge has both parents, the
	// symlink is one, the executable bit and the odd name survived.
	mc, err := m.store.ReadCommit(r.Head)
	if err != nil || mc.Author != "Ada <ada@example.org>" || mc.TZ != 90 {
		t.Fatalf("imported commit: %+v %v", mc, err)
	}
	tr, _ := m.store.ReadTree(mc.Tree)
	kinds := map[string]object.Kind{}
	for _, e := range tr.Entries {
		kinds[e.Name] = e.Kind
	}
	if kinds["run.sh"] != object.KindExec || kinds["link"] != object.KindSymlink || kinds["caf\xe9.txt"] != object.KindFile || kinds["dir"] != object.KindDir {
		t.Fatalf("kinds: %v", kinds)
	}
}

func TestImportErrors(t *testing.T) {
	m := newMesh(t)
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotGit) {
		t.Fatalf("plain directory: %v", err)
	}

	// shallow: a commit whose parent is cut off
	b, dir := newBuilder(t)
	c1 := b.commit(b.tree(ent{"f", filemode.Regular, b.blob("1")}), "one\n")
	c2 := b.commit(b.tree(ent{"f", filemode.Regular, b.blob("2")}), "two\n", c1)
	b.branch("main", c2)
	os.WriteFile(filepath.Join(dir, ".git", "shallow"), []byte(c2.String()+"\n"), 0o644)
	g, _ := Open(dir)
	idm, _ := LoadIDMap(m.mapPath)
	im := &Importer{Git: g, Dir: dir, Store: m.store, Chunker: m.chunker, Map: idm}
	if _, err := im.Import(context.Background(), ""); !errors.Is(err, ErrNotGit) || !strings.Contains(err.Error(), "shallow") {
		t.Fatalf("shallow: %v", err)
	}
	os.Remove(filepath.Join(dir, ".git", "shallow"))

	// corrupt: a loose object overwritten with garbage
	blobPath := filepath.Join(dir, ".git", "objects", c1.String()[:2], c1.String()[2:])
	os.Chmod(blobPath, 0o644)
	if err := os.WriteFile(blobPath, []byte("not zlib"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, _ = Open(dir)
	im.Git = g
	_, err := im.Import(context.Background(), "")
	if !errors.Is(err, ErrNotGit) || !strings.Contains(err.Error(), c1.String()) {
		t.Fatalf("corrupt object: %v", err)
	}
	if len(m.store.IDs()) != 0 {
		t.Fatalf("a failed import stored %d objects", len(m.store.IDs()))
	}

	// a submodule is left out, named in the result and, in each commit
	// that had it, in a trailer; the rest of the history comes in
	b, dir = newBuilder(t)
	sub := plumbing.NewHash("1111111111111111111111111111111111111111")
	inner := b.tree(ent{"lib", filemode.Submodule, sub}, ent{"x.txt", filemode.Regular, b.blob("x\n")})
	root := b.tree(ent{"a", filemode.Dir, inner}, ent{"b", filemode.Dir, inner}, ent{"keep.txt", filemode.Regular, b.blob("kept\n")})
	b.branch("main", b.commit(root, "with submodules\n"))
	g, _ = Open(dir)
	m2 := newMesh(t)
	idm2, _ := LoadIDMap(m2.mapPath)
	im = &Importer{Git: g, Dir: dir, Store: m2.store, Chunker: m2.chunker, Map: idm2}
	res, err := im.Import(context.Background(), "")
	if err != nil {
		t.Fatalf("submodules: %v", err)
	}
	if strings.Join(res.Submodules, ",") != "a/lib,b/lib" || res.Imported != 1 {
		t.Fatalf("submodules: %+v", res)
	}
	mc, err := m2.store.ReadCommit(res.Head)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{SubmoduleTrailer + "a/lib " + sub.String(), SubmoduleTrailer + "b/lib " + sub.String(), "with submodules"} {
		if !strings.Contains(mc.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, mc.Message)
		}
	}
	mt, _ := m2.store.ReadTree(mc.Tree)
	if len(mt.Entries) != 3 {
		t.Fatalf("root tree: %+v", mt.Entries)
	}
	at, _ := m2.store.ReadTree(mt.Entries[0].ID)
	if len(at.Entries) != 1 || at.Entries[0].Name != "x.txt" {
		t.Fatalf("a/ holds %+v; the gitlink should be left out", at.Entries)
	}
}

// TestRoundTripGoTree: the Go distribution's source, committed with the
// git command line, comes back from mesh with the very same tree ID.
func TestRoundTripGoTree(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed; .ci/run installs it")
	}
	dir := t.TempDir()
	src := filepath.Join(runtime.GOROOT(), "src")
	cmds := [][]string{
		{"git", "init", "-q", "-b", "main", dir},
		{"cp", "-a", src + "/.", dir},
		{"git", "-C", dir, "add", "-A"},
		{"git", "-C", dir, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-q", "-m", "go tree"},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	if _, n := roundTrip(t, dir, "main"); n != 1 {
		t.Fatalf("walked %d commits", n)
	}
}

// TestExportAgainAfterImport: with one map for both directions (as
// .mesh/git.map is), a mesh commit pairs with the git commit it came from
// and the one export wrote; exporting again reuses the exported one
// whichever of the two sorts last (before, 5 of 8 such repositories
// re-exported their commit).
func TestExportAgainAfterImport(t *testing.T) {
	orders := map[bool]int{} // exported hash sorts after the original: count
	for i := 0; i < 8; i++ {
		b, dir := newBuilder(t)
		c := b.commit(b.tree(ent{name: "f.txt", mode: filemode.Regular, hash: b.blob(fmt.Sprintf("version %d\n", i))}), fmt.Sprintf("commit %d\n", i))
		b.branch("main", c)
		m := newMesh(t)
		ir := m.importGit(t, dir, "main")
		out := t.TempDir()
		g2, _, err := OpenOrInit(out, "main")
		if err != nil {
			t.Fatal(err)
		}
		export := func() *ExportResult {
			idm, err := LoadIDMap(m.mapPath) // the import's map
			if err != nil {
				t.Fatal(err)
			}
			er, err := (&Exporter{Git: g2, Dir: out, Store: m.store, Map: idm}).Export(context.Background(), ir.Head, "main")
			if err != nil {
				t.Fatal(err)
			}
			return er
		}
		if er := export(); er.Exported != 1 {
			t.Fatalf("repository %d: first export wrote %d commits", i, er.Exported)
		}
		first, _ := g2.Reference(plumbing.NewBranchReferenceName("main"), true)
		orders[first.Hash().String() > c.String()]++
		if er := export(); er.Exported != 0 || er.Known != 1 {
			t.Fatalf("repository %d: the second export wrote %d commits (%d known)", i, er.Exported, er.Known)
		}
		again, _ := g2.Reference(plumbing.NewBranchReferenceName("main"), true)
		if first.Hash() != again.Hash() {
			t.Fatalf("repository %d: the branch moved from %s to %s", i, first.Hash(), again.Hash())
		}
		// And the import still maps the original commit.
		idm, _ := LoadIDMap(m.mapPath)
		if id, ok := idm.Mesh(c); !ok || id != ir.Head {
			t.Fatalf("repository %d: the import's pair is gone", i)
		}
	}
	if orders[true] == 0 || orders[false] == 0 {
		t.Fatalf("the exported hashes sorted one way only (%v): the test covers nothing", orders)
	}
}
