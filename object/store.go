package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Error kinds callers branch on with errors.Is.
var (
	ErrNotFound = errors.New("object not found")
	ErrCorrupt  = errors.New("object corrupt")
)

// Store is a content-addressed object store: finished packs and their
// indexes under one directory. It is safe for concurrent use, and several
// processes may read and append to one store at once.
type Store struct {
	dir string

	// packs are searched newest first; each holds its sorted index, so
	// opening a store costs reading the index files, not building a map.
	mu    sync.RWMutex
	packs []*packFile
	known map[string]bool
	// unseen names the packs refresh could not load (index missing its
	// pack, or damaged), and why, so a read that misses says where to look.
	unseen map[string]string
	// retired are packs a repack or gc replaced: closed, their indexes
	// unmapped a while later (retireLinger), when no lookup can still be
	// using them.
	retired []*packFile

	// The pack indexes and the codecs are loaded on first use: a status
	// on a clean tree needs none of them.
	loadOnce sync.Once
	loadErr  error
	codecs   sync.Once
	enc      *zstd.Encoder
	dec      *zstd.Decoder

	pending pendingSet // readable batches (pending.go)
}

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return &Store{dir: dir, known: map[string]bool{}}, nil
}

// load reads the pack indexes once; later calls return its error.
func (s *Store) load() error {
	s.loadOnce.Do(func() {
		s.finishSuperseded()
		s.loadErr = s.refresh()
	})
	return s.loadErr
}

func (s *Store) initCodecs() {
	s.codecs.Do(func() {
		// Neither constructor fails with these fixed options.
		s.enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
		s.dec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(maxChunkLen), zstd.WithDecoderLowmem(true))
	})
}

// Dir returns the directory the packs live in.
func (s *Store) Dir() string { return s.dir }

// Close releases open pack files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.packs {
		p.close()
	}
	for _, p := range s.retired {
		p.close()
	}
	s.packs, s.retired = nil, nil
	s.known = map[string]bool{}
	if s.enc != nil {
		s.enc.Close()
		s.dec.Close()
	}
	return nil
}

// refresh loads the indexes of packs not yet known, written by this or
// another process since the store was opened.
func (s *Store) refresh() error {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.idx"))
	if err != nil {
		return err
	}
	// Packs whose index is gone were replaced (a repack or gc in another
	// process, or one of ours): their objects are in the packs that
	// replaced them.
	present := make(map[string]bool, len(names))
	for _, idxPath := range names {
		present[strings.TrimSuffix(filepath.Base(idxPath), ".idx")] = true
	}
	var gone []*packFile
	s.mu.RLock()
	for _, p := range s.packs {
		if !present[p.name] {
			gone = append(gone, p)
		}
	}
	s.mu.RUnlock()
	if len(gone) > 0 {
		s.dropPacks(gone...)
	}
	for _, idxPath := range names {
		name := strings.TrimSuffix(filepath.Base(idxPath), ".idx")
		s.mu.RLock()
		known := s.known[name]
		s.mu.RUnlock()
		if known {
			continue
		}
		packPath := filepath.Join(s.dir, name+".pack")
		st, err := os.Stat(packPath)
		if err != nil {
			// An index without its pack, or (below) a damaged index: the
			// pack's objects are not seen, every other one is; mesh fsck
			// names it, and fsck --repair rebuilds an index from its pack.
			s.markUnseen(name, "an index without its pack")
			continue
		}
		m, err := MapFile(idxPath)
		if err != nil {
			s.markUnseen(name, err.Error())
			continue
		}
		p, err := openIndex(name, packPath, m.Data, st.Size())
		if err != nil {
			m.Close()
			s.markUnseen(name, err.Error())
			continue
		}
		p.mapped = m
		s.addPack(p)
	}
	return nil
}

func (s *Store) markUnseen(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unseen == nil {
		s.unseen = map[string]string{}
	}
	s.unseen[name] = why
}

// notFound is the error for an object the store does not hold: when a
// pack could not be loaded, it may be there, and the error says so.
func (s *Store) notFound(id ID) error {
	// Before saying an object is missing, make sure no damaged index hid
	// it (checked once per pack and process; the common path, finding
	// what it looks for, never pays for it).
	s.verifyIndexes()
	s.mu.RLock()
	n := len(s.unseen)
	s.mu.RUnlock()
	if n > 0 {
		return fmt.Errorf("object %s: %w, and %d pack(s) could not be read (a damaged or missing index): %w; run mesh fsck", id.Short(), ErrNotFound, n, ErrCorrupt)
	}
	return fmt.Errorf("object %s: %w", id.Short(), ErrNotFound)
}

