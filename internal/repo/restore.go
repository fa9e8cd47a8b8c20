package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Source string   // revision; HEAD when empty
	To     string   // a directory to write into instead of the working tree
	Paths  []string // limit to these paths (files or directories)
	// Force overwrites uncommitted changes to the paths, after saving the
	// whole working tree as it was in a commit that DiscardedRef points
	// at (mesh restore --source discarded PATH brings a file back).
	Force bool
	Meter *progress.Meter
}

// DiscardedRef points at the newest commit of what restore --force
// overwrote. Each such commit has HEAD as its first parent (so diff
// discarded~1 discarded shows what was dropped) and the previous one, if
// any, as its second: all of them stay reachable, and gc keeps them.
const DiscardedRef = "discarded"

// RestoreResult says what Restore wrote.
type RestoreResult struct {
	Source  object.ID `json:"source,omitzero"`
	To      string    `json:"to"`
	Written int       `json:"written"`
	Removed int       `json:"removed"`
	// Discarded lists the uncommitted paths Force overwrote, and Saved is
	// the commit that keeps them.
	Discarded []string  `json:"discarded"`
	Saved     object.ID `json:"saved,omitzero"`
}

// Restore makes paths (all by default) of the working tree, or of another
// directory, match a commit. It refuses, before touching anything, to
// overwrite a change that is not committed; untracked files a source lacks
// are left alone.
func (r *Repo) Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	rev := o.Source
	if rev == "" {
		rev = "HEAD"
	}
	src, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	sc, err := r.Store.ReadCommit(src)
	if err != nil {
		return nil, err
	}
	paths, err := r.cleanPaths(o.Paths, sc.Tree, src)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Source: src, To: r.Root, Discarded: []string{}}
	if o.To != "" {
		dst, err := filepath.Abs(o.To)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, fmt.Errorf("restore to %s: %w", dst, err)
		}
		res.To = dst
		changes, err := r.restoreToPlan(ctx, dst, sc.Tree, paths)
		if err != nil {
			return nil, err
		}
		o.Meter.SetTotal(countFiles(changes))
		if err := worktree.Apply(ctx, dst, changes, worktree.ApplyOptions{Store: r.Store, Meter: o.Meter}); err != nil {
			return nil, err
		}
		res.Written, _ = tally(changes)
		return res, nil
	}

	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	_, headTree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	snap, dirty, err := r.uncommitted(ctx, headTree)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTrees(overlay{snap, r.Store}, snap.Root, sc.Tree)
	if err != nil {
		return nil, err
	}
	changes = filterPaths(changes, paths)
	// Paths whose content on disk is not committed: modified or untracked.
	uncommitted := map[string]object.Change{}
	for _, d := range dirty {
		if d.New != nil && d.New.Kind != object.KindDir {
			uncommitted[d.Path] = d
		}
	}
	var keep []object.Change
	var blocked []string
	for _, c := range changes {
		d, ok := uncommitted[c.Path]
		switch {
		case !ok:
			keep = append(keep, c)
		case d.Old == nil && c.New == nil:
			// Untracked and absent from the source: leave it alone.
		default:
			blocked = append(blocked, c.Path)
		}
	}
	if len(blocked) > 0 && !o.Force {
		return nil, fmt.Errorf("%w; or give --force to overwrite them, keeping them in commit %q", blockedError("restore", blocked), DiscardedRef)
	}
	if len(blocked) > 0 {
		// Nothing is overwritten before it is durable in a commit.
		saved, err := r.saveDiscarded(ctx, blocked)
		if err != nil {
			return nil, err
		}
		res.Saved, res.Discarded = saved, slices.Sorted(slices.Values(blocked))
		keep = changes
		// Untracked files the source lacks are still left alone.
		keep = slices.DeleteFunc(keep, func(c object.Change) bool {
			d, ok := uncommitted[c.Path]
			return ok && d.Old == nil && c.New == nil
		})
	}
	o.Meter.SetTotal(countFiles(keep))
	in := intent{Op: "restore", From: headTree, To: sc.Tree, Paths: paths}
	if err := r.update(ctx, in, keep, snap, o.Meter); err != nil {
		return nil, err
	}
	res.Written, res.Removed = tally(keep)
	return res, nil
}

