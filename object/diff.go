package object

// TreeReader reads trees; the store does, and so does an overlay of trees
// held in memory (a scanned working tree that was only hashed).
type TreeReader interface {
	ReadTree(id ID) (*Tree, error)
}

// Change is one path that differs between two trees. Old or New is nil
// where the path is absent on that side. Directories appear as changes too
// (added, removed, or replacing a non-directory), followed by their contents.
type Change struct {
	Path string `json:"path"`
	Old  *Entry `json:"old,omitempty"`
	New  *Entry `json:"new,omitempty"`
}

// DiffTrees lists the paths that differ from tree a to tree b, in path
// order. Subtrees with equal IDs are skipped without being read. Either ID
// may be zero, meaning an empty tree.
func DiffTrees(r TreeReader, a, b ID) ([]Change, error) {
	var out []Change
	err := diffTrees(r, "", a, b, func(c Change) { out = append(out, c) })
	return out, err
}

func readTreeOrEmpty(r TreeReader, id ID) (*Tree, error) {
	if id.IsZero() {
		return &Tree{}, nil
	}
	return r.ReadTree(id)
}

func diffTrees(r TreeReader, prefix string, a, b ID, emit func(Change)) error {
	if a == b {
		return nil
	}
	ta, err := readTreeOrEmpty(r, a)
	if err != nil {
		return err
	}
	tb, err := readTreeOrEmpty(r, b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ta.Entries) || j < len(tb.Entries) {
		var ea, eb *Entry
		switch {
		case j >= len(tb.Entries) || (i < len(ta.Entries) && ta.Entries[i].Name < tb.Entries[j].Name):
			ea = &ta.Entries[i]
			i++
		case i >= len(ta.Entries) || tb.Entries[j].Name < ta.Entries[i].Name:
			eb = &tb.Entries[j]
			j++
		default:
			ea, eb = &ta.Entries[i], &tb.Entries[j]
			i++
			j++
		}
		name := eb
		if name == nil {
			name = ea
		}
		p := name.Name
		if prefix != "" {
			p = prefix + "/" + p
		}
		if ea != nil && eb != nil && *ea == *eb {
			continue
		}
		aDir := ea != nil && ea.Kind == KindDir
		bDir := eb != nil && eb.Kind == KindDir
		if aDir && bDir {
			if err := diffTrees(r, p, ea.ID, eb.ID, emit); err != nil {
				return err
			}
			continue
		}
		emit(Change{Path: p, Old: ea, New: eb})
		var sa, sb ID
		if aDir {
			sa = ea.ID
		}
		if bDir {
			sb = eb.ID
		}
		if aDir || bDir {
			if err := diffTrees(r, p, sa, sb, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// Lookup finds the entry at a slash-separated path below tree root. The
// empty path is the root itself, returned as a directory entry.
func Lookup(r TreeReader, root ID, path string) (Entry, error) {
	e := Entry{Kind: KindDir, ID: root}
	if path == "" {
		return e, nil
	}
	rest := path
	for rest != "" {
		var name string
		name, rest, _ = cut(rest, '/')
		if name == "" {
			continue
		}
		if e.Kind != KindDir {
			return Entry{}, errPathNotFound(path)
		}
		t, err := r.ReadTree(e.ID)
		if err != nil {
			return Entry{}, err
		}
		var ok bool
		e, ok = t.Find(name)
		if !ok {
			return Entry{}, errPathNotFound(path)
		}
	}
	return e, nil
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
