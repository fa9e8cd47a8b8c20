package repo

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	// Markers writes conflict markers into conflicting text files instead
	// of keeping the other version beside them.
	Markers bool
	// AllowUnrelated lets Merge join a history that shares no commit with
	// HEAD's (another mesh's, or another folder's).
	AllowUnrelated bool
}

// ErrUnrelated is the kind of error for a merge of histories with no
// common commit.
var ErrUnrelated = errors.New("the histories share no commit")

// MergeResult says what Merge did.
type MergeResult struct {
	ID          object.ID      `json:"id,omitzero"`
	UpToDate    bool           `json:"upToDate"`
	FastForward bool           `json:"fastForward"`
	Conflicts   []OpenConflict `json:"conflicts"`
}

// Merge merges rev into the current branch: nothing when HEAD already
// contains it, a fast-forward when HEAD is below it, otherwise the
// deterministic merge commit (the same one any device makes from these
// two heads). The working tree is updated; uncommitted changes make it
// refuse before anything is touched, since a merge must start from a
// committed state for every device to reach the same commit.
func (r *Repo) Merge(ctx context.Context, rev string, o MergeOptions) (*MergeResult, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer r.autoRepack(ctx)
	defer lock.Release()
	h, headTree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	target, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	snap, err := r.requireClean(ctx, headTree, "merge")
	if err != nil {
		return nil, err
	}
	if !h.ID.IsZero() && !o.AllowUnrelated {
		bases, err := merge.Bases(r.Store, h.ID, target)
		if err != nil {
			return nil, err
		}
		if len(bases) == 0 {
			return nil, fmt.Errorf("%s and HEAD: %w (another mesh's, or another folder's); give --allow-unrelated to merge them anyway", rev, ErrUnrelated)
		}
	}
	batch := r.Store.NewBatch()
	defer batch.Abort()
	res := &merge.Result{ID: target, FastForward: true} // an unborn branch takes rev as it is
	if !h.ID.IsZero() {
		res, err = merge.Commits(ctx, r.Store, batch, h.ID, target, merge.TreeOptions{Chunker: r.chunker, Markers: o.Markers})
		if err != nil {
			return nil, err
		}
	}
	if err := batch.Finish(); err != nil {
		return nil, err
	}
	out := &MergeResult{ID: res.ID, FastForward: res.FastForward, Conflicts: r.openConflicts(res.Conflicts)}
	if res.ID == h.ID {
		out.UpToDate, out.FastForward = true, false
		return out, nil
	}
	msg := "merge: " + rev
	if res.FastForward {
		msg = "merge: fast-forward to " + rev
	}
	if err := r.advance(ctx, h, headTree, snap, res.ID, msg); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenConflict is a conflict recorded by a merge that no later commit
// resolved. Its Merge is the merge commit that made it; Device, Commit
// and DeviceName say whose version it names.
type OpenConflict struct {
	object.Conflict
	// Yours is true when that version is this device's.
	Yours bool `json:"yours"`
	// PathBytes and CopyBytes are the exact bytes of Path and Copy when
	// they are not UTF-8 (see RawName).
	PathBytes []byte `json:"pathBytes,omitempty"`
	CopyBytes []byte `json:"copyBytes,omitempty"`
	// Kind is "name" for a path this folder keeps under another name
	// (mesh conflicts lists those too; Why says why), empty for a
	// conflict of a merge.
	Kind string `json:"kind,omitempty"`
	Why  string `json:"why,omitempty"`
}

// Whose says whose version was kept beside the file, for people: "your
// version", or "the version of NAME (ABCD123)", or of the device ID's
// first group alone.
func (c OpenConflict) Whose() string {
	if c.Yours {
		return "your version"
	}
	dev, _, _ := strings.Cut(c.Device, "-")
	switch {
	case c.DeviceName != "" && dev != "":
		return "the version of " + c.DeviceName + " (" + dev + ")"
	case dev != "":
		return "the version of " + dev
	}
	return "the other version"
}

// openConflicts describes conflicts for this device.
func (r *Repo) openConflicts(cs []object.Conflict) []OpenConflict {
	out := make([]OpenConflict, 0, len(cs))
	for _, c := range cs {
		out = append(out, OpenConflict{Conflict: c, Yours: c.Device != "" && c.Device == r.Config.Device,
			PathBytes: RawName(c.Path), CopyBytes: RawName(c.Copy)})
	}
	return out
}

// Conflicts lists the conflicts open at HEAD (merge.Open): every merge
// commit lists all that are open at it, a commit with a "Mesh-Resolved:
// PATH" trailer (mesh resolve) ends those at PATH, and deleting a copy
// ends its conflict; all of it travels with history, so every device
// lists the same.
func (r *Repo) Conflicts() ([]OpenConflict, error) {
	h, err := r.Refs.Head()
	if err != nil || h.ID.IsZero() {
		return nil, err
	}
	// Finding them walks the commits since the last merge, which a daemon
	// may have made thousands of; status asks every time, so the answer
	// is kept for the head it was found at.
	cache := filepath.Join(r.Meta, conflictsCache)
	if b, err := os.ReadFile(cache); err == nil {
		var c cachedConflicts
		if gob.NewDecoder(bytes.NewReader(b)).Decode(&c) == nil && c.Version == conflictsCacheVersion && c.Head == h.ID {
			return c.Conflicts, nil
		}
	}
	cs, err := merge.Open(r.Store, h.ID)
	if err != nil {
		return nil, err
	}
	out := r.openConflicts(cs)
	var buf bytes.Buffer
	if gob.NewEncoder(&buf).Encode(cachedConflicts{Version: conflictsCacheVersion, Head: h.ID, Conflicts: out}) == nil {
		// Only a cache: a lost or stale one is found again.
		_ = object.WriteFileAtomic(cache, buf.Bytes(), 0o644, false)
	}
	return out, nil
}

// conflictsCache, in .mesh, holds the open conflicts of one head (gob,
// which keeps names that are not UTF-8 exactly).
const conflictsCache = "conflicts.cache"

// conflictsCacheVersion changes when what the cache holds does, so an
// older one is found again instead of read wrongly.
const conflictsCacheVersion = 2

type cachedConflicts struct {
	Version   int
	Head      object.ID
	Conflicts []OpenConflict
}

// ResolveResult says what ResolveConflict committed.
type ResolveResult struct {
	Commit object.ID `json:"commit"`
	Path   string    `json:"path"`
	// Ended counts the conflicts at Path that the commit ends.
	Ended         int      `json:"ended"`
	RemovedCopies []string `json:"removedCopies"`
}

// ErrNoConflict is returned when a path has no open conflict.
var ErrNoConflict = errors.New("no open conflict")

// ResolveConflict ends every open conflict at path: optionally deletes
// all their conflict copies, then commits the working tree as it is with
// a Mesh-Resolved trailer, so every device sees them resolved.
func (r *Repo) ResolveConflict(ctx context.Context, path string, removeCopy bool) (*ResolveResult, error) {
	open, err := r.Conflicts()
	if err != nil {
		return nil, err
	}
	var at []OpenConflict
	for _, c := range open {
		if c.Path == path {
			at = append(at, c)
		}
	}
	if len(at) == 0 {
		return nil, fmt.Errorf("%s: %w (see mesh conflicts)", path, ErrNoConflict)
	}
	res := &ResolveResult{Path: path, Ended: len(at), RemovedCopies: []string{}}
	if removeCopy {
		for _, c := range at {
			if c.Copy == "" || slices.Contains(res.RemovedCopies, c.Copy) {
				continue
			}
			if err := worktree.CheckPath(c.Copy); err != nil {
				return nil, err
			}
			p := filepath.Join(r.Root, filepath.FromSlash(c.Copy))
			if err := os.RemoveAll(p); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("remove conflict copy %s: %w", c.Copy, err)
			}
			res.RemovedCopies = append(res.RemovedCopies, c.Copy)
		}
	}
	cr, err := r.Commit(ctx, CommitOptions{Message: "resolve " + path + "\n\n" + merge.ResolvedTrailer + path, AllowEmpty: true})
	if err != nil {
		return nil, err
	}
	res.Commit = cr.ID
	return res, nil
}

