package worktree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/zeebo/blake3"
)

// Index is the stat cache: for each file, what it looked like (size,
// times, inode, kind) when it was last hashed, and its file object ID. A
// file whose stat still matches is not read again.
type Index struct {
	// Scanned is when the scan that produced the index started. An entry
	// whose mtime is not safely before it may have changed within the
	// timestamp granularity after it was hashed, so it is hashed again
	// ("racy git").
	Scanned int64
	// window is the racy window for the filesystem the index describes
	// (see RacyWindow); zero means racyWindow.
	window int64
	// list holds the entries, sorted by path when loaded; a scan appends
	// in walk order. m replaces it once the index is edited. Status reads
	// the cache without building a map.
	list   []pathEntry
	sorted bool
	m      map[string]IndexEntry

	// A loaded index is searched in place in the mapped file: offs holds
	// where each entry starts. Nothing points into the map once Close runs.
	mapped *object.Mapped
	offs   []uint32
}

type pathEntry struct {
	path string
	IndexEntry
}

// IndexEntry is one file's cached stat and ID.
type IndexEntry struct {
	Kind  object.Kind
	Size  int64
	Mtime int64
	Ctime int64
	Inode uint64
	ID    object.ID
}

// racyWindow is how close to the scan an mtime may be and still not be
// trusted, on a filesystem whose granularity mesh does not know (FAT
// rounds to 2 s, network filesystems to what the server keeps).
const racyWindow = int64(2 * time.Second)

const indexMagic = "MESHWTI1"

// Lookup returns the cached ID of path if st still matches its entry.
func (ix *Index) Lookup(path []byte, kind object.Kind, st statInfo) (object.ID, bool) {
	if ix == nil {
		return object.ZeroID, false
	}
	e, ok := ix.get(path)
	if !ok || e.Kind != kind || e.Size != st.size || e.Mtime != st.mtime || e.Ctime != st.ctime || e.Inode != st.inode {
		return object.ZeroID, false
	}
	w := ix.window
	if w == 0 {
		w = racyWindow
	}
	if e.Mtime >= ix.Scanned-w {
		return object.ZeroID, false
	}
	return e.ID, true
}

func (ix *Index) size() int {
	if ix == nil {
		return 0
	}
	if ix.m != nil {
		return len(ix.m)
	}
	return len(ix.list) + len(ix.offs)
}

// mappedAt returns the path bytes and the entry at mapped position i.
func (ix *Index) mappedAt(i int) ([]byte, []byte) {
	p := ix.mapped.Data[ix.offs[i]:]
	l, k := binary.Uvarint(p)
	return p[k : k+int(l)], p[k+int(l):]
}

func decodeEntry(p []byte) IndexEntry {
	var e IndexEntry
	e.Kind = object.Kind(p[0])
	e.Size = int64(binary.BigEndian.Uint64(p[1:]))
	e.Mtime = int64(binary.BigEndian.Uint64(p[9:]))
	e.Ctime = int64(binary.BigEndian.Uint64(p[17:]))
	e.Inode = binary.BigEndian.Uint64(p[25:])
	copy(e.ID[:], p[33:])
	return e
}

// unmap copies a mapped index into memory, before it is edited or closed.
func (ix *Index) unmap() {
	if ix.offs == nil {
		return
	}
	for i := range ix.offs {
		name, rest := ix.mappedAt(i)
		ix.list = append(ix.list, pathEntry{string(name), decodeEntry(rest)})
	}
	ix.offs = nil
}

// Close releases the mapped file; the index stays usable from memory.
func (ix *Index) Close() {
	if ix == nil || ix.mapped == nil {
		return
	}
	ix.mapped.Close()
	ix.mapped, ix.offs = nil, nil
}

func (ix *Index) get(path []byte) (IndexEntry, bool) {
	if ix.m != nil {
		e, ok := ix.m[string(path)]
		return e, ok
	}
	if ix.offs != nil {
		i := sort.Search(len(ix.offs), func(i int) bool {
			name, _ := ix.mappedAt(i)
			return bytes.Compare(name, path) >= 0
		})
		if i < len(ix.offs) {
			if name, rest := ix.mappedAt(i); bytes.Equal(name, path) {
				return decodeEntry(rest), true
			}
		}
		return IndexEntry{}, false
	}
	if !ix.sorted {
		ix.sort()
	}
	i := sort.Search(len(ix.list), func(i int) bool { return ix.list[i].path >= string(path) })
	if i < len(ix.list) && ix.list[i].path == string(path) {
		return ix.list[i].IndexEntry, true
	}
	return IndexEntry{}, false
}

func (ix *Index) sort() {
	sort.Slice(ix.list, func(i, j int) bool { return ix.list[i].path < ix.list[j].path })
	ix.sorted = true
}

// add appends an entry during a scan, which visits each path once.
func (ix *Index) add(path string, e IndexEntry) {
	ix.list = append(ix.list, pathEntry{path, e})
	ix.sorted = false
}

