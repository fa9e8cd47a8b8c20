package worktree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/object"
	"golang.org/x/sync/errgroup"
)

// ErrWouldOverwrite is the kind of error for a write that would destroy
// something not in the tree being replaced: an untracked file, or a
// directory that still holds untracked files.
var ErrWouldOverwrite = errors.New("would overwrite a file that is not committed")

// ApplyOptions configure Apply.
type ApplyOptions struct {
	Store   *object.Store
	Meter   *progress.Meter
	Workers int
	// Index, when set, receives the stat of every file written, so the next
	// scan does not read them back.
	Index *Index
	// TempDir holds the files being written until each is renamed into
	// place ("" means each file's own directory). For a working tree it
	// is inside .mesh, so a killed write leaves nothing a scan would
	// commit; a directory on another filesystem (a mount inside the tree)
	// gets its temporary files beside them instead.
	TempDir string
	// Names, when it has rules, keeps each path where its tree's plan
	// puts it in this folder (PlanNames): From's plan for what is
	// removed, To's for what is written; entries a changed plan puts
	// elsewhere are moved.
	Names    *Names
	From, To object.ID
}

// Apply changes the folder at root as the changes say. The caller
// guarantees that what is on disk at each changed path is the change's Old
// side (it checked the folder is clean there); an added path that already
// exists on disk is refused before anything is touched.
func Apply(ctx context.Context, root string, changes []object.Change, o ApplyOptions) error {
	escaped := o.Names.Active() && o.Names.Rules.WindowsNames
	for _, c := range changes {
		// Where Windows's rules apply, a backslash in a name is escaped
		// like any character Windows refuses: the folder's paths are
		// checked instead, below.
		if err := CheckPath(c.Path); err != nil && !escaped {
			return err
		}
	}
	placed, moves, err := place(changes, o)
	if err != nil {
		return err
	}
	for _, c := range placed {
		for _, p := range []string{c.old, c.new} {
			if err := CheckPath(p); err != nil {
				return err
			}
		}
	}
	for _, m := range moves {
		for _, p := range []string{m.from, m.to} {
			if err := CheckPath(p); err != nil {
				return err
			}
		}
	}
	// What removals and moves free, an add may take (on a case-insensitive
	// folder, A.txt gives way to a.txt).
	freed := map[string]bool{}
	for _, c := range placed {
		if c.Old != nil && (c.New == nil || c.old != c.new) {
			freed[FoldKey(c.old, o.Names.rules())] = true
		}
	}
	for _, m := range moves {
		freed[FoldKey(m.from, o.Names.rules())] = true
	}
	for _, c := range placed {
		if (c.Old != nil && c.old == c.new) || c.New == nil || freed[FoldKey(c.new, o.Names.rules())] {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(c.new))
		fi, err := os.Lstat(p)
		if err == nil && !(fi.IsDir() && c.New.Kind == object.KindDir) && !(placedElsewhere(c, o) && holds(o.Store, p, fi, c.New)) {
			return fmt.Errorf("%s exists and is not committed: %w; move it away or commit it first", c.new, ErrWouldOverwrite)
		}
	}

	known := &sync.Map{} // directories checked to be real ones

	// Removals, deepest first, so directories are empty when their turn comes.
	var removals []placedChange
	for _, c := range placed {
		if c.Old != nil && (c.New == nil || (c.Old.Kind == object.KindDir) != (c.New.Kind == object.KindDir) || c.old != c.new) {
			removals = append(removals, c)
		}
	}
	sort.SliceStable(removals, func(i, j int) bool {
		return strings.Count(removals[i].old, "/") > strings.Count(removals[j].old, "/")
	})
	for _, c := range removals {
		p, err := safeJoin(root, c.old, nil)
		if err != nil {
			return err
		}
		if err := unchangedSinceScan(o.Index, c.Change, p); err != nil {
			return err
		}
		err = os.Remove(p)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
		case c.Old.Kind == object.KindDir && object.IsDirNotEmpty(err):
			if c.New != nil {
				return fmt.Errorf("directory %s holds files that are not committed: %w; move them away or commit them first", c.Path, ErrWouldOverwrite)
			}
			// The tree no longer has it, but untracked files keep it alive.
		default:
			return fmt.Errorf("remove %s: %w", p, err)
		}
		if c.Old.Kind != object.KindDir {
			if o.Index != nil {
				o.Index.Delete(c.Path)
			}
		}
	}
	rewrites, err := applyMoves(root, moves, o)
	if err != nil {
		return err
	}
	placed = append(placed, rewrites...)
	if len(rewrites) > 0 {
		sort.SliceStable(placed, func(i, j int) bool { return placed[i].Path < placed[j].Path })
	}

	// Directories, parents first (changes are in path order).
	var files []placedChange
	for _, c := range placed {
		if c.New == nil {
			continue
		}
		if c.New.Kind != object.KindDir {
			files = append(files, c)
			continue
		}
		p, err := safeJoin(root, c.new, known)
		if err != nil {
			return err
		}
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", p, err)
		}
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s: %s is not a directory: %w", c.Path, p, ErrUnsafePath)
		}
		known.Store(p, true)
	}

	workers := o.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Index != nil {
		// Workers look entries up (to reuse large files' chunks); a map
		// is safe for concurrent reads, a lazily sorted list is not.
		o.Index.edit()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	entries := make([]IndexEntry, len(files))
	for i, c := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			e, err := writeEntry(gctx, root, c, o, known)
			entries[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.Index != nil {
		for i, c := range files {
			if c.New.Kind == object.KindSymlink {
				o.Index.Delete(c.Path)
			} else {
				o.Index.Set(c.Path, entries[i])
			}
		}
		// The entries just written were stat'ed after their write, like
		// git's after a checkout: the racy window is counted from now, not
		// from the scan before, else every file this wrote would be hashed
		// again by the next command (1 GiB: a second).
		o.Index.Scanned = max(o.Index.Scanned, time.Now().UnixNano())
	}
	return nil
}

func writeEntry(ctx context.Context, root string, pc placedChange, o ApplyOptions, known *sync.Map) (IndexEntry, error) {
	c := pc.Change
	if pc.Old != nil && pc.old != pc.new {
		c.Old = nil // written anew where the plan now puts it
	}
	p, err := safeJoin(root, pc.new, known)
	if err != nil {
		return IndexEntry{}, err
	}
	e := *c.New
	switch e.Kind {
	case object.KindSymlink:
		target, err := o.Store.ReadChunk(e.ID)
		if err != nil {
			return IndexEntry{}, fmt.Errorf("symlink %s: %w", c.Path, err)
		}
		if o.Names != nil && o.Names.Rules.NoSymlinks {
			// No links here: a file holding the target stands for it.
			if err := object.WriteFileAtomic(p, target, 0o644, false); err != nil {
				return IndexEntry{}, fmt.Errorf("symlink %s: %w", c.Path, err)
			}
			o.Meter.Add(1, 0)
			return IndexEntry{}, nil
		}
		link := func(dir string) error {
			tmp := filepath.Join(dir, object.TempPrefix+filepath.Base(p)+"-link")
			os.Remove(tmp)
			if err := os.Symlink(string(target), tmp); err != nil {
				return fmt.Errorf("create symlink %s: %w", p, err)
			}
			if err := os.Rename(tmp, p); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("create symlink %s: %w", p, err)
			}
			return nil
		}
		err = errXDev
		if o.TempDir != "" {
			err = link(o.TempDir)
		}
		if crossDevice(err) {
			err = link(filepath.Dir(p))
		}
		if err != nil {
			return IndexEntry{}, err
		}
		o.Meter.Add(1, 0)
		return IndexEntry{}, nil
	}
	perm := fs.FileMode(0o644)
	if e.Kind == object.KindExec {
		perm = 0o755
	}
	if c.Old != nil && c.Old.ID == e.ID && c.Old.Kind != object.KindDir && c.Old.Kind != object.KindSymlink {
		// Only the executable bit changed.
		if err := os.Chmod(p, perm); err != nil {
			return IndexEntry{}, fmt.Errorf("chmod %s: %w", p, err)
		}
	} else {
		counted, err := writeFile(ctx, o, o.TempDir, c, p, perm)
		if o.TempDir != "" && crossDevice(err) {
			o.Meter.Add(0, -counted)
			counted, err = writeFile(ctx, o, "", c, p, perm)
		}
		if err != nil {
			return IndexEntry{}, err
		}
		o.Meter.Add(0, -counted) // counted as written; the whole file below
	}
	o.Meter.Add(1, e.Size)
	if o.Index == nil {
		return IndexEntry{}, nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return IndexEntry{}, err
	}
	st := statOf(fi)
	return IndexEntry{Kind: e.Kind, Size: st.size, Mtime: st.mtime, Ctime: st.ctime, Inode: st.inode, ID: e.ID}, nil
}

