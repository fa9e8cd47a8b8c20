package merge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// Store is what a tree merge reads from and writes to.
type Store interface {
	ReadTree(id object.ID) (*object.Tree, error)
	ReadCommit(id object.ID) (*object.Commit, error)
	WriteFileTo(ctx context.Context, w io.Writer, id object.ID) (int64, error)
}

// Side is one side of a merge: a commit's tree, and who made it.
type Side struct {
	Commit object.ID
	Tree   object.ID
	Device string
	// Name is the device's name as its commit carries it (may be empty).
	Name string
}

// label names the side in conflict markers: the device's name with the
// first group of its ID, or the ID alone.
func (s Side) label() string {
	if object.ValidDeviceName(s.Name) {
		dev, _, _ := strings.Cut(s.Device, "-")
		return s.Name + " (" + dev + ")"
	}
	return s.Device
}

// TreeOptions configure a tree merge.
type TreeOptions struct {
	// Markers writes git-style conflict markers into text files that
	// conflict, instead of keeping the other version beside the file.
	Markers bool
	// Chunker cuts merged file contents, as the store's config says.
	Chunker *object.Chunker
}

// TreeResult is a merged tree and the conflicts it recorded.
type TreeResult struct {
	Tree      object.ID
	Conflicts []object.Conflict
}

// Trees merges two trees path by path against base (zero: empty). Winner
// and Loser are the two sides in the canonical order of the convergence
// rule: where both changed one thing differently, the winner's version
// stays at the path and the loser's is kept beside it as
// name.conflict-<device>-<shortid>.ext (or, for text with Markers, both
// go into the file between markers). Nothing either side wrote is lost.
// New objects go to sink; the result is a pure function of the inputs.
func Trees(ctx context.Context, st Store, sink object.Sink, base object.ID, winner, loser Side, o TreeOptions) (*TreeResult, error) {
	m := &treeMerge{ctx: ctx, st: st, commits: &CachedCommits{R: st}, sink: sink, w: winner, l: loser, o: o}
	m.trees = &memTrees{st: st, m: map[object.ID]*object.Tree{}}
	base, wt, lt, err := m.followRenames(base, winner.Tree, loser.Tree)
	if err != nil {
		return nil, err
	}
	id, err := m.merge("", base, wt, lt)
	if err != nil {
		return nil, err
	}
	return &TreeResult{Tree: id, Conflicts: m.conflicts}, nil
}

type treeMerge struct {
	ctx       context.Context
	st        Store
	commits   CommitReader
	trees     *memTrees // st, plus the trees this merge wrote
	sink      object.Sink
	w, l      Side
	o         TreeOptions
	conflicts []object.Conflict
}

func (m *treeMerge) read(id object.ID) (*object.Tree, error) {
	if id.IsZero() {
		return &object.Tree{}, nil
	}
	return m.trees.ReadTree(id)
}

func entryPtr(t *object.Tree, name string) *object.Entry {
	if e, ok := t.Find(name); ok {
		return &e
	}
	return nil
}

func same(a, b *object.Entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Kind == b.Kind && a.ID == b.ID
}

func isDir(e *object.Entry) bool { return e != nil && e.Kind == object.KindDir }

func isFile(e *object.Entry) bool {
	return e != nil && (e.Kind == object.KindFile || e.Kind == object.KindExec)
}

func (m *treeMerge) merge(prefix string, base, win, lose object.ID) (object.ID, error) {
	if err := m.ctx.Err(); err != nil {
		return object.ZeroID, err
	}
	tb, err := m.read(base)
	if err != nil {
		return object.ZeroID, err
	}
	tw, err := m.read(win)
	if err != nil {
		return object.ZeroID, err
	}
	tl, err := m.read(lose)
	if err != nil {
		return object.ZeroID, err
	}
	names := map[string]bool{}
	for _, t := range []*object.Tree{tb, tw, tl} {
		for _, e := range t.Entries {
			names[e.Name] = true
		}
	}
	out := map[string]object.Entry{}
	d := &dir{out: out, trees: []*object.Tree{tb, tw, tl}}
	for _, name := range sortedKeys(names) {
		b, w, l := entryPtr(tb, name), entryPtr(tw, name), entryPtr(tl, name)
		p := path.Join(prefix, name)
		res, err := m.entry(p, name, b, w, l, out, d)
		if err != nil {
			return object.ZeroID, err
		}
		if res != nil {
			res.Name = name
			out[name] = *res
		}
	}
	t := &object.Tree{}
	for _, name := range sortedKeys(out) {
		t.Entries = append(t.Entries, out[name])
	}
	body, err := t.Encode()
	if err != nil {
		return object.ZeroID, err
	}
	id, err := m.sink.Put(object.TypeTree, body)
	if err == nil {
		m.trees.m[id] = t
	}
	return id, err
}

