package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// ArtifactPrefix starts the branches mesh publish writes.
const ArtifactPrefix = "artifacts/"

// PublishOptions configure Publish.
type PublishOptions struct {
	// Branch is the artifact branch (default artifacts/<name of the first path>).
	Branch  string
	Message string
	// Paths are files or folders anywhere; one folder alone becomes the
	// commit's root, otherwise each is an entry named as its base name.
	Paths []string
}

// PublishResult says what Publish made.
type PublishResult struct {
	ID     object.ID `json:"id"`
	Branch string    `json:"branch"`
	Tree   object.ID `json:"tree"`
	Files  int       `json:"files"`
	Bytes  int64     `json:"bytes"`
	// Previous is the version the branch held before (zero if none).
	Previous object.ID `json:"previous,omitzero"`
}

// Publish snapshots files or folders (not necessarily of the working
// tree) as a new commit on an artifact branch. Each version is a root
// commit: an artifact is a whole snapshot, not an edit of the last one, and
// retention (Retain) can then drop old versions without rewriting the IDs
// of the ones it keeps. The branch's reflog lists the versions.
func (r *Repo) Publish(ctx context.Context, o PublishOptions) (*PublishResult, error) {
	if len(o.Paths) == 0 {
		return nil, errors.New("publish what? give one or more files or folders")
	}
	if o.Branch == "" {
		o.Branch = ArtifactPrefix + filepath.Base(filepath.Clean(o.Paths[0]))
	}
	ref := object.BranchRef(o.Branch)
	if !object.ValidRefName(ref) {
		return nil, fmt.Errorf("%q is not a valid branch name", o.Branch)
	}
	// Each version is a root commit that replaces the branch: on a
	// branch that holds a folder's history (main) that would throw the
	// history away and make the whole folder look changed.
	if !strings.HasPrefix(o.Branch, ArtifactPrefix) {
		return nil, fmt.Errorf("publish writes artifact branches only (%sNAME), not %q: each version replaces the branch; give -b %s%s", ArtifactPrefix, o.Branch, ArtifactPrefix, strings.TrimPrefix(o.Branch, "heads/"))
	}
	if h, err := r.Head(); err == nil && h.Branch == o.Branch {
		return nil, fmt.Errorf("%s is checked out here: publish would replace the folder's history; check out another branch first", o.Branch)
	}
	if o.Message == "" {
		o.Message = "publish " + strings.Join(o.Paths, " ")
	}
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	batch := r.Store.NewBatch()
	defer batch.Abort()

	var root object.ID
	res := &PublishResult{Branch: o.Branch}
	single, err := os.Stat(o.Paths[0])
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", o.Paths[0], err)
	}
	if len(o.Paths) == 1 && single.IsDir() {
		if root, err = r.publishDir(ctx, batch, o.Paths[0], res); err != nil {
			return nil, err
		}
	} else {
		var t object.Tree
		seen := map[string]string{}
		for _, p := range o.Paths {
			e, err := r.publishEntry(ctx, batch, p, res)
			if err != nil {
				return nil, err
			}
			if prev, dup := seen[e.Name]; dup {
				return nil, fmt.Errorf("publish: %s and %s would both be %q in the artifact; publish their folder, or one of them", prev, p, e.Name)
			}
			seen[e.Name] = p
			t.Entries = append(t.Entries, e)
		}
		sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Name < t.Entries[j].Name })
		body, err := t.Encode()
		if err != nil {
			return nil, err
		}
		if root, err = batch.Put(object.TypeTree, body); err != nil {
			return nil, err
		}
	}
	res.Tree = root
	prev, _, err := r.Refs.Get(ref)
	if err != nil {
		return nil, err
	}
	now := r.Now()
	_, offset := now.Zone()
	c := &object.Commit{Tree: root, Device: r.Config.Device, DeviceName: r.deviceName(), Author: r.author(), Time: now.Unix(), TZ: int16(offset / 60), Message: o.Message}
	if !prev.IsZero() {
		// Versions are ordered by time (NewerVersion): two publishes in
		// one second still come out in the order they were made.
		if pc, err := r.Store.ReadCommit(prev); err == nil && pc.Time >= c.Time {
			c.Time = pc.Time + 1
		}
	}
	id, err := batch.Put(object.TypeCommit, c.Encode())
	if err != nil {
		return nil, err
	}
	if err := batch.Finish(); err != nil {
		return nil, err
	}
	if err := r.Refs.Update(ctx, ref, prev, id, "publish: "+firstLine(o.Message)); err != nil {
		return nil, err
	}
	res.ID, res.Previous = id, prev
	return res, nil
}

