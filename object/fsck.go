package object

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Problem is one thing fsck found wrong.
type Problem struct {
	Object ID     `json:"object"`
	What   string `json:"what"`
}

// FsckReport is what Fsck checked and found.
type FsckReport struct {
	Packs       int       `json:"packs"`
	Objects     int       `json:"objects"`
	Reachable   int       `json:"reachable"`
	ChunksRead  int       `json:"chunksRead"`
	Problems    []Problem `json:"problems"`
	Unreachable int       `json:"unreachable"`
	Stray       []string  `json:"stray"` // temporary files left by interrupted writers
	// Damaged lists objects whose stored copy does not read back, and
	// Missing the ones something reachable needs that the store lacks:
	// what fsck --repair fetches again.
	Damaged []ID `json:"damaged"`
	Missing []ID `json:"missing"`
	// BadPacks are the packs whose index or own headers are damaged:
	// fsck --repair rewrites them.
	BadPacks []string `json:"badPacks"`
}

// Fsck checks the store against the refs: every index parses, every
// commit, tree and file object reads back with its hash and decodes
// canonically, everything reachable from a ref, HEAD or a reflog entry
// exists with the right type and size, and with readData every chunk is
// read and re-hashed too.
func Fsck(ctx context.Context, s *Store, refs *Refs, readData bool) (*FsckReport, error) {
	// No repack may move objects while fsck looks pack by pack.
	lock, err := AcquireLock(ctx, s.repackLockPath())
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	s.load()
	s.finishSuperseded()
	if err := s.refresh(); err != nil {
		return nil, err
	}
	s.verifyIndexes()
	rep := &FsckReport{}
	s.mu.RLock()
	packs := append([]*packFile(nil), s.packs...)
	s.mu.RUnlock()
	rep.Packs = len(packs)
	for _, p := range packs {
		err := p.check()
		if err == nil && readData {
			err = p.scan()
		}
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{What: fmt.Sprintf("pack %s: %v", p.name, err)})
			rep.BadPacks = append(rep.BadPacks, p.name)
		}
	}
	locs := map[ID]location{}
	s.each(func(id ID, l location) {
		if _, ok := locs[id]; !ok {
			locs[id] = l
		}
	})
	rep.Objects = len(locs)
	rep.Stray = strays(s.dir)
	for _, ip := range s.IndexProblems() {
		rep.Problems = append(rep.Problems, Problem{What: fmt.Sprintf("pack %s: %s, so its objects are not seen: mesh fsck --repair rebuilds the index from the pack", ip.Pack, ip.Err)})
	}

	var mu sync.Mutex
	problem := func(id ID, format string, args ...any) {
		mu.Lock()
		rep.Problems = append(rep.Problems, Problem{Object: id, What: fmt.Sprintf(format, args...)})
		mu.Unlock()
	}

	// Every object: metadata always, chunks with readData. Children are
	// checked for existence, type and size from here too, so each body is
	// read once.
	ids := make([]ID, 0, len(locs))
	for id, l := range locs {
		if l.typ != TypeChunk || readData {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { // pack order reads sequentially
		a, b := locs[ids[i]], locs[ids[j]]
		if a.pack.name != b.pack.name {
			return a.pack.name < b.pack.name
		}
		return a.off < b.off
	})
	sizes := &fileSizes{have: map[ID]int64{}}
	notes := &fsckNotes{damaged: map[ID]bool{}, missing: map[ID]bool{}}
	work := make(chan ID, 64)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				checkObject(s, id, locs, sizes, problem, notes)
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
		if locs[id].typ == TypeChunk {
			rep.ChunksRead++
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, w := range sizes.want {
		if got, ok := sizes.have[w.file]; ok && got != w.size {
			problem(w.tree, "file %s has %d bytes, tree says %d", w.name, got, w.size)
		}
	}

	roots, damagedRefs := rootsTolerant(refs)
	for _, d := range damagedRefs {
		problem(d.last, "%s", d.what)
	}
	if bad, err := refs.DamagedLogs(); err != nil {
		problem(ZeroID, "reflogs: %v", err)
	} else {
		for _, b := range bad {
			problem(ZeroID, "reflog line %s is damaged: the commit it named may be kept by nothing else, so gc deletes nothing until it is mended or removed", b)
		}
	}
	for name, id := range roots {
		if _, ok := locs[id]; !ok {
			problem(id, "%s points at a missing commit", name)
			notes.add(notes.missing, id)
		} else if locs[id].typ != TypeCommit {
			problem(id, "%s points at a %s, not a commit", name, locs[id].typ)
		}
	}
	seen := map[ID]struct{}{}
	stack := make([]ID, 0, len(roots))
	for _, id := range roots {
		stack = append(stack, id)
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		l, ok := locs[id]
		if !ok || l.typ == TypeChunk {
			continue
		}
		_, body, err := s.read(id, l, nil)
		if err != nil {
			continue // already reported by checkObject
		}
		kids, _ := Children(l.typ, body)
		stack = append(stack, kids...)
	}
	rep.Reachable = len(seen)
	for id := range locs {
		if _, ok := seen[id]; !ok {
			rep.Unreachable++
		}
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].Object.String() < rep.Problems[j].Object.String() })
	rep.Damaged, rep.Missing = notes.sorted(notes.damaged), notes.sorted(notes.missing)
	return rep, nil
}

