package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/mesh-sync/mesh/object"
)

// MergeAuthor is the author of every merge commit: a merge is made by the
// rule, not by a person, so that every device makes the same one.
const MergeAuthor = "mesh"

// Result is what merging two commits gave.
type Result struct {
	// ID is the merged commit: one of the inputs for a fast-forward or
	// when one contains the other, else a new merge commit.
	ID          object.ID
	FastForward bool
	Conflicts   []object.Conflict
}

// Order returns the two commits as (winner, loser) under the convergence
// rule: the later commit time wins, ties go to the larger ID. Every device
// computes the same order from the same commits.
func Order(a object.ID, ca *object.Commit, b object.ID, cb *object.Commit) (object.ID, object.ID) {
	if ca.Time != cb.Time {
		if ca.Time > cb.Time {
			return a, b
		}
		return b, a
	}
	if bytes.Compare(a[:], b[:]) > 0 {
		return a, b
	}
	return b, a
}

// Commits merges commits a and b. It is a pure function of its inputs:
// merge(a,b) and merge(b,a) give the same commit ID on every device
// (parents in ID order, time from the parents, fixed author and message,
// deterministic winner). New objects go to sink, which the caller must
// finish before pointing a ref at the result.
func Commits(ctx context.Context, st Store, sink object.Sink, a, b object.ID, o TreeOptions) (*Result, error) {
	ov := newOverlay(st, sink)
	st, sink = ov, ov
	cache := &CachedCommits{R: st}
	if a == b {
		return &Result{ID: a}, nil
	}
	bases, err := Bases(cache, a, b)
	if err != nil {
		return nil, err
	}
	// One contains the other: its own base.
	if len(bases) == 1 && bases[0] == a {
		return &Result{ID: b, FastForward: true}, nil
	}
	if len(bases) == 1 && bases[0] == b {
		return &Result{ID: a, FastForward: true}, nil
	}
	base, err := virtualBase(ctx, st, cache, sink, bases, o)
	if err != nil {
		return nil, err
	}
	ca, err := cache.ReadCommit(a)
	if err != nil {
		return nil, err
	}
	cb, err := cache.ReadCommit(b)
	if err != nil {
		return nil, err
	}
	wid, lid := Order(a, ca, b, cb)
	wc, lc := ca, cb
	if wid != a {
		wc, lc = cb, ca
	}
	tr, err := Trees(ctx, st, sink, base,
		Side{Commit: wid, Tree: wc.Tree, Device: wc.Device, Name: wc.DeviceName},
		Side{Commit: lid, Tree: lc.Tree, Device: lc.Device, Name: lc.DeviceName}, o)
	if err != nil {
		return nil, err
	}
	all, err := openAfter(st, cache, a, b, tr)
	if err != nil {
		return nil, err
	}
	if all, tr.Tree, err = dropRedundantCopies(st, sink, tr.Tree, all); err != nil {
		return nil, err
	}
	parents := []object.ID{a, b}
	sortIDs(parents)
	t := ca.Time
	if cb.Time > t {
		t = cb.Time
	}
	c := &object.Commit{
		Tree:      tr.Tree,
		Parents:   parents,
		Author:    MergeAuthor,
		Time:      t + 1, // after both parents, so history lists it first
		Message:   fmt.Sprintf("merge %s and %s", parents[0].Short(), parents[1].Short()),
		Conflicts: all,
	}
	id, err := sink.Put(object.TypeCommit, c.Encode())
	if err != nil {
		return nil, err
	}
	var made []object.Conflict
	for _, k := range all {
		if k.Merge.IsZero() {
			made = append(made, k)
		}
	}
	return &Result{ID: id, Conflicts: withMerge(made, id)}, nil
}

// openAfter lists the conflicts open at the merge of a and b whose tree
// merge gave tr: those carried from the parents that the merged tree
// still holds, and the ones this merge made (Merge zero) unless the same
// one is carried.
func openAfter(st Reader, cache *CachedCommits, a, b object.ID, tr *TreeResult) ([]object.Conflict, error) {
	openA, err := Open(st, a)
	if err != nil {
		return nil, err
	}
	openB, err := Open(st, b)
	if err != nil {
		return nil, err
	}
	keep, err := carried(cache, openA, openB, a, b)
	if err != nil {
		return nil, err
	}
	var all []object.Conflict
	seen := map[string]bool{}
	for _, k := range keep {
		ok, err := holds(st, tr.Tree, k)
		if err != nil {
			return nil, err
		}
		if ok {
			seen[conflictKey(k)] = true
			all = append(all, k)
		}
	}
	for _, k := range tr.Conflicts {
		if !seen[conflictKey(k)] {
			seen[conflictKey(k)] = true
			all = append(all, k)
		}
	}
	sortConflicts(all)
	return all, nil
}

