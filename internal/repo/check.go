package repo

import (
	"fmt"

	"github.com/mesh-sync/mesh/object"
)

// CheckHead checks that commit's tree, and every tree below it, could be
// checked out: no entry with a reserved name (.mesh in any case, which
// would write into this repository's own folder). Every ref that another
// device's head moves (a fetch's remotes/*, a push's or a sync's
// devices/*) is checked first, so no ref points at a head that would
// fail every checkout and merge; trees in the history below are not
// checked out, so they are not held against a head. Trees found valid
// are remembered.
func (r *Repo) CheckHead(commit object.ID) error {
	c, err := r.Store.ReadCommit(commit)
	if err != nil {
		return err
	}
	var walk func(id object.ID, path string) error
	walk = func(id object.ID, path string) error {
		r.validMu.Lock()
		ok := r.validTrees[id]
		r.validMu.Unlock()
		if ok {
			return nil
		}
		t, err := r.Store.ReadTree(id)
		if err != nil {
			return err
		}
		if err := object.CheckReserved(t); err != nil {
			return fmt.Errorf("commit %s: %s%w", commit.Short(), path, err)
		}
		for _, e := range t.Entries {
			if e.Kind == object.KindDir {
				if err := walk(e.ID, path+e.Name+"/"); err != nil {
					return err
				}
			}
		}
		r.validMu.Lock()
		if r.validTrees == nil || len(r.validTrees) > 1<<20 {
			r.validTrees = map[object.ID]bool{}
		}
		r.validTrees[id] = true
		r.validMu.Unlock()
		return nil
	}
	return walk(c.Tree, "")
}
