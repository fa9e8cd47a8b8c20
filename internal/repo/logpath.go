package repo

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
)

// LogOptions limit a log.
type LogOptions struct {
	// N is the most commits shown (0: all).
	N int
	// Paths, when set, keep only the commits that changed what is at
	// these paths (files or folders), with git's default simplification:
	// a commit whose paths are as in one of its parents is left out, and
	// only that parent is followed (for a merge, the side the paths came
	// from).
	Paths []string
	// Follow, with one path, goes on under a file's earlier name where a
	// commit added it by renaming another (as git log --follow).
	Follow bool
}

// LogPaths is Log limited by o. Each entry's Path is, with Follow, the
// name the file had at that commit.
func (r *Repo) LogPaths(start object.ID, o LogOptions) ([]LogEntry, error) {
	if len(o.Paths) == 0 {
		out, err := r.Log(start, o.N)
		for i := range out {
			out[i].Graph = out[i].Parents
		}
		return out, err
	}
	trees := newTreeCache(r.Store)
	bodies := &bodyCache{st: r.Store, bodies: map[object.ID][]byte{}}
	filters := r.loadPathFilters()
	defer filters.save()
	mayChange := func(fl []byte, paths []string) bool {
		for _, p := range paths {
			if filterMayHave(fl, p) {
				return true
			}
		}
		return false
	}
	// What is at the paths, by tree: a commit's is looked up once as a
	// parent's and used again when the walk reaches it.
	found := map[object.ID][]object.Entry{}
	at := func(tree object.ID, paths []string) ([]object.Entry, error) {
		if es, ok := found[tree]; ok && slices.Equal(paths, o.Paths) {
			return es, nil
		}
		out := make([]object.Entry, len(paths))
		for i, p := range paths {
			e, ok, err := bodies.lookup(tree, p)
			if err != nil {
				return nil, err
			}
			if ok {
				out[i] = e
			}
		}
		if slices.Equal(paths, o.Paths) {
			// Only the walk's own paths are kept: with --follow a
			// commit may be looked at under a file's older name.
			found[tree] = out
		}
		return out, nil
	}
	same := func(a, b []object.Entry) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	present := func(es []object.Entry) bool {
		for _, e := range es {
			if !e.ID.IsZero() {
				return true
			}
		}
		return false
	}
	var out []LogEntry
	// passed is, for a commit walked but not shown, the parent the walk
	// went on to (zero: none, the path began there).
	passed := map[object.ID]object.ID{}
	seen := map[object.ID]bool{start: true}
	q := &pathQueue{}
	commits := map[object.ID]*object.Commit{} // read as parents, not yet walked
	readCommit := func(id object.ID) (*object.Commit, error) {
		if c, ok := commits[id]; ok {
			return c, nil
		}
		c, err := r.Store.ReadCommit(id)
		if err == nil {
			commits[id] = c
		}
		return c, err
	}
	c, err := readCommit(start)
	if err != nil {
		return nil, err
	}
	heap.Push(q, pathQueued{LogEntry{ID: start, Commit: c}, o.Paths})
	push := func(id object.ID, paths []string) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		pc, err := readCommit(id)
		if err != nil {
			return err
		}
		heap.Push(q, pathQueued{LogEntry{ID: id, Commit: pc}, paths})
		return nil
	}
	for q.Len() > 0 && (o.N <= 0 || len(out) < o.N) {
		e := heap.Pop(q).(pathQueued)
		delete(commits, e.ID)
		if len(e.Parents) == 1 {
			// The filter answers most commits without their trees.
			fl, ok := filters.m[e.ID]
			if !ok {
				pc, err := readCommit(e.Parents[0])
				if err != nil {
					return nil, err
				}
				if fl, err = makePathFilter(trees, pc.Tree, e.Tree); err != nil {
					return nil, err
				}
				filters.add(e.ID, fl)
			}
			if !mayChange(fl, e.paths) {
				passed[e.ID] = e.Parents[0]
				if err := push(e.Parents[0], e.paths); err != nil {
					return nil, err
				}
				continue
			}
		}
		mine, err := at(e.Tree, e.paths)
		if err != nil {
			return nil, err
		}
		if len(e.Parents) == 0 {
			if present(mine) {
				out = append(out, e.withPath(o.Follow, mine))
			} else {
				passed[e.ID] = object.ID{}
			}
			continue
		}
		var parents [][]object.Entry
		treesame := -1
		for i, p := range e.Parents {
			pc, err := readCommit(p)
			if err != nil {
				return nil, err
			}
			theirs, err := at(pc.Tree, e.paths)
			if err != nil {
				return nil, err
			}
			if same(mine, theirs) {
				treesame = i
				break
			}
			parents = append(parents, theirs)
		}
		if treesame >= 0 {
			passed[e.ID] = e.Parents[treesame]
			if err := push(e.Parents[treesame], e.paths); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, e.withPath(o.Follow, mine))
		for i, p := range e.Parents {
			paths := e.paths
			if o.Follow && !present(parents[i]) && present(mine) {
				// The file is new here against this parent: it may be
				// another of the parent's files, renamed.
				pc, err := readCommit(p)
				if err != nil {
					return nil, err
				}
				from, err := r.renamedFrom(trees, pc.Tree, e.Tree, e.paths[0], mine[0])
				if err != nil {
					return nil, err
				}
				if from != "" {
					paths = []string{from}
				}
			}
			if err := push(p, paths); err != nil {
				return nil, err
			}
		}
	}
	shownParents(out, passed)
	return out, nil
}

