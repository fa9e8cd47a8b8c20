package merge

import (
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// minSimilarity is how alike (percent of bytes in common, against the
// larger file) a deleted and an added file must be to count as a rename,
// git's default (-M50%).
const minSimilarity = 50

// maxRenameCandidates bounds the added files compared with each deleted
// one, as git's rename limit does: past it only exact renames are found.
const maxRenameCandidates = 1000

// renames finds where mover moved the files that editor changed: for each
// file mover deleted and editor edited, the file mover added with the same
// content, else the added file most similar to base's version (at least
// minSimilarity percent alike, as git's rename detection scores them).
// Pairs are taken best first (exact, then by score, then by path), each
// path once, so the answer is a pure function of the three trees.
func (m *treeMerge) renames(base, mover, editor object.ID) (map[string]string, error) {
	changes, err := object.DiffTrees(m.trees, base, mover)
	if err != nil {
		return nil, err
	}
	type file struct {
		path string
		e    object.Entry
	}
	var srcs, dsts []file
	for _, c := range changes {
		switch {
		case c.Old != nil && c.New == nil && isFile(c.Old):
			ee, err := object.Lookup(m.trees, editor, c.Path)
			if err != nil || !isFile(&ee) || ee.ID == c.Old.ID {
				continue // the editor deleted or left it: nothing to follow
			}
			srcs = append(srcs, file{c.Path, *c.Old})
		case c.Old == nil && c.New != nil && isFile(c.New):
			if _, err := object.Lookup(m.trees, editor, c.Path); err == nil {
				continue // the editor has something there already
			}
			dsts = append(dsts, file{c.Path, *c.New})
		}
	}
	cands := func(fs []file) []RenameCandidate {
		out := make([]RenameCandidate, len(fs))
		for i, f := range fs {
			out[i] = RenameCandidate{Path: f.path, Entry: f.e}
		}
		return out
	}
	pairs, err := FindRenames(cands(srcs), cands(dsts), func(e object.Entry) ([]byte, error) { return m.content(&e) })
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pairs {
		out[p.From] = p.To
	}
	return out, nil
}

// RenameCandidate is a file that a change deleted (a source) or added (a
// destination).
type RenameCandidate struct {
	Path  string
	Entry object.Entry
}

// Rename is a deleted file paired with an added one, with how alike they
// are: 100 for the same content, else the percent of bytes in common.
type Rename struct {
	From, To string
	Score    int
}

// FindRenames pairs deleted files with added ones as git's rename
// detection (-M50%) does: the same content first, then the most similar
// (at least 50% of the bytes of the larger, by spans ending at a newline
// or after 64 bytes), each path once, best first, then by path; so the
// answer is a pure function of the candidates. read gives a file's
// content, or nil for one too large to compare. Past 1,000 destinations
// only exact renames are found, as git's rename limit does.
func FindRenames(srcs, dsts []RenameCandidate, read func(object.Entry) ([]byte, error)) ([]Rename, error) {
	if len(srcs) == 0 || len(dsts) == 0 {
		return nil, nil
	}
	type pair struct {
		src, dst string
		score    int // 101 for the same content
	}
	var pairs []pair
	sigs := map[object.ID]*signature{}
	sig := func(e object.Entry) (*signature, error) {
		if s, ok := sigs[e.ID]; ok {
			return s, nil
		}
		b, err := read(e)
		if err != nil || b == nil {
			sigs[e.ID] = nil
			return nil, err
		}
		s := newSignature(b)
		sigs[e.ID] = s
		return s, nil
	}
	for _, s := range srcs {
		for _, d := range dsts {
			if s.Entry.ID == d.Entry.ID {
				pairs = append(pairs, pair{s.Path, d.Path, 101})
			}
		}
		if len(dsts) > maxRenameCandidates {
			continue
		}
		ss, err := sig(s.Entry)
		if err != nil {
			return nil, err
		}
		if ss == nil {
			continue
		}
		for _, d := range dsts {
			if s.Entry.ID == d.Entry.ID || !mayBeAlike(s.Entry.Size, d.Entry.Size) {
				continue
			}
			ds, err := sig(d.Entry)
			if err != nil {
				return nil, err
			}
			if ds == nil {
				continue
			}
			if score := ss.similarity(ds); score >= minSimilarity {
				pairs = append(pairs, pair{s.Path, d.Path, score})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.src != b.src {
			return a.src < b.src
		}
		return a.dst < b.dst
	})
	var out []Rename
	done, used := map[string]bool{}, map[string]bool{}
	for _, p := range pairs {
		if done[p.src] || used[p.dst] {
			continue
		}
		done[p.src], used[p.dst] = true, true
		out = append(out, Rename{From: p.src, To: p.dst, Score: min(p.score, 100)})
	}
	return out, nil
}

// mayBeAlike says whether files of these sizes can be minSimilarity alike
// at all: the bytes in common are at most the smaller size.
func mayBeAlike(a, b int64) bool {
	lo, hi := min(a, b), max(a, b)
	return hi == 0 || lo*100 >= hi*minSimilarity
}

// signature counts a file's bytes by the hash of the span they are in;
// spans end at a newline or after 64 bytes, as git's similarity estimate
// cuts them, so that text compares by lines and binary by blocks.
type signature struct {
	size  int
	count map[uint64]int
}

func newSignature(b []byte) *signature {
	s := &signature{size: len(b), count: map[uint64]int{}}
	for len(b) > 0 {
		n := 0
		h := uint64(14695981039346656037) // FNV-1a
		for n < len(b) && n < 64 {
			h ^= uint64(b[n])
			h *= 1099511628211
			n++
			if b[n-1] == '\n' {
				break
			}
		}
		s.count[h] += n
		b = b[n:]
	}
	return s
}

// similarity is the bytes two files have in common, in percent of the
// larger one.
func (s *signature) similarity(o *signature) int {
	big := max(s.size, o.size)
	if big == 0 {
		return 100
	}
	common := 0
	for h, n := range s.count {
		common += min(n, o.count[h])
	}
	return common * 100 / big
}

// followRenames rewrites base and the other side so that a file one side
// renamed (with or without edits) and the other side edited meets at its
// new path: base's and the editor's versions move there too, and the
// path-by-path merge then merges the two edits there.
func (m *treeMerge) followRenames(base, win, lose object.ID) (object.ID, object.ID, object.ID, error) {
	if base.IsZero() {
		return base, win, lose, nil
	}
	for pass := 0; pass < 2; pass++ {
		mover, editor := win, lose
		if pass == 1 {
			mover, editor = lose, win
		}
		moved, err := m.renames(base, mover, editor)
		if err != nil {
			return base, win, lose, err
		}
		if len(moved) == 0 {
			continue
		}
		baseEdits := map[string]*object.Entry{}
		editorEdits := map[string]*object.Entry{}
		for _, from := range sortedKeys(moved) {
			to := moved[from]
			be, err := object.Lookup(m.trees, base, from)
			if err != nil {
				continue
			}
			if _, err := object.Lookup(m.trees, base, to); err == nil {
				continue
			}
			ee, err := object.Lookup(m.trees, editor, from)
			if err != nil {
				continue
			}
			be2, ee2 := be, ee
			baseEdits[from], baseEdits[to] = nil, &be2
			editorEdits[from], editorEdits[to] = nil, &ee2
		}
		if len(baseEdits) == 0 {
			continue
		}
		if base, err = editTree(m.trees, m.sink, base, baseEdits); err != nil {
			return base, win, lose, err
		}
		ne, err := editTree(m.trees, m.sink, editor, editorEdits)
		if err != nil {
			return base, win, lose, err
		}
		if pass == 0 {
			lose = ne
		} else {
			win = ne
		}
	}
	return base, win, lose, nil
}

// editTree returns root with the entries at the given paths replaced (nil
// removes), creating directories as needed and dropping ones left empty.
// New trees go to sink; the merge reads them back through the memory map
// that treeMerge keeps, since sink may not be readable yet.
func editTree(st object.TreeReader, sink object.Sink, root object.ID, edits map[string]*object.Entry) (object.ID, error) {
	var t *object.Tree
	if root.IsZero() {
		t = &object.Tree{}
	} else {
		var err error
		if t, err = st.ReadTree(root); err != nil {
			return object.ZeroID, err
		}
	}
	entries := map[string]object.Entry{}
	for _, e := range t.Entries {
		entries[e.Name] = e
	}
	sub := map[string]map[string]*object.Entry{}
	for p, e := range edits {
		name, rest, deeper := strings.Cut(p, "/")
		if !deeper {
			if e == nil {
				delete(entries, name)
			} else {
				ne := *e
				ne.Name = name
				entries[name] = ne
			}
			continue
		}
		if sub[name] == nil {
			sub[name] = map[string]*object.Entry{}
		}
		sub[name][rest] = e
	}
	for name, ed := range sub {
		var cur object.ID
		if e, ok := entries[name]; ok && e.Kind == object.KindDir {
			cur = e.ID
		}
		id, err := editTree(st, sink, cur, ed)
		if err != nil {
			return object.ZeroID, err
		}
		if id == object.EmptyTreeID {
			delete(entries, name)
		} else {
			entries[name] = object.Entry{Name: name, Kind: object.KindDir, ID: id}
		}
	}
	nt := &object.Tree{}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		nt.Entries = append(nt.Entries, entries[n])
	}
	body, err := nt.Encode()
	if err != nil {
		return object.ZeroID, err
	}
	id, err := sink.Put(object.TypeTree, body)
	if err != nil {
		return object.ZeroID, err
	}
	if mem, ok := st.(*memTrees); ok {
		mem.m[id] = nt
	}
	return id, nil
}

// memTrees reads trees written during this merge from memory, others from
// the store: the sink (a batch) makes them readable only when finished.
type memTrees struct {
	st Store
	m  map[object.ID]*object.Tree
}

func (t *memTrees) ReadTree(id object.ID) (*object.Tree, error) {
	if tr, ok := t.m[id]; ok {
		return tr, nil
	}
	return t.st.ReadTree(id)
}
