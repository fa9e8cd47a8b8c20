package remote

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/mesh-sync/mesh/object"
	"golang.org/x/sync/errgroup"
)

// Peer is what a fetch gets objects from: another store on disk, or a
// device over a connection.
type Peer interface {
	// ListRefs lists the peer's refs.
	ListRefs(ctx context.Context) (map[string]object.ID, error)
	// Commits calls fn with every commit reachable from wants and not from
	// haves, as far as the peer can tell (it may send a few more).
	Commits(ctx context.Context, wants, haves []object.ID, fn ObjectFunc) error
	// Get calls fn with each of ids, in order.
	Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error
	// String names the peer in errors.
	String() string
}

// ObjectFunc receives an object as the peer sent it (in stored form), not
// yet verified.
type ObjectFunc func(id object.ID, r object.Raw) error

// Stats counts what a fetch moved.
type Stats struct {
	Objects int `json:"objects"`
	// Bytes is what the objects weighed as sent (compressed, or as
	// deltas), not expanded.
	Bytes int64 `json:"bytes"`
	// Skipped counts objects the destination already had (with a commit or
	// tree, everything below it, by the closure invariant); with chunks,
	// whichever file or version they came from.
	Skipped int `json:"skipped"`
}

// FlushEvery is how many bytes of chunks a fetch receives before it makes
// them durable. An interrupted fetch started again asks only for chunks
// the store does not hold, so it loses at most this much.
var FlushEvery int64 = 64 << 20

// MaxCommitsPerFetch bounds the commits one fetch takes in (they are held
// in memory until their trees arrive), so a peer cannot exhaust memory by
// sending history without end. Fetching a longer history takes several
// fetches of older heads first.
var MaxCommitsPerFetch = 4 << 20

// MaxMetaPerFetch bounds the bytes of commits, trees and files (as sent,
// compressed) that one fetch holds until it writes them, so that what a
// peer sends cannot exhaust memory however small it compresses.
var MaxMetaPerFetch int64 = 256 << 20

// fetcher is one Fetch.
type fetcher struct {
	p   Peer
	dst *object.Store
	st  Stats

	seen   map[object.ID]bool
	meta   map[object.ID]*metaObj // received, not yet written
	held   int64                  // bytes of meta's raw objects
	chunks []want
	swarm  *Swarm
	prog   Progress
	// olds caches oldEntries: the new versions of many commits' trees
	// mostly have the same old version (the destination's head).
	olds map[object.ID]map[string]object.Entry
}

type want struct {
	id   object.ID
	t    object.Type
	size int64 // for chunks, as the file claims
	// old is, for a tree or a file, what was at its path in the
	// destination's own version (zero: nothing known), from which its
	// new chunks get their bases.
	old object.ID
	// bases are, for a chunk, bytes of chunks the destination holds
	// that it likely repeats (deltaBases).
	bases []deltaBase
}

type metaObj struct {
	raw  object.Raw
	kids []object.ID
}

// Fetch brings into dst everything reachable from wants (commits) that dst
// lacks, from p, and makes it durable; refs are the caller's to move once
// it returns. haves are dst's own commits (its ref tips), so that p sends
// only history dst lacks. Trees and files then come one level at a time,
// each level one request for what dst does not hold, and last the chunks
// no file or version in dst already has.
//
// Every object is checked against its ID and the type its parent says it
// has; a peer that sends anything else is cut off with ErrCorrupt.
// Metadata is written only after everything under it, so "dst has X"
// keeps meaning "dst has X's closure" even if Fetch is killed; chunks are
// made durable every FlushEvery bytes, so a fetch started again resumes.
func Fetch(ctx context.Context, p Peer, dst *object.Store, wants, haves []object.ID) (Stats, error) {
	return FetchSwarm(ctx, p, dst, wants, haves, nil)
}