// Converge merges heads (other devices' commits, all in the store) into
// the current branch the way every device does, so that devices which
// see the same heads end on the same commit whatever their own head was:
// of HEAD and heads, those no other one contains are merged one at a
// time in ID order (merging is commutative, not associative, so the order
// must not depend on who does it). The working tree is updated; anything
// uncommitted makes it refuse first.
func (r *Repo) Converge(ctx context.Context, heads []object.ID, o MergeOptions) (*MergeResult, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer r.autoRepack(ctx)
	defer lock.Release()
	h, headTree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	snap, err := r.requireClean(ctx, headTree, "sync")
	if err != nil {
		return nil, err
	}
	tips, err := r.independent(append([]object.ID{h.ID}, heads...))
	if err != nil {
		return nil, err
	}
	out := &MergeResult{ID: h.ID}
	if len(tips) == 0 || (len(tips) == 1 && tips[0] == h.ID) {
		out.UpToDate = true
		return out, nil
	}
	m := tips[0]
	for _, t := range tips[1:] {
		// Each step's merge commit is read by the next, so each batch
		// is finished before the next step.
		batch := r.Store.NewBatch()
		res, err := merge.Commits(ctx, r.Store, batch, m, t, merge.TreeOptions{Chunker: r.chunker, Markers: o.Markers})
		if err == nil {
			err = batch.Finish()
		}
		if err != nil {
			batch.Abort()
			return nil, err
		}
		m = res.ID
		out.Conflicts = append(out.Conflicts, r.openConflicts(res.Conflicts)...)
	}
	out.ID = m
	if ok, err := merge.IsAncestor(r.Store, h.ID, m); err == nil && ok && len(tips) == 1 {
		out.FastForward = true
	}
	if err := r.advance(ctx, h, headTree, snap, m, "sync: converge"); err != nil {
		return nil, err
	}
	return out, nil
}

