package object

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
)

// Pack files hold objects back to back; an index file beside each names what
// is where. Layout (all integers big-endian unless said):
//
//	pack:  "MESHPACK" uint32(version=1)
//	       then per object: type(1) comp(1) uvarint(raw length)
//	       uvarint(stored length) ID(32) stored bytes
//	index: "MESHIDX1" uint32(count)
//	       count × { ID(32) offset(8) stored(4) raw(4) type(1) comp(1) }, sorted by ID
//	       BLAKE3-256 of all the above (32)
//
// A pack is named by its index's checksum (BLAKE3 of the index, which lists
// every object's ID, place and size): as unique as hashing the pack's
// bytes, which would mean reading every byte a second time. The per-object
// header inside the pack is redundant with the index so that a lost index
// can be rebuilt.
const (
	packMagic    = "MESHPACK"
	indexMagic   = "MESHIDX1"
	packVersion  = 1
	idxEntrySize = IDSize + 8 + 4 + 4 + 1 + 1

	compNone = 0
	compZstd = 1

	// packTarget is the size at which a writer starts a new pack.
	packTarget = 64 << 20
)

// location is where an object lives.
type location struct {
	pack   *packFile
	off    int64
	stored uint32
	raw    uint32
	typ    Type
	comp   uint8
}

type idxEntry struct {
	id     ID
	off    int64
	stored uint32
	raw    uint32
	typ    Type
	comp   uint8
}

// packFile is a finished pack; it is opened for reading on first use.
type packFile struct {
	name string // hex hash, without extension
	path string
	size int64
	// idx is the index's entry table, searched in place: loading a store
	// is then reading files, not building a map.
	idx    []byte
	n      int
	mapped *Mapped // what idx points into, when read from disk
	once   sync.Once
	f      *os.File
	err    error
	// data maps the pack for small reads (mapPacks): a walk of history
	// reads thousands of small trees and commits, and a pread each was
	// most of its time. nil until the first small read, or where the
	// pack is not mapped.
	data    *Mapped
	mapOnce sync.Once

	// rw guards the open file and the mapped index against retire and
	// unmap: a read in progress finishes before the pack is closed, and
	// one that comes later gets errPackGone and looks again.
	rw   sync.RWMutex
	gone bool
	// retired is when the store dropped the pack (guarded by the store's
	// mutex).
	retired time.Time

	// raw is the whole index file as mapped (nil for a pack this process
	// wrote); verified is set once its checksum was checked.
	raw      []byte
	verified atomic.Bool
}

// errPackGone is the kind of error for a read from a pack that a repack
// (in this process or another) replaced: the object is in the new pack,
// and the store looks it up again.
var errPackGone = errors.New("pack was replaced by a repack")

func (p *packFile) readAt(b []byte, off int64) error {
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.gone {
		return fmt.Errorf("pack %s: %w", p.name, errPackGone)
	}
	p.once.Do(func() { p.f, p.err = os.Open(p.path) })
	if p.err != nil {
		if errors.Is(p.err, fs.ErrNotExist) {
			return fmt.Errorf("pack %s: %w", p.name, errPackGone)
		}
		return p.err
	}
	if mapPacks && len(b) <= maxMappedRead {
		p.mapOnce.Do(func() {
			if m, err := MapFile(p.path); err == nil {
				p.data = m
			}
		})
		if p.data != nil {
			if off < 0 || off+int64(len(b)) > int64(len(p.data.Data)) {
				return io.EOF
			}
			copy(b, p.data.Data[off:])
			return nil
		}
	}
	_, err := p.f.ReadAt(b, off)
	return err
}

// maxMappedRead is the largest read served from a pack's map: large
// chunks are read with one pread, which costs less than faulting in their
// pages one by one.
const maxMappedRead = 64 << 10

// retire closes the pack's file once reads in progress are done; its
// index stays mapped (a lookup that already found it may still ask it)
// until unmap.
func (p *packFile) retire() {
	p.rw.Lock()
	defer p.rw.Unlock()
	p.gone = true
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	p.data.Close()
	p.data = nil
}

// unmap releases a retired pack's index.
func (p *packFile) unmap() {
	p.rw.Lock()
	defer p.rw.Unlock()
	p.idx, p.n, p.raw = nil, 0, nil
	p.mapped.Close()
	p.mapped = nil
}

func (p *packFile) loc(e idxEntry) location {
	return location{pack: p, off: e.off, stored: e.stored, raw: e.raw, typ: e.typ, comp: e.comp}
}

func (p *packFile) idAt(i int) []byte { return p.idx[i*idxEntrySize : i*idxEntrySize+IDSize] }