func (r *Repo) publishDir(ctx context.Context, batch *object.Batch, dir string, res *PublishResult) (object.ID, error) {
	snap, err := worktree.Scan(ctx, dir, worktree.ScanOptions{Sink: batch, Chunker: r.chunker, Have: r.Store.Has, Now: r.Now, RefuseChanging: true})
	if err != nil {
		return object.ZeroID, fmt.Errorf("publish %s: %w", dir, err)
	}
	res.Files += snap.HashedFiles
	res.Bytes += snap.HashedBytes
	return snap.Root, nil
}

func (r *Repo) publishEntry(ctx context.Context, batch *object.Batch, p string, res *PublishResult) (object.Entry, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return object.Entry{}, fmt.Errorf("publish %s: %w", p, err)
	}
	e := object.Entry{Name: filepath.Base(filepath.Clean(p))}
	if err := worktree.CheckPath(e.Name); err != nil {
		return e, fmt.Errorf("publish %s: %w", p, err)
	}
	switch {
	case fi.IsDir():
		e.Kind = object.KindDir
		e.ID, err = r.publishDir(ctx, batch, p, res)
		return e, err
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return e, fmt.Errorf("publish %s: %w", p, err)
		}
		e.Kind = object.KindSymlink
		e.Size = int64(len(target))
		e.ID, err = batch.Put(object.TypeChunk, []byte(target))
		return e, err
	case fi.Mode().IsRegular():
		f, err := object.OpenNoFollow(p)
		if err != nil {
			return e, fmt.Errorf("publish %s: %w", p, err)
		}
		defer f.Close()
		e.Kind = object.KindFile
		if fi.Mode()&0o100 != 0 {
			e.Kind = object.KindExec
		}
		e.ID, e.Size, err = r.chunker.WriteFile(ctx, batch, f, fi.Size())
		if err != nil {
			return e, fmt.Errorf("publish %s: %w", p, err)
		}
		res.Files++
		res.Bytes += e.Size
		return e, nil
	default:
		return e, fmt.Errorf("publish %s: not a file, folder or symlink", p)
	}
}

// RetainOptions say which versions of each artifact branch to keep.
type RetainOptions struct {
	// Last keeps the newest N versions (0: no count limit).
	Last int
	// Within keeps versions published this recently (0: no age limit).
	// With both, a version either one keeps stays.
	Within time.Duration
}

// RetainResult counts versions dropped from artifact branches' reflogs.
type RetainResult struct {
	Branches int `json:"branches"`
	Dropped  int `json:"versionsDropped"`
}

// Retain forgets old versions of every artifact branch: their entries
// leave the branch's reflog, so gc may delete what only they needed. The
// current version always stays, and what any other ref, HEAD or other
// reflog reaches stays too: gc decides that, not this.
func (r *Repo) Retain(ctx context.Context, o RetainOptions, now time.Time) (*RetainResult, error) {
	refs, err := r.Refs.List()
	if err != nil {
		return nil, err
	}
	res := &RetainResult{}
	for name := range refs {
		branch, ok := strings.CutPrefix(name, "heads/")
		if !ok || !strings.HasPrefix(branch, ArtifactPrefix) {
			continue
		}
		res.Branches++
		n, err := r.Refs.TrimLog(ctx, name, func(newest int, e object.RefLogEntry) bool {
			if newest == 0 {
				return true
			}
			if o.Last > 0 && newest < o.Last {
				return true
			}
			return o.Within > 0 && now.Sub(time.Unix(e.Time, 0)) <= o.Within
		})
		if err != nil {
			return res, err
		}
		res.Dropped += n
	}
	return res, nil
}

