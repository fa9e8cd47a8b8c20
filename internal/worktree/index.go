package worktree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
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
	Entries map[string]IndexEntry
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

// racyWindow is how close to the scan an mtime may be and still be trusted;
// filesystem timestamps are coarser than their nanosecond fields suggest.
const racyWindow = int64(time.Second)

const indexMagic = "MESHWTI1"

// Lookup returns the cached ID of path if st still matches its entry.
func (ix *Index) Lookup(path string, kind object.Kind, st statInfo) (object.ID, bool) {
	if ix == nil {
		return object.ZeroID, false
	}
	e, ok := ix.Entries[path]
	if !ok || e.Kind != kind || e.Size != st.size || e.Mtime != st.mtime || e.Ctime != st.ctime || e.Inode != st.inode {
		return object.ZeroID, false
	}
	if e.Mtime >= ix.Scanned-racyWindow {
		return object.ZeroID, false
	}
	return e.ID, true
}

// LoadIndex reads the stat cache at path. A missing or damaged cache is not
// an error: it only costs re-reading files, so an empty index is returned.
func LoadIndex(path string) *Index {
	ix := &Index{Entries: map[string]IndexEntry{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return ix
	}
	if parsed, err := decodeIndex(b); err == nil {
		return parsed
	}
	return ix
}

func decodeIndex(b []byte) (*Index, error) {
	bad := errors.New("damaged index")
	if len(b) < len(indexMagic)+8+32 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, bad
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := blake3.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, bad
	}
	p := body[len(indexMagic):]
	ix := &Index{Scanned: int64(binary.BigEndian.Uint64(p))}
	p = p[8:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return nil, bad
	}
	p = p[k:]
	ix.Entries = make(map[string]IndexEntry, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < l+1+4*8+object.IDSize {
			return nil, bad
		}
		name := string(p[k : k+int(l)])
		p = p[k+int(l):]
		var e IndexEntry
		e.Kind = object.Kind(p[0])
		e.Size = int64(binary.BigEndian.Uint64(p[1:]))
		e.Mtime = int64(binary.BigEndian.Uint64(p[9:]))
		e.Ctime = int64(binary.BigEndian.Uint64(p[17:]))
		e.Inode = binary.BigEndian.Uint64(p[25:])
		copy(e.ID[:], p[33:])
		p = p[33+object.IDSize:]
		ix.Entries[name] = e
	}
	if len(p) != 0 {
		return nil, bad
	}
	return ix, nil
}

// Save writes the index atomically. It is a cache, so it is not fsynced: a
// lost update costs a re-read, never a wrong answer, since a stale entry no
// longer matches the file's stat.
func (ix *Index) Save(path string) error {
	names := make([]string, 0, len(ix.Entries))
	for n := range ix.Entries {
		names = append(names, n)
	}
	sort.Strings(names)
	b := make([]byte, 0, 64+len(names)*100)
	b = append(b, indexMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(ix.Scanned))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		e := ix.Entries[n]
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
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
