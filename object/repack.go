package object

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Repacking. Every commit and fetch writes a pack of its own, and a store
// searched pack by pack slows down as they pile up. A repack copies the
// objects of several packs into one new pack, then deletes the old ones,
// keeping the packs in a geometric progression (each at least twice the
// size of the next smaller one, as git repack --geometric=2 does), so a
// store of N bytes has about log2(N) packs and each repack rewrites
// little. It drops nothing (that is gc's work), so it needs no repository
// lock and never blocks a commit.
//
// Crash safety: the new pack and its index are durable before anything is
// deleted; then a record naming the packs it replaces
// (<new>.superseded) is written, the old packs are deleted (index first),
// and the record is removed. A repack killed midway leaves either a
// temporary file (a stray), or two copies of some objects, or a record
// whose deletions the next opening of the store finishes. A reader that
// found an object in a pack deleted since looks it up again
// (errPackGone).

// repackFactor is the progression's ratio.
const repackFactor = 2

// autoRepackMax bounds what a repack after a commit or fetch rewrites: it
// merges the smallest packs, up to this many bytes, and leaves larger
// merges to mesh gc and the daemon's idle time.
const autoRepackMax = 32 << 20

// RepackResult says what a repack did.
type RepackResult struct {
	PacksBefore int   `json:"packsBefore"`
	PacksMerged int   `json:"packsMerged"`
	PacksAfter  int   `json:"packsAfter"`
	Objects     int   `json:"objects"`
	Bytes       int64 `json:"bytes"`
}

// geometricPlan picks, from pack sizes sorted ascending, how many of the
// smallest to merge so that the merged pack and those above it form a
// progression with repackFactor: 0 when they already do.
func geometricPlan(sizes []int64) int {
	n := len(sizes)
	if n < 2 {
		return 0
	}
	// The largest pack that breaks the progression with its smaller
	// neighbour: everything up to it is merged.
	split := 0
	for i := n - 1; i > 0; i-- {
		if sizes[i] < repackFactor*sizes[i-1] {
			split = i
			break
		}
	}
	if split == 0 {
		return 0
	}
	total := int64(0)
	for _, s := range sizes[:split+1] {
		total += s
	}
	// The merged pack may now be too large for the next ones up.
	for split+1 < n && sizes[split+1] < repackFactor*total {
		split++
		total += sizes[split]
	}
	return split + 1
}

// Repack merges packs: with all, every pack into one (mesh gc); otherwise
// as the geometric plan says, and, with limit > 0, only the smallest packs
// up to limit bytes. It waits for another repack unless try is set, in
// which case it returns at once with nothing done.
func (s *Store) Repack(ctx context.Context, all, try bool, limit int64) (*RepackResult, error) {
	var lock *Lock
	var err error
	if try {
		if lock, _, err = TryLock(s.repackLockPath()); err != nil || lock == nil {
			return &RepackResult{}, nil
		}
	} else if lock, err = AcquireLock(ctx, s.repackLockPath()); err != nil {
		return nil, err
	}
	defer lock.Release()
	return s.repackLocked(ctx, all, limit)
}

// repackLockPath is the lock that one repack or gc at a time holds.
func (s *Store) repackLockPath() string { return filepath.Join(s.dir, "repack.lock") }

func (s *Store) repackLocked(ctx context.Context, all bool, limit int64) (*RepackResult, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	s.finishSuperseded()
	if err := s.refresh(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	packs := append([]*packFile(nil), s.packs...)
	s.mu.RUnlock()
	sort.Slice(packs, func(i, j int) bool {
		if packs[i].size != packs[j].size {
			return packs[i].size < packs[j].size
		}
		return packs[i].name < packs[j].name
	})
	res := &RepackResult{PacksBefore: len(packs)}
	k := len(packs)
	if !all {
		sizes := make([]int64, len(packs))
		for i, p := range packs {
			sizes[i] = p.size
		}
		k = geometricPlan(sizes)
		if limit > 0 {
			total := int64(0)
			for i := 0; i < k; i++ {
				if total += packs[i].size; total > limit {
					k = i
					break
				}
			}
		}
	}
	if k < 2 {
		res.PacksAfter = len(packs)
		return res, nil
	}
	old := packs[:k]
	np, objects, err := s.writeMerged(ctx, old)
	if err != nil {
		return nil, err
	}
	res.PacksMerged, res.Objects, res.Bytes = k, objects, np.size
	if err := s.replace(np, old); err != nil {
		return nil, err
	}
	res.PacksAfter = len(packs) - k + 1
	return res, nil
}

// writeMerged copies every object of old, once each, into one new
// durable pack, checking each against its ID on the way.
func (s *Store) writeMerged(ctx context.Context, old []*packFile) (*packFile, int, error) {
	pw, err := newPackWriter(s.dir)
	if err != nil {
		return nil, 0, err
	}
	seen := map[ID]bool{}
	for _, p := range old {
		p.rw.RLock()
		entries := make([]idxEntry, p.n)
		for i := range entries {
			entries[i] = p.entry(i)
		}
		p.rw.RUnlock()
		// In pack order: one sequential pass over each old pack.
		sort.Slice(entries, func(i, j int) bool { return entries[i].off < entries[j].off })
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				pw.abort()
				return nil, 0, err
			}
			if seen[e.id] {
				continue
			}
			stored := make([]byte, e.stored)
			if err := p.readAt(stored, e.off); err != nil {
				pw.abort()
				return nil, 0, fmt.Errorf("repack: read %s from pack %s: %w; nothing was deleted", e.id.Short(), p.name[:12], err)
			}
			if err := s.checkStored(e, stored); err != nil {
				pw.abort()
				return nil, 0, fmt.Errorf("repack: object %s in pack %s: %w; nothing was deleted, run mesh fsck", e.id.Short(), p.name[:12], err)
			}
			if err := pw.add(e.id, e.typ, e.comp, int(e.raw), stored); err != nil {
				pw.abort()
				return nil, 0, err
			}
			seen[e.id] = true
		}
	}
	np, err := pw.finish()
	if err != nil {
		return nil, 0, err
	}
	return np, len(seen), nil
}

