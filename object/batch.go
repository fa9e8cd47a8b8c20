package object

import (
	"runtime"
	"sync"
)

// Batch writes new objects into packs. Put is safe for concurrent use;
// objects become visible to readers when their pack is finished: when it
// fills up, and at Finish.
//
// Large chunks go to one of several packs written in parallel ("lanes"),
// because copying data into the page cache is the bulk of a large commit
// and it scales with cores. File, tree and commit objects go to one metadata pack
// that is finished only after every chunk pack: a visible file object
// therefore always has its chunks visible, which is what lets a later
// commit trust "the store has this file" (and fsck's closure) after a crash.
type Batch struct {
	s *Store

	mu      sync.Mutex
	pending map[ID]struct{}
	force   bool // write even what the store has (gc rewriting a pack)

	lanes  chan *lane
	nlanes int
	metaMu sync.Mutex
	meta   lane

	statMu  sync.Mutex
	err     error
	objects int
	bytes   int64

	// open, for a readable batch (NewReadableBatch), is where each object
	// of an unfinished pack is.
	openMu sync.RWMutex
	open   map[ID]openObject
}

type lane struct{ pw *packWriter }

// laneMin is the smallest chunk sent to a parallel lane. Smaller ones (and
// so every small file) share the metadata pack, which keeps a commit of
// small files to one pack.
const laneMin = 256 << 10

// NewBatch starts a batch of writes.
func (s *Store) NewBatch() *Batch {
	n := runtime.GOMAXPROCS(0)
	b := &Batch{s: s, pending: map[ID]struct{}{}, lanes: make(chan *lane, n), nlanes: n}
	for i := 0; i < n; i++ {
		b.lanes <- &lane{}
	}
	return b
}

func (b *Batch) fail(err error) error {
	b.statMu.Lock()
	defer b.statMu.Unlock()
	if b.err == nil {
		b.err = err
	}
	return b.err
}

func (b *Batch) failed() error {
	b.statMu.Lock()
	defer b.statMu.Unlock()
	return b.err
}

// NewForcedBatch is a batch that writes objects even when the store holds
// them (a good copy of a damaged one: see Store.DropDamaged).
func (s *Store) NewForcedBatch() *Batch {
	b := s.NewBatch()
	b.force = true
	return b
}

// Put stores an object unless the store or this batch already holds it.
func (b *Batch) Put(t Type, body []byte) (ID, error) {
	return b.PutHashed(Hash(t, body), t, body)
}

// PutHashed is Put for a caller that has just checked that id is
// Hash(t, body) (a fetch verifies every object on arrival), sparing a
// second pass over the bytes. Anything else corrupts the store.
func (b *Batch) PutHashed(id ID, t Type, body []byte) (ID, error) {
	if err := checkSize(t, len(body)); err != nil {
		return id, err
	}
	b.mu.Lock()
	if _, ok := b.pending[id]; ok || (!b.force && b.s.Has(id)) {
		b.mu.Unlock()
		return id, nil
	}
	b.pending[id] = struct{}{}
	b.mu.Unlock()

	stored, comp := b.s.compress(body)
	return id, b.place(id, t, comp, len(body), stored)
}

// place appends an object in stored form to a lane (large chunks) or the
// metadata pack.
func (b *Batch) place(id ID, t Type, comp uint8, raw int, stored []byte) error {
	if t == TypeChunk && raw >= laneMin {
		l := <-b.lanes
		err := b.append(l, id, t, comp, raw, stored)
		if err == nil && l.pw.off >= packTarget {
			err = b.finishLane(l)
		}
		b.lanes <- l
		return err
	}
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	err := b.append(&b.meta, id, t, comp, raw, stored)
	if err == nil && b.meta.pw.off >= packTarget {
		err = b.finishAllLocked()
	}
	return err
}

func (b *Batch) append(l *lane, id ID, t Type, comp uint8, raw int, stored []byte) error {
	if err := b.failed(); err != nil {
		return err
	}
	if l.pw == nil {
		pw, err := newPackWriter(b.s.dir)
		if err != nil {
			return b.fail(err)
		}
		l.pw = pw
	}
	if err := l.pw.add(id, t, comp, raw, stored); err != nil {
		return b.fail(err)
	}
	if err := b.noteOpen(l, id); err != nil {
		return b.fail(err)
	}
	b.statMu.Lock()
	b.objects++
	b.bytes += int64(len(stored))
	b.statMu.Unlock()
	return nil
}

// finishLane makes a lane's pack durable and visible.
func (b *Batch) finishLane(l *lane) error {
	pw := l.pw
	l.pw = nil
	if pw == nil {
		return b.failed()
	}
	// After addPack below: a reader finds each object in one or the other.
	defer b.closeOpen(pw)
	if len(pw.entries) == 0 {
		pw.abort()
		return b.failed()
	}
	p, err := pw.finish()
	if err != nil {
		return b.fail(err)
	}
	b.s.addPack(p)
	return nil
}

// finishAllLocked finishes every chunk pack, then the metadata pack. The
// caller holds metaMu.
func (b *Batch) finishAllLocked() error {
	held := make([]*lane, 0, b.nlanes)
	for i := 0; i < b.nlanes; i++ {
		held = append(held, <-b.lanes)
	}
	var first error
	for _, l := range held {
		if err := b.finishLane(l); err != nil && first == nil {
			first = err
		}
	}
	for _, l := range held {
		b.lanes <- l
	}
	if first != nil {
		return first
	}
	return b.finishLane(&b.meta)
}

// Finish makes every object put so far durable and visible. Only after it
// returns may a ref point at them.
func (b *Batch) Finish() error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	if err := b.failed(); err != nil {
		b.abortLocked()
		return err
	}
	if err := b.finishAllLocked(); err != nil {
		b.abortLocked()
		return err
	}
	if b.open != nil {
		b.s.forgetBatch(b)
	}
	return nil
}

// Abort discards the unfinished packs; objects in packs already finished
// stay (unreferenced, for gc to collect).
func (b *Batch) Abort() {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	b.abortLocked()
}

func (b *Batch) abortLocked() {
	for i := 0; i < b.nlanes; i++ {
		l := <-b.lanes
		if l.pw != nil {
			b.closeOpen(l.pw)
			l.pw.abort()
			l.pw = nil
		}
		defer func() { b.lanes <- l }()
	}
	if b.meta.pw != nil {
		b.closeOpen(b.meta.pw)
		b.meta.pw.abort()
		b.meta.pw = nil
	}
	if b.open != nil {
		b.s.forgetBatch(b)
	}
}

// Written returns how many objects and stored bytes the batch wrote.
func (b *Batch) Written() (int, int64) {
	b.statMu.Lock()
	defer b.statMu.Unlock()
	return b.objects, b.bytes
}