// FetchSwarm is Fetch with the chunks spread over a swarm (nil: all from
// p): many devices fetching one new head from its author then send each
// other most of it, as with mesh get. History and metadata still come
// from p alone.
func FetchSwarm(ctx context.Context, p Peer, dst *object.Store, wants, haves []object.ID, sw *Swarm) (Stats, error) {
	f := &fetcher{p: p, dst: dst, seen: map[object.ID]bool{}, meta: map[object.ID]*metaObj{}, swarm: sw, prog: progressOf(ctx)}
	err := f.run(ctx, wants, haves)
	if err != nil {
		err = fmt.Errorf("fetch from %s: %w", p, err)
	}
	return f.st, err
}

// verify expands what the peer sent for w and checks it: the ID asked
// for, the type w's parent gives it, and content that hashes to the ID.
func (f *fetcher) verify(w want, id object.ID, r object.Raw) ([]byte, error) {
	if id != w.id {
		return nil, fmt.Errorf("asked for %s %s, got %s: %w (%w)", w.t, w.id.Short(), id.Short(), ErrProtocol, object.ErrCorrupt)
	}
	if r.Type != w.t {
		return nil, fmt.Errorf("%s: sent a %s where a %s belongs: %w", w.id.Short(), r.Type, w.t, object.ErrCorrupt)
	}
	var body []byte
	var err error
	if r.Comp == compDelta {
		body, err = f.undelta(w, r) // which marks the peer's faults itself
	} else if body, err = f.dst.Expand(r); err != nil {
		err = fmt.Errorf("%w (%w)", err, object.ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", w.t, w.id.Short(), err)
	}
	if got := object.Hash(r.Type, body); got != w.id {
		return nil, fmt.Errorf("%s %s: sent bytes that hash to %s (a damaged store there? run mesh fsck --read-data on it): %w", w.t, w.id.Short(), got.Short(), object.ErrCorrupt)
	}
	return body, nil
}

// storable is r, verified to expand to body, in a form the store keeps:
// a delta is stored as its chunk.
func (f *fetcher) storable(r object.Raw, body []byte) object.Raw {
	if r.Comp == compDelta {
		return f.dst.Stored(r.Type, body)
	}
	return r
}

// undelta expands a delta the peer sent for w against w's bases.
func (f *fetcher) undelta(w want, r object.Raw) ([]byte, error) {
	if len(w.bases) == 0 {
		return nil, fmt.Errorf("a delta where no bases were named: %w", ErrProtocol)
	}
	dict, err := deltaDict(f.dst, w.bases)
	if err != nil {
		// Bases this store named are its own: not the peer's fault.
		return nil, fmt.Errorf("the bases of a delta here: %v", err)
	}
	body, err := expandDelta(r, dict)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", err, object.ErrCorrupt)
	}
	return body, nil
}

// need records that id is wanted, unless it is already seen or held.
func (f *fetcher) need(w want, next *[]want) {
	if f.seen[w.id] {
		return
	}
	f.seen[w.id] = true
	if f.dst.Has(w.id) {
		f.st.Skipped++
		return
	}
	if w.t == object.TypeChunk {
		f.chunks = append(f.chunks, w)
		return
	}
	*next = append(*next, w)
}