func (s *Store) addPack(p *packFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known[p.name] {
		return
	}
	s.known[p.name] = true
	s.packs = append(s.packs, p)
}

// retireLinger is how long a replaced pack's index stays mapped: longer
// than any lookup holds it.
const retireLinger = time.Minute

// dropPacks takes packs out of the store, which a repack or gc replaced or
// which another process's repack deleted: later lookups find their
// objects in the packs that replaced them.
func (s *Store) dropPacks(ps ...*packFile) {
	now := time.Now()
	gone := map[*packFile]bool{}
	for _, p := range ps {
		gone[p] = true
	}
	s.mu.Lock()
	kept := s.packs[:0]
	for _, p := range s.packs {
		if gone[p] {
			delete(s.known, p.name)
			p.retired = now
			s.retired = append(s.retired, p)
		} else {
			kept = append(kept, p)
		}
	}
	s.packs = kept
	var stale []*packFile
	live := s.retired[:0]
	for _, p := range s.retired {
		if !p.retired.IsZero() && now.Sub(p.retired) > retireLinger {
			stale = append(stale, p)
		} else {
			live = append(live, p)
		}
	}
	s.retired = live
	s.mu.Unlock()
	for _, p := range ps {
		p.retire()
	}
	for _, p := range stale {
		p.unmap()
	}
}

// located runs f on where id is, looking again when the pack it was in
// was replaced meanwhile (by a repack here or in another process).
func (s *Store) located(id ID, f func(location) error) error {
	for try := 0; ; try++ {
		loc, ok := s.lookup(id)
		if !ok {
			return s.notFound(id)
		}
		err := f(loc)
		if !errors.Is(err, errPackGone) || try >= 3 {
			return err
		}
		s.dropPacks(loc.pack)
		if err := s.refresh(); err != nil {
			return err
		}
	}
}

func (s *Store) find(id ID) (location, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.packs) - 1; i >= 0; i-- {
		if loc, ok := s.packs[i].find(id); ok {
			return loc, true
		}
	}
	return location{}, false
}

func (s *Store) lookup(id ID) (location, bool) {
	if s.load() != nil {
		return location{}, false
	}
	if loc, ok := s.find(id); ok {
		return loc, true
	}
	// A miss: another process may have written the object since.
	if s.refresh() != nil {
		return location{}, false
	}
	return s.find(id)
}

// verifyIndexes checks the checksum of every index not checked yet, and
// sets aside (see IndexProblems) the packs whose index is damaged.
func (s *Store) verifyIndexes() {
	s.mu.RLock()
	var todo []*packFile
	for _, p := range s.packs {
		if p.raw != nil && !p.verified.Load() {
			todo = append(todo, p)
		}
	}
	s.mu.RUnlock()
	var bad []*packFile
	for _, p := range todo {
		if err := p.verifyChecksum(); err != nil {
			bad = append(bad, p)
			s.markUnseen(p.name, err.Error())
		}
	}
	if len(bad) > 0 {
		s.dropPacks(bad...)
		s.mu.Lock()
		for _, p := range bad {
			s.known[p.name] = true // not loaded again until repaired
		}
		s.mu.Unlock()
	}
}

// Has reports whether the store holds id.
func (s *Store) Has(id ID) bool {
	s.load()
	_, ok := s.find(id)
	return ok
}

// each calls f for every object of every pack; an object stored in two
// packs is seen twice. f must not read from the store: each holds a
// pack's read lock while it lists it, and a retire waiting for it would
// block a nested read.
func (s *Store) each(f func(ID, location)) {
	s.mu.RLock()
	packs := append([]*packFile(nil), s.packs...)
	s.mu.RUnlock()
	for _, p := range packs {
		p.rw.RLock()
		for i := 0; i < p.n; i++ {
			e := p.entry(i)
			f(e.id, p.loc(e))
		}
		p.rw.RUnlock()
	}
}

// Stat returns the type and raw size of id without reading it.
func (s *Store) Stat(id ID) (Type, int64, error) {
	if err := s.load(); err != nil {
		return 0, 0, err
	}
	loc, ok := s.lookup(id)
	if !ok {
		return 0, 0, s.notFound(id)
	}
	return loc.typ, int64(loc.raw), nil
}