// shownParents sets each entry's Graph: its parents, each taken along
// the commits the walk passed over to the first it shows.
func shownParents(out []LogEntry, passed map[object.ID]object.ID) {
	shown := make(map[object.ID]bool, len(out))
	for _, e := range out {
		shown[e.ID] = true
	}
	below := map[object.ID]object.ID{} // where a passed commit leads
	var shownBelow func(id object.ID) object.ID
	shownBelow = func(id object.ID) object.ID {
		var chain []object.ID
		for !id.IsZero() && !shown[id] {
			if to, ok := below[id]; ok {
				id = to
				break
			}
			next, ok := passed[id]
			if !ok {
				break // not reached: it stays
			}
			chain = append(chain, id)
			id = next
		}
		for _, c := range chain {
			below[c] = id
		}
		return id
	}
	for i := range out {
		var g []object.ID
		for _, p := range out[i].Parents {
			if to := shownBelow(p); !to.IsZero() && !slices.Contains(g, to) {
				g = append(g, to)
			}
		}
		out[i].Graph = g
	}
}

// withPath is the entry, naming its path when following one file, and
// for one path what is there.
func (e pathQueued) withPath(follow bool, at []object.Entry) LogEntry {
	l := e.LogEntry
	if follow {
		l.Path = e.paths[0]
	}
	if len(at) == 1 {
		l.Entry = at[0]
	}
	return l
}

// renamedFrom is the file of tree from that became path (entry e) in
// tree to, by a rename git's -M would find, or "".
func (r *Repo) renamedFrom(trees object.TreeReader, from, to object.ID, path string, e object.Entry) (string, error) {
	if e.Kind != object.KindFile && e.Kind != object.KindExec {
		return "", nil
	}
	changes, err := object.DiffTrees(trees, from, to)
	if err != nil {
		return "", err
	}
	var srcs []merge.RenameCandidate
	for _, c := range changes {
		if c.Old != nil && c.New == nil && (c.Old.Kind == object.KindFile || c.Old.Kind == object.KindExec) {
			srcs = append(srcs, merge.RenameCandidate{Path: c.Path, Entry: *c.Old})
		}
	}
	pairs, err := merge.FindRenames(srcs, []merge.RenameCandidate{{Path: path, Entry: e}}, r.renameContent)
	if err != nil || len(pairs) == 0 {
		return "", err
	}
	return pairs[0].From, nil
}

// renameContent is a file's content for rename detection (nil past the
// size a line diff is made for).
func (r *Repo) renameContent(e object.Entry) ([]byte, error) {
	return r.content(context.Background(), &e, "", false)
}

// pathQueued is a commit to look at, with the paths followed there.
type pathQueued struct {
	LogEntry
	paths []string
}

// pathQueue orders commits as commitQueue does.
type pathQueue []pathQueued