// fsckNotes collects, from fsck's parallel checks, the objects to fetch
// again.
type fsckNotes struct {
	mu               sync.Mutex
	damaged, missing map[ID]bool
}

func (n *fsckNotes) add(m map[ID]bool, id ID) {
	n.mu.Lock()
	m[id] = true
	n.mu.Unlock()
}

func (n *fsckNotes) sorted(m map[ID]bool) []ID {
	out := make([]ID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// checkObject reads one object and, for metadata, checks what it refers to.
func checkObject(s *Store, id ID, locs map[ID]location, sizes *fileSizes, problem func(ID, string, ...any), notes *fsckNotes) {
	l := locs[id]
	_, body, err := s.read(id, l, nil)
	if err != nil {
		problem(id, "%v", err)
		notes.add(notes.damaged, id)
		return
	}
	want := func(kid ID, t Type, size int64, what string) {
		kl, ok := locs[kid]
		switch {
		case !ok:
			problem(id, "%s %s is missing", what, kid.Short())
			notes.add(notes.missing, kid)
		case kl.typ != t:
			problem(id, "%s %s is a %s, not a %s", what, kid.Short(), kl.typ, t)
		case size >= 0 && int64(kl.raw) != size:
			problem(id, "%s %s has %d bytes, expected %d", what, kid.Short(), kl.raw, size)
		}
	}
	switch l.typ {
	case TypeCommit:
		c, err := DecodeCommit(body)
		if err != nil {
			problem(id, "%v", err)
			return
		}
		want(c.Tree, TypeTree, -1, "tree")
		for _, p := range c.Parents {
			want(p, TypeCommit, -1, "parent")
		}
	case TypeTree:
		t, err := DecodeTree(body)
		if err != nil {
			problem(id, "%v", err)
			return
		}
		for _, e := range t.Entries {
			switch e.Kind {
			case KindDir:
				want(e.ID, TypeTree, -1, "directory "+e.Name)
			case KindSymlink:
				want(e.ID, TypeChunk, e.Size, "symlink "+e.Name)
			default:
				want(e.ID, TypeFile, -1, "file "+e.Name)
				sizes.wantSize(id, e.Name, e.ID, e.Size)
			}
		}
	case TypeFile:
		f, err := DecodeFile(body)
		if err != nil {
			problem(id, "%v", err)
			return
		}
		for _, c := range f.Chunks {
			want(c.ID, TypeChunk, c.Size, "chunk")
		}
		sizes.haveSize(id, f.Size())
	}
}

// damagedRef is a ref or HEAD that does not parse, and what its reflog
// says it last pointed at.
type damagedRef struct {
	what string
	last ID
}

// rootsTolerant is rootsOf for a repository whose refs may be damaged:
// each damaged one is reported with the commit its reflog last gave it
// (which is then kept as a root), and the rest are read as usual.
func rootsTolerant(refs *Refs) (map[string]ID, []damagedRef) {
	roots := map[string]ID{}
	var bad []damagedRef
	lastLogged := func(log string) ID {
		es, _ := readLog(filepath.Join(refs.dir, filepath.FromSlash(log)))
		if len(es) == 0 {
			return ZeroID
		}
		return es[len(es)-1].New
	}
	damage := func(name, file, log string, err error) {
		last := lastLogged(log)
		d := damagedRef{last: last, what: fmt.Sprintf("%s is damaged (%v)", name, err)}
		if !last.IsZero() {
			d.what += fmt.Sprintf("; its reflog says it last pointed at %s: to restore it, write that ID into %s", last, file)
			roots["reflog of "+name] = last
		} else {
			d.what += fmt.Sprintf("; it has no reflog to restore it from: write a commit ID (mesh log on another device) into %s", file)
		}
		bad = append(bad, d)
	}
	root := filepath.Join(refs.dir, "refs")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		id, ok, err := refs.Get(name)
		if err != nil {
			damage("ref "+name, p, "logs/refs/"+name, err)
			return nil
		}
		if ok {
			roots["ref "+name] = id
		}
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(refs.dir, "HEAD")); err == nil {
		s := strings.TrimSpace(string(b))
		if _, ok := strings.CutPrefix(s, "ref: heads/"); !ok {
			if id, err := ParseID(s); err != nil {
				damage("HEAD", filepath.Join(refs.dir, "HEAD"), "logs/HEAD", err)
			} else if !id.IsZero() {
				roots["HEAD"] = id
			}
		}
	}
	if logged, err := refs.AllLogged(); err == nil {
		for _, id := range logged {
			roots["reflog entry "+id.Short()] = id
		}
	}
	return roots, bad
}

// rootsOf names every commit that must stay: refs, HEAD and reflog entries.
func rootsOf(refs *Refs) (map[string]ID, error) {
	roots := map[string]ID{}
	all, err := refs.List()
	if err != nil {
		return nil, err
	}
	for n, id := range all {
		roots["ref "+n] = id
	}
	if h, err := refs.Head(); err == nil && !h.ID.IsZero() {
		roots["HEAD"] = h.ID
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	logged, err := refs.AllLogged()
	if err != nil {
		return nil, err
	}
	for _, id := range logged {
		roots["reflog entry "+id.Short()] = id
	}
	return roots, nil
}

// strays lists the temporary files interrupted writers left in the store
// directory. A pack without an index is not one: it may hold the only copy
// of its objects (see IndexProblems and RebuildIndexes).
func strays(dir string) []string {
	var out []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, TempPrefix) {
			out = append(out, n)
		}
	}
	return out
}

// fileSizes collects, while objects are checked in parallel, each file
// object's length and each tree's claim about it, so that every file
// object is read once and the claims are compared afterwards.
type fileSizes struct {
	mu   sync.Mutex
	have map[ID]int64
	want []sizeClaim
}

type sizeClaim struct {
	tree, file ID
	name       string
	size       int64
}

func (f *fileSizes) haveSize(file ID, n int64) {
	f.mu.Lock()
	f.have[file] = n
	f.mu.Unlock()
}

func (f *fileSizes) wantSize(tree ID, name string, file ID, n int64) {
	f.mu.Lock()
	f.want = append(f.want, sizeClaim{tree: tree, file: file, name: name, size: n})
	f.mu.Unlock()
}