func (p *packFile) entry(i int) idxEntry {
	b := p.idx[i*idxEntrySize:]
	var e idxEntry
	copy(e.id[:], b)
	e.off = int64(binary.BigEndian.Uint64(b[32:]))
	e.stored = binary.BigEndian.Uint32(b[40:])
	e.raw = binary.BigEndian.Uint32(b[44:])
	e.typ = Type(b[48])
	e.comp = b[49]
	return e
}

func (p *packFile) find(id ID) (location, bool) {
	i := sort.Search(p.n, func(i int) bool { return bytes.Compare(p.idAt(i), id[:]) >= 0 })
	if i < p.n && bytes.Equal(p.idAt(i), id[:]) {
		return p.loc(p.entry(i)), true
	}
	return location{}, false
}

// check validates every entry: order, known type and codec, and bounds
// within the pack. Lookups rely on the order; reads re-check the rest.
func (p *packFile) check() error {
	for i := 0; i < p.n; i++ {
		e := p.entry(i)
		if !e.typ.Valid() || e.comp > compZstd || e.off < 12 || e.off+int64(e.stored) > p.size || e.raw > maxChunkLen {
			return fmt.Errorf("index entry %s out of bounds: %w", e.id.Short(), ErrCorrupt)
		}
		if i > 0 && bytes.Compare(p.idAt(i-1), p.idAt(i)) >= 0 {
			return fmt.Errorf("index entries not sorted at %s: %w", e.id.Short(), ErrCorrupt)
		}
	}
	return nil
}

func (p *packFile) close() {
	if p.f != nil {
		p.f.Close()
	}
	p.data.Close()
	p.idx = nil
	p.n = 0
	p.mapped.Close()
}

// packWriter appends objects to a temporary pack file.
type packWriter struct {
	dir     string
	f       *os.File
	w       *bufio.Writer
	off     int64
	entries []idxEntry
}

func newPackWriter(dir string) (*packWriter, error) {
	f, err := os.CreateTemp(dir, TempPrefix+"pack-*")
	if err != nil {
		return nil, fmt.Errorf("create pack in %s: %w", dir, err)
	}
	pw := &packWriter{dir: dir, f: f}
	pw.w = bufio.NewWriterSize(f, 1<<20)
	var hdr [12]byte
	copy(hdr[:], packMagic)
	binary.BigEndian.PutUint32(hdr[8:], packVersion)
	if err := pw.write(hdr[:]); err != nil {
		pw.abort()
		return nil, err
	}
	return pw, nil
}

func (pw *packWriter) write(b []byte) error {
	n, err := pw.w.Write(b)
	pw.off += int64(n)
	if err != nil {
		return fmt.Errorf("write pack %s: %w", pw.f.Name(), err)
	}
	return nil
}

func (pw *packWriter) add(id ID, t Type, comp uint8, raw int, stored []byte) error {
	var hdr [2 + 2*binary.MaxVarintLen64 + IDSize]byte
	hdr[0], hdr[1] = byte(t), comp
	n := 2
	n += binary.PutUvarint(hdr[n:], uint64(raw))
	n += binary.PutUvarint(hdr[n:], uint64(len(stored)))
	n += copy(hdr[n:], id[:])
	if err := pw.write(hdr[:n]); err != nil {
		return err
	}
	off := pw.off
	if err := pw.write(stored); err != nil {
		return err
	}
	pw.entries = append(pw.entries, idxEntry{id: id, off: off, stored: uint32(len(stored)), raw: uint32(raw), typ: t, comp: comp})
	return nil
}

// finish makes the pack durable under its final name and writes its index.
// The index is written last: a pack without one is invisible and gc removes it.
func (pw *packWriter) finish() (*packFile, error) {
	tmp := pw.f.Name()
	fail := func(err error) (*packFile, error) {
		pw.f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := pw.w.Flush(); err != nil {
		return fail(fmt.Errorf("write pack %s: %w", tmp, err))
	}
	if err := pw.f.Sync(); err != nil {
		return fail(fmt.Errorf("sync pack %s: %w", tmp, err))
	}
	if err := pw.f.Close(); err != nil {
		return fail(fmt.Errorf("close pack %s: %w", tmp, err))
	}
	sort.Slice(pw.entries, func(i, j int) bool { return bytes.Compare(pw.entries[i].id[:], pw.entries[j].id[:]) < 0 })
	idx := encodeIndex(pw.entries)
	name := fmt.Sprintf("%x", idx[len(idx)-32:])
	final := filepath.Join(pw.dir, name+".pack")
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("rename pack %s: %w", tmp, err)
	}
	if err := SyncDir(pw.dir); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(pw.dir, name+".idx"), idx, 0o444, true); err != nil {
		return nil, err
	}
	return &packFile{name: name, path: final, size: pw.off, idx: idx[12 : len(idx)-32], n: len(pw.entries)}, nil
}

