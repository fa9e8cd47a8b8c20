package worktree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// placedChange is a change with the paths where the folder keeps its two
// sides: old under the plan of the tree it leaves (ApplyOptions.From),
// new under the plan of the tree it makes (To). Without names both are
// Path.
type placedChange struct {
	object.Change
	old, new string
}

// move is an entry the tree keeps whose place in the folder changes
// because its directory's plan does (a.txt, kept as a.name-clash-1.txt
// beside A.txt, becomes a.txt again once A.txt is gone).
type move struct {
	path     string // in history
	entry    object.Entry
	from, to string // in the folder; from is relative to its parent's new place
}

func (n *Names) rules() FolderRules {
	if n == nil {
		return FolderRules{}
	}
	return n.Rules
}

// place finds where each change's sides are kept, and which kept entries
// move.
func place(changes []object.Change, o ApplyOptions) ([]placedChange, []move, error) {
	out := make([]placedChange, len(changes))
	if !o.Names.Active() {
		for i, c := range changes {
			out[i] = placedChange{c, c.Path, c.Path}
		}
		return out, nil, nil
	}
	n := o.Names
	dirs := map[string]bool{} // directories whose names change
	for i, c := range changes {
		pc := placedChange{Change: c}
		var err error
		if c.Old != nil {
			if pc.old, err = n.DiskPath(o.From, c.Path); err != nil {
				return nil, nil, err
			}
		}
		if c.New != nil {
			if pc.new, err = n.DiskPath(o.To, c.Path); err != nil {
				return nil, nil, err
			}
		}
		if c.Old == nil || c.New == nil {
			dirs[path.Dir(c.Path)] = true
		}
		if c.Old == nil {
			pc.old = pc.new
		}
		if c.New == nil {
			pc.new = pc.old
		}
		out[i] = pc
	}
	changed := make(map[string]bool, len(changes))
	for _, c := range changes {
		changed[c.Path] = true
	}
	var moves []move
	for dir := range dirs {
		if dir == "." {
			dir = ""
		}
		fromID, ft, err := n.tree(o.From, dir)
		if err != nil || ft == nil {
			continue
		}
		toID, tt, err := n.tree(o.To, dir)
		if err != nil {
			return nil, nil, err
		}
		if tt == nil {
			continue
		}
		fp, tp := n.Plan(fromID, ft), n.Plan(toID, tt)
		for _, e := range tt.Entries {
			old, ok := ft.Find(e.Name)
			if !ok || (old.Kind == object.KindDir) != (e.Kind == object.KindDir) {
				continue
			}
			p := e.Name
			if dir != "" {
				p = dir + "/" + e.Name
			}
			if e.Kind != object.KindDir && changed[p] {
				continue // rewritten where To puts it (placedChange)
			}
			was, now := e.Name, e.Name
			if d, ok := fp[e.Name]; ok {
				was = d
			}
			if d, ok := tp[e.Name]; ok {
				now = d
			}
			if was == now {
				continue
			}
			parent, err := n.DiskPath(o.To, dir)
			if err != nil {
				return nil, nil, err
			}
			m := move{path: p, entry: e, from: was, to: now}
			if parent != "" {
				m.from, m.to = parent+"/"+was, parent+"/"+now
			}
			moves = append(moves, m)
		}
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].path < moves[j].path })
	return out, moves, nil
}

// applyMoves renames the entries a changed plan puts elsewhere, in two
// steps (every source to a temporary name, then each to its place), so
// one entry's new place may be another's old one. Parents move before
// what they hold. An entry no longer at its old place (a killed run moved
// it away) is written afresh from the store: the changes it returns.
func applyMoves(root string, moves []move, o ApplyOptions) ([]placedChange, error) {
	if len(moves) == 0 {
		return nil, nil
	}
	var rewrites []placedChange
	byDepth := map[int][]move{}
	depths := []int{}
	for _, m := range moves {
		d := strings.Count(m.path, "/")
		if byDepth[d] == nil {
			depths = append(depths, d)
		}
		byDepth[d] = append(byDepth[d], m)
	}
	sort.Ints(depths)
	for _, d := range depths {
		level := byDepth[d]
		vacated := map[string]bool{}
		for _, m := range level {
			vacated[FoldKey(m.from, o.Names.rules())] = true
		}
		for _, m := range level {
			to := filepath.Join(root, filepath.FromSlash(m.to))
			if _, err := os.Lstat(to); err == nil && !vacated[FoldKey(m.to, o.Names.rules())] {
				return nil, fmt.Errorf("%s is where %s now belongs, and it is not committed: %w; move it away or commit it first", m.to, m.path, ErrWouldOverwrite)
			}
		}
		tmps := make([]string, len(level))
		for i, m := range level {
			from := filepath.Join(root, filepath.FromSlash(m.from))
			if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
				rw, err := rewrite(m, o)
				if err != nil {
					return nil, err
				}
				rewrites = append(rewrites, rw...)
				continue
			}
			tmp := filepath.Join(filepath.Dir(from), object.TempPrefix+"move-"+strconv.Itoa(i)+"-"+filepath.Base(from))
			if o.TempDir != "" && sameDevice(o.TempDir, filepath.Dir(from)) {
				tmp = filepath.Join(o.TempDir, "move-"+strconv.Itoa(i)+"-"+strconv.Itoa(os.Getpid()))
			}
			if err := os.Rename(from, tmp); err != nil {
				return nil, fmt.Errorf("move %s aside: %w", m.from, err)
			}
			tmps[i] = tmp
		}
		for i, m := range level {
			if tmps[i] == "" {
				continue
			}
			if err := os.Rename(tmps[i], filepath.Join(root, filepath.FromSlash(m.to))); err != nil {
				return nil, fmt.Errorf("move %s to %s: %w", m.from, m.to, err)
			}
			if o.Index != nil && m.entry.Kind != object.KindDir {
				o.Index.Delete(m.path) // its ctime changed: read again next scan
			}
		}
	}
	return rewrites, nil
}

// rewrite is the changes that write entry m (and all it holds) afresh at
// its new place.
func rewrite(m move, o ApplyOptions) ([]placedChange, error) {
	e := m.entry
	out := []placedChange{{Change: object.Change{Path: m.path, New: &e}}}
	if e.Kind == object.KindDir {
		under, err := object.DiffTrees(o.Names.Trees, object.ZeroID, e.ID)
		if err != nil {
			return nil, err
		}
		for _, c := range under {
			c.Path = m.path + "/" + c.Path
			out = append(out, placedChange{Change: c})
		}
	}
	for i := range out {
		p, err := o.Names.DiskPath(o.To, out[i].Path)
		if err != nil {
			return nil, err
		}
		out[i].old, out[i].new = p, p
	}
	return out, nil
}
