package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// TestPathFilter: a filter says maybe for every changed path and each
// folder above it, and no for nearly all others.
func TestPathFilter(t *testing.T) {
	st := memTrees{}
	tree := func(files map[string]string) object.ID { return st.build(t, files) }
	before := map[string]string{}
	for i := range 300 {
		before[fmt.Sprintf("d%d/e%d/f%d.txt", i%7, i%13, i)] = "same"
	}
	after := map[string]string{}
	for p, c := range before {
		after[p] = c
	}
	changed := []string{"d1/e1/f1.txt", "d3/e5/f31.txt", "new/deep/file.txt"}
	after["d1/e1/f1.txt"] = "edited"
	delete(after, "d3/e5/f31.txt")
	after["new/deep/file.txt"] = "added"
	fl, err := makePathFilter(st, tree(before), tree(after))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(changed, "d1", "d1/e1", "d3/e5", "new", "new/deep", "/d1/e1/") {
		if !filterMayHave(fl, p) {
			t.Errorf("filter says %q did not change", p)
		}
	}
	maybe := 0
	for p := range before {
		if p != "d1/e1/f1.txt" && p != "d3/e5/f31.txt" && filterMayHave(fl, p) {
			maybe++
		}
	}
	if maybe > len(before)/20 {
		t.Errorf("filter says maybe for %d of %d unchanged paths", maybe, len(before))
	}
	// A commit that changed more than a filter holds says maybe for all.
	big := map[string]string{}
	for i := range filterMaxPaths + 1 {
		big[fmt.Sprintf("f%d", i)] = "x"
	}
	fl, err = makePathFilter(st, object.ID{}, tree(big))
	if err != nil {
		t.Fatal(err)
	}
	if len(fl) != 0 || !filterMayHave(fl, "anything") {
		t.Errorf("filter of %d paths: %d bytes, want the empty one that says maybe", len(big), len(fl))
	}
}

// TestPathFiltersFile: filters written in blocks come back; a block cut
// short or damaged ends what is read, and the next save writes the file
// again whole.
func TestPathFiltersFile(t *testing.T) {
	r := &Repo{Meta: t.TempDir()}
	f := r.loadPathFilters()
	if !f.whole || len(f.m) != 0 {
		t.Fatalf("no file: whole %v, %d filters", f.whole, len(f.m))
	}
	ids := make([]object.ID, 6)
	for i := range ids {
		ids[i] = object.Hash(object.TypeChunk, []byte{byte(i)})
	}
	f.add(ids[0], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.add(ids[1], []byte{})
	f.save()
	f = r.loadPathFilters()
	f.add(ids[2], []byte{9, 9, 9, 9, 9, 9, 9, 9})
	f.save()
	f = r.loadPathFilters()
	if f.whole || len(f.m) != 3 || f.m[ids[2]][0] != 9 || len(f.m[ids[1]]) != 0 {
		t.Fatalf("after two saves: whole %v, filters %v", f.whole, f.m)
	}
	path := filepath.Join(r.Meta, changedPathsFile)
	good, _ := os.ReadFile(path)
	// A torn append: the last block is cut short.
	os.WriteFile(path, good[:len(good)-3], 0o644)
	f = r.loadPathFilters()
	if !f.whole || len(f.m) != 2 {
		t.Fatalf("torn file: whole %v, %d filters, want the first block's 2", f.whole, len(f.m))
	}
	f.add(ids[3], []byte{7, 7, 7, 7, 7, 7, 7, 7})
	f.save()
	if f = r.loadPathFilters(); f.whole || len(f.m) != 3 {
		t.Fatalf("after the save that mends it: whole %v, %d filters", f.whole, len(f.m))
	}
	// A flipped bit in any byte of the records is noticed.
	good, _ = os.ReadFile(path)
	for i := len(changedPathsHeader); i < len(good); i++ {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		g := &pathFilters{m: map[object.ID][]byte{}}
		if g.parse(b) {
			t.Fatalf("a flipped bit at byte %d of %d went unnoticed", i, len(b))
		}
	}
}

// FuzzPathFilters: any file parses without panic, and what parses writes
// back as the same filters.
func FuzzPathFilters(f *testing.F) {
	r := &Repo{Meta: f.TempDir()}
	pf := r.loadPathFilters()
	pf.add(object.Hash(object.TypeChunk, []byte("a")), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	pf.add(object.Hash(object.TypeChunk, []byte("b")), nil)
	pf.save()
	seed, _ := os.ReadFile(filepath.Join(r.Meta, changedPathsFile))
	f.Add(seed)
	f.Add([]byte(changedPathsHeader))
	f.Add([]byte(changedPathsHeader + "\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &pathFilters{m: map[object.ID][]byte{}}
		g.parse(b)
		if len(g.m) == 0 {
			return
		}
		dir := t.TempDir()
		w := &pathFilters{path: filepath.Join(dir, changedPathsFile), m: g.m, whole: true}
		w.save()
		back, err := os.ReadFile(w.path)
		if err != nil {
			t.Fatal(err)
		}
		h := &pathFilters{m: map[object.ID][]byte{}}
		if !h.parse(back) || len(h.m) != len(g.m) {
			t.Fatalf("%d filters parsed, %d after writing them back", len(g.m), len(h.m))
		}
		for id, fl := range g.m {
			if string(h.m[id]) != string(fl) {
				t.Fatalf("filter of %s changed in the round trip", id.Short())
			}
		}
	})
}

// memTrees are trees held in memory, built from a map of paths to file
// contents.
type memTrees map[object.ID]*object.Tree

func (m memTrees) ReadTree(id object.ID) (*object.Tree, error) {
	if t, ok := m[id]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("tree %s: %w", id.Short(), object.ErrNotFound)
}

func (m memTrees) build(t *testing.T, files map[string]string) object.ID {
	t.Helper()
	sub := map[string]map[string]string{}
	tr := &object.Tree{}
	for p, c := range files {
		if dir, rest, ok := strings.Cut(p, "/"); ok {
			if sub[dir] == nil {
				sub[dir] = map[string]string{}
			}
			sub[dir][rest] = c
			continue
		}
		tr.Entries = append(tr.Entries, object.Entry{Name: p, Kind: object.KindFile, Size: int64(len(c)), ID: object.Hash(object.TypeFile, []byte(c))})
	}
	for dir, fs := range sub {
		tr.Entries = append(tr.Entries, object.Entry{Name: dir, Kind: object.KindDir, ID: m.build(t, fs)})
	}
	sort.Slice(tr.Entries, func(i, j int) bool { return tr.Entries[i].Name < tr.Entries[j].Name })
	b, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id := object.Hash(object.TypeTree, b)
	m[id] = tr
	return id
}
