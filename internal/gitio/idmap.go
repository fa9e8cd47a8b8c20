package gitio

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/mesh-sync/mesh/object"
)

// IDMap pairs git commit IDs with mesh commit IDs, kept in a text file of
// "git-id mesh-id" lines. One mesh commit may pair with several git
// commits: the one it was imported from, and the one export-git wrote
// for it into another repository (whose message has the Mesh-Commit
// trailer, so its ID differs). All are kept.
type IDMap struct {
	path   string
	toMesh map[plumbing.Hash]object.ID
	toGit  map[object.ID][]plumbing.Hash
	dirty  bool
}

// LoadIDMap reads the map at path (a missing file is an empty map).
func LoadIDMap(path string) (*IDMap, error) {
	m := &IDMap{path: path, toMesh: map[plumbing.Hash]object.ID{}, toGit: map[object.ID][]plumbing.Hash{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		g, me, ok := strings.Cut(sc.Text(), " ")
		id, err := object.ParseID(me)
		if !ok || !plumbing.IsHash(g) || err != nil {
			return nil, fmt.Errorf("%s:%d: not a \"git-id mesh-id\" line; delete the file to convert everything again", path, n)
		}
		m.add(plumbing.NewHash(g), id)
	}
	m.dirty = false
	return m, nil
}

func (m *IDMap) add(g plumbing.Hash, id object.ID) {
	if old, ok := m.toMesh[g]; ok && old == id {
		return
	}
	if old, ok := m.toMesh[g]; ok {
		// A git commit pairs with one mesh commit: drop the old pair.
		m.toGit[old] = slices.DeleteFunc(m.toGit[old], func(h plumbing.Hash) bool { return h == g })
	}
	m.toMesh[g] = id
	m.toGit[id] = append(m.toGit[id], g)
	m.dirty = true
}

// Mesh returns the mesh commit a git commit became.
func (m *IDMap) Mesh(g plumbing.Hash) (object.ID, bool) { id, ok := m.toMesh[g]; return id, ok }

// Git returns the git commit a mesh commit became most recently.
func (m *IDMap) Git(id object.ID) (plumbing.Hash, bool) {
	gs := m.toGit[id]
	if len(gs) == 0 {
		return plumbing.ZeroHash, false
	}
	return gs[len(gs)-1], true
}

// GitIn returns the git commit paired with id that has reports held (the
// repository exported into), if any.
func (m *IDMap) GitIn(id object.ID, has func(plumbing.Hash) bool) (plumbing.Hash, bool) {
	for _, g := range m.toGit[id] {
		if has(g) {
			return g, true
		}
	}
	return plumbing.ZeroHash, false
}

// Save writes the map if it changed; call it only once the objects it
// names are durable.
func (m *IDMap) Save() error {
	if !m.dirty {
		return nil
	}
	lines := make([]string, 0, len(m.toMesh))
	for g, id := range m.toMesh {
		lines = append(lines, g.String()+" "+id.String()+"\n")
	}
	sort.Strings(lines)
	if err := object.WriteFileAtomic(m.path, []byte(strings.Join(lines, "")), 0o644, true); err != nil {
		return err
	}
	m.dirty = false
	return nil
}
