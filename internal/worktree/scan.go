package worktree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/internal/ignore"
	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/object"
	"golang.org/x/sync/errgroup"
)

// ScanOptions configure Scan.
type ScanOptions struct {
	// Sink receives every chunk, file and tree: a store batch for a commit,
	// object.HashSink for status.
	Sink    object.Sink
	Chunker *object.Chunker
	// Index is the previous stat cache; nil reads every file.
	Index *Index
	// KeepIndex builds Snapshot.Index even when no file had to be read.
	KeepIndex bool
	// Have, when set, must confirm a cached ID before it is trusted. A
	// commit passes the store's Has: the cache may have been filled by a
	// status, which hashes without storing.
	Have  func(object.ID) bool
	Meter *progress.Meter
	// Workers is how many files are read at once (default 2×GOMAXPROCS).
	Workers int
	// Now returns the time the scan starts; the default is time.Now.
	Now func() time.Time
	// NoIgnore reads .meshignore files as content, not as rules (a
	// folder a commit was restored into holds exactly its files).
	NoIgnore bool
	// Stored, when set, says which trees the store already holds: those
	// are not kept in Snapshot.Trees (nor read by Snapshot.ReadTree; the
	// caller reads them from the store), so a clean status holds no tree
	// in memory.
	Stored func(object.ID) bool
	// RefuseChanging makes a file that changes while it is read, and
	// again when it is read a second time, ErrChanging (a commit must not
	// store a torn file); otherwise it is hashed as read and left out of
	// the stat cache (status).
	RefuseChanging bool
	// Names, when it has rules, maps the folder's names to history's
	// (a folder that cannot hold some of them: Windows, macOS), by the
	// plan of the tree at Head.
	Names *Names
	Head  object.ID
}

// ErrChanging is the kind of error for a file that changed while it was
// read, twice.
var ErrChanging = errors.New("changed while it was read")

// Snapshot is a scanned folder: its root tree, every tree it consists of
// (so it can be diffed without the trees being stored), and the stat cache
// that describes it.
type Snapshot struct {
	Root        object.ID
	Trees       map[object.ID]*object.Tree
	Index       *Index
	HashedFiles int
	HashedBytes int64
	// Reserved lists the files and directories below the top named .mesh
	// (in any case) that no .meshignore pattern excludes: a tree cannot
	// hold them (it would write into a device's repository), so they are
	// left out, and a commit says so (see repo.Commit).
	Reserved []string
	// Nested lists the directories that are repositories of their own
	// (they hold a .mesh with a config): their files are in the tree,
	// their .mesh is not.
	Nested []string
}

// isRepository reports whether meta is a mesh repository's .mesh.
func isRepository(meta string) bool {
	fi, err := os.Stat(filepath.Join(meta, "config"))
	return err == nil && fi.Mode().IsRegular()
}

// ReadTree reads a tree of the snapshot.
func (s *Snapshot) ReadTree(id object.ID) (*object.Tree, error) {
	if t, ok := s.Trees[id]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("tree %s: %w", id.Short(), object.ErrNotFound)
}

type dirNode struct {
	path    string
	disk    string // where the folder keeps it (names may differ)
	entries []*entryNode
	// built: the tree is made (id), and entries are let go; index holds
	// its files' stat cache entries, if the walk records them, in runs.
	built bool
	id    object.ID
	index [][]pathEntry
}

type entryNode struct {
	e      object.Entry
	parent *dirNode
	sub    *dirNode
	st     statInfo
	target string // a symlink's target
	disk   string // the name in the folder, when not e.Name
}

// diskName is the entry's name in the folder.
func (n *entryNode) diskName() string {
	if n.disk != "" {
		return n.disk
	}
	return n.e.Name
}

// diskPath is the entry's path in the folder, relative, slash-separated.
func (n *entryNode) diskPath() string {
	if n.parent.disk == "" {
		return n.diskName()
	}
	return n.parent.disk + "/" + n.diskName()
}

// byHistoryName sorts a listing by the names history gives its entries,
// keeping each one's name in the folder beside it.
type byHistoryName struct {
	ents   []dirEntry
	onDisk []string
}