// entry decides one name. It may add conflict copies to out.
func (m *treeMerge) entry(p, name string, b, w, l *object.Entry, out map[string]object.Entry, d *dir) (*object.Entry, error) {
	switch {
	case same(w, l):
		return w, nil
	case same(b, w):
		return l, nil
	case same(b, l):
		return w, nil
	}
	// Both sides changed this name, differently.
	if (w == nil || isDir(w)) && (l == nil || isDir(l)) && (isDir(w) || isDir(l)) {
		var bt, wt, lt object.ID
		if isDir(b) {
			bt = b.ID
		}
		if isDir(w) {
			wt = w.ID
		}
		if isDir(l) {
			lt = l.ID
		}
		// A directory deleted on one side and changed on the other keeps
		// the changes: merging against the deletion removes only what the
		// deleting side saw.
		id, err := m.merge(p, bt, wt, lt)
		if err != nil {
			return nil, err
		}
		if t, err := m.read(id); err == nil && len(t.Entries) == 0 && (w == nil || l == nil) {
			return nil, nil
		}
		return &object.Entry{Kind: object.KindDir, ID: id}, nil
	}
	if w == nil || l == nil {
		// modify/delete: the modification survives, and it is recorded.
		kept, side := w, m.w
		if kept == nil {
			kept, side = l, m.l
		}
		m.record(object.Conflict{Path: p, Base: idOf(b), Ours: idOf(w), Theirs: idOf(l)}, side, p, kept.ID)
		return kept, nil
	}
	if isFile(w) && isFile(l) && (b == nil || isFile(b)) {
		return m.files(p, name, b, w, l, out, d)
	}
	// file/directory, symlink against anything else: the winner stays,
	// the loser's entry is kept beside it.
	if isDir(l) && !isDir(w) {
		// A directory cannot be renamed into a copy name as cleanly as a
		// file: keep the directory at the path and the file beside it.
		who := m.origin(m.w, p, w.ID)
		copyName := m.copyName(name, w, who, d)
		out[copyName] = withName(*w, copyName)
		m.record(object.Conflict{Path: p, Copy: path.Join(path.Dir(p), copyName), Base: idOf(b), Ours: w.ID, Theirs: l.ID}, who, p, w.ID)
		return l, nil
	}
	who := m.origin(m.l, p, l.ID)
	copyName := m.copyName(name, l, who, d)
	out[copyName] = withName(*l, copyName)
	m.record(object.Conflict{Path: p, Copy: path.Join(path.Dir(p), copyName), Base: idOf(b), Ours: w.ID, Theirs: l.ID}, who, p, l.ID)
	return w, nil
}

func withName(e object.Entry, name string) object.Entry { e.Name = name; return e }

func idOf(e *object.Entry) object.ID {
	if e == nil {
		return object.ZeroID
	}
	return e.ID
}

// record notes a conflict whose named version (the one kept beside the
// file, or the side the conflict is told from) is side's entry id at
// path p, naming the real device and commit that version came from.
func (m *treeMerge) record(c object.Conflict, side Side, p string, id object.ID) {
	o := m.origin(side, p, id)
	c.Device, c.Commit, c.DeviceName = o.Device, o.Commit, o.Name
	m.conflicts = append(m.conflicts, c)
}

// maxOriginSteps bounds the walk through merges for the commit a version
// came from.
const maxOriginSteps = 10000

// origin finds the commit that made side's version id at path p: the
// side's own commit, or, when that is a merge commit (which no device
// makes in particular), the parent it took the version from, down to a
// commit a device made. A version the merge itself made (a clean text
// merge) is told after the merge's winning side.
func (m *treeMerge) origin(side Side, p string, id object.ID) Side {
	if side.Device != "" || side.Commit.IsZero() {
		return side
	}
	c := side.Commit
	for step := 0; step < maxOriginSteps; step++ {
		cc, err := m.commits.ReadCommit(c)
		if err != nil {
			break
		}
		if len(cc.Parents) < 2 {
			return Side{Commit: c, Tree: cc.Tree, Device: cc.Device, Name: cc.DeviceName}
		}
		var next, win object.ID
		var winC *object.Commit
		for _, par := range cc.Parents {
			pc, err := m.commits.ReadCommit(par)
			if err != nil {
				return side
			}
			if e, err := object.Lookup(m.trees, pc.Tree, p); err == nil && e.ID == id {
				next = par
				break
			}
			if winC == nil {
				win, winC = par, pc
			} else if w, _ := Order(win, winC, par, pc); w == par {
				win, winC = par, pc
			}
		}
		if next.IsZero() {
			// The merge made this version; follow the winner's.
			next = win
			if e, err := object.Lookup(m.trees, winC.Tree, p); err == nil {
				id = e.ID
			}
		}
		c = next
	}
	return side
}