func (f *fetcher) run(ctx context.Context, wants, haves []object.ID) error {
	var need []object.ID
	for _, id := range wants {
		if !f.dst.Has(id) && !f.seen[id] {
			f.seen[id] = true
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	var held []object.ID
	for _, id := range haves {
		if f.dst.Has(id) {
			held = append(held, id)
		}
	}

	// Commits: the peer walks its history down to what we hold.
	var level []want
	// Of each commit only its tree and parents are kept: a message is
	// dropped as soon as the commit is checked.
	type links struct {
		tree    object.ID
		parents []object.ID
	}
	commits := map[object.ID]*links{}
	err := f.p.Commits(ctx, need, held, func(id object.ID, r object.Raw) error {
		body, err := f.verify(want{id: id, t: object.TypeCommit}, id, r)
		if err != nil {
			return err
		}
		if f.dst.Has(id) || commits[id] != nil {
			return nil
		}
		if len(commits) >= MaxCommitsPerFetch {
			return fmt.Errorf("sent more than %d commits: %w", MaxCommitsPerFetch, ErrProtocol)
		}
		c, err := object.DecodeCommit(body)
		if err != nil {
			return fmt.Errorf("commit %s: %w (%w)", id.Short(), err, object.ErrCorrupt)
		}
		r = f.compact(r, body)
		if err := f.hold(r); err != nil {
			return err
		}
		commits[id] = &links{tree: c.Tree, parents: c.Parents}
		f.seen[id] = true
		f.meta[id] = &metaObj{raw: r, kids: append([]object.ID{c.Tree}, c.Parents...)}
		return nil
	})
	if err != nil {
		return err
	}
	// Each new tree's old version is its first parent's tree, when this
	// store holds the parent, or else that of its first own commit: the
	// version its files' new chunks are most likely edits of.
	oldTrees := map[object.ID]object.ID{}
	treeOf := func(id object.ID) object.ID {
		t, ok := oldTrees[id]
		if !ok {
			if c, err := f.dst.ReadCommit(id); err == nil {
				t = c.Tree
			}
			oldTrees[id] = t
		}
		return t
	}
	for id, c := range commits {
		var old object.ID
		for _, p := range c.parents {
			if commits[p] == nil && !f.dst.Has(p) {
				return fmt.Errorf("commit %s: parent %s was not sent: %w (%w)", id.Short(), p.Short(), ErrProtocol, object.ErrCorrupt)
			}
			if old.IsZero() && commits[p] == nil {
				old = treeOf(p)
			}
		}
		if old.IsZero() && len(held) > 0 {
			old = treeOf(held[0])
		}
		f.need(want{id: c.tree, t: object.TypeTree, old: old}, &level)
	}
	for _, id := range need {
		if commits[id] == nil {
			return fmt.Errorf("commit %s: %w there", id.Short(), object.ErrNotFound)
		}
	}

	if err := f.levels(ctx, level); err != nil {
		return err
	}
	if err := f.getChunks(ctx); err != nil {
		return err
	}
	return f.writeMeta(need)
}

// getChunks fetches the chunks found missing, from the peer or through
// the swarm.
func (f *fetcher) getChunks(ctx context.Context) error {
	var total int64
	for _, w := range f.chunks {
		total += w.size
	}
	f.prog.SetTotal(0, total)
	if f.swarm != nil {
		return f.swarm.fetch(ctx, f)
	}
	return f.fetchChunks(ctx)
}

// idsOf lists the IDs of ws, in order.
func idsOf(ws []want) []object.ID {
	ids := make([]object.ID, len(ws))
	for i, w := range ws {
		ids[i] = w.id
	}
	return ids
}

// levels fetches trees and files a level at a time, starting with level.
func (f *fetcher) levels(ctx context.Context, level []want) error {
	for len(level) > 0 {
		var next []want
		i := 0
		err := f.p.Get(ctx, idsOf(level), func(id object.ID, r object.Raw) error {
			if i >= len(level) {
				return fmt.Errorf("sent more objects than asked for: %w", ErrProtocol)
			}
			w := level[i]
			i++
			body, err := f.verify(w, id, r)
			if err != nil {
				return err
			}
			if err := f.addMeta(w, r, body, &next); err != nil {
				return fmt.Errorf("%s %s: %w (%w)", w.t, w.id.Short(), err, object.ErrCorrupt)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if i != len(level) {
			return fmt.Errorf("sent %d of %d objects: %w", i, len(level), ErrProtocol)
		}
		level = next
	}

	return nil
}

// Root is an object whose closure FetchClosure brings in: a tree or a file.
type Root struct {
	ID   object.ID
	Type object.Type
	// Old, when set, is an object of the same type the destination holds
	// that ID is likely a new version of (an artifact's previous
	// version): its files' chunks become the new chunks' delta bases.
	Old object.ID
}

// FetchClosure brings into dst the closure of roots (trees or files, not
// commits: a commit's closure is its whole history) from p, checked as
// Fetch checks everything, and makes it durable, metadata last. With a
// swarm, chunks come from every device the swarm finds, p included.
func FetchClosure(ctx context.Context, p Peer, dst *object.Store, roots []Root, sw *Swarm) (Stats, error) {
	f := &fetcher{p: p, dst: dst, seen: map[object.ID]bool{}, meta: map[object.ID]*metaObj{}, swarm: sw, prog: progressOf(ctx)}
	var level []want
	var ids []object.ID
	for _, r := range roots {
		if r.Type != object.TypeTree && r.Type != object.TypeFile {
			return Stats{}, fmt.Errorf("fetch the closure of a %s: only trees and files", r.Type)
		}
		w := want{id: r.ID, t: r.Type}
		if !r.Old.IsZero() && dst.Has(r.Old) {
			w.old = r.Old
		}
		f.need(w, &level)
		ids = append(ids, r.ID)
	}
	err := f.levels(ctx, level)
	if err == nil {
		err = f.getChunks(ctx)
	}
	if err == nil {
		err = f.writeMeta(ids)
	}
	if err != nil {
		err = fmt.Errorf("fetch from %s: %w", p, err)
	}
	return f.st, err
}

// hold counts r against MaxMetaPerFetch.
func (f *fetcher) hold(r object.Raw) error {
	f.held += int64(len(r.Data)) + 64
	if f.held > MaxMetaPerFetch {
		return fmt.Errorf("sent over %d MiB of commits, trees and files for one fetch: %w; fetch an older head first", MaxMetaPerFetch>>20, ErrProtocol)
	}
	return nil
}

// compact is r as it is held until written: compressed, if it came
// uncompressed (a peer that expanded it to walk history), so that what a
// fetch holds is what it will store, and a commit of zeros costs bytes.
func (f *fetcher) compact(r object.Raw, body []byte) object.Raw {
	if r.Comp == 0 && len(body) >= 4<<10 {
		return f.dst.Stored(r.Type, body)
	}
	return r
}

func (f *fetcher) addMeta(w want, r object.Raw, body []byte, next *[]want) error {
	r = f.compact(r, body)
	if err := f.hold(r); err != nil {
		return err
	}
	m := &metaObj{raw: r}
	switch w.t {
	case object.TypeTree:
		tr, err := object.DecodeTree(body)
		if err != nil {
			return err
		}
		old := f.oldEntries(w.old)
		for _, e := range tr.Entries {
			k := want{id: e.ID, t: kindOf(e.Kind), size: e.Size}
			if o, ok := old[e.Name]; ok && k.t != object.TypeChunk && kindOf(o.Kind) == k.t {
				k.old = o.ID // a folder's or a file's old version (exec bit or not)
			}
			f.need(k, next)
			m.kids = append(m.kids, e.ID)
		}
	case object.TypeFile:
		fl, err := object.DecodeFile(body)
		if err != nil {
			return err
		}
		var bases [][]deltaBase
		if !w.old.IsZero() {
			if old, err := f.dst.ReadFile(w.old); err == nil {
				bases = deltaBases(fl.Chunks, old.Chunks)
			}
		}
		for i, c := range fl.Chunks {
			k := want{id: c.ID, t: object.TypeChunk, size: c.Size}
			if bases != nil {
				k.bases = bases[i]
			}
			f.need(k, next)
		}
	}
	f.meta[w.id] = m
	return nil
}

// kindOf is the type of object an entry of kind k names.
func kindOf(k object.Kind) object.Type {
	switch k {
	case object.KindDir:
		return object.TypeTree
	case object.KindSymlink:
		return object.TypeChunk
	}
	return object.TypeFile
}

// oldEntries are the entries of tree id in the destination by name (none
// if id is zero or not there).
func (f *fetcher) oldEntries(id object.ID) map[string]object.Entry {
	if id.IsZero() {
		return nil
	}
	if m, ok := f.olds[id]; ok {
		return m
	}
	var m map[string]object.Entry
	if tr, err := f.dst.ReadTree(id); err == nil {
		m = make(map[string]object.Entry, len(tr.Entries))
		for _, e := range tr.Entries {
			m[e.Name] = e
		}
	}
	if len(f.olds) >= 64 { // a bound on what it holds; most hits are one tree
		clear(f.olds)
	}
	if f.olds == nil {
		f.olds = map[object.ID]map[string]object.Entry{}
	}
	f.olds[id] = m
	return m
}

// fetchChunks asks for the missing chunks in groups of about FlushEvery
// bytes, verifies and stores them on all cores while the next arrive, and
// makes each group durable before asking for the next.
func (f *fetcher) fetchChunks(ctx context.Context) error {
	for start := 0; start < len(f.chunks); {
		end, n := start, int64(0)
		for end < len(f.chunks) && (end == start || n+f.chunks[end].size <= FlushEvery) {
			n += f.chunks[end].size
			end++
		}
		if err := f.chunkGroup(ctx, f.chunks[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

type arrived struct {
	w   want
	id  object.ID
	raw object.Raw
}

func (f *fetcher) chunkGroup(ctx context.Context, group []want) error {
	b := f.dst.NewBatch()
	defer b.Abort()
	g, gctx := errgroup.WithContext(ctx)
	in := make(chan arrived, 4)
	var mu sync.Mutex
	for n := max(1, runtime.GOMAXPROCS(0)); n > 0; n-- {
		g.Go(func() error {
			for a := range in {
				body, err := f.verify(a.w, a.id, a.raw)
				if err != nil {
					return err
				}
				if err := b.PutRaw(a.id, f.storable(a.raw, body)); err != nil {
					return err
				}
				mu.Lock()
				f.st.Objects++
				f.st.Bytes += int64(len(a.raw.Data))
				mu.Unlock()
				f.prog.Add(0, a.w.size)
			}
			return nil
		})
	}
	i := 0
	got := func(id object.ID, r object.Raw) error {
		if i >= len(group) {
			return fmt.Errorf("sent more chunks than asked for: %w", ErrProtocol)
		}
		select {
		case in <- arrived{group[i], id, r}:
			i++
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}
	var getErr error
	if cp, ok := f.p.(chunkPeer); ok {
		_, getErr = cp.getChunks(gctx, group, got, false)
	} else {
		getErr = f.p.Get(gctx, idsOf(group), got)
	}
	close(in)
	werr := g.Wait()
	// A worker's verdict (a corrupt chunk) explains the cancellation the
	// reader then saw; report it first.
	if werr != nil {
		return werr
	}
	if getErr != nil {
		return getErr
	}
	if i != len(group) {
		return fmt.Errorf("sent %d of %d chunks: %w", i, len(group), ErrProtocol)
	}
	return b.Finish()
}

// writeMeta stores the received metadata children first, so that a store
// cut short by a crash never holds a tree without what is under it.
func (f *fetcher) writeMeta(roots []object.ID) error {
	b := f.dst.NewBatch()
	defer b.Abort()
	done := map[object.ID]bool{}
	type frame struct {
		id   object.ID
		kids []object.ID
		next int
	}
	for _, r := range roots {
		if f.meta[r] == nil || done[r] {
			continue
		}
		done[r] = true
		stack := []*frame{{id: r, kids: f.meta[r].kids}}
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.next < len(top.kids) {
				k := top.kids[top.next]
				top.next++
				if f.meta[k] != nil && !done[k] {
					done[k] = true
					stack = append(stack, &frame{id: k, kids: f.meta[k].kids})
				}
				continue
			}
			m := f.meta[top.id]
			if err := b.PutRaw(top.id, m.raw); err != nil {
				return err
			}
			f.st.Objects++
			f.st.Bytes += int64(len(m.raw.Data))
			stack = stack[:len(stack)-1]
		}
	}
	if len(done) != len(f.meta) {
		// Commits the peer sent beyond what was asked are simply not kept.
		for id, m := range f.meta {
			if !done[id] && m.raw.Type != object.TypeCommit {
				return fmt.Errorf("internal error: %s %s received but not reachable", m.raw.Type, id.Short())
			}
		}
	}
	return b.Finish()
}

// isPeerFault reports whether err means the peer misbehaved (as opposed
// to our disk or our context), for callers that drop such peers.
func isPeerFault(err error) bool {
	return errors.Is(err, object.ErrCorrupt) || errors.Is(err, ErrProtocol)
}