func (b byHistoryName) Len() int           { return len(b.ents) }
func (b byHistoryName) Less(i, j int) bool { return b.ents[i].name < b.ents[j].name }
func (b byHistoryName) Swap(i, j int) {
	b.ents[i], b.ents[j] = b.ents[j], b.ents[i]
	b.onDisk[i], b.onDisk[j] = b.onDisk[j], b.onDisk[i]
}

// Scan walks root and turns it into trees.
func Scan(ctx context.Context, root string, o ScanOptions) (*Snapshot, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	window := RacyWindow(root)
	if o.Index != nil {
		o.Index.window = window
	}
	snap := &Snapshot{
		Trees: map[object.ID]*object.Tree{},
		Index: &Index{Scanned: now().UnixNano(), window: window},
	}
	tb := &treeBuilder{sink: o.Sink, snap: snap, stored: o.Stored}
	w := &walker{root: root, ix: o.Index, have: o.Have, noIgnore: o.NoIgnore, sem: make(chan struct{}, 4*runtime.GOMAXPROCS(0)), tb: tb, keepIndex: o.KeepIndex}
	var head headDir
	if o.Names.Active() {
		w.names = o.Names
		if !o.Head.IsZero() {
			t, err := o.Names.Trees.ReadTree(o.Head)
			if err != nil {
				return nil, err
			}
			head = headDir{o.Head, t}
		}
	}
	top, err := w.walk(nil, "", nil, head)
	if err != nil {
		return nil, err
	}
	jobs := w.jobs
	var total int64
	for _, j := range jobs {
		total += j.st.size
	}
	o.Meter.SetTotal(int64(len(jobs)), total)
	if err := hashFiles(ctx, root, jobs, o); err != nil {
		return nil, err
	}
	snap.HashedFiles = len(jobs)
	snap.Reserved, snap.Nested = w.reserved, w.nested
	slices.Sort(snap.Reserved)
	slices.Sort(snap.Nested)
	snap.HashedBytes = total
	// A status that read nothing has nothing new to remember; skipping the
	// new stat cache spares a path string and an entry per file.
	keepIndex := o.KeepIndex || len(jobs) > 0
	id, index := top.id, top.index
	if !top.built {
		if keepIndex && !o.KeepIndex {
			// The folders whose trees the walk made did not record their
			// files; every one matched its old entry, which still holds.
			tb.old = o.Index
		}
		if id, err = tb.build(top, keepIndex, &index); err != nil {
			return nil, err
		}
	}
	snap.Root = id
	if keepIndex {
		n := 0
		for _, run := range index {
			n += len(run)
		}
		snap.Index.list = make([]pathEntry, 0, n)
		for _, run := range index {
			snap.Index.list = append(snap.Index.list, run...)
		}
	}
	return snap, nil
}

// walker walks a folder, several directories at once: on a warm cache a
// status is mostly stat calls, and they overlap well across cores.
type walker struct {
	root     string
	noIgnore bool
	reserved []string // guarded by mu
	nested   []string // guarded by mu
	ix       *Index
	have     func(object.ID) bool
	sem      chan struct{}
	tb       *treeBuilder
	// keepIndex: the trees the walk makes record their files in the new
	// stat cache (otherwise Scan copies their entries from the old one
	// if it needs a new cache).
	keepIndex bool
	mu        sync.Mutex
	jobs      []*entryNode
	// names maps the folder's names to history's (nil: they are the same).
	names *Names
}

// headDir is a directory's tree at HEAD (tree nil where HEAD has none),
// by which a walk with names maps what it lists.
type headDir struct {
	id   object.ID
	tree *object.Tree
}

// maxLinkStandIn bounds what a scan reads to see whether a file stands
// for a link: a link target is a path.
const maxLinkStandIn = 4096