// advance checks out commit over a clean working tree (snap is its scan,
// headTree what HEAD holds) and moves HEAD (h) to it with msg.
func (r *Repo) advance(ctx context.Context, h object.Head, headTree object.ID, snap *worktree.Snapshot, commit object.ID, msg string) error {
	c, err := r.Store.ReadCommit(commit)
	if err != nil {
		return err
	}
	changes, err := object.DiffTrees(r.Store, headTree, c.Tree)
	if err != nil {
		return err
	}
	op, _, _ := strings.Cut(msg, ":")
	in := intent{Op: op, From: headTree, To: c.Tree, Head: &headMove{Branch: h.Branch, Old: h.ID, New: commit, Msg: msg}}
	return r.update(ctx, in, changes, snap, nil)
}

// independent drops zero IDs, duplicates and every commit another one of
// ids contains, and sorts the rest by ID.
func (r *Repo) independent(ids []object.ID) ([]object.ID, error) {
	set := map[object.ID]bool{}
	for _, id := range ids {
		if !id.IsZero() {
			set[id] = true
		}
	}
	var out []object.ID
	for x := range set {
		contained := false
		for y := range set {
			if x == y {
				continue
			}
			bases, err := merge.Bases(r.Store, x, y)
			if err != nil {
				return nil, err
			}
			if len(bases) == 1 && bases[0] == x {
				contained = true
				break
			}
		}
		if !contained {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// ResolveKeeping ends every open conflict at path with content as the
// file's (the other version, or a text merged by hand): it is written
// over path only if path holds what HEAD has there (an uncommitted edit is
// never overwritten), the conflict copies are removed, and the result is
// committed as ResolveConflict does.
func (r *Repo) ResolveKeeping(ctx context.Context, path string, content []byte) (*ResolveResult, error) {
	if err := worktree.CheckPath(path); err != nil {
		return nil, err
	}
	open, err := r.Conflicts()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(open, func(c OpenConflict) bool { return c.Path == path }) {
		return nil, fmt.Errorf("%s: %w (see mesh conflicts)", path, ErrNoConflict)
	}
	e, _, err := r.ResolveEntry("HEAD:" + path)
	if err != nil {
		return nil, err
	}
	if e.Kind != object.KindFile && e.Kind != object.KindExec {
		return nil, fmt.Errorf("%s is a %s: only a file's content can be chosen", path, e.Kind)
	}
	d, err := r.Diff(ctx, nil, []string{path})
	if err != nil {
		return nil, err
	}
	if len(d.Changes) > 0 {
		return nil, fmt.Errorf("%s has changes that are not committed: %w; commit them, or resolve with mesh resolve", path, ErrUncommitted)
	}
	perm := os.FileMode(0o644)
	if e.Kind == object.KindExec {
		perm = 0o755
	}
	if err := object.WriteFileAtomic(filepath.Join(r.Root, filepath.FromSlash(path)), content, perm, false); err != nil {
		return nil, err
	}
	return r.ResolveConflict(ctx, path, true)
}