func (pw *packWriter) abort() {
	pw.f.Close()
	os.Remove(pw.f.Name())
}

func encodeIndex(entries []idxEntry) []byte {
	b := make([]byte, 0, 12+len(entries)*idxEntrySize+32)
	b = append(b, indexMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.off))
		b = binary.BigEndian.AppendUint32(b, e.stored)
		b = binary.BigEndian.AppendUint32(b, e.raw)
		b = append(b, byte(e.typ), e.comp)
	}
	sum := blake3.Sum256(b)
	return append(b, sum[:]...)
}

// openIndex checks an index file's length and returns the pack it
// describes. Its checksum is checked later (verifyChecksum): before a read
// reports an object missing, and by fsck and gc (a repack checks each
// object it copies instead). A command that
// finds what it looks for reads only the index pages its lookups touch,
// and every object read is checked against its ID anyway.
func openIndex(name, path string, b []byte, packSize int64) (*packFile, error) {
	if len(b) < 12+32 || string(b[:8]) != indexMagic {
		return nil, fmt.Errorf("not a mesh pack index: %w", ErrCorrupt)
	}
	body := b[:len(b)-32]
	n := int(binary.BigEndian.Uint32(body[8:12]))
	if len(body) != 12+n*idxEntrySize {
		return nil, fmt.Errorf("index length does not match its %d entries: %w", n, ErrCorrupt)
	}
	return &packFile{name: name, path: path, size: packSize, idx: body[12:], n: n, raw: b}, nil
}

// verifyChecksum checks the index file's BLAKE3 checksum, once.
func (p *packFile) verifyChecksum() error {
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.raw == nil || p.verified.Load() {
		return nil
	}
	body, sum := p.raw[:len(p.raw)-32], p.raw[len(p.raw)-32:]
	if got := blake3.Sum256(body); !bytes.Equal(got[:], sum) {
		return fmt.Errorf("index checksum mismatch: %w", ErrCorrupt)
	}
	p.verified.Store(true)
	return nil
}

// scan reads the pack from start to end and checks that its own headers
// agree with the index: every object the index names is where it says,
// with that ID, type, codec and sizes, and no byte lies outside an object.
// Reads through the index never look at these headers, so without this a
// damaged header would go unnoticed until an index had to be rebuilt.
func (p *packFile) scan() error {
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:8]) != packMagic || binary.BigEndian.Uint32(hdr[8:]) != packVersion {
		return fmt.Errorf("pack header damaged: %w", ErrCorrupt)
	}
	byOff := make(map[int64]idxEntry, p.n)
	for i := 0; i < p.n; i++ {
		e := p.entry(i)
		byOff[e.off] = e
	}
	off := int64(12)
	seen := 0
	for {
		h, err := readObjectHeader(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("object header at %d: %w", off, err)
		}
		t, comp, raw, stored, id, n := h.typ, h.comp, h.raw, h.stored, h.id, h.n
		e, ok := byOff[off+int64(n)]
		if !ok || e.id != id || e.typ != t || e.comp != comp || uint64(e.raw) != raw || uint64(e.stored) != stored {
			return fmt.Errorf("object header at %d (%s) does not match the index: %w", off, id.Short(), ErrCorrupt)
		}
		if _, err := r.Discard(int(stored)); err != nil {
			return fmt.Errorf("pack truncated in %s: %w", id.Short(), ErrCorrupt)
		}
		off += int64(n) + int64(stored)
		seen++
	}
	if seen != p.n {
		return fmt.Errorf("pack holds %d objects, its index %d: %w", seen, p.n, ErrCorrupt)
	}
	return nil
}

// objectHeader is what precedes each object in a pack.
type objectHeader struct {
	typ         Type
	comp        uint8
	raw, stored uint64
	id          ID
	n           int // its length in bytes
}

// readObjectHeader reads the next object's header: io.EOF at the clean
// end of the pack, ErrCorrupt for one cut short or damaged.
func readObjectHeader(r *bufio.Reader) (objectHeader, error) {
	var h objectHeader
	t, err := r.ReadByte()
	if err != nil {
		return h, err
	}
	comp, err := r.ReadByte()
	if err != nil {
		return h, fmt.Errorf("pack truncated: %w", ErrCorrupt)
	}
	raw, err1 := binary.ReadUvarint(r)
	stored, err2 := binary.ReadUvarint(r)
	_, err3 := io.ReadFull(r, h.id[:])
	if err1 != nil || err2 != nil || err3 != nil {
		return h, fmt.Errorf("damaged: %w", ErrCorrupt)
	}
	h.typ, h.comp, h.raw, h.stored = Type(t), comp, raw, stored
	h.n = 2 + uvarintLen(raw) + uvarintLen(stored) + IDSize
	return h, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
