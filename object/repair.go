package object

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Repair. A pack is never modified in place; what repair does is write
// new files and only then remove old ones, as gc does:
//
//   - an index lost or damaged is rebuilt from its pack, whose object
//     headers repeat what the index says; only objects that expand and
//     hash to their ID are indexed (a pack whose contents changed is
//     renamed after its new index, as every pack is named);
//   - a damaged copy of an object is dropped by rewriting its pack without
//     it, once a good copy (from another device, see repo's fsck --repair)
//     is durable in a new pack.

// IndexProblem is a pack whose index is missing or does not load.
type IndexProblem struct {
	Pack string `json:"pack"`
	Err  string `json:"error"`
}

// IndexProblems lists the packs of the store whose index is missing or
// damaged: their objects are not seen until RebuildIndexes. Damaged
// indexes are the ones whose checksum does not match (each is checked
// once per process), so nothing is read twice.
func (s *Store) IndexProblems() []IndexProblem {
	s.load()
	s.refresh()
	s.verifyIndexes()
	var out []IndexProblem
	for _, name := range s.PacksWithoutIndex() {
		out = append(out, IndexProblem{Pack: name, Err: "no index"})
	}
	s.mu.RLock()
	for name, why := range s.unseen {
		out = append(out, IndexProblem{Pack: name, Err: why})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Pack < out[j].Pack })
	return out
}

// PacksWithoutIndex lists the packs that have no index file at all: left
// by a writer killed between its pack's rename and its index, or an index
// lost. Cheap (one directory listing), so it is asked often.
func (s *Store) PacksWithoutIndex() []string {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".idx"); ok {
			have[n] = true
		}
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".pack"); ok && !have[n] && !strings.HasPrefix(n, TempPrefix) {
			out = append(out, n)
		}
	}
	return out
}

// RebuildMissingIndexes rebuilds the index of every pack that has none
// (see PacksWithoutIndex): its objects, checked, become visible again;
// ones no ref needs are gc's to drop. The caller holds the repository
// lock.
func (s *Store) RebuildMissingIndexes() error {
	lock, err := AcquireLock(context.Background(), s.repackLockPath())
	if err != nil {
		return err
	}
	defer lock.Release()
	s.finishSuperseded() // a repack's leftovers are not packs to rebuild
	names := s.PacksWithoutIndex()
	for _, n := range names {
		if _, _, _, err := s.rebuildIndex(n); err != nil {
			return fmt.Errorf("rebuild the index of pack %s: %w", n, err)
		}
	}
	if len(names) > 0 {
		return s.reload()
	}
	return nil
}

// RebuildIndexes rebuilds the index of every pack IndexProblems names,
// and returns what it did for each ("pack X: 123 objects indexed, 1 left
// out"). The caller holds the repository lock.
func (s *Store) RebuildIndexes() ([]string, error) {
	lock, err := AcquireLock(context.Background(), s.repackLockPath())
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	s.finishSuperseded()
	var out []string
	for _, ip := range s.IndexProblems() {
		if _, err := os.Stat(filepath.Join(s.dir, ip.Pack+".pack")); err != nil {
			// An index whose pack is gone: nothing to rebuild from; what
			// it listed is missing, and fetched again as such.
			out = append(out, fmt.Sprintf("pack %s: its index has no pack to rebuild from; remove %s once the objects it listed are fetched again", ip.Pack, filepath.Join(s.dir, ip.Pack+".idx")))
			continue
		}
		kept, dropped, name, err := s.rebuildIndex(ip.Pack)
		if err != nil {
			return out, fmt.Errorf("rebuild the index of pack %s: %w", ip.Pack, err)
		}
		msg := fmt.Sprintf("pack %s: index rebuilt, %d objects", ip.Pack, kept)
		if dropped > 0 {
			msg += fmt.Sprintf(", %d damaged ones left out", dropped)
		}
		if name != ip.Pack {
			msg += ", now pack " + name
		}
		out = append(out, msg)
	}
	if len(out) > 0 {
		return out, s.reload()
	}
	return out, nil
}

