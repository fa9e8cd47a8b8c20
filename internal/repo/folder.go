package repo

import (
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
