package object

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultGrace is how old a pack must be before gc may drop anything from
// it. A writer that has finished a pack but not yet moved its ref is
// protected by it.
const DefaultGrace = time.Hour

// GCResult says what gc did.
type GCResult struct {
	PacksRewritten int   `json:"packsRewritten"`
	PacksDeleted   int   `json:"packsDeleted"`
	ObjectsDropped int   `json:"objectsDropped"`
	BytesFreed     int64 `json:"bytesFreed"`
	StraysRemoved  int   `json:"straysRemoved"`
	// Repack is what gc's repack of every remaining pack into one did.
	Repack *RepackResult `json:"repack"`
}

// GC drops objects that nothing needs. Kept are: everything reachable from
// refs, HEAD and every reflog entry (so an earlier head stays recoverable),
// and every object in a pack younger than grace together with what it
// reaches (a concurrent writer's objects, and the older ones it deduplicated
// against). A pack holding anything dropped is rewritten with the rest, and
// only then deleted, index first. Then every pack is merged into one (see
// Repack). Callers hold the repository lock; gc takes the repack lock, so
// no repack moves objects while it decides what to keep.
func GC(ctx context.Context, s *Store, refs *Refs, grace time.Duration, now time.Time) (*GCResult, error) {
	lock, err := AcquireLock(ctx, s.repackLockPath())
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := s.load(); err != nil {
		return nil, err
	}
	s.finishSuperseded()
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if ips := s.IndexProblems(); len(ips) > 0 {
		return nil, fmt.Errorf("gc deletes nothing while pack %s cannot be read (%s): %w; mesh fsck --repair rebuilds its index", ips[0].Pack, ips[0].Err, ErrCorrupt)
	}
	roots, err := rootsOf(refs)
	if err != nil {
		return nil, fmt.Errorf("gc deletes nothing while a ref is damaged: %w", err)
	}
	if bad, err := refs.DamagedLogs(); err != nil || len(bad) > 0 {
		if err == nil {
			err = fmt.Errorf("reflog lines %s are damaged: %w", strings.Join(bad, ", "), ErrCorrupt)
		}
		return nil, fmt.Errorf("gc deletes nothing while a reflog is damaged (a damaged line may name a commit only it keeps): %w; see mesh fsck", err)
	}
	var rootIDs []ID
	for _, id := range roots {
		rootIDs = append(rootIDs, id)
	}
	keep, err := s.Reachable(rootIDs, false)
	if err != nil {
		return nil, fmt.Errorf("gc: %w; run mesh fsck", err)
	}

	cutoff := now.Add(-grace)
	byPack := map[*packFile][]ID{}
	s.each(func(id ID, l location) { byPack[l.pack] = append(byPack[l.pack], id) })
	var young []ID
	old := map[*packFile]bool{}
	for p, ids := range byPack {
		st, err := os.Stat(p.path)
		if err != nil {
			return nil, fmt.Errorf("gc: pack %s: %w", p.name, err)
		}
		if st.ModTime().After(cutoff) {
			young = append(young, ids...)
		} else {
			old[p] = true
		}
	}
	youngKeep, err := s.Reachable(young, true)
	if err != nil {
		return nil, fmt.Errorf("gc: %w; run mesh fsck", err)
	}
	for id := range youngKeep {
		keep[id] = struct{}{}
	}

	res := &GCResult{}
	b := s.NewBatch()
	b.force = true
	var doomed []*packFile
	for p := range old {
		var drop, stay []ID
		for _, id := range byPack[p] {
			if _, ok := keep[id]; ok {
				stay = append(stay, id)
			} else {
				drop = append(drop, id)
			}
		}
		if len(drop) == 0 {
			continue
		}
		for _, id := range stay {
			if err := ctx.Err(); err != nil {
				b.Abort()
				return nil, err
			}
			t, body, err := s.Get(id)
			if err != nil {
				b.Abort()
				return nil, fmt.Errorf("gc: %w; nothing was deleted, run mesh fsck", err)
			}
			if _, err := b.Put(t, body); err != nil {
				b.Abort()
				return nil, err
			}
		}
		for _, id := range drop {
			_, size, _ := s.Stat(id)
			res.BytesFreed += size
		}
		res.ObjectsDropped += len(drop)
		doomed = append(doomed, p)
		if len(stay) > 0 {
			res.PacksRewritten++
		}
	}
	// The kept objects are durable in new packs before any old pack goes.
	if err := b.Finish(); err != nil {
		return nil, err
	}
	for _, p := range doomed {
		if err := os.Remove(filepath.Join(s.dir, p.name+".idx")); err != nil {
			return nil, fmt.Errorf("gc: remove index of pack %s: %w", p.name, err)
		}
		if err := os.Remove(p.path); err != nil {
			return nil, fmt.Errorf("gc: remove pack %s: %w", p.name, err)
		}
		res.PacksDeleted++
	}
	if len(doomed) > 0 {
		if err := SyncDir(s.dir); err != nil {
			return nil, err
		}
	}
	for _, name := range strays(s.dir) {
		path := filepath.Join(s.dir, name)
		if st, err := os.Stat(path); err == nil && st.ModTime().Before(cutoff) {
			if os.Remove(path) == nil {
				res.StraysRemoved++
			}
		}
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	if res.Repack, err = s.repackLocked(ctx, true, 0); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	return res, nil
}

// reload forgets every pack and reads the indexes again, after gc moved
// objects between packs.
func (s *Store) reload() error {
	s.mu.RLock()
	all := append([]*packFile(nil), s.packs...)
	s.mu.RUnlock()
	s.dropPacks(all...)
	s.mu.Lock()
	s.known = map[string]bool{}
	s.unseen = nil
	s.mu.Unlock()
	return s.refresh()
}

// RemoveStrays deletes leftovers of interrupted writers older than grace in
// dir other than the store (e.g. the worktree metadata directory).
func RemoveStrays(dir string, cutoff time.Time) int {
	n := 0
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), TempPrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err == nil && st.ModTime().Before(cutoff) && os.Remove(p) == nil {
			n++
		}
	}
	return n
}
