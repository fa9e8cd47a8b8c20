package object

import (
	"fmt"
	"sync"
)

// Readable batches. A fetch that other devices fetch from while it runs
// (a swarm) writes into a batch that this process's server can read from
// before the batch is finished, so what arrives is passed on at once
// rather than after the next fsync. Objects of an unfinished batch are
// not durable and Has does not see them: nothing that decides what the
// store holds (what a fetch skips, what a commit trusts, fsck, gc) ever
// counts on them. Only a server answering other devices does, through
// HasPending and GetPending, and whoever receives an object checks its
// hash as always.

// openObject is where an object of an unfinished pack is.
type openObject struct {
	pw          *packWriter
	off         int64
	stored, raw uint32
	typ         Type
	comp        uint8
}

// pendingSet is the store's readable batches.
type pendingSet struct {
	mu      sync.RWMutex
	batches map[*Batch]struct{}
}

// NewReadableBatch is NewBatch whose objects HasPending and GetPending
// find as soon as a Put returns, until the batch is finished or aborted.
// Each object is flushed to its pack file as it is put, which costs a
// write per object: meant for chunks, not for thousands of small files.
func (s *Store) NewReadableBatch() *Batch {
	b := s.NewBatch()
	b.open = map[ID]openObject{}
	s.pending.mu.Lock()
	if s.pending.batches == nil {
		s.pending.batches = map[*Batch]struct{}{}
	}
	s.pending.batches[b] = struct{}{}
	s.pending.mu.Unlock()
	return b
}

func (s *Store) forgetBatch(b *Batch) {
	s.pending.mu.Lock()
	delete(s.pending.batches, b)
	s.pending.mu.Unlock()
}

func (s *Store) readableBatches() []*Batch {
	s.pending.mu.RLock()
	defer s.pending.mu.RUnlock()
	bs := make([]*Batch, 0, len(s.pending.batches))
	for b := range s.pending.batches {
		bs = append(bs, b)
	}
	return bs
}

// HasPending reports whether an unfinished readable batch holds id. It is
// not durable, and may never be (the batch may be aborted).
func (s *Store) HasPending(id ID) bool {
	for _, b := range s.readableBatches() {
		b.openMu.RLock()
		_, ok := b.open[id]
		b.openMu.RUnlock()
		if ok {
			return true
		}
	}
	return false
}

// GetPending reads id, in stored form and unverified like GetRaw, from an
// unfinished readable batch, or from the store if its pack was finished
// meanwhile. ErrNotFound if neither has it (the batch was aborted).
func (s *Store) GetPending(id ID) (Raw, error) {
	for _, b := range s.readableBatches() {
		b.openMu.RLock()
		o, ok := b.open[id]
		b.openMu.RUnlock()
		if !ok {
			continue
		}
		if o.stored > maxChunkLen || o.raw > maxChunkLen {
			return Raw{}, fmt.Errorf("object %s in an unfinished pack: out of bounds: %w", id.Short(), ErrCorrupt)
		}
		data := make([]byte, o.stored)
		if _, err := o.pw.f.ReadAt(data, o.off); err == nil {
			return Raw{Type: o.typ, Comp: o.comp, Size: int(o.raw), Data: data}, nil
		}
		// Its pack was finished (closed and renamed) or aborted since
		// the lookup: in the first case the store has it now.
		break
	}
	return s.GetRaw(id)
}

// noteOpen records, for a readable batch, where the object just added to
// l's pack is, once its bytes are in the file. The caller holds l.
func (b *Batch) noteOpen(l *lane, id ID) error {
	if b.open == nil {
		return nil
	}
	if err := l.pw.w.Flush(); err != nil {
		return fmt.Errorf("write pack %s: %w", l.pw.f.Name(), err)
	}
	e := l.pw.entries[len(l.pw.entries)-1]
	b.openMu.Lock()
	b.open[id] = openObject{pw: l.pw, off: e.off, stored: e.stored, raw: e.raw, typ: e.typ, comp: e.comp}
	b.openMu.Unlock()
	return nil
}

// closeOpen forgets the objects of pw, whose pack is finished (they are in
// the store now) or aborted.
func (b *Batch) closeOpen(pw *packWriter) {
	if b.open == nil || pw == nil {
		return
	}
	b.openMu.Lock()
	for _, e := range pw.entries {
		if o, ok := b.open[e.id]; ok && o.pw == pw {
			delete(b.open, e.id)
		}
	}
	b.openMu.Unlock()
}
