package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
)

// Crash-safe working-tree updates. Every operation that rewrites the
// working tree (checkout, merge, pull, restore, sync, the daemon, join)
// goes through update:
//
//  1. it writes .mesh/op, durably: the operation, the tree the paths it
//     touches hold now (from), the tree they end at (to), the paths it is
//     limited to, and how HEAD moves;
//  2. it writes files (each through .mesh/tmp and a rename);
//  3. it moves HEAD;
//  4. it removes .mesh/op.
//
// A process killed anywhere leaves either no record (nothing was touched,
// or all was done) or a record whose objects are all in the store (the
// closure invariant). The next command that takes the repository lock
// finds the record, finishes the operation, then does its own work: each
// path the operation changes is brought to its "to" version when what is
// on disk is the "from" version, the "to" version already, or nothing;
// anything else there is an edit made after the kill, and is left as it
// is (it then shows as a change, and nothing is lost). So after kill -9 at
// any point the same command run again succeeds and the tree ends exactly
// at the target.

// opFile, in .mesh, is the record of the working-tree update under way.
const opFile = "op"

// TmpDir, in .mesh, holds files being written into the working tree.
const TmpDir = "tmp"

// intent is .mesh/op.
type intent struct {
	Op   string    `json:"op"`
	From object.ID `json:"from"`
	To   object.ID `json:"to"`
	// Paths limits the update to these paths and what is below them
	// (restore of some paths); empty: every path where From and To
	// differ.
	Paths []string  `json:"paths,omitempty"`
	Head  *headMove `json:"head,omitempty"`
}

// headMove is how an update moves HEAD once the files are written.
type headMove struct {
	// Attach sets HEAD to Branch (checkout; "" detaches at New);
	// otherwise the current branch (or detached HEAD) moves from Old to
	// New.
	Attach bool      `json:"attach,omitempty"`
	Branch string    `json:"branch,omitempty"`
	Old    object.ID `json:"old"`
	New    object.ID `json:"new"`
	Msg    string    `json:"msg"`
}

// ErrInterrupted is the kind of error for an interrupted update that
// could not be finished.
var ErrInterrupted = errors.New("an interrupted update of the working tree could not be finished")

// update applies changes (from in.From to in.To, on the paths given) to
// the working tree and moves HEAD as in.Head says, recording the intent
// first (see above). snap is the scan that found the paths committed; its
// stat cache is updated and saved.
func (r *Repo) update(ctx context.Context, in intent, changes []object.Change, snap *worktree.Snapshot, meter *progress.Meter) error {
	if meter == nil {
		// A merge, pull, join or sync: the caller's meter, if it has
		// one, goes on to the writing of the files.
		if meter = progress.From(ctx); meter != nil {
			meter.Phase("writing files")
			meter.SetTotal(countFiles(changes))
		}
	}
	if err := r.writeIntent(in); err != nil {
		return err
	}
	if err := r.applyTree(ctx, changes, snap, meter, in); err != nil {
		// The record stays: what was written is finished by the next
		// command (or this one run again).
		return err
	}
	return r.complete(ctx, in, snap)
}

// complete does what follows the files: HEAD moves, the stat cache is
// saved, the record goes.
func (r *Repo) complete(ctx context.Context, in intent, snap *worktree.Snapshot) error {
	if err := r.moveHeadAs(ctx, in.Head); err != nil {
		return err
	}
	snap.Index.Save(r.indexPath())
	return r.clearIntent()
}

// applyTree writes changes, which take the paths they touch from tree
// in.From to in.To, into the working tree. Where the folder cannot hold
// some names, each is kept where its tree's plan says: a restore of some
// paths leaves HEAD (From) in place, so From's plan places everything.
func (r *Repo) applyTree(ctx context.Context, changes []object.Change, snap *worktree.Snapshot, meter *progress.Meter, in intent) error {
	tmp := filepath.Join(r.Meta, TmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	o := worktree.ApplyOptions{Store: r.Store, Index: snap.Index, TempDir: tmp, Meter: meter}
	if o.Names = r.names(overlay{snap, r.Store}); o.Names != nil {
		o.From, o.To = in.From, in.To
		if len(in.Paths) > 0 {
			o.To = in.From
		}
	}
	return worktree.Apply(ctx, r.Root, changes, o)
}

func (r *Repo) writeIntent(in intent) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return object.WriteFileAtomic(filepath.Join(r.Meta, opFile), append(b, '\n'), 0o644, true)
}

