package merge

import (
	"bytes"
	"errors"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// ResolvedTrailer starts a line of a commit message that ends every
// conflict open at a path: "Mesh-Resolved: PATH" (mesh resolve writes it).
const ResolvedTrailer = "Mesh-Resolved: "

// Reader is what finding open conflicts reads.
type Reader interface {
	ReadTree(id object.ID) (*object.Tree, error)
	ReadCommit(id object.ID) (*object.Commit, error)
}

// Open returns the conflicts open at commit id, sorted by path and copy.
// Every merge commit lists all conflicts open at it, so this is the list
// of the nearest merge commit at or below id on the first-parent chain,
// less the paths a commit since resolved (a ResolvedTrailer line), less
// those whose copy (or, with no copy, whose path) id's tree no longer
// holds: deleting a conflict copy ends its conflict, as in Syncthing. It
// is a pure function of history, so every device lists the same. Each
// conflict's Merge is set.
func Open(r Reader, id object.ID) ([]object.Conflict, error) {
	if id.IsZero() {
		return nil, nil
	}
	top, err := r.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	resolved := map[string]bool{}
	var list []object.Conflict
	for c, cid := top, id; ; {
		if len(c.Parents) >= 2 {
			list = withMerge(c.Conflicts, cid)
			break
		}
		for p := range resolvedPaths(c.Message) {
			resolved[p] = true
		}
		if len(c.Parents) == 0 {
			break
		}
		cid = c.Parents[0]
		if c, err = r.ReadCommit(cid); err != nil {
			return nil, err
		}
	}
	var out []object.Conflict
	for _, k := range list {
		if resolved[k.Path] {
			continue
		}
		ok, err := holds(r, top.Tree, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, k)
		}
	}
	sortConflicts(out)
	return out, nil
}

// withMerge returns cs with the Merge of those made by commit id (zero)
// set to id.
func withMerge(cs []object.Conflict, id object.ID) []object.Conflict {
	out := make([]object.Conflict, len(cs))
	for i, k := range cs {
		if k.Merge.IsZero() {
			k.Merge = id
		}
		out[i] = k
	}
	return out
}

// resolvedPaths yields the paths a commit message resolves.
func resolvedPaths(msg string) map[string]bool {
	var out map[string]bool
	for _, l := range strings.Split(msg, "\n") {
		if p, ok := strings.CutPrefix(l, ResolvedTrailer); ok {
			if out == nil {
				out = map[string]bool{}
			}
			out[strings.TrimSpace(p)] = true
		}
	}
	return out
}

// holds says whether tree still has what conflict k left: its copy, or
// its path when it has none.
func holds(r object.TreeReader, tree object.ID, k object.Conflict) (bool, error) {
	p := k.Copy
	if p == "" {
		p = k.Path
	}
	if tree.IsZero() {
		return false, nil
	}
	_, err := object.Lookup(r, tree, p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, object.ErrNotFound):
		return false, nil
	}
	return false, err
}

// conflictKey identifies one conflict: its copy (one file, whichever
// merges made it), or for one without a copy its path and versions.
func conflictKey(k object.Conflict) string {
	if k.Copy != "" {
		return k.Path + "\x00" + k.Copy
	}
	return k.Path + "\x00\x00" + k.Ours.String() + "\x00" + k.Theirs.String()
}

func sortConflicts(cs []object.Conflict) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Copy != b.Copy {
			return a.Copy < b.Copy
		}
		return bytes.Compare(a.Merge[:], b.Merge[:]) < 0
	})
}

// carried returns the conflicts a merge of commits a and b keeps open from
// its parents: one open on both sides, and one open on one side that the
// other side's history never saw (its merge is not below that side). One
// the other side saw and no longer has open was resolved there, and stays
// resolved. Duplicates (the same conflict carried by both) count once.
func carried(r CommitReader, openA, openB []object.Conflict, a, b object.ID) ([]object.Conflict, error) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, k := range openA {
		inA[conflictKey(k)] = true
	}
	for _, k := range openB {
		inB[conflictKey(k)] = true
	}
	best := map[string]object.Conflict{}
	keep := func(k object.Conflict, other object.ID, inOther map[string]bool) error {
		key := conflictKey(k)
		if had, ok := best[key]; ok {
			if bytes.Compare(k.Merge[:], had.Merge[:]) < 0 {
				best[key] = k
			}
			return nil
		}
		if !inOther[key] {
			saw, err := IsAncestor(r, k.Merge, other)
			if err != nil {
				return err
			}
			if saw {
				return nil // the other side resolved it
			}
		}
		best[key] = k
		return nil
	}
	for _, k := range openA {
		if err := keep(k, b, inB); err != nil {
			return nil, err
		}
	}
	for _, k := range openB {
		if err := keep(k, a, inA); err != nil {
			return nil, err
		}
	}
	out := make([]object.Conflict, 0, len(best))
	for _, key := range sortedKeys(best) {
		out = append(out, best[key])
	}
	return out, nil
}
