package worktree

import (
	"context"
	"io"
	"os"
	"sync/atomic"

	"github.com/mesh-sync/mesh/object"
)

// reusedBytes counts what reuseChunks copied from old files (tests read it).
var reusedBytes atomic.Int64

// reuseMin is the smallest file whose new version is assembled from the
// old one on disk: below it, reading from the store is as cheap.
const reuseMin = 8 << 20

// reuseChunks writes the new version of a large file that replaces an old
// one mostly from the old file itself: chunks both versions share are
// copied from where they sit in the file on disk (inside the kernel, with
// copy_file_range, so they are neither read into mesh nor hashed again),
// and only the others come from the store. A 1 MiB insertion in a 1 GiB
// file then costs a few chunks from the store and a kernel copy.
//
// The file on disk is trusted to hold the old version only when its stat
// still matches what the scan before this change hashed (the index entry
// Apply's caller passes): the same trust status gives it. Otherwise, and
// for small files, reuseChunks returns false having written nothing.
func reuseChunks(ctx context.Context, o ApplyOptions, c object.Change, p string, w *os.File) (bool, error) {
	if c.Old == nil || c.New == nil || c.Old.Size < reuseMin || c.New.Size < reuseMin || o.Index == nil ||
		(c.Old.Kind != object.KindFile && c.Old.Kind != object.KindExec) {
		return false, nil
	}
	old, err := os.Open(p)
	if err != nil {
		return false, nil
	}
	defer old.Close()
	fi, err := old.Stat()
	if err != nil {
		return false, nil
	}
	if id, ok := o.Index.Lookup([]byte(c.Path), c.Old.Kind, statOf(fi)); !ok || id != c.Old.ID {
		return false, nil
	}
	of, err := o.Store.ReadFile(c.Old.ID)
	if err != nil {
		return false, err
	}
	nf, err := o.Store.ReadFile(c.New.ID)
	if err != nil {
		return false, err
	}
	at := make(map[object.ID]int64, len(of.Chunks))
	var off int64
	for _, ch := range of.Chunks {
		if _, ok := at[ch.ID]; !ok {
			at[ch.ID] = off
		}
		off += ch.Size
	}
	for _, ch := range nf.Chunks {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if from, ok := at[ch.ID]; ok {
			// (*os.File).ReadFrom turns a limited *os.File into
			// copy_file_range, falling back to a plain copy.
			if _, err := old.Seek(from, io.SeekStart); err != nil {
				return false, err
			}
			n, err := w.ReadFrom(io.LimitReader(old, ch.Size))
			if err != nil {
				return false, err
			}
			if n != ch.Size {
				return false, io.ErrUnexpectedEOF
			}
			reusedBytes.Add(n)
			continue
		}
		b, err := o.Store.ReadChunk(ch.ID)
		if err != nil {
			return false, err
		}
		if _, err := w.Write(b); err != nil {
			return false, err
		}
	}
	return true, nil
}
