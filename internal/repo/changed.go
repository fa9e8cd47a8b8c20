package repo

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/mesh-sync/mesh/object"
)

// Changed-path filters, as git's commit-graph keeps with --changed-paths:
// for each commit with at most one parent, a Bloom filter of the paths it
// changed against that parent (every changed path and each folder above
// it). log -- PATH passes over a commit whose filter says the path is not
// there without reading the commit's trees; a filter can say "maybe"
// wrongly, never "no" wrongly, so the trees decide whenever it says maybe.
//
// The filters are derived data, kept in .mesh/changed-paths, made for the
// commits import-git brings and for those a log walks that have none yet.
// The file is a header line and blocks, each [uvarint length][records]
// [8 bytes of BLAKE3 of the records], a record being a commit ID, a
// uvarint length and the filter's bytes. A block that does not check out
// (a write cut short, a flipped bit) ends what is read; the next write
// then writes the file again from what was good.

const (
	changedPathsFile   = "changed-paths"
	changedPathsHeader = "mesh changed-path filters 1\n"
	// filterHashes is the bits set per path; filterBitsPerPath the
	// filter's size per path (about 1% false "maybe" at 7 and 10, git's
	// numbers).
	filterHashes      = 7
	filterBitsPerPath = 10
	// filterMinBytes is the size of the smallest filter.
	filterMinBytes = 8
	// filterMaxPaths is the most paths a filter holds: a commit that
	// changed more has an empty filter, which says maybe for every path.
	filterMaxPaths = 512
)

// pathFilters are the changed-path filters of a repository's commits.
type pathFilters struct {
	path  string
	m     map[object.ID][]byte
	added []object.ID // made this run, not yet written
	whole bool        // the file must be written again from the start
}

// loadPathFilters reads the filters kept in .mesh; a missing or damaged
// file gives what could be read (perhaps none).
func (r *Repo) loadPathFilters() *pathFilters {
	f := &pathFilters{path: filepath.Join(r.Meta, changedPathsFile), m: map[object.ID][]byte{}}
	b, err := os.ReadFile(f.path)
	if err != nil {
		f.whole = true // none yet (or unreadable): write it with its header
		return f
	}
	f.whole = !f.parse(b)
	return f
}

// parse reads b's blocks into f, reporting whether all of b was good.
func (f *pathFilters) parse(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte(changedPathsHeader))
	if !ok {
		return false
	}
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) || uint64(len(rest)-k)-n < 8 {
			return false
		}
		block := rest[k : k+int(n)]
		sum := rest[k+int(n) : k+int(n)+8]
		if !bytes.Equal(blockSum(block), sum) {
			return false
		}
		recs := map[object.ID][]byte{}
		for len(block) > 0 {
			if len(block) < object.IDSize {
				return false
			}
			var id object.ID
			copy(id[:], block)
			block = block[object.IDSize:]
			l, k := binary.Uvarint(block)
			if k <= 0 || l > uint64(len(block)-k) {
				return false
			}
			recs[id] = block[k : k+int(l) : k+int(l)]
			block = block[k+int(l):]
		}
		for id, fl := range recs {
			f.m[id] = fl
		}
		rest = rest[k+int(n)+8:]
	}
	return true
}

func blockSum(b []byte) []byte {
	s := blake3.Sum256(b)
	return s[:8]
}

// add keeps c's filter, to be written by save.
func (f *pathFilters) add(c object.ID, filter []byte) {
	if _, ok := f.m[c]; !ok {
		f.added = append(f.added, c)
	}
	f.m[c] = filter
}

// save writes the filters made since load: appended as one block, or the
// whole file again when what was there was damaged. It is a cache, so a
// repository that cannot be written is no error.
func (f *pathFilters) save() {
	if len(f.added) == 0 && !f.whole {
		return
	}
	ids := f.added
	if f.whole {
		ids = ids[:0:0]
		for id := range f.m {
			ids = append(ids, id)
		}
	}
	var block []byte
	for _, id := range ids {
		fl := f.m[id]
		block = append(block, id[:]...)
		block = binary.AppendUvarint(block, uint64(len(fl)))
		block = append(block, fl...)
	}
	var out []byte
	if f.whole {
		out = append(out, changedPathsHeader...)
	}
	if len(block) > 0 {
		out = binary.AppendUvarint(out, uint64(len(block)))
		out = append(out, block...)
		out = append(out, blockSum(block)...)
	}
	if f.whole {
		if object.WriteFileAtomic(f.path, out, 0o644, false) == nil {
			f.whole = false
			f.added = nil
		}
		return
	}
	w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	// One write: two runs appending at once interleave whole blocks.
	if _, err := w.Write(out); err == nil {
		f.added = nil
	}
	w.Close()
}

// makePathFilter is the filter of the paths that differ from tree parent
// (zero: none) to tree tree, and the folders above them.
func makePathFilter(trees object.TreeReader, parent, tree object.ID) ([]byte, error) {
	changes, err := object.DiffTrees(trees, parent, tree)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, c := range changes {
		for p := c.Path; p != "" && !set[p]; {
			set[p] = true
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
		if len(set) > filterMaxPaths {
			return []byte{}, nil
		}
	}
	n := (len(set)*filterBitsPerPath + 7) / 8
	fl := make([]byte, max(n, filterMinBytes))
	for p := range set {
		h1, h2 := filterHash(p)
		bits := uint32(len(fl) * 8)
		for i := uint32(0); i < filterHashes; i++ {
			b := (h1 + i*h2) % bits
			fl[b/8] |= 1 << (b % 8)
		}
	}
	return fl, nil
}

// filterHash is the pair of hashes of p a filter's bits come from.
func filterHash(p string) (uint32, uint32) {
	h := fnv.New64a()
	h.Write([]byte(p))
	s := h.Sum64()
	return uint32(s), uint32(s>>32) | 1
}

// filterMayHave reports whether filter may hold path: false only when it
// certainly does not, because path or a folder above it is missing.
func filterMayHave(fl []byte, path string) bool {
	path = strings.Trim(path, "/")
	if len(fl) == 0 || path == "" {
		return true
	}
	bits := uint32(len(fl) * 8)
	for p := path; ; {
		h1, h2 := filterHash(p)
		for i := uint32(0); i < filterHashes; i++ {
			b := (h1 + i*h2) % bits
			if fl[b/8]&(1<<(b%8)) == 0 {
				return false
			}
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return true
		}
		p = p[:i]
	}
}

// fillPathFilters makes the filters of the commits reachable from start
// that have none, and writes them.
func (r *Repo) fillPathFilters(start object.ID) error {
	if start.IsZero() {
		return nil
	}
	f := r.loadPathFilters()
	trees := newTreeCache(r.Store)
	seen := map[object.ID]bool{start: true}
	todo := []object.ID{start}
	for len(todo) > 0 {
		id := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		c, err := r.Store.ReadCommit(id)
		if err != nil {
			return err
		}
		for _, p := range c.Parents {
			if !seen[p] {
				seen[p] = true
				todo = append(todo, p)
			}
		}
		if _, ok := f.m[id]; ok || len(c.Parents) > 1 {
			continue
		}
		var parentTree object.ID
		if len(c.Parents) == 1 {
			pc, err := r.Store.ReadCommit(c.Parents[0])
			if err != nil {
				return err
			}
			parentTree = pc.Tree
		}
		fl, err := makePathFilter(trees, parentTree, c.Tree)
		if err != nil {
			return err
		}
		f.add(id, fl)
	}
	f.save()
	return nil
}