// dropRedundantCopies removes, from the merged tree and the list, conflict
// copies that keep nothing: a copy holding the version now at its path,
// and a copy holding the same version as another copy of that path (the
// one with the smaller name stays). Merges in different orders can carry
// such copies in from both sides; each version is then kept once.
func dropRedundantCopies(st Reader, sink object.Sink, tree object.ID, all []object.Conflict) ([]object.Conflict, object.ID, error) {
	lookup := func(p string) (*object.Entry, error) {
		e, err := object.Lookup(st, tree, p)
		if errors.Is(err, object.ErrNotFound) || errors.Is(err, object.ErrPathNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	removed := map[string]*object.Entry{}
	kept := map[string]string{} // path and content of a copy -> its name
	// all is sorted by path and copy name.
	for _, k := range all {
		if k.Copy == "" {
			continue
		}
		ce, err := lookup(k.Copy)
		if err != nil {
			return nil, object.ZeroID, err
		}
		pe, err := lookup(k.Path)
		if err != nil {
			return nil, object.ZeroID, err
		}
		if ce == nil {
			continue
		}
		key := k.Path + "\x00" + ce.Kind.String() + ce.ID.String()
		switch other, dup := kept[key]; {
		case same(pe, ce):
			removed[k.Copy] = nil
		case dup && other != k.Copy:
			removed[k.Copy] = nil
		default:
			kept[key] = k.Copy
		}
	}
	if len(removed) == 0 {
		return all, tree, nil
	}
	nt, err := editTree(st, sink, tree, removed)
	if err != nil {
		return nil, object.ZeroID, err
	}
	var out []object.Conflict
	for _, k := range all {
		if _, gone := removed[k.Copy]; !gone || k.Copy == "" {
			out = append(out, k)
		}
	}
	return out, nt, nil
}

// Heads merges any number of heads one at a time in ID order, so the final
// commit does not depend on the order they arrived in. Each intermediate
// merge is read back by the next, so a sink that buffers (an object.Batch)
// is finished after each step.
func Heads(ctx context.Context, st Store, sink object.Sink, heads []object.ID, o TreeOptions) (*Result, error) {
	if len(heads) == 0 {
		return nil, fmt.Errorf("merge of no heads")
	}
	hs := append([]object.ID(nil), heads...)
	sortIDs(hs)
	res := &Result{ID: hs[0]}
	for _, h := range hs[1:] {
		r, err := Commits(ctx, st, sink, res.ID, h, o)
		if err != nil {
			return nil, err
		}
		if f, ok := sink.(interface{ Finish() error }); ok {
			if err := f.Finish(); err != nil {
				return nil, err
			}
		}
		r.Conflicts = append(res.Conflicts, r.Conflicts...)
		res = r
	}
	return res, nil
}

// virtualBase is the tree to merge against, given the best common
// ancestors: the one base's tree, none (empty) for unrelated histories, and
// for a criss-cross
// the merge of the bases themselves (recursively, with conflict markers in
// text so the base stays one tree), as git's recursive strategy does.
func virtualBase(ctx context.Context, st Store, cache *CachedCommits, sink object.Sink, bases []object.ID, o TreeOptions) (object.ID, error) {
	switch len(bases) {
	case 0:
		return object.ZeroID, nil
	case 1:
		c, err := cache.ReadCommit(bases[0])
		if err != nil {
			return object.ZeroID, err
		}
		return c.Tree, nil
	}
	vo := o
	vo.Markers = true
	acc := bases[0]
	accTree := object.ZeroID
	for i, next := range bases[1:] {
		innerBases, err := Bases(cache, acc, next)
		if err != nil {
			return object.ZeroID, err
		}
		inner, err := virtualBase(ctx, st, cache, sink, innerBases, vo)
		if err != nil {
			return object.ZeroID, err
		}
		ca, err := cache.ReadCommit(acc)
		if err != nil {
			return object.ZeroID, err
		}
		cn, err := cache.ReadCommit(next)
		if err != nil {
			return object.ZeroID, err
		}
		wt := ca.Tree
		if i > 0 {
			wt = accTree
		}
		tr, err := Trees(ctx, st, sink, inner, Side{Tree: wt, Device: "base"}, Side{Tree: cn.Tree, Device: "base"}, vo)
		if err != nil {
			return object.ZeroID, err
		}
		accTree = tr.Tree
	}
	return accTree, nil
}