// files merges two versions of a file: the executable bit by the usual
// three-way rule, the content line by line when all versions are text.
func (m *treeMerge) files(p, name string, b, w, l *object.Entry, out map[string]object.Entry, d *dir) (*object.Entry, error) {
	kind := w.Kind
	if b != nil && w.Kind == b.Kind {
		kind = l.Kind
	}
	if w.ID == l.ID {
		return &object.Entry{Kind: kind, Size: w.Size, ID: w.ID}, nil
	}
	bc, err := m.content(b)
	if err != nil {
		return nil, err
	}
	wc, err := m.content(w)
	if err != nil {
		return nil, err
	}
	lc, err := m.content(l)
	if err != nil {
		return nil, err
	}
	if wc != nil && lc != nil && (b == nil || bc != nil) && !IsBinary(bc) && !IsBinary(wc) && !IsBinary(lc) {
		r := Text(bc, wc, lc, TextOptions{})
		if r.Conflicts > 0 && m.o.Markers {
			// Only markers show the labels: finding the device behind a
			// side that is a merge walks history, so it waits until then.
			r = Text(bc, wc, lc, TextOptions{Ours: m.origin(m.w, p, w.ID).label(), Base: "base", Theirs: m.origin(m.l, p, l.ID).label()})
		}
		if r.Conflicts == 0 || m.o.Markers {
			id, err := m.writeFile(r.Merged)
			if err != nil {
				return nil, err
			}
			if r.Conflicts > 0 {
				m.record(object.Conflict{Path: p, Base: idOf(b), Ours: w.ID, Theirs: l.ID}, m.l, p, l.ID)
			}
			return &object.Entry{Kind: kind, Size: int64(len(r.Merged)), ID: id}, nil
		}
	}
	who := m.origin(m.l, p, l.ID)
	copyName := m.copyName(name, l, who, d)
	out[copyName] = withName(*l, copyName)
	m.record(object.Conflict{Path: p, Copy: path.Join(path.Dir(p), copyName), Base: idOf(b), Ours: w.ID, Theirs: l.ID}, who, p, l.ID)
	return &object.Entry{Kind: kind, Size: w.Size, ID: w.ID}, nil
}

// maxMergeSize bounds the files merged line by line in memory; larger ones
// are handled like binary files (both versions kept).
const maxMergeSize = 16 << 20

// content reads a file for a text merge, or nil when it is too large.
func (m *treeMerge) content(e *object.Entry) ([]byte, error) {
	if e == nil || e.Size > maxMergeSize {
		return nil, nil
	}
	var buf bytes.Buffer
	if _, err := m.st.WriteFileTo(m.ctx, &buf, e.ID); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (m *treeMerge) writeFile(b []byte) (object.ID, error) {
	id, _, err := m.o.Chunker.WriteFile(m.ctx, m.sink, bytes.NewReader(b), int64(len(b)))
	return id, err
}

// copyName is name.conflict-<device>-<shortid>.ext, unique in the
// directory: it says whose version it is, by the device's name when its
// commit carries one.
func (m *treeMerge) copyName(name string, e *object.Entry, side Side, d *dir) string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" { // ".bashrc": the whole name is the stem
		stem, ext = name, ""
	}
	// A device ID is eight groups; the first names the device well enough
	// in a file name and keeps it short.
	dev, _, _ := strings.Cut(side.Device, "-")
	if object.ValidDeviceName(side.Name) {
		dev = side.Name
	}
	if dev == "" {
		dev = "unknown"
	}
	if c := d.copyOf(stem, ext, e); c != "" {
		return c // this version is kept beside the file already
	}
	short := e.ID.String()[:8]
	c := fmt.Sprintf("%s.conflict-%s-%s%s", stem, dev, short, ext)
	for i := 2; d.taken(c, e); i++ {
		c = fmt.Sprintf("%s.conflict-%s-%s-%d%s", stem, dev, short, i, ext)
	}
	return c
}

// dir is the directory being merged: the result so far and the three
// versions of it.
type dir struct {
	out   map[string]object.Entry
	trees []*object.Tree // base, winner, loser
}

// taken says whether name holds something other than e, in the result or
// on any side; the same content under the same name is the same copy,
// carried or made again, not a new one.
func (d *dir) taken(name string, e *object.Entry) bool {
	if o, ok := d.out[name]; ok {
		return !same(&o, e)
	}
	for _, t := range d.trees {
		if x := entryPtr(t, name); x != nil && !same(x, e) {
			return true
		}
	}
	return false
}

// copyOf finds a conflict copy stem.conflict-*ext that either side
// already has with e's content, so that a version is kept beside a file
// once however many merges meet it.
func (d *dir) copyOf(stem, ext string, e *object.Entry) string {
	prefix := stem + ".conflict-"
	var found []string
	for _, t := range d.trees[1:] {
		for _, x := range t.Entries {
			if strings.HasPrefix(x.Name, prefix) && strings.HasSuffix(x.Name, ext) && same(&x, e) {
				found = append(found, x.Name)
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Strings(found)
	return found[0]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