// errXDev stands for "no temporary directory of the tree's filesystem".
var errXDev = errors.New("no temporary directory on the tree's filesystem")

// crossDevice reports whether err says a file cannot be renamed into
// place from where it was written.
func crossDevice(err error) bool { return errors.Is(err, errXDev) || object.IsCrossDevice(err) }

// meteredWriter counts what goes through it on a meter.
type meteredWriter struct {
	w io.Writer
	m *progress.Meter
	n int64
}

func (mw *meteredWriter) Write(b []byte) (int, error) {
	n, err := mw.w.Write(b)
	mw.n += int64(n)
	mw.m.Add(0, int64(n))
	return n, err
}

// writeFile writes c's new content to p through a temporary file in
// tmpDir ("": p's directory) renamed over it. The bytes it writes are
// counted on the meter as they go, so a large file moves the meter, and
// returned, so the caller can count the file as a whole once it is in
// place.
func writeFile(ctx context.Context, o ApplyOptions, tmpDir string, c object.Change, p string, perm fs.FileMode) (int64, error) {
	e := *c.New
	mw := &meteredWriter{m: o.Meter}
	a, err := object.CreateAtomicIn(tmpDir, p, perm, false)
	if err != nil {
		return mw.n, fmt.Errorf("write %s: %w", p, err)
	}
	defer a.Abort()
	mw.w = a
	reused, err := reuseChunks(ctx, o, c, p, a.File)
	if err != nil {
		return mw.n, fmt.Errorf("write %s: %w", c.Path, err)
	}
	if !reused {
		if _, err := o.Store.WriteFileTo(ctx, mw, e.ID); err != nil {
			return mw.n, fmt.Errorf("write %s: %w", c.Path, err)
		}
	}
	if err := unchangedSinceScan(o.Index, c, p); err != nil {
		return mw.n, err
	}
	if e.Size >= reuseMin && c.Old != nil && c.Old.Kind != object.KindDir {
		// On ext4, a rename over an existing file makes the kernel
		// start writing the new one out at once (auto_da_alloc), and the
		// next fsync (the ref) then waits for it: 1.3 s for 1 GiB. So
		// the old version, which is committed (the caller checked), is
		// removed first, as git's checkout does; a crash in between
		// leaves the path missing, which the interrupted operation's
		// record lets the next command finish, never torn.
		if tmpDir != "" && !sameDevice(tmpDir, filepath.Dir(p)) {
			return mw.n, errXDev // keep the old version until the rename can work
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return mw.n, fmt.Errorf("replace %s: %w", p, err)
		}
	}
	err = a.Commit()
	return mw.n, err
}