// ArtifactFetch says what FetchArtifact did.
type ArtifactFetch struct {
	// Moved: the branch now holds the commit offered (it was newer).
	Moved   bool         `json:"moved"`
	Fetched remote.Stats `json:"fetched"`
	// Received is the bytes of chunks received from each device.
	Received map[string]int64 `json:"received,omitempty"`
}

// FetchArtifact takes a version of an artifact branch that another
// device announced: when commit is newer than the branch's tip (by
// NewerVersion, so every device mirroring the branch ends on the same
// version whatever order the announcements come in), it fetches the
// commit's files from the device at addr and from every device its
// tracker names (the swarm, where this device serves at advertise) and
// moves the branch. Only root commits are taken, which is what mesh
// publish makes: a commit with parents would bring a whole history in.
func (r *Repo) FetchArtifact(ctx context.Context, addr string, dev remote.DeviceID, branch string, commit object.ID, advertise string, log *slog.Logger) (*ArtifactFetch, error) {
	ref := object.BranchRef(branch)
	if !strings.HasPrefix(branch, ArtifactPrefix) || !object.ValidRefName(ref) {
		return nil, fmt.Errorf("%q is not an artifact branch (%s…)", branch, ArtifactPrefix)
	}
	res := &ArtifactFetch{}
	tip, _, err := r.Refs.Get(ref)
	if err != nil || tip == commit {
		return res, err
	}
	var (
		c    *object.Commit
		body []byte
		conn *remote.Conn
		auth *remote.Auth
	)
	if r.Store.Has(commit) {
		if c, err = r.Store.ReadCommit(commit); err != nil {
			return nil, err
		}
	} else {
		if auth, err = r.Auth(); err != nil {
			return nil, err
		}
		if conn, err = auth.Dial(ctx, addr, dev); err != nil {
			return nil, err
		}
		defer conn.Close()
		if body, err = getVerified(ctx, conn, r.Store, commit, object.TypeCommit); err != nil {
			return nil, err
		}
		if c, err = object.DecodeCommit(body); err != nil {
			return nil, fmt.Errorf("commit %s from %s: %w (%w)", commit.Short(), conn, err, object.ErrCorrupt)
		}
	}
	if len(c.Parents) > 0 {
		return nil, fmt.Errorf("%s of %s has parents: artifact branches hold root commits (mesh publish makes them); not taken", commit.Short(), branch)
	}
	var oldTree object.ID // the version held, whose bytes the new one likely repeats
	if !tip.IsZero() {
		tc, err := r.Store.ReadCommit(tip)
		if err != nil {
			return nil, err
		}
		if !NewerVersion(c, commit, tc, tip) {
			return res, nil // an older version, announced late
		}
		oldTree = tc.Tree
	}
	if conn != nil {
		sw := &remote.Swarm{Auth: auth, Source: conn, Commits: []object.ID{commit}, Advertise: advertise, Log: log}
		res.Fetched, err = remote.FetchClosure(ctx, conn, r.Store, []remote.Root{{ID: c.Tree, Type: object.TypeTree, Old: oldTree}}, sw)
		res.Received = sw.Received()
		if err != nil {
			return res, err
		}
		// The commit last, after everything it reaches is durable.
		b := r.Store.NewBatch()
		if _, err := b.Put(object.TypeCommit, body); err != nil {
			b.Abort()
			return res, err
		}
		if err := b.Finish(); err != nil {
			return res, err
		}
	}
	if err := r.Refs.Update(ctx, ref, tip, commit, "mirror from "+dev.String()+": "+firstLine(c.Message)); err != nil {
		return res, err
	}
	res.Moved = true
	return res, nil
}

// NewerVersion orders the versions of an artifact branch: the later
// commit time, then the greater ID. Publish keeps one publisher's versions
// in this order however fast it publishes.
func NewerVersion(a *object.Commit, aID object.ID, b *object.Commit, bID object.ID) bool {
	if a.Time != b.Time {
		return a.Time > b.Time
	}
	return aID.String() > bID.String()
}