// saveDiscarded commits the working tree as it is, with HEAD and the
// previous discarded commit as parents, and moves DiscardedRef to it.
func (r *Repo) saveDiscarded(ctx context.Context, paths []string) (object.ID, error) {
	h, err := r.Refs.Head()
	if err != nil {
		return object.ZeroID, err
	}
	batch := r.Store.NewBatch()
	defer batch.Abort()
	ix := worktree.LoadIndex(r.indexPath())
	defer ix.Close()
	o := worktree.ScanOptions{Sink: batch, Chunker: r.chunker, Index: ix, Have: r.Store.Has, Now: r.Now, RefuseChanging: true}
	if o.Names = r.names(r.Store); o.Names != nil {
		if _, o.Head, err = r.headTree(); err != nil {
			return object.ZeroID, err
		}
	}
	snap, err := worktree.Scan(ctx, r.Root, o)
	if err != nil {
		return object.ZeroID, err
	}
	prev, _, err := r.Refs.Get(DiscardedRef)
	if err != nil {
		return object.ZeroID, err
	}
	now := r.Now()
	_, offset := now.Zone()
	c := &object.Commit{
		Tree: snap.Root, Device: r.Config.Device, DeviceName: r.deviceName(), Author: r.author(),
		Time: now.Unix(), TZ: int16(offset / 60),
		Message: "discarded by mesh restore --force: " + pathList(paths),
	}
	for _, p := range []object.ID{h.ID, prev} {
		if !p.IsZero() && !slices.Contains(c.Parents, p) {
			c.Parents = append(c.Parents, p)
		}
	}
	id, err := batch.Put(object.TypeCommit, c.Encode())
	if err != nil {
		return object.ZeroID, err
	}
	if err := batch.Finish(); err != nil {
		return object.ZeroID, err
	}
	if err := r.Refs.Update(ctx, DiscardedRef, prev, id, "restore --force: "+pathList(paths)); err != nil {
		return object.ZeroID, err
	}
	return id, nil
}

// restoreToPlan is what restoring tree (limited to paths) into the folder
// dst writes: what dst lacks. What it holds already with the same content
// stays (restore --to run twice, or again after it was killed, succeeds);
// its own files that the tree lacks stay too; a path it holds with other
// content is refused, before anything is written. Temporary files that a
// killed restore left beside a file of the tree are removed.
func (r *Repo) restoreToPlan(ctx context.Context, dst string, tree object.ID, paths []string) ([]object.Change, error) {
	snap, err := worktree.Scan(ctx, dst, worktree.ScanOptions{Sink: object.HashSink{}, Chunker: r.chunker, NoIgnore: true})
	if err != nil {
		return nil, err
	}
	there, err := object.DiffTrees(overlay{snap, r.Store}, snap.Root, tree)
	if err != nil {
		return nil, err
	}
	var todo []object.Change
	var clash []string
	for _, c := range filterPaths(there, paths) {
		switch {
		case c.New == nil:
			if c.Old.Kind != object.KindDir && r.leftByRestore(tree, c.Path) {
				os.Remove(filepath.Join(dst, filepath.FromSlash(c.Path)))
			}
		case c.Old == nil, c.Old.Kind == object.KindDir && c.New.Kind == object.KindDir:
			todo = append(todo, c)
		default:
			clash = append(clash, c.Path)
		}
	}
	if len(clash) > 0 {
		return nil, fmt.Errorf("restore --to %s: %s there differ from the commit: %w; restore into an empty folder, or move them away", dst, pathList(clash), worktree.ErrWouldOverwrite)
	}
	return todo, nil
}

// leftByRestore reports whether p is a temporary file mesh writes beside
// a file of tree (".tmp-NAME-RANDOM" or ".tmp-NAME-link").
func (r *Repo) leftByRestore(tree object.ID, p string) bool {
	dir, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i+1], p[i+1:]
	}
	stem, ok := strings.CutPrefix(base, object.TempPrefix)
	i := strings.LastIndexByte(stem, '-')
	if !ok || i <= 0 {
		return false
	}
	_, err := object.Lookup(r.Store, tree, dir+stem[:i])
	return err == nil
}

func blockedError(op string, paths []string) error {
	return fmt.Errorf("%s would overwrite %s: %w; commit them first (mesh commit) or move them away", op, pathList(paths), ErrUncommitted)
}

// pathList names paths in an error: sorted, the first ten and how many
// more.
func pathList(paths []string) string {
	paths = slices.Sorted(slices.Values(paths))
	for i, p := range paths {
		paths[i] = QuotePath(p)
	}
	if len(paths) > 10 {
		return fmt.Sprintf("%s and %d more", strings.Join(paths[:10], ", "), len(paths)-10)
	}
	return strings.Join(paths, ", ")
}