// placedElsewhere reports whether c's new side is kept under another name
// than its path.
func placedElsewhere(c placedChange, o ApplyOptions) bool { return o.Names.Active() && c.new != c.Path }

// holds reports whether the file at p (fi) is e's content already: a
// killed run wrote it there (under a name a plan chose, which the scan
// after the kill could not know), and writing it again loses nothing.
func holds(s *object.Store, p string, fi fs.FileInfo, e *object.Entry) bool {
	if !fi.Mode().IsRegular() || (e.Kind != object.KindFile && e.Kind != object.KindExec) || fi.Size() != e.Size {
		return false
	}
	f, err := object.OpenNoFollow(p)
	if err != nil {
		return false
	}
	defer f.Close()
	cw := &compareWriter{r: f}
	if _, err := s.WriteFileTo(context.Background(), cw, e.ID); err != nil || cw.differ {
		return false
	}
	n, _ := f.Read(make([]byte, 1))
	return n == 0
}

// compareWriter checks that what is written to it is what r holds next.
type compareWriter struct {
	r      io.Reader
	buf    []byte
	differ bool
}

func (c *compareWriter) Write(b []byte) (int, error) {
	if cap(c.buf) < len(b) {
		c.buf = make([]byte, len(b))
	}
	got := c.buf[:len(b)]
	if _, err := io.ReadFull(c.r, got); err != nil || !bytes.Equal(got, b) {
		c.differ = true
		return 0, errDiffer
	}
	return len(b), nil
}

var errDiffer = errors.New("content differs")

// unchangedSinceScan checks, just before a file is replaced or removed,
// that it still looks as the scan that found it committed saw it: an
// edit made while a merge or checkout runs (a daemon merging while the
// user types) is then refused with ErrWouldOverwrite, and committed by the
// next round, instead of lost.
func unchangedSinceScan(ix *Index, c object.Change, p string) error {
	if ix == nil || c.Old == nil || (c.Old.Kind != object.KindFile && c.Old.Kind != object.KindExec) {
		return nil
	}
	e, ok := ix.get([]byte(c.Path))
	if !ok {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s was removed while this ran: %w; run it again", c.Path, ErrWouldOverwrite)
		}
		return err
	}
	st := statOf(fi)
	if e.Size != st.size || e.Mtime != st.mtime || e.Ctime != st.ctime || e.Inode != st.inode {
		return fmt.Errorf("%s changed while this ran; it was not overwritten: %w", c.Path, ErrWouldOverwrite)
	}
	return nil
}