// checkStored expands a stored object and checks it hashes to its ID, so
// a repack never copies damage into a new pack.
func (s *Store) checkStored(e idxEntry, stored []byte) error {
	if !e.typ.Valid() || e.comp > compZstd || e.raw > maxChunkLen {
		return fmt.Errorf("index entry out of bounds: %w", ErrCorrupt)
	}
	if _, why := s.expand(e.id, e.typ, e.comp, e.raw, stored, nil); why != "" {
		return fmt.Errorf("%s: %w", why, ErrCorrupt)
	}
	return nil
}

const supersededSuffix = ".superseded"

// replace makes np the home of old's objects: it records what np
// replaces, deletes the old packs and drops the record.
func (s *Store) replace(np *packFile, old []*packFile) error {
	var names []string
	for _, p := range old {
		if p.name != np.name {
			names = append(names, p.name)
		}
	}
	s.addPack(np)
	record := filepath.Join(s.dir, np.name+supersededSuffix)
	if err := WriteFileAtomic(record, []byte(strings.Join(names, "\n")+"\n"), 0o644, true); err != nil {
		return err
	}
	var drop []*packFile
	for _, p := range old {
		if p.name != np.name {
			drop = append(drop, p)
		}
	}
	s.dropPacks(drop...)
	if err := deletePacks(s.dir, names); err != nil {
		return err
	}
	if err := os.Remove(record); err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	return SyncDir(s.dir)
}

// deletePacks removes packs, each index first: a pack left without its
// index by a crash here is covered by the superseded record.
func deletePacks(dir string, names []string) error {
	for _, n := range names {
		for _, ext := range []string{".idx", ".pack"} {
			if err := os.Remove(filepath.Join(dir, n+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("repack: remove %s%s: %w", n, ext, err)
			}
		}
	}
	return SyncDir(dir)
}

// finishSuperseded completes repacks that were interrupted after their new
// pack was durable: the packs each record names are deleted, if the pack
// that replaced them is there (it always is: the record is written after).
func (s *Store) finishSuperseded() {
	records, _ := filepath.Glob(filepath.Join(s.dir, "*"+supersededSuffix))
	for _, rec := range records {
		name := strings.TrimSuffix(filepath.Base(rec), supersededSuffix)
		if _, err := os.Stat(filepath.Join(s.dir, name+".idx")); err != nil {
			os.Remove(rec) // the new pack is not there: nothing was deleted for it
			continue
		}
		b, err := os.ReadFile(rec)
		if err != nil {
			continue
		}
		var names []string
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if n := strings.TrimSpace(sc.Text()); n != "" && n != name && !strings.ContainsAny(n, `/\.`) {
				names = append(names, n)
			}
		}
		s.mu.RLock()
		var drop []*packFile
		for _, p := range s.packs {
			for _, n := range names {
				if p.name == n {
					drop = append(drop, p)
				}
			}
		}
		s.mu.RUnlock()
		s.dropPacks(drop...)
		if deletePacks(s.dir, names) == nil {
			os.Remove(rec)
		}
	}
}

// AutoRepack is the cheap repack run after commits and fetches: it merges
// the smallest packs (up to autoRepackMax bytes) when the progression is
// broken, and does nothing when another repack is running.
func (s *Store) AutoRepack(ctx context.Context) (*RepackResult, error) {
	return s.Repack(ctx, false, true, autoRepackMax)
}

// PackCount is the number of packs the store reads.
func (s *Store) PackCount() int {
	s.load()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.packs)
}