// Get reads id, decompresses it and checks that its content hashes to id.
func (s *Store) Get(id ID) (Type, []byte, error) {
	if err := s.load(); err != nil {
		return 0, nil, err
	}
	return s.getInto(id, nil)
}

// readBufs are buffers a reader of many objects reuses: stored for what
// it reads from a pack, raw for what a compressed object expands to.
type readBufs struct{ stored, raw []byte }

// sized returns b with length n, reallocated only when too small.
func sized(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// getInto is Get reading into bufs (fresh memory when nil). What it
// returns lives in bufs until their next use.
func (s *Store) getInto(id ID, bufs *readBufs) (Type, []byte, error) {
	if err := s.load(); err != nil {
		return 0, nil, err
	}
	var t Type
	var b []byte
	err := s.located(id, func(loc location) (err error) {
		t, b, err = s.read(id, loc, bufs)
		return err
	})
	return t, b, err
}

func (s *Store) read(id ID, loc location, bufs *readBufs) (Type, []byte, error) {
	corrupt := func(why string) error {
		return fmt.Errorf("object %s in pack %s: %s: %w", id.Short(), loc.pack.name[:12], why, ErrCorrupt)
	}
	if loc.raw > maxChunkLen || loc.stored > maxChunkLen || !loc.typ.Valid() {
		return 0, nil, corrupt("index entry out of bounds")
	}
	var stored, dst []byte
	if bufs != nil {
		bufs.stored = sized(bufs.stored, int(loc.stored))
		stored = bufs.stored
		if loc.comp == compZstd {
			bufs.raw = sized(bufs.raw, int(loc.raw))
			dst = bufs.raw[:0]
		}
	} else {
		stored = make([]byte, loc.stored)
	}
	if err := loc.pack.readAt(stored, loc.off); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, corrupt("pack truncated")
		}
		return 0, nil, fmt.Errorf("read object %s from pack %s: %w", id.Short(), loc.pack.name[:12], err)
	}
	raw, why := s.expand(id, loc.typ, loc.comp, loc.raw, stored, dst)
	if why != "" {
		return 0, nil, corrupt(why)
	}
	return loc.typ, raw, nil
}

// expand turns an object's stored bytes into its body and checks that the
// body has the length the index gives and hashes to id; why says what is
// wrong when it does not. A compressed body is decoded into dst (fresh
// memory when nil).
func (s *Store) expand(id ID, t Type, comp uint8, rawLen uint32, stored, dst []byte) (raw []byte, why string) {
	raw = stored
	if comp == compZstd {
		s.initCodecs()
		if dst == nil {
			dst = make([]byte, 0, rawLen)
		}
		var err error
		if raw, err = s.dec.DecodeAll(stored, dst[:0]); err != nil {
			return nil, "cannot decompress: " + err.Error()
		}
	}
	if uint32(len(raw)) != rawLen {
		return nil, fmt.Sprintf("length %d, index says %d", len(raw), rawLen)
	}
	if Hash(t, raw) != id {
		return nil, "content does not match its ID"
	}
	return raw, ""
}

func (s *Store) getTyped(id ID, want Type) ([]byte, error) {
	t, b, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if t != want {
		return nil, fmt.Errorf("object %s is a %s, not a %s: %w", id.Short(), t, want, ErrCorrupt)
	}
	return b, nil
}

// ReadFile reads a file object.
func (s *Store) ReadFile(id ID) (*File, error) {
	b, err := s.getTyped(id, TypeFile)
	if err != nil {
		return nil, err
	}
	f, err := DecodeFile(b)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w (%w)", id.Short(), err, ErrCorrupt)
	}
	return f, nil
}

// ReadTree reads a tree object.
func (s *Store) ReadTree(id ID) (*Tree, error) {
	b, err := s.getTyped(id, TypeTree)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w (%w)", id.Short(), err, ErrCorrupt)
	}
	return t, nil
}

// ReadCommit reads a commit object.
func (s *Store) ReadCommit(id ID) (*Commit, error) {
	b, err := s.getTyped(id, TypeCommit)
	if err != nil {
		return nil, err
	}
	c, err := DecodeCommit(b)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w (%w)", id.Short(), err, ErrCorrupt)
	}
	return c, nil
}

// ReadChunk reads a chunk's bytes.
func (s *Store) ReadChunk(id ID) ([]byte, error) { return s.getTyped(id, TypeChunk) }