func (s *Store) rebuildIndex(name string) (kept, dropped int, newName string, err error) {
	path := filepath.Join(s.dir, name+".pack")
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, "", err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:8]) != packMagic || binary.BigEndian.Uint32(hdr[8:]) != packVersion {
		return 0, 0, "", fmt.Errorf("not a mesh pack: %w", ErrCorrupt)
	}
	var entries []idxEntry
	seen := map[ID]bool{}
	off := int64(12)
	for {
		h, err := readObjectHeader(r)
		if err == io.EOF {
			break
		}
		if err != nil || h.stored > MaxExpand+64 || h.raw > MaxExpand {
			dropped++ // a damaged header: nothing after it can be trusted
			break
		}
		t, comp, raw, stored, id, n := h.typ, h.comp, h.raw, h.stored, h.id, h.n
		data := make([]byte, stored)
		if _, err := io.ReadFull(r, data); err != nil {
			dropped++
			break
		}
		rw := Raw{Type: t, Comp: comp, Size: int(raw), Data: data}
		body, err := s.Expand(rw)
		if err == nil && Hash(rw.Type, body) == id && !seen[id] {
			seen[id] = true
			entries = append(entries, idxEntry{id: id, off: off + int64(n), stored: uint32(stored), raw: uint32(raw), typ: rw.Type, comp: comp})
		} else if err != nil || Hash(rw.Type, body) != id {
			dropped++
		}
		off += int64(n) + int64(stored)
	}
	if len(entries) == 0 {
		return 0, dropped, name, fmt.Errorf("no whole object in it (%d damaged): %w; it is left as it is", dropped, ErrCorrupt)
	}
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].id[:], entries[j].id[:]) < 0 })
	idx := encodeIndex(entries)
	newName = fmt.Sprintf("%x", idx[len(idx)-32:])
	if newName != name {
		// Named after its index, as every pack is; the old index name
		// (if any) goes, so nothing points at the old file name.
		os.Remove(filepath.Join(s.dir, name+".idx"))
		if err := os.Rename(path, filepath.Join(s.dir, newName+".pack")); err != nil {
			return 0, 0, "", err
		}
		if err := SyncDir(s.dir); err != nil {
			return 0, 0, "", err
		}
	} else {
		os.Remove(filepath.Join(s.dir, name+".idx"))
	}
	if err := WriteFileAtomic(filepath.Join(s.dir, newName+".idx"), idx, 0o444, true); err != nil {
		return 0, 0, "", err
	}
	return len(entries), dropped, newName, nil
}

// DropDamaged rewrites every pack holding a copy of one of ids that does
// not read back (fails its hash or does not expand) without that copy,
// and every pack named in packs (its headers are damaged: see Fsck's
// BadPacks) without the copies in it that do not read back, keeping the
// packs' other objects; it returns how many copies it dropped. Call it
// once good copies are durable elsewhere in the store: reads then find
// those. The caller holds the repository lock.
func (s *Store) DropDamaged(ctx context.Context, ids []ID, packs []string) (int, error) {
	lock, err := AcquireLock(ctx, s.repackLockPath())
	if err != nil {
		return 0, err
	}
	defer lock.Release()
	// Read every pack afresh: a good copy written alone can make a pack
	// byte for byte the damaged one should have been, under the same name
	// (packs are named after their index), replacing the file that an
	// open pack still reads.
	if err := s.reload(); err != nil {
		return 0, err
	}
	want := map[ID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	whole := map[string]bool{}
	for _, p := range packs {
		whole[p] = true
	}
	s.mu.RLock()
	all := append([]*packFile(nil), s.packs...)
	s.mu.RUnlock()
	b := s.NewBatch()
	b.force = true
	var doomed []*packFile
	dropped := 0
	for _, p := range all {
		var bad []ID
		for i := 0; i < p.n; i++ {
			e := p.entry(i)
			if want[e.id] || whole[p.name] {
				if _, _, err := s.read(e.id, p.loc(e), nil); err != nil {
					bad = append(bad, e.id)
				}
			}
		}
		if len(bad) == 0 && !whole[p.name] {
			continue
		}
		skip := map[ID]bool{}
		for _, id := range bad {
			skip[id] = true
		}
		for i := 0; i < p.n; i++ {
			if err := ctx.Err(); err != nil {
				b.Abort()
				return 0, err
			}
			e := p.entry(i)
			if skip[e.id] {
				continue
			}
			data := make([]byte, e.stored)
			if err := p.readAt(data, e.off); err != nil {
				b.Abort()
				return 0, fmt.Errorf("rewrite pack %s: %w; nothing was deleted", p.name, err)
			}
			if err := b.place(e.id, e.typ, e.comp, int(e.raw), data); err != nil {
				b.Abort()
				return 0, err
			}
		}
		dropped += len(bad)
		doomed = append(doomed, p)
	}
	if err := b.Finish(); err != nil {
		return 0, err
	}
	for _, p := range doomed {
		if err := os.Remove(filepath.Join(s.dir, p.name+".idx")); err != nil {
			return dropped, fmt.Errorf("remove index of pack %s: %w", p.name, err)
		}
		if err := os.Remove(p.path); err != nil {
			return dropped, fmt.Errorf("remove pack %s: %w", p.name, err)
		}
	}
	if len(doomed) > 0 {
		if err := SyncDir(s.dir); err != nil {
			return dropped, err
		}
	}
	return dropped, s.reload()
}
