package repo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
)

// folderRules is what the working tree's folder can hold, probed once
// and kept in .mesh (worktree.LoadFolderRules).
func (r *Repo) folderRules() worktree.FolderRules {
	r.rulesOnce.Do(func() {
		r.rules, _ = worktree.LoadFolderRules(r.Meta, filepath.Join(r.Meta, TmpDir))
	})
	return r.rules
}

// names maps the working tree's names between history and its folder,
// reading trees from trees; nil where the folder holds every name
// history can (Linux, BSD), which costs nothing.
func (r *Repo) names(trees object.TreeReader) *worktree.Names {
	rules := r.folderRules()
	if !rules.Any() {
		return nil
	}
	return &worktree.Names{Rules: rules, Trees: trees}
}

// KeptName is a path of HEAD's tree that this folder cannot hold under
// its own name, and where it is kept instead.
type KeptName struct {
	Path string `json:"path"`
	As   string `json:"as"`
	Why  string `json:"why"`
}

// keptCache, in .mesh, is KeptNames for the tree it names.
const keptCache = "kept.json"

type cachedKept struct {
	Tree object.ID  `json:"tree"`
	Kept []KeptName `json:"kept"`
}

// KeptNames lists the paths of HEAD's tree that this folder keeps under
// other names (escaped, or a clash name), as checkout put them; none
// where the folder holds every name. The answer is kept in .mesh for the
// tree it was found for.
func (r *Repo) KeptNames() ([]KeptName, error) {
	n := r.names(r.Store)
	if n == nil || !n.Rules.CaseInsensitive && !n.Rules.Normalizing && !n.Rules.WindowsNames {
		return nil, nil
	}
	_, tree, err := r.headTree()
	if err != nil || tree.IsZero() {
		return nil, err
	}
	cache := filepath.Join(r.Meta, keptCache)
	if b, err := os.ReadFile(cache); err == nil {
		var c cachedKept
		if json.Unmarshal(b, &c) == nil && c.Tree == tree {
			return c.Kept, nil
		}
	}
	var out []KeptName
	var walk func(id object.ID, dir, disk string) error
	walk = func(id object.ID, dir, disk string) error {
		t, err := r.Store.ReadTree(id)
		if err != nil {
			return err
		}
		plan := n.Plan(id, t)
		for _, e := range t.Entries {
			p, d := e.Name, e.Name
			if kept, ok := plan[e.Name]; ok {
				d = kept
			}
			if dir != "" {
				p, d = dir+"/"+p, disk+"/"+d
			}
			if kept, ok := plan[e.Name]; ok {
				out = append(out, KeptName{Path: p, As: d, Why: whyKept(e.Name, kept, t, n.Rules)})
			}
			if e.Kind == object.KindDir {
				if err := walk(e.ID, p, d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(tree, "", ""); err != nil {
		return nil, err
	}
	if b, err := json.Marshal(cachedKept{Tree: tree, Kept: out}); err == nil {
		_ = object.WriteFileAtomic(cache, b, 0o644, false) // only a cache
	}
	return out, nil
}

// whyKept says, for people, why name of tree t is kept as kept.
func whyKept(name, kept string, t *object.Tree, r worktree.FolderRules) string {
	if r.WindowsNames {
		if why := worktree.WindowsInvalid(name); why != "" {
			return "Windows cannot hold the name (" + why + ")"
		}
	}
	for _, e := range t.Entries {
		if e.Name != name && worktree.SameName(e.Name, name, r) && e.Name < name {
			return fmt.Sprintf("this folder sees it as the same name as %q", e.Name)
		}
	}
	return "this folder cannot hold the name"
}
