package repo

import (
	"context"
	"time"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
)

// FileStatus is how one path differs from HEAD.
type FileStatus struct {
	Path string `json:"path"`
	// PathBytes is Path's exact bytes when it is not UTF-8 (see RawName).
	PathBytes []byte `json:"pathBytes,omitempty"`
	// Status is "added", "modified", "deleted" or "type" (kind changed,
	// e.g. file to directory or executable bit).
	Status string        `json:"status"`
	Old    *object.Entry `json:"old,omitempty"`
	New    *object.Entry `json:"new,omitempty"`
	// From is, for "renamed" (diff, show and log, as git's -M finds
	// them), the path the file had; Score how alike the two are (100:
	// the same content).
	From  string `json:"from,omitempty"`
	Score int    `json:"score,omitempty"`
	// Added and Deleted count the lines changed (diff --stat, log
	// --stat); Binary says there are no lines to count.
	Added   int  `json:"added,omitempty"`
	Deleted int  `json:"deleted,omitempty"`
	Binary  bool `json:"binary,omitempty"`
}

// Status is the working tree compared with HEAD.
type Status struct {
	Branch  string       `json:"branch,omitempty"`
	Head    object.ID    `json:"head,omitzero"`
	Changes []FileStatus `json:"changes"`
	// Reserved lists what is left out because no tree may hold it (see
	// worktree.Snapshot.Reserved).
	Reserved []string `json:"reserved,omitempty"`
	// Nested lists directories that are repositories of their own (their
	// .mesh is left out, their files are not).
	Nested []string `json:"nested,omitempty"`
	// Conflicts are the open conflicts (see Conflicts): a clean tree can
	// still have some.
	Conflicts []OpenConflict `json:"conflicts"`
	// Kept lists the paths this folder cannot hold under their own
	// names, and where they are kept (KeptNames).
	Kept []KeptName `json:"kept,omitempty"`
	// Interrupted names the update of the working tree (checkout, merge,
	// ...) that a process left unfinished and that is still recorded:
	// another process holds the lock and is in it, or it could not be
	// finished ("" when none).
	Interrupted string `json:"interrupted,omitempty"`
}

// Clean reports whether nothing differs from HEAD.
func (s *Status) Clean() bool { return len(s.Changes) == 0 }

// overlay reads trees from a scanned snapshot first, then from the store.
type overlay struct {
	snap  *worktree.Snapshot
	store *object.Store
}

func (o overlay) ReadTree(id object.ID) (*object.Tree, error) {
	if t, ok := o.snap.Trees[id]; ok {
		return t, nil
	}
	return o.store.ReadTree(id)
}

// scanHashOnly scans the working tree without storing anything, using and
// refreshing the stat cache. keepIndex asks for the full new stat cache in
// the snapshot (checkout and restore update and save it).
func (r *Repo) scanHashOnly(ctx context.Context, keepIndex bool) (*worktree.Snapshot, error) {
	ix := worktree.LoadIndex(r.indexPath())
	defer ix.Close()
	o := worktree.ScanOptions{
		Sink: object.HashSink{}, Chunker: r.chunker, Index: ix, KeepIndex: keepIndex, Now: r.Now, Stored: r.Store.Has,
	}
	if o.Names = r.names(r.Store); o.Names != nil {
		var err error
		if _, o.Head, err = r.headTree(); err != nil {
			return nil, err
		}
	}
	snap, err := worktree.Scan(ctx, r.Root, o)
	if err != nil {
		return nil, err
	}
	if snap.HashedFiles > 0 {
		// Remember what was just hashed, if no writer is busy; the stat
		// cache only maps stat to content, so it is right whatever HEAD is.
		if l, err := r.lockOnly(ctx, 10*time.Millisecond); err == nil {
			snap.Index.Save(r.indexPath())
			l.Release()
		}
	}
	return snap, nil
}

// Status compares the working tree with HEAD.
func (r *Repo) Status(ctx context.Context) (*Status, error) {
	h, tree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	snap, err := r.scanHashOnly(ctx, false)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTrees(overlay{snap, r.Store}, tree, snap.Root)
	if err != nil {
		return nil, err
	}
	open, err := r.Conflicts()
	if err != nil {
		return nil, err
	}
	if open == nil {
		open = []OpenConflict{}
	}
	kept, err := r.KeptNames()
	if err != nil {
		return nil, err
	}
	return &Status{Branch: h.Branch, Head: h.ID, Changes: fileStatuses(changes), Reserved: snap.Reserved, Nested: snap.Nested, Conflicts: open, Kept: kept, Interrupted: r.Interrupted()}, nil
}

// fileStatuses turns tree changes into per-path statuses; directories are
// left out, their contents speak for them, except empty ones.
func fileStatuses(changes []object.Change) []FileStatus {
	out := make([]FileStatus, 0, len(changes))
	for _, c := range changes {
		fs := FileStatus{Path: c.Path, PathBytes: RawName(c.Path), Old: c.Old, New: c.New}
		switch {
		case c.Old == nil:
			fs.Status = "added"
		case c.New == nil:
			fs.Status = "deleted"
		case c.Old.Kind != c.New.Kind:
			fs.Status = "type"
		default:
			fs.Status = "modified"
		}
		isDir := func(e *object.Entry) bool { return e != nil && e.Kind == object.KindDir }
		if (isDir(c.Old) || c.Old == nil) && (isDir(c.New) || c.New == nil) {
			// A directory added or removed: its files are listed; show the
			// directory itself only when it is empty.
			e := c.New
			if e == nil {
				e = c.Old
			}
			if e.ID != object.EmptyTreeID {
				continue
			}
		}
		out = append(out, fs)
	}
	return out
}

// uncommitted scans the working tree (keeping the full stat cache for the
// caller to update) and returns how it differs from headTree: what a
// checkout, restore or merge must not overwrite.
func (r *Repo) uncommitted(ctx context.Context, headTree object.ID) (*worktree.Snapshot, []object.Change, error) {
	snap, err := r.scanHashOnly(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	dirty, err := object.DiffTrees(overlay{snap, r.Store}, headTree, snap.Root)
	if err != nil {
		return nil, nil, err
	}
	return snap, dirty, nil
}

// requireClean is uncommitted for an operation that replaces the whole
// tree (op names it in the error): any uncommitted change refuses it.
func (r *Repo) requireClean(ctx context.Context, headTree object.ID, op string) (*worktree.Snapshot, error) {
	snap, dirty, err := r.uncommitted(ctx, headTree)
	if err != nil {
		return nil, err
	}
	if len(dirty) > 0 {
		paths := make([]string, len(dirty))
		for i, d := range dirty {
			paths[i] = d.Path
		}
		return nil, blockedError(op, paths)
	}
	return snap, nil
}