// linkStandIn reports whether the file n, in a folder without links, is
// the stand-in checkout wrote for HEAD's link of that name, unchanged
// (the target as its content); if so n becomes that link.
func (w *walker) linkStandIn(n *entryNode, head headDir, abs string) bool {
	if w.names == nil || !w.names.Rules.NoSymlinks {
		return false
	}
	h, ok := head.find(n.e.Name)
	if !ok || h.Kind != object.KindSymlink || h.Size != n.st.size || h.Size > maxLinkStandIn {
		return false
	}
	f, err := object.OpenNoFollow(filepath.Join(abs, n.diskName()))
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, h.Size+1)
	k, _ := io.ReadFull(f, b)
	if int64(k) != h.Size || object.Hash(object.TypeChunk, b[:k]) != h.ID {
		return false
	}
	n.e.Kind, n.e.Size, n.e.ID, n.target = object.KindSymlink, h.Size, h.ID, string(b[:k])
	return true
}

// find is HEAD's entry called name in this directory.
func (h headDir) find(name string) (object.Entry, bool) {
	if h.tree == nil {
		return object.Entry{}, false
	}
	return h.tree.Find(name)
}

// sub is the directory name of h, if HEAD has one there.
func (w *walker) sub(h headDir, name string) (headDir, error) {
	if h.tree == nil {
		return headDir{}, nil
	}
	e, ok := h.tree.Find(name)
	if !ok || e.Kind != object.KindDir {
		return headDir{}, nil
	}
	t, err := w.names.Trees.ReadTree(e.ID)
	return headDir{e.ID, t}, err
}