func (q pathQueue) Len() int { return len(q) }
func (q pathQueue) Less(i, j int) bool {
	return commitQueue{q[i].LogEntry, q[j].LogEntry}.Less(0, 1)
}
func (q pathQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pathQueue) Push(x any)   { *q = append(*q, x.(pathQueued)) }
func (q *pathQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// treeCache keeps the trees a walk of history reads: consecutive commits
// share most of theirs.
type treeCache struct {
	st    *object.Store
	trees map[object.ID]*object.Tree
}

// maxCachedTrees bounds a treeCache: past it, it starts again.
const maxCachedTrees = 1 << 10

func newTreeCache(st *object.Store) *treeCache {
	return &treeCache{st: st, trees: map[object.ID]*object.Tree{}}
}

func (c *treeCache) ReadTree(id object.ID) (*object.Tree, error) {
	if t, ok := c.trees[id]; ok {
		return t, nil
	}
	t, err := c.st.ReadTree(id)
	if err != nil {
		return nil, err
	}
	if len(c.trees) >= maxCachedTrees {
		clear(c.trees)
	}
	c.trees[id] = t
	return t, nil
}

// bodyCache keeps the encoded trees a walk of history looks paths up in
// (object.FindEntry reads them without decoding every entry), and what a
// path under a folder's tree was found to be: consecutive commits share
// most folders, so a path deep in a tree costs one lookup in each new
// root, not one in every folder on its way.
type bodyCache struct {
	st     *object.Store
	bodies map[object.ID][]byte
	size   int
	under  map[pathIn]foundEntry
}

// pathIn is a path under the folder whose tree is dir.
type pathIn struct {
	dir  object.ID
	path string
}

// foundEntry is what a lookup found: the entry, or ok false for none.
type foundEntry struct {
	e  object.Entry
	ok bool
}

// maxCachedBodies bounds a bodyCache's bytes, and maxCachedPaths its
// looked-up paths: past either, that part starts again.
const (
	maxCachedBodies = 64 << 20
	maxCachedPaths  = 1 << 18
)

// lookup finds the entry at path in tree root.
func (c *bodyCache) lookup(root object.ID, path string) (object.Entry, bool, error) {
	path = strings.Trim(path, "/")
	if path == "" {
		return object.Entry{Kind: object.KindDir, ID: root}, true, nil
	}
	return c.lookupIn(root, path, true)
}

// lookupIn finds the entry at path (not empty) in tree dir, remembering
// it unless dir is a commit's root, which the walk asks about once.
func (c *bodyCache) lookupIn(dir object.ID, path string, root bool) (object.Entry, bool, error) {
	key := pathIn{dir, path}
	if !root {
		if f, ok := c.under[key]; ok {
			return f.e, f.ok, nil
		}
	}
	name, rest, _ := strings.Cut(path, "/")
	for rest != "" && name == "" {
		name, rest, _ = strings.Cut(rest, "/")
	}
	b, err := c.body(dir)
	if err != nil {
		return object.Entry{}, false, err
	}
	e, ok, err := object.FindEntry(b, name)
	if err != nil {
		return object.Entry{}, false, fmt.Errorf("tree %s: %w (%w)", dir.Short(), err, object.ErrCorrupt)
	}
	rest = strings.TrimLeft(rest, "/")
	switch {
	case !ok:
	case rest == "":
	case e.Kind != object.KindDir:
		e, ok = object.Entry{}, false
	default:
		if e, ok, err = c.lookupIn(e.ID, rest, false); err != nil {
			return object.Entry{}, false, err
		}
	}
	if !root {
		if c.under == nil || len(c.under) >= maxCachedPaths {
			c.under = map[pathIn]foundEntry{}
		}
		c.under[key] = foundEntry{e, ok}
	}
	return e, ok, nil
}

// body is tree id's encoding.
func (c *bodyCache) body(id object.ID) ([]byte, error) {
	if b, ok := c.bodies[id]; ok {
		return b, nil
	}
	t, body, err := c.st.Get(id)
	if err != nil {
		return nil, err
	}
	if t != object.TypeTree {
		return nil, fmt.Errorf("object %s is a %s, not a tree: %w", id.Short(), t, object.ErrCorrupt)
	}
	if c.size += len(body); c.size > maxCachedBodies {
		clear(c.bodies)
		c.size = len(body)
	}
	c.bodies[id] = body
	return body, nil
}