// appendUnder appends to list every entry of ix whose path starts with
// prefix, in path order.
func (ix *Index) appendUnder(list []pathEntry, prefix string) []pathEntry {
	switch {
	case ix == nil:
	case ix.m != nil:
		n := len(list)
		for p, e := range ix.m {
			if strings.HasPrefix(p, prefix) {
				list = append(list, pathEntry{p, e})
			}
		}
		slices.SortFunc(list[n:], func(a, b pathEntry) int { return strings.Compare(a.path, b.path) })
	case ix.offs != nil:
		i := sort.Search(len(ix.offs), func(i int) bool {
			name, _ := ix.mappedAt(i)
			return string(name) >= prefix
		})
		for ; i < len(ix.offs); i++ {
			name, rest := ix.mappedAt(i)
			if !bytes.HasPrefix(name, []byte(prefix)) {
				break
			}
			list = append(list, pathEntry{string(name), decodeEntry(rest)})
		}
	default:
		if !ix.sorted {
			ix.sort()
		}
		i := sort.Search(len(ix.list), func(i int) bool { return ix.list[i].path >= prefix })
		for ; i < len(ix.list) && strings.HasPrefix(ix.list[i].path, prefix); i++ {
			list = append(list, ix.list[i])
		}
	}
	return list
}

func (ix *Index) edit() {
	ix.unmap()
	if ix.m == nil {
		ix.m = make(map[string]IndexEntry, len(ix.list))
		for _, e := range ix.list {
			ix.m[e.path] = e.IndexEntry
		}
		ix.list = nil
	}
}

// Set records path's entry.
func (ix *Index) Set(path string, e IndexEntry) {
	ix.edit()
	ix.m[path] = e
}

// Delete forgets path.
func (ix *Index) Delete(path string) {
	ix.edit()
	delete(ix.m, path)
}

// Len returns the number of entries.
func (ix *Index) Len() int { return ix.size() }

// entries returns the entries sorted by path.
func (ix *Index) entries() []pathEntry {
	if ix.m != nil {
		out := make([]pathEntry, 0, len(ix.m))
		for p, e := range ix.m {
			out = append(out, pathEntry{p, e})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
		return out
	}
	ix.unmap()
	if !ix.sorted {
		ix.sort()
	}
	return ix.list
}

// LoadIndex reads the stat cache at path. A missing or damaged cache is not
// an error: it only costs re-reading files, so an empty index is returned.
// The caller closes it when done.
func LoadIndex(path string) *Index {
	m, err := object.MapFile(path)
	if err != nil {
		return &Index{sorted: true}
	}
	ix, err := decodeIndex(m.Data)
	if err != nil {
		m.Close()
		return &Index{sorted: true}
	}
	ix.mapped = m
	return ix
}

// decodeIndex validates an index and records where its entries start; it
// does not copy them.
func decodeIndex(b []byte) (*Index, error) {
	bad := errors.New("damaged index")
	if len(b) < len(indexMagic)+8+32 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, bad
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := blake3.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, bad
	}
	pos := len(indexMagic)
	ix := &Index{Scanned: int64(binary.BigEndian.Uint64(body[pos:])), sorted: true}
	pos += 8
	n, k := binary.Uvarint(body[pos:])
	if k <= 0 || n > uint64(len(body)) {
		return nil, bad
	}
	pos += k
	ix.offs = make([]uint32, 0, n)
	var prev []byte
	for i := uint64(0); i < n; i++ {
		if pos >= len(body) {
			return nil, bad
		}
		l, k := binary.Uvarint(body[pos:])
		if k <= 0 || uint64(len(body)-pos-k) < l+1+4*8+object.IDSize {
			return nil, bad
		}
		name := body[pos+k : pos+k+int(l)]
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			return nil, bad
		}
		prev = name
		ix.offs = append(ix.offs, uint32(pos))
		pos += k + int(l) + 1 + 4*8 + object.IDSize
	}
	if pos != len(body) {
		return nil, bad
	}
	return ix, nil
}

// Save writes the index atomically. It is a cache, so it is not fsynced: a
// lost update costs a re-read, never a wrong answer, since a stale entry no
// longer matches the file's stat.
func (ix *Index) Save(path string) error {
	list := ix.entries()
	b := make([]byte, 0, 64+len(list)*100)
	b = append(b, indexMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(ix.Scanned))
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, e := range list {
		b = binary.AppendUvarint(b, uint64(len(e.path)))
		b = append(b, e.path...)
		b = append(b, byte(e.Kind))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Mtime))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Ctime))
		b = binary.BigEndian.AppendUint64(b, e.Inode)
		b = append(b, e.ID[:]...)
	}
	sum := blake3.Sum256(b)
	b = append(b, sum[:]...)
	if err := object.WriteFileAtomic(path, b, 0o644, false); err != nil {
		return fmt.Errorf("save index: %w", err)
	}
	return nil
}

// statInfo is what the stat cache compares.
type statInfo struct {
	size, mtime, ctime int64
	inode              uint64
	mode               fs.FileMode
}