// cleanPaths checks that each requested path is in the source tree and
// normalises it.
func (r *Repo) cleanPaths(in []string, tree, commit object.ID) ([]string, error) {
	var out []string
	for _, p := range in {
		p = strings.Trim(filepath.ToSlash(filepath.Clean(p)), "/")
		if p == "." || p == "" {
			return nil, nil // the whole tree
		}
		if _, err := object.Lookup(r.Store, tree, p); err != nil {
			return nil, fmt.Errorf("commit %s: %w", commit.Short(), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// filterPaths keeps changes at, below or above (directories leading to) the
// given paths; no paths keeps everything.
func filterPaths(changes []object.Change, paths []string) []object.Change {
	if len(paths) == 0 {
		return changes
	}
	var out []object.Change
	for _, c := range changes {
		for _, p := range paths {
			if c.Path == p || strings.HasPrefix(c.Path, p+"/") || strings.HasPrefix(p, c.Path+"/") {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func countFiles(changes []object.Change) (int64, int64) {
	var n, b int64
	for _, c := range changes {
		if c.New != nil && c.New.Kind != object.KindDir {
			n++
			b += c.New.Size
		}
	}
	return n, b
}

// tally counts the files (not directories) that applying changes writes
// and removes.
func tally(changes []object.Change) (written, removed int) {
	for _, c := range changes {
		switch {
		case c.New != nil && c.New.Kind != object.KindDir:
			written++
		case c.Old != nil && c.Old.Kind != object.KindDir:
			removed++
		}
	}
	return written, removed
}

// CheckoutResult says where HEAD is now.
type CheckoutResult struct {
	ID      object.ID `json:"id"`
	Branch  string    `json:"branch,omitempty"`
	Written int       `json:"written"`
	Removed int       `json:"removed"`
}

// Checkout moves HEAD to rev (attached when rev names a branch, detached
// otherwise) and updates the working tree. It refuses, before touching
// anything, when a path it would change has uncommitted changes; other
// uncommitted changes are carried along, as git does.
func (r *Repo) Checkout(ctx context.Context, rev string, meter *progress.Meter) (*CheckoutResult, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	target, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	branch := ""
	if object.ValidRefName(object.BranchRef(rev)) {
		if _, ok, _ := r.Refs.Get(object.BranchRef(rev)); ok {
			branch = rev
		}
	}
	tc, err := r.Store.ReadCommit(target)
	if err != nil {
		return nil, err
	}
	_, headTree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	snap, dirty, err := r.uncommitted(ctx, headTree)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTrees(r.Store, headTree, tc.Tree)
	if err != nil {
		return nil, err
	}
	if blocked := overlapping(changes, dirty); len(blocked) > 0 {
		return nil, blockedError("checkout of "+rev, blocked)
	}
	meter.SetTotal(countFiles(changes))
	h, err := r.Head()
	if err != nil {
		return nil, err
	}
	in := intent{Op: "checkout", From: headTree, To: tc.Tree,
		Head: &headMove{Attach: true, Branch: branch, Old: h.ID, New: target, Msg: "checkout: moving to " + rev}}
	if err := r.update(ctx, in, changes, snap, meter); err != nil {
		return nil, err
	}
	res := &CheckoutResult{ID: target, Branch: branch}
	res.Written, res.Removed = tally(changes)
	return res, nil
}

// overlapping returns the dirty paths that a change touches: the same path,
// one inside a changed path, or a changed path inside a dirty one.
func overlapping(changes, dirty []object.Change) []string {
	var dp []string
	for _, d := range dirty {
		if d.Old != nil && d.New != nil && d.Old.Kind == object.KindDir && d.New.Kind == object.KindDir {
			continue
		}
		dp = append(dp, d.Path)
	}
	sort.Strings(dp)
	hit := map[string]bool{}
	for _, c := range changes {
		i := sort.SearchStrings(dp, c.Path)
		for ; i < len(dp) && (dp[i] == c.Path || strings.HasPrefix(dp[i], c.Path+"/")); i++ {
			hit[dp[i]] = true
		}
		for p := c.Path; ; {
			j := strings.LastIndexByte(p, '/')
			if j < 0 {
				break
			}
			p = p[:j]
			if k := sort.SearchStrings(dp, p); k < len(dp) && dp[k] == p {
				hit[p] = true
			}
		}
	}
	out := make([]string, 0, len(hit))
	for p := range hit {
		out = append(out, p)
	}
	return out
}

// ErrPathExists is the kind of error for a restore under a new name that
// something already has.
var ErrPathExists = errors.New("something is already there")

// RestoreAs writes the version of path at rev into the working tree as
// newPath, which must not exist (so nothing is ever overwritten), and
// returns the commit it came from. The file is new to the tree: the next
// commit adds it.
func (r *Repo) RestoreAs(ctx context.Context, rev, path, newPath string) (object.ID, error) {
	if err := worktree.CheckPath(newPath); err != nil {
		return object.ZeroID, err
	}
	e, id, err := r.ResolveEntry(rev + ":" + path)
	if err != nil {
		return object.ZeroID, err
	}
	if e.Kind != object.KindFile && e.Kind != object.KindExec {
		return object.ZeroID, fmt.Errorf("%s in commit %s is a %s: only a file is restored under a new name", path, id.Short(), e.Kind)
	}
	lock, err := r.Lock(ctx)
	if err != nil {
		return object.ZeroID, err
	}
	defer lock.Release()
	dst := filepath.Join(r.Root, filepath.FromSlash(newPath))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return object.ZeroID, err
	}
	perm := os.FileMode(0o644)
	if e.Kind == object.KindExec {
		perm = 0o755
	}
	// O_EXCL: a file that appears there meanwhile is never overwritten.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return object.ZeroID, fmt.Errorf("%s: %w; choose another name", newPath, ErrPathExists)
	}
	if err != nil {
		return object.ZeroID, err
	}
	if _, err := r.Store.WriteFileTo(ctx, f, e.ID); err != nil {
		f.Close()
		os.Remove(dst)
		return object.ZeroID, err
	}
	if err := f.Close(); err != nil {
		os.Remove(dst)
		return object.ZeroID, err
	}
	return id, nil
}