// clearIntent removes the record. It need not be durable: a record that
// comes back after a crash describes an update that is complete, and
// finishing it changes nothing.
func (r *Repo) clearIntent() error {
	if err := os.Remove(filepath.Join(r.Meta, opFile)); err != nil && !isNotExist(err) {
		return fmt.Errorf("remove %s: %w", filepath.Join(r.Meta, opFile), err)
	}
	return nil
}

func (r *Repo) readIntent() (*intent, error) {
	p := filepath.Join(r.Meta, opFile)
	b, err := os.ReadFile(p)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in intent
	if err := json.Unmarshal(b, &in); err != nil || in.Op == "" {
		return nil, fmt.Errorf("%s is damaged (%v): %w; remove it, then check the folder with mesh status", p, err, ErrInterrupted)
	}
	return &in, nil
}

// Interrupted says which operation a record left by a killed process
// describes ("" when none): status shows it.
func (r *Repo) Interrupted() string {
	in, err := r.readIntent()
	if err != nil {
		return "damaged record"
	}
	if in == nil {
		return ""
	}
	return in.Op
}

// moveHeadAs moves HEAD as m says, unless it is there already.
func (r *Repo) moveHeadAs(ctx context.Context, m *headMove) error {
	if m == nil {
		return nil
	}
	cur, err := r.Refs.Head()
	if err != nil {
		return err
	}
	if m.Attach {
		if cur.Branch == m.Branch && cur.ID == m.New {
			return nil
		}
		return r.Refs.SetHead(ctx, m.Branch, m.New, m.Msg)
	}
	switch {
	case cur.Branch == m.Branch && cur.ID == m.New:
		return nil
	case cur.Branch == m.Branch && cur.ID == m.Old:
		return r.moveHead(ctx, cur, m.New, m.Msg)
	}
	return fmt.Errorf("HEAD is at %s %s, neither where the interrupted update found it (%s) nor where it was taking it (%s): %w",
		cur.Branch, cur.ID.Short(), m.Old.Short(), m.New.Short(), ErrInterrupted)
}

// finishInterrupted finishes the update a killed process left recorded,
// if any, rebuilds the index of a pack a killed writer left without one,
// and sweeps .mesh/tmp. The caller holds the repository lock, so
// no live process is writing either.
func (r *Repo) finishInterrupted(ctx context.Context) error {
	// A pack whose writer was killed before its index: rebuilt, so the
	// store is whole before anything reads it (its objects, checked,
	// become visible; no ref needs them, and gc drops them).
	if err := r.Store.RebuildMissingIndexes(); err != nil {
		return err
	}
	tmp := filepath.Join(r.Meta, TmpDir)
	if ents, err := os.ReadDir(tmp); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
	in, err := r.readIntent()
	if err != nil || in == nil {
		return err
	}
	if err := r.finish(ctx, in); err != nil {
		return fmt.Errorf("finish the interrupted %s (to tree %s): %w; to give it up instead, remove %s (the files it wrote stay, and mesh status shows them)", in.Op, in.To.Short(), err, filepath.Join(r.Meta, opFile))
	}
	return nil
}

// finish completes in (see the top of this file).
func (r *Repo) finish(ctx context.Context, in *intent) error {
	planned, err := object.DiffTrees(r.Store, in.From, in.To)
	if err != nil {
		return err
	}
	planned = filterPaths(planned, in.Paths)
	touched := make(map[string]bool, len(planned))
	for _, c := range planned {
		touched[c.Path] = true
	}
	snap, err := r.scanHashOnly(ctx, true)
	if err != nil {
		return err
	}
	left, err := object.DiffTrees(overlay{snap, r.Store}, snap.Root, in.To)
	if err != nil {
		return err
	}
	var todo []object.Change
	for _, c := range left {
		if !touched[c.Path] {
			continue // not the operation's: carried along, as it started
		}
		if c.Old != nil && c.Old.Kind != object.KindDir {
			// A file is there: the operation's only if it is the "from"
			// version (not written yet).
			e, err := object.Lookup(r.Store, in.From, c.Path)
			if err != nil || e.Kind != c.Old.Kind || e.ID != c.Old.ID {
				continue // edited since: kept, it shows as a change
			}
		}
		todo = append(todo, c)
	}
	// What is on disk is the scan's tree now, partly From and partly To.
	at := *in
	at.From = snap.Root
	if err := r.applyTree(ctx, todo, snap, nil, at); err != nil {
		return err
	}
	return r.complete(ctx, *in, snap)
}