// walk lists the directory at history path dir, kept in the folder at
// disk (the same path unless names map it).
func (w *walker) walk(dir []string, disk string, parent *ignore.Rules, head headDir) (*dirNode, error) {
	rel := filepath.ToSlash(filepath.Join(dir...))
	abs := filepath.Join(w.root, filepath.FromSlash(disk))
	ents, err := listDir(abs)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", abs, err)
	}
	var onDisk []string // per entry, its name in the folder, when names map them
	if w.names != nil {
		onDisk = make([]string, len(ents))
		for i := range ents {
			onDisk[i] = ents[i].name
		}
		hist := w.names.historyNames(head.id, head.tree, onDisk)
		for i := range ents {
			ents[i].name = hist[i]
		}
		sort.Sort(byHistoryName{ents, onDisk})
	}
	hasIgnore := false
	for _, de := range ents {
		if de.name == ignore.FileName && !w.noIgnore {
			hasIgnore = true
		}
	}
	rules, err := parent.Enter(abs, dir, hasIgnore)
	if err != nil {
		return nil, err
	}
	d := &dirNode{path: rel, disk: disk}
	var key []byte
	var subdirs []*entryNode
	var jobs []*entryNode
	slab := make([]entryNode, len(ents)) // one allocation for the directory
	for i, de := range ents {
		name := de.name
		if !object.ValidName(name) {
			continue
		}
		if object.Reserved(name) {
			p := append(dir[:len(dir):len(dir)], name)
			switch {
			case len(dir) == 0 && name == ignore.MetaDir:
				// This repository's own.
			case rules.ByPatterns(p, de.st.mode.IsDir()):
				// Left out on purpose.
			case name == ignore.MetaDir && de.st.mode.IsDir() && isRepository(filepath.Join(abs, name)):
				// A repository of its own nested here: its files are
				// this one's, its .mesh is not (as git treats a nested
				// .git).
				w.mu.Lock()
				w.nested = append(w.nested, rel)
				w.mu.Unlock()
			default:
				w.mu.Lock()
				w.reserved = append(w.reserved, strings.Join(p, "/"))
				w.mu.Unlock()
			}
			continue
		}
		if rules.Active() {
			if rules.Ignored(append(dir[:len(dir):len(dir)], name), de.st.mode.IsDir()) {
				continue
			}
		}
		n := &slab[i]
		n.parent, n.e.Name, n.st = d, name, de.st
		if onDisk != nil && onDisk[i] != name {
			n.disk = onDisk[i]
		}
		switch m := de.st.mode; {
		case m.IsDir():
			n.e.Kind = object.KindDir
			subdirs = append(subdirs, n)
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(abs, n.diskName()))
			if err != nil {
				return nil, fmt.Errorf("read symlink %s: %w", filepath.Join(abs, n.diskName()), err)
			}
			n.e.Kind = object.KindSymlink
			n.e.Size = int64(len(target))
			n.e.ID = object.Hash(object.TypeChunk, []byte(target))
			n.target = target
		case m.IsRegular() && w.linkStandIn(n, head, abs):
			// A file standing for history's link (no links here).
		case m.IsRegular():
			n.e.Kind = object.KindFile
			if m&0o100 != 0 {
				n.e.Kind = object.KindExec
			}
			n.e.Size = n.st.size
			// The key is built in a scratch buffer: a clean status then
			// allocates no path strings at all.
			key = append(key[:0], rel...)
			if rel != "" {
				key = append(key, '/')
			}
			key = append(key, name...)
			if w.names != nil && w.names.Rules.NoExecBits {
				// No exec bits here (NTFS, FAT): a file keeps the kind it
				// was checked out or committed with, a new one is not
				// executable, as with git's core.fileMode=false.
				n.e.Kind = object.KindFile
				if h, ok := head.find(name); ok {
					if h.Kind == object.KindExec {
						n.e.Kind = object.KindExec
					}
				} else if w.ix != nil {
					if old, ok := w.ix.get(key); ok && old.Kind == object.KindExec {
						n.e.Kind = object.KindExec
					}
				}
			}
			if id, ok := w.ix.Lookup(key, n.e.Kind, n.st); ok && (w.have == nil || w.have(id)) {
				n.e.ID = id
			} else {
				jobs = append(jobs, n)
			}
		default:
			continue // sockets, fifos, devices: not content
		}
		d.entries = append(d.entries, n)
	}
	if len(jobs) > 0 {
		w.mu.Lock()
		w.jobs = append(w.jobs, jobs...)
		w.mu.Unlock()
	}
	errs := make([]error, len(subdirs))
	var wg sync.WaitGroup
	for i, n := range subdirs {
		p := append(dir[:len(dir):len(dir)], n.e.Name)
		pd := n.diskName()
		if disk != "" {
			pd = disk + "/" + pd
		}
		var h headDir
		if w.names != nil {
			if h, err = w.sub(head, n.e.Name); err != nil {
				return nil, err
			}
		}
		select {
		case w.sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-w.sem }()
				n.sub, errs[i] = w.walk(p, pd, rules, h)
			}()
		default:
			n.sub, errs[i] = w.walk(p, pd, rules, h)
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// A folder with no file left to read, all the way down, is made into
	// its tree now and its entries let go: a scan holds only the folders
	// with files to read, and those being walked, not the whole tree.
	done := len(jobs) == 0
	for _, n := range subdirs {
		if n.sub.built {
			n.e.ID = n.sub.id
		} else {
			done = false
		}
	}
	if !done {
		return d, nil
	}
	var index [][]pathEntry
	id, err := w.tb.build(d, w.keepIndex, &index)
	if err != nil {
		return nil, err
	}
	return &dirNode{path: rel, built: true, id: id, index: index}, nil
}

// bigFileSlots bounds how many multi-chunk files are cut at once: each
// holds a scan buffer and chunks in flight, so this bounds memory.
const bigFileSlots = 2

