package syncer

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/mesh-sync/mesh/internal/ignore"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
)

// Debounce is how long the folder must be quiet before a change is
// committed: an editor's save (write temp, rename, chmod) is one commit.
var Debounce = 500 * time.Millisecond

// GossipQuiet is how long a daemon lets news settle before a round.
var GossipQuiet = 150 * time.Millisecond

// Rejoin is how often a daemon runs a round anyway (devices it lost are
// dialed again on their own backoff, see rejoin).
var Rejoin = 10 * time.Second

// idleRepackMax bounds what one idle-time repack rewrites.
const idleRepackMax = 256 << 20

// Run syncs until ctx ends: a round when gossip brings a newer head, when
// the folder has been quiet for Debounce after a change, and every Rejoin.
func (s *Session) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	s.watchTree(w, s.Repo.Root)
	// A commit made by hand (mesh commit) moves a branch: sync it at once.
	heads := filepath.Join(s.Repo.Meta, "refs", "heads")
	if err := w.Add(heads); err != nil {
		s.Log.Warn("Cannot watch", "dir", heads, "error", err)
	}
	// mesh publish moves an artifact branch: announce it at once.
	artifacts := filepath.Join(heads, strings.TrimSuffix(repo.ArtifactPrefix, "/"))
	w.Add(artifacts) // made by the first publish, if not yet

	round := func(why string) {
		r, err := s.Once(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			// For instance an edit landing while the round ran (the next
			// round commits it) or a device that went away.
			s.Log.Warn("Sync round failed", "trigger", why, "error", err)
		case r.Committed != (object.ID{}) || len(r.Fetched) > 0:
			s.Log.Info("Synced", "trigger", why, "head", r.Head.String())
		}
		if ctx.Err() == nil {
			// The buckets, every round, whatever the devices did: they
			// reach the devices that are not online now.
			if r == nil {
				r = &Round{}
			}
			s.viaCloud(ctx, r)
		}
		s.artifacts(ctx)
		s.SavePeers()
	}
	round("start")
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	gossipQuiet := time.NewTimer(time.Hour)
	gossipQuiet.Stop()
	tick := time.NewTicker(Rejoin)
	defer tick.Stop()
	retry := time.NewTicker(RetryMin)
	defer retry.Stop()
	// Idle-time repack: the geometric merges that commits and fetches
	// leave for later (they merge at most 32 MiB), in the background so
	// that rounds go on; skipped while one runs. Each pass rewrites at
	// most idleRepackMax, so a large store gets there in steps instead of
	// one long burst of disk writes.
	var repacks sync.WaitGroup
	defer repacks.Wait()
	var repacking atomic.Bool
	repack := func() {
		if !repacking.CompareAndSwap(false, true) {
			return
		}
		repacks.Add(1)
		go func() {
			defer repacks.Done()
			defer repacking.Store(false)
			if res, err := s.Repo.Store.Repack(ctx, false, true, idleRepackMax); err != nil && ctx.Err() == nil {
				s.Log.Warn("Repack failed", "error", err)
			} else if err == nil && res.PacksMerged > 0 {
				s.Log.Info("Repacked", "packsMerged", res.PacksMerged, "packs", res.PacksAfter, "bytes", res.Bytes)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Name == artifacts && ev.Op&fsnotify.Create != 0 {
				w.Add(artifacts)
				s.announceArtifacts()
				continue
			}
			if filepath.Dir(ev.Name) == artifacts {
				if !strings.HasPrefix(filepath.Base(ev.Name), object.TempPrefix) {
					s.announceArtifacts()
				}
				continue
			}
			if filepath.Dir(ev.Name) == heads && !strings.HasPrefix(filepath.Base(ev.Name), object.TempPrefix) {
				if h, err := s.Repo.Head(); err == nil && h.ID != s.announced {
					round("commit")
				}
				continue
			}
			if s.ignored(ev.Name) {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					s.watchTree(w, ev.Name)
				}
			}
			debounce.Reset(Debounce)
		case err, ok := <-w.Errors:
			if ok {
				s.Log.Warn("Watching the folder", "error", err)
			}
		case <-debounce.C:
			round("change")
		case <-s.Node.Changed():
			// Announcements come in bursts (every device converging at
			// once): take them in one round.
			gossipQuiet.Reset(GossipQuiet)
		case <-gossipQuiet.C:
			round("gossip")
		case <-retry.C:
			s.rejoin()
		case <-tick.C:
			round("timer")
			repack()
		}
	}
}

// rejoin tries, in the background, the devices that gossip says are
// gone, and when alone also the seeds (remembered devices, --join, the
// remotes' gossip addresses), each address with its own backoff:
// memberlist never probes a dead node again, so without this the two
// sides of a healed partition, or two devices restarted one after the
// other, would stay apart for good.
func (s *Session) rejoin() {
	if !s.joining.CompareAndSwap(false, true) {
		return // the last attempt is still dialing
	}
	var addrs []string
	for _, p := range s.Node.Peers() {
		if !p.Alive && p.GossipAddr != "" {
			addrs = append(addrs, p.GossipAddr)
		}
	}
	addrs = s.retry.due(addrs, time.Now())
	if s.alone() {
		addrs = append(addrs, s.seeds(false)...)
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	addrs = addrs[:min(len(addrs), maxRejoin)]
	if len(addrs) == 0 {
		s.joining.Store(false)
		return
	}
	go func() {
		defer s.joining.Store(false)
		if n, err := joinEach(s.Node, addrs, &s.retry); n > 0 {
			s.Log.Info("Rejoined", "devices", n)
		} else {
			s.Log.Debug("No device answered", "tried", addrs, "error", err)
		}
	}()
}

// maxRejoin bounds the addresses one rejoin dials.
const maxRejoin = 8

// alone reports whether no other device is alive in the gossip.
func (s *Session) alone() bool {
	for _, p := range s.Node.Peers() {
		if p.Alive {
			return false
		}
	}
	return true
}

// ignored reports whether a path is mesh's own (.mesh, temp files).
func (s *Session) ignored(p string) bool {
	rel, err := filepath.Rel(s.Repo.Root, p)
	if err != nil {
		return true
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ignore.MetaDir || strings.HasPrefix(part, object.TempPrefix) {
			return true
		}
	}
	return false
}

func (s *Session) watchTree(w *fsnotify.Watcher, dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if s.ignored(p) && p != s.Repo.Root {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			s.Log.Warn("Cannot watch", "dir", p, "error", err)
		}
		return nil
	})
}
