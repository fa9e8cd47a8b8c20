package repo

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
)

// CommitOptions configure Commit.
type CommitOptions struct {
	Message    string
	AllowEmpty bool
	Meter      *progress.Meter
	// LeaveOutReserved commits the rest when the folder holds .mesh names
	// below the top (sync does, and logs them); otherwise Commit refuses.
	LeaveOutReserved bool
}

// ErrReservedPath is the kind of error for a commit of a folder that holds
// a file or directory named .mesh (in any case) below its top.
var ErrReservedPath = errors.New("a file or folder named .mesh cannot be committed")

// CommitResult says what Commit did.
type CommitResult struct {
	// ID is the new commit, or HEAD when there was nothing to commit.
	ID      object.ID `json:"id,omitzero"`
	Created bool      `json:"created"`
	Branch  string    `json:"branch,omitempty"`
	Parent  object.ID `json:"parent,omitzero"`
	Tree    object.ID `json:"tree,omitzero"`
	// HashedFiles and HashedBytes count what had to be read (stat cache misses).
	HashedFiles   int   `json:"hashedFiles"`
	HashedBytes   int64 `json:"hashedBytes"`
	ObjectsStored int   `json:"objectsStored"`
	BytesStored   int64 `json:"bytesStored"`
	// LeftOut lists .mesh names that were not committed
	// (LeaveOutReserved).
	LeftOut []string `json:"leftOut,omitempty"`
}

// Commit snapshots the whole working tree (there is no staging area) and
// moves the current branch, or the detached HEAD, to the new commit. The
// objects are durable before the ref moves; the working tree is only read.
func (r *Repo) Commit(ctx context.Context, o CommitOptions) (*CommitResult, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer r.autoRepack(ctx) // after the lock is released
	defer lock.Release()

	h, headTree, err := r.headTree()
	if err != nil {
		return nil, err
	}
	batch := r.Store.NewBatch()
	defer batch.Abort()
	ix := worktree.LoadIndex(r.indexPath())
	defer ix.Close()
	snap, err := worktree.Scan(ctx, r.Root, worktree.ScanOptions{
		Sink: batch, Chunker: r.chunker, Index: ix, KeepIndex: true, Have: r.Store.Has, Meter: o.Meter, Now: r.Now, RefuseChanging: true,
		Names: r.names(r.Store), Head: headTree,
	})
	if err != nil {
		return nil, err
	}
	if len(snap.Reserved) > 0 && !o.LeaveOutReserved {
		return nil, fmt.Errorf("%s: %w (it is the name of mesh's own folder); rename it, or add it to .meshignore to leave it out", pathList(snap.Reserved), ErrReservedPath)
	}
	res := &CommitResult{ID: h.ID, LeftOut: snap.Reserved, Branch: h.Branch, Parent: h.ID, Tree: snap.Root, HashedFiles: snap.HashedFiles, HashedBytes: snap.HashedBytes}
	if !h.ID.IsZero() && snap.Root == headTree && !o.AllowEmpty {
		if err := batch.Finish(); err != nil {
			return nil, err
		}
		snap.Index.Save(r.indexPath())
		return res, nil
	}
	now := r.Now()
	_, offset := now.Zone()
	c := &object.Commit{
		Tree:       snap.Root,
		Device:     r.Config.Device,
		DeviceName: r.deviceName(),
		Author:     r.author(),
		Time:       now.Unix(),
		TZ:         int16(offset / 60),
		Message:    o.Message,
	}
	if !h.ID.IsZero() {
		c.Parents = []object.ID{h.ID}
	}
	id, err := batch.Put(object.TypeCommit, c.Encode())
	if err != nil {
		return nil, err
	}
	if err := batch.Finish(); err != nil {
		return nil, err
	}
	if err := r.moveHead(ctx, h, id, "commit: "+firstLine(o.Message)); err != nil {
		return nil, err
	}
	res.ObjectsStored, res.BytesStored = batch.Written()
	res.ID, res.Created = id, true
	if err := snap.Index.Save(r.indexPath()); err != nil {
		// The commit is made; a stale cache only costs re-reading.
		os.Remove(r.indexPath())
	}
	return res, nil
}

// moveHead moves the current branch (or detached HEAD) from h to id.
func (r *Repo) moveHead(ctx context.Context, h object.Head, id object.ID, msg string) error {
	if h.Branch != "" {
		return r.Refs.Update(ctx, object.BranchRef(h.Branch), h.ID, id, msg)
	}
	return r.Refs.SetHead(ctx, "", id, msg)
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