func hashFiles(ctx context.Context, root string, jobs []*entryNode, o ScanOptions) error {
	workers := o.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	big := make(chan struct{}, bigFileSlots)
	for _, j := range jobs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if j.st.size > o.Chunker.WholeMax() {
				select {
				case big <- struct{}{}:
					defer func() { <-big }()
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return hashFile(gctx, root, j, o)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func hashFile(ctx context.Context, root string, j *entryNode, o ScanOptions) error {
	abs := filepath.Join(root, filepath.FromSlash(j.diskPath()))
	f, err := object.OpenNoFollow(abs)
	if err != nil {
		return fmt.Errorf("read %s: %w", abs, err)
	}
	defer f.Close()
	// A file that changes while it is read (size, mtime or ctime differ
	// after the read from before it) is read once more; if it changes
	// again, what was read may be torn: a commit refuses it, a status
	// does not cache it.
	for try := 1; ; try++ {
		steady, err := hashOnce(ctx, f, abs, j, o)
		if err != nil || steady {
			return err
		}
		if try == 2 {
			if o.RefuseChanging {
				return fmt.Errorf("%s %w, twice; commit again once it is written, or add it to .meshignore", abs, ErrChanging)
			}
			j.st.mtime = 0 // never trust this entry
			return nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read %s: %w", abs, err)
		}
	}
}

// hashOnce reads f (abs) into j and reports whether it stayed as it was
// while read.
func hashOnce(ctx context.Context, f *os.File, abs string, j *entryNode, o ScanOptions) (bool, error) {
	// The stat cache records the file as opened: if it changes while being
	// read, its mtime will differ next time and it is read again.
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("read %s: no longer a regular file", abs)
	}
	j.st = statOf(fi)
	id, n, err := o.Chunker.WriteFile(ctx, o.Sink, meteredReader{f, o.Meter}, j.st.size)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", abs, err)
	}
	j.e.ID = id
	j.e.Size = n
	after, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", abs, err)
	}
	a := statOf(after)
	if n != j.st.size || a.size != j.st.size || a.mtime != j.st.mtime || a.ctime != j.st.ctime {
		return false, nil
	}
	o.Meter.Add(1, 0)
	return true, nil
}

// meteredReader counts bytes as they are read, so progress moves during
// one large file too.
type meteredReader struct {
	r io.Reader
	m *progress.Meter
}

func (mr meteredReader) Read(p []byte) (int, error) {
	n, err := mr.r.Read(p)
	mr.m.Add(0, int64(n))
	return n, err
}

// path returns the entry's slash-separated path from the root.
func (n *entryNode) path() string {
	if n.parent.path == "" {
		return n.e.Name
	}
	return n.parent.path + "/" + n.e.Name
}

// treeBuilder makes trees, from the walk's goroutines and then Scan's.
type treeBuilder struct {
	sink   object.Sink
	snap   *Snapshot
	stored func(object.ID) bool
	// old, when set, is the stat cache whose entries under the folders
	// the walk made into trees without recording them go into the new
	// one as they are.
	old *Index
	mu  sync.Mutex // guards snap.Trees
}

// build makes d's tree, and first those of its folders not yet made.
// With keepIndex, it appends d's files' stat cache entries to index in
// tree order, as runs: those of folders made before as they made them,
// so nothing is copied twice.
func (tb *treeBuilder) build(d *dirNode, keepIndex bool, index *[][]pathEntry) (object.ID, error) {
	t := &object.Tree{Entries: make([]object.Entry, 0, len(d.entries))}
	var run []pathEntry
	flush := func() {
		if len(run) > 0 {
			*index = append(*index, run)
			run = nil
		}
	}
	for _, n := range d.entries {
		switch n.e.Kind {
		case object.KindDir:
			switch {
			case !n.sub.built:
				flush()
				id, err := tb.build(n.sub, keepIndex, index)
				if err != nil {
					return object.ZeroID, err
				}
				n.e.ID = id
			case !keepIndex:
			case n.sub.index != nil:
				flush()
				*index = append(*index, n.sub.index...)
			case tb.old != nil:
				flush()
				*index = append(*index, tb.old.appendUnder(nil, n.path()+"/"))
			}
			n.sub = nil
		case object.KindSymlink:
			if _, err := tb.sink.Put(object.TypeChunk, []byte(n.target)); err != nil {
				return object.ZeroID, err
			}
		default:
			if keepIndex {
				run = append(run, pathEntry{n.path(), IndexEntry{Kind: n.e.Kind, Size: n.e.Size, Mtime: n.st.mtime, Ctime: n.st.ctime, Inode: n.st.inode, ID: n.e.ID}})
			}
		}
		t.Entries = append(t.Entries, n.e)
	}
	flush()
	body, err := t.Encode()
	if err != nil {
		return object.ZeroID, fmt.Errorf("directory %q: %w", d.path, err)
	}
	id, err := tb.sink.Put(object.TypeTree, body)
	if err != nil {
		return object.ZeroID, err
	}
	if tb.stored == nil || !tb.stored(id) {
		tb.mu.Lock()
		tb.snap.Trees[id] = t
		tb.mu.Unlock()
	}
	return id, nil
}
