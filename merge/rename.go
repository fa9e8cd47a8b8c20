package merge

import (
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// renames finds files one side moved without changing them: a path
// deleted and a path added on that side with the same content and kind,
// matched one to one. A pair with more than one candidate is left alone
// rather than guessed.
func renames(st object.TreeReader, base, side object.ID) (map[string]string, error) {
	changes, err := object.DiffTrees(st, base, side)
	if err != nil {
		return nil, err
	}
	deleted := map[object.ID][]string{}
	added := map[object.ID][]string{}
	for _, c := range changes {
		switch {
		case c.Old != nil && c.New == nil && isFile(c.Old):
			deleted[c.Old.ID] = append(deleted[c.Old.ID], c.Path)
		case c.Old == nil && c.New != nil && isFile(c.New):
			added[c.New.ID] = append(added[c.New.ID], c.Path)
		}
	}
	out := map[string]string{}
	for id, from := range deleted {
		to := added[id]
		if len(from) == 1 && len(to) == 1 {
			out[from[0]] = to[0]
		}
	}
	return out, nil
}

// followRenames rewrites base and the other side so that a file one side
// renamed and the other side edited meets at its new path: base's and the
// editor's versions move there too, and the path-by-path merge then sees
// an edit on one side and no change on the other.
func (m *treeMerge) followRenames(base, win, lose object.ID) (object.ID, object.ID, object.ID, error) {
	if base.IsZero() {
		return base, win, lose, nil
	}
	for pass := 0; pass < 2; pass++ {
		mover, editor := win, lose
		if pass == 1 {
			mover, editor = lose, win
		}
		moved, err := renames(m.trees, base, mover)
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
			ee, err := object.Lookup(m.trees, editor, from)
			if err != nil || !isFile(&ee) || ee.ID == be.ID {
				continue // the editor deleted or left it: nothing to follow
			}
			if _, err := object.Lookup(m.trees, editor, to); err == nil {
				continue // the editor has something at the new path already
			}
			if _, err := object.Lookup(m.trees, base, to); err == nil {
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