// WriteFileTo streams the content of file object id to w, verifying every
// chunk, and returns the number of bytes written. For a file of several
// chunks the next ones are read and verified while one is written, so a
// checkout of a large file costs the longer of the two, not their sum.
func (s *Store) WriteFileTo(ctx context.Context, w io.Writer, id ID) (int64, error) {
	f, err := s.ReadFile(id)
	if err != nil {
		return 0, err
	}
	if len(f.Chunks) < 2 {
		return s.writeChunks(ctx, w, id, f.Chunks)
	}
	return s.writeChunksAhead(ctx, w, id, f.Chunks)
}

// readChunkInto reads chunk c of file id into bufs and checks its length.
func (s *Store) readChunkInto(id ID, c ChunkRef, bufs *readBufs) ([]byte, error) {
	t, b, err := s.getInto(c.ID, bufs)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", id.Short(), err)
	}
	if t != TypeChunk {
		return nil, fmt.Errorf("file %s: object %s is a %s, not a chunk: %w", id.Short(), c.ID.Short(), t, ErrCorrupt)
	}
	if int64(len(b)) != c.Size {
		return nil, fmt.Errorf("file %s: chunk %s has %d bytes, file says %d: %w", id.Short(), c.ID.Short(), len(b), c.Size, ErrCorrupt)
	}
	return b, nil
}

func (s *Store) writeChunks(ctx context.Context, w io.Writer, id ID, chunks []ChunkRef) (int64, error) {
	var n int64
	var bufs readBufs
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		b, err := s.readChunkInto(id, c, &bufs)
		if err != nil {
			return n, err
		}
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// chunksAhead is how many chunks writeChunksAhead holds at once: one being
// written, one read and waiting, one being read.
const chunksAhead = 3

// writeChunksAhead is writeChunks with the reading in its own goroutine,
// in chunksAhead buffers that go round. The reader has stopped when it
// returns, so nothing reads the store after its caller is done with it.
func (s *Store) writeChunksAhead(ctx context.Context, w io.Writer, id ID, chunks []ChunkRef) (int64, error) {
	type filled struct {
		b    []byte
		bufs *readBufs
		err  error
	}
	ready := make(chan filled, 1)
	free := make(chan *readBufs, chunksAhead)
	for range chunksAhead {
		free <- &readBufs{}
	}
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		defer close(ready)
		for _, c := range chunks {
			var bufs *readBufs
			select {
			case bufs = <-free:
			case <-done:
				return
			}
			b, err := s.readChunkInto(id, c, bufs)
			select {
			case ready <- filled{b, bufs, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(done)
		reader.Wait()
	}()
	var n int64
	for r := range ready {
		if r.err != nil {
			return n, r.err
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := w.Write(r.b)
		n += int64(m)
		if err != nil {
			return n, err
		}
		free <- r.bufs
	}
	return n, nil
}

// Resolve returns the IDs whose hex form starts with prefix (lowercase hex).
func (s *Store) Resolve(prefix string) []ID {
	s.load()
	s.refresh()
	seen := map[ID]bool{}
	var out []ID
	s.each(func(id ID, _ location) {
		if !seen[id] && strings.HasPrefix(id.String(), prefix) {
			seen[id] = true
			out = append(out, id)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// IDs returns every object ID in the store with its type.
func (s *Store) IDs() map[ID]Type {
	s.load()
	s.refresh()
	out := map[ID]Type{}
	s.each(func(id ID, loc location) { out[id] = loc.typ })
	return out
}

// compress returns the stored form of body: zstd when that saves more than
// 1/32 of it, else body itself (already compressed or random data).
func (s *Store) compress(body []byte) ([]byte, uint8) {
	if len(body) < 64 {
		return body, compNone
	}
	s.initCodecs()
	// A large chunk whose first 64 KiB do not shrink is taken as already
	// compressed (media, archives, random data): skipping it saves
	// allocating and filling a second copy of every such chunk.
	const sample = 64 << 10
	if len(body) > 4*sample {
		probe := s.enc.EncodeAll(body[:sample], make([]byte, 0, sample))
		if len(probe) >= sample-sample/32 {
			return body, compNone
		}
	}
	out := s.enc.EncodeAll(body, make([]byte, 0, len(body)))
	if len(out) < len(body)-len(body)/32 {
		return out, compZstd
	}
	return body, compNone
}

// ErrPathNotFound is returned when a path is not in a tree.
var ErrPathNotFound = errors.New("path not in tree")

func errPathNotFound(p string) error { return fmt.Errorf("%q: %w", p, ErrPathNotFound) }
