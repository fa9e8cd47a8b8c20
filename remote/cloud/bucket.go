package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Bucket is a mesh's bucket, opened with its secret: a peer to fetch from
// (remote.Peer) and to push to.
type Bucket struct {
	st    Store
	keys  *Keys
	cache string // local directory: indexes as downloaded, refs seen

	mu      sync.Mutex
	listed  bool            // the indexes were listed since the refs were read
	loaded  map[string]bool // packs whose index is read
	objects map[object.ID]located
	// Rollbacks name the refs the bucket holds at a lower sequence
	// number than this device saw before; the head seen before is used.
	Rollbacks []string
	// refusedRefs and refusedIndexes name the refs (as of the last Refs)
	// and indexes that do not open or check out: see Refused.
	refusedRefs, refusedIndexes []string
	// Local, when set, is the reader's store: the bases of a delta come
	// from it when it has them, else from the bucket.
	Local *object.Store
	// read counts the bytes of sealed records read.
	read atomic.Int64
}

// Refused names the refs and indexes that do not open or check out
// (damaged, moved, or written by a member that lies): they are left out,
// and the rest is used, so one bad object stops no one.
func (b *Bucket) Refused() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(slices.Clone(b.refusedRefs), b.refusedIndexes...)
}

// BytesRead is the bytes of objects read from the bucket so far, as
// stored there (sealed, compressed, or as deltas).
func (b *Bucket) BytesRead() int64 { return b.read.Load() }

type located struct {
	pack string
	e    indexEntry
}

// Open opens the bucket st for a mesh with secret, keeping what it
// learns in the directory cache.
func Open(st Store, secret []byte, cache string) (*Bucket, error) {
	k, err := NewKeys(secret)
	if err != nil {
		return nil, err
	}
	return &Bucket{st: st, keys: k, cache: cache, loaded: map[string]bool{}, objects: map[object.ID]located{}}, nil
}

func (b *Bucket) String() string { return b.st.String() }

const (
	configKey   = "mesh"
	packsDir    = "packs/"
	indexesDir  = "indexes/"
	devicesDir  = "devices/"
	configPlain = `{"format":1}`
)

// checkConfig opens the bucket's format object, writing it when create
// is set and the bucket has none.
func (b *Bucket) checkConfig(ctx context.Context, create bool) (exists bool, err error) {
	sealed, err := b.st.Get(ctx, configKey)
	if errors.Is(err, ErrNoObject) {
		if !create {
			return false, nil
		}
		s := b.keys.seal(nil, []byte("config"), []byte(configPlain))
		return true, b.st.Put(ctx, configKey, strings.NewReader(string(s)), int64(len(s)))
	}
	if err != nil {
		return false, err
	}
	plain, err := b.keys.open(nil, []byte("config"), sealed)
	if err != nil {
		return true, fmt.Errorf("%s holds another mesh's data, or this mesh's secret is not the one it was written with, or its %s object is damaged: it does not open (%w)", b, configKey, err)
	}
	var c struct{ Format int }
	if json.Unmarshal(plain, &c) != nil || c.Format != 1 {
		return true, fmt.Errorf("%s: format %q is not one this mesh reads: %w", b, plain, ErrBadObject)
	}
	return true, nil
}

// load reads the indexes of the packs not read yet. The indexes are
// listed once after each reading of the refs: a ref names only what was
// indexed before it was written.
func (b *Bucket) load(ctx context.Context) error {
	b.mu.Lock()
	listed := b.listed
	b.mu.Unlock()
	if listed {
		return nil
	}
	list, err := b.st.List(ctx, indexesDir)
	if err != nil {
		return err
	}
	for _, in := range list {
		name := strings.TrimPrefix(in.Key, indexesDir)
		b.mu.Lock()
		done := b.loaded[name]
		b.mu.Unlock()
		if done || !validName(name) {
			continue
		}
		es, err := b.readIndex(ctx, name)
		if errors.Is(err, ErrSealed) || errors.Is(err, ErrBadObject) {
			// Its pack counts as unindexed: what only it holds is
			// missing, and a fetch that needs it says so.
			b.mu.Lock()
			b.loaded[name] = true
			b.refusedIndexes = append(b.refusedIndexes, err.Error())
			b.mu.Unlock()
			continue
		}
		if err != nil {
			return err
		}
		b.index(name, es)
	}
	b.mu.Lock()
	b.listed = true
	b.mu.Unlock()
	return nil
}

// index takes in pack name's entries (an object in several packs stays
// where it was found first).
func (b *Bucket) index(name string, es []indexEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range es {
		if _, ok := b.objects[e.ID]; !ok {
			b.objects[e.ID] = located{name, e}
		}
	}
	b.loaded[name] = true
}

func validName(n string) bool {
	if len(n) != 32 {
		return false
	}
	for _, c := range n {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// readIndex reads pack name's index, from the cache when there (an index
// never changes) or the bucket.
func (b *Bucket) readIndex(ctx context.Context, name string) ([]indexEntry, error) {
	cached := filepath.Join(b.cache, "indexes", name)
	sealed, err := os.ReadFile(cached)
	fromCache := err == nil
	if !fromCache {
		if sealed, err = b.st.Get(ctx, indexesDir+name); err != nil {
			return nil, err
		}
	}
	plain, err := b.keys.open(nil, []byte("index\x00"+name), sealed)
	if err == nil {
		var es []indexEntry
		if es, err = decodeIndex(plain); err == nil {
			if !fromCache {
				os.MkdirAll(filepath.Dir(cached), 0o755)
				object.WriteFileAtomic(cached, sealed, 0o644, false)
			}
			return es, nil
		}
	}
	if fromCache {
		os.Remove(cached) // damaged here: read it from the bucket
		return b.readIndex(ctx, name)
	}
	return nil, fmt.Errorf("%s/%s%s: %w", b, indexesDir, name, err)
}

// Has reports whether the bucket holds id, as of the last load.
func (b *Bucket) has(id object.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.objects[id]
	return ok
}

// find is where, listing the indexes again when id is not in those
// read: a push may have indexed it since.
func (b *Bucket) find(ctx context.Context, id object.ID) (located, bool, error) {
	if l, ok := b.where(id); ok {
		return l, true, nil
	}
	b.mu.Lock()
	b.listed = false
	b.mu.Unlock()
	if err := b.load(ctx); err != nil {
		return located{}, false, err
	}
	l, ok := b.where(id)
	return l, ok, nil
}

func (b *Bucket) where(id object.ID) (located, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.objects[id]
	return l, ok
}

// refKey is where a device keeps its ref of branch.
func (b *Bucket) refKey(device, branch string) string {
	return devicesDir + b.keys.name("device", device) + "/" + b.keys.name("ref", device, branch)
}

// seenRef is what this device last saw of a ref.
type seenRef struct {
	Seq    uint64    `json:"seq"`
	Commit object.ID `json:"commit"`
}

func (b *Bucket) seenFile() string { return filepath.Join(b.cache, "seen.json") }

func (b *Bucket) loadSeen() map[string]seenRef {
	m := map[string]seenRef{}
	if data, err := os.ReadFile(b.seenFile()); err == nil {
		json.Unmarshal(data, &m)
	}
	return m
}

func (b *Bucket) saveSeen(m map[string]seenRef) error {
	data, _ := json.MarshalIndent(m, "", "  ")
	os.MkdirAll(b.cache, 0o755)
	return object.WriteFileAtomic(b.seenFile(), data, 0o644, true)
}

// Refs reads every device's refs, each checked: sealed under its own key,
// signed by its device, and not older than what was seen before.
func (b *Bucket) Refs(ctx context.Context) (map[string]*Ref, error) {
	if _, err := b.checkConfig(ctx, false); err != nil {
		return nil, err
	}
	list, err := b.st.List(ctx, devicesDir)
	if err != nil {
		return nil, err
	}
	seen := b.loadSeen()
	out := map[string]*Ref{}
	b.Rollbacks = nil
	b.mu.Lock()
	b.listed = false
	b.refusedRefs = nil
	b.mu.Unlock()
	refuse := func(err error) {
		b.mu.Lock()
		b.refusedRefs = append(b.refusedRefs, err.Error())
		b.mu.Unlock()
	}
	changed := false
	for _, in := range list {
		sealed, err := b.st.Get(ctx, in.Key)
		if errors.Is(err, ErrNoObject) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		plain, err := b.keys.open(nil, []byte("ref\x00"+in.Key), sealed)
		if err != nil {
			refuse(fmt.Errorf("%s/%s: %w", b, in.Key, err))
			continue
		}
		r, err := decodeRef(plain)
		if err != nil {
			refuse(fmt.Errorf("%s/%s: %w", b, in.Key, err))
			continue
		}
		if b.refKey(r.Device, r.Branch) != in.Key {
			refuse(fmt.Errorf("%s/%s: holds the ref of device %s, branch %s, which belongs elsewhere: %w", b, in.Key, r.Device, r.Branch, ErrBadObject))
			continue
		}
		name := r.Device + "/" + r.Branch
		if s, ok := seen[name]; ok && (r.Seq < s.Seq || r.Seq == s.Seq && r.Commit != s.Commit) {
			b.Rollbacks = append(b.Rollbacks, fmt.Sprintf("device %s, branch %s: the bucket holds push %d (%s), this device saw push %d (%s) before; kept %s", r.Device, r.Branch, r.Seq, r.Commit.Short(), s.Seq, s.Commit.Short(), s.Commit.Short()))
			r.Seq, r.Commit = s.Seq, s.Commit
		} else if !ok || r.Seq > s.Seq {
			seen[name] = seenRef{r.Seq, r.Commit}
			changed = true
		}
		out[name] = r
	}
	if changed {
		if err := b.saveSeen(seen); err != nil {
			return nil, err
		}
	}
	sort.Strings(b.Rollbacks)
	return out, nil
}

// ListRefs gives every device's heads as devices/<device>/<branch>.
func (b *Bucket) ListRefs(ctx context.Context) (map[string]object.ID, error) {
	refs, err := b.Refs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]object.ID{}
	for name, r := range refs {
		out[devicesDir+name] = r.Commit
	}
	return out, nil
}

var decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxObject), zstd.WithDecoderConcurrency(1))

// Commits sends every commit reachable from wants and not from haves.
// A push writes its commits last and together, so a pack's are read with
// one ranged GET.
func (b *Bucket) Commits(ctx context.Context, wants, haves []object.ID, fn remote.ObjectFunc) error {
	if err := b.load(ctx); err != nil {
		return err
	}
	stop := map[object.ID]bool{}
	for _, h := range haves {
		stop[h] = true
	}
	read := map[string]map[object.ID]object.Raw{} // commits by pack
	stack := slices.Clone(wants)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if stop[id] {
			continue
		}
		stop[id] = true
		l, ok, err := b.find(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("commit %s: %w in %s", id.Short(), object.ErrNotFound, b)
		}
		if read[l.pack] == nil {
			cs, err := b.packCommits(ctx, l.pack)
			if err != nil {
				return err
			}
			read[l.pack] = cs
		}
		raw, ok := read[l.pack][id]
		if !ok || raw.Type != object.TypeCommit {
			return fmt.Errorf("commit %s: %s's index names it, its pack does not hold it: %w", id.Short(), b, ErrBadObject)
		}
		if err := fn(id, raw); err != nil {
			return err
		}
		body, err := expand(raw)
		if err != nil {
			return fmt.Errorf("commit %s: %v: %w", id.Short(), err, object.ErrCorrupt)
		}
		c, err := object.DecodeCommit(body)
		if err != nil {
			return fmt.Errorf("commit %s: %w (%w)", id.Short(), err, object.ErrCorrupt)
		}
		stack = append(stack, c.Parents...)
	}
	return nil
}

// packCommits reads the commits of a pack.
func (b *Bucket) packCommits(ctx context.Context, pack string) (map[object.ID]object.Raw, error) {
	es, err := b.readIndex(ctx, pack)
	if err != nil {
		return nil, err
	}
	var commits []indexEntry
	for _, e := range es {
		if e.Type == object.TypeCommit {
			commits = append(commits, e)
		}
	}
	out := map[object.ID]object.Raw{}
	return out, b.readRuns(ctx, pack, commits, func(e indexEntry, r object.Raw) error {
		out[e.ID] = r
		return nil
	})
}

// Reads of one pack are merged into one ranged GET when the gap between
// them is at most maxGap and the whole at most maxSpan.
const (
	maxGap  = 256 << 10
	maxSpan = 8 << 20
)

// readRuns reads es (of one pack, in the order given) with as few GETs as
// their offsets allow, calling fn for each in order.
func (b *Bucket) readRuns(ctx context.Context, pack string, es []indexEntry, fn func(indexEntry, object.Raw) error) error {
	return b.readAll(ctx, splitRuns(pack, es), fn)
}

// run is objects of one pack read with one ranged GET.
type run struct {
	pack       string
	es         []indexEntry
	start, end int64
}

// splitRuns groups es (of one pack, in order) into runs.
func splitRuns(pack string, es []indexEntry) []run {
	var out []run
	for i := 0; i < len(es); {
		j, start, end := i+1, es[i].Off, es[i].Off+int64(es[i].Len)
		for j < len(es) && es[j].Off >= end && es[j].Off-end <= maxGap && es[j].Off+int64(es[j].Len)-start <= maxSpan {
			end = es[j].Off + int64(es[j].Len)
			j++
		}
		out = append(out, run{pack, es[i:j], start, end})
		i = j
	}
	return out
}

// readAhead is how many runs are read at once, ahead of the one being
// opened: the server's and the network's latency overlap the decryption
// and the checks (memory: readAhead × maxSpan).
const readAhead = 4

// readAll reads runs, readAhead at a time, and calls fn for each object
// in order.
func (b *Bucket) readAll(ctx context.Context, runs []run, fn func(indexEntry, object.Raw) error) error {
	if len(runs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type got struct {
		data []byte
		err  error
	}
	results := make([]chan got, len(runs))
	for i := range results {
		results[i] = make(chan got, 1)
	}
	slots := make(chan struct{}, readAhead)
	go func() {
		for i, r := range runs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := b.st.GetRange(ctx, packsDir+r.pack, r.start, r.end-r.start)
				results[i] <- got{data, err}
			}()
		}
	}()
	for i, r := range runs {
		var g got
		select {
		case g = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if g.err != nil {
			return g.err
		}
		if err := b.openRun(ctx, r, g.data, fn); err != nil {
			return err
		}
	}
	return nil
}

// openRun opens the objects of r from data, what its GET read.
func (b *Bucket) openRun(ctx context.Context, r run, data []byte, fn func(indexEntry, object.Raw) error) error {
	for _, e := range r.es {
		sealed := data[e.Off-r.start : e.Off-r.start+int64(e.Len)]
		plain, err := b.keys.open(nil, objectAD(e.ID, e.Type, e.Comp), sealed)
		if err != nil {
			return fmt.Errorf("object %s in %s/%s%s: %w", e.ID.Short(), b, packsDir, r.pack, err)
		}
		b.read.Add(int64(e.Len))
		raw := object.Raw{Type: e.Type, Comp: e.Comp, Size: int(e.Size), Data: plain}
		if e.Comp == compDelta {
			// Expanded here: the bases are this reader's or the
			// bucket's; the receiver checks the hash as always.
			body, err := b.undelta(ctx, e, plain)
			if err != nil {
				return fmt.Errorf("chunk %s in %s/%s%s: %w", e.ID.Short(), b, packsDir, r.pack, err)
			}
			raw = object.Raw{Type: e.Type, Size: len(body), Data: body}
		}
		if err := fn(e, raw); err != nil {
			return err
		}
	}
	return nil
}

// undelta expands the delta data of e against its bases.
func (b *Bucket) undelta(ctx context.Context, e indexEntry, data []byte) ([]byte, error) {
	dict, err := remote.DeltaDict(e.Bases, func(id object.ID) ([]byte, error) { return b.baseBody(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("the bases of a delta: %w", err)
	}
	body, err := remote.ExpandDelta(data, int(e.Size), dict)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", err, object.ErrCorrupt)
	}
	return body, nil
}

// baseBody is chunk id, a delta's base: from the reader's store when it
// has it, else from the bucket, where it is whole; checked either way.
func (b *Bucket) baseBody(ctx context.Context, id object.ID) ([]byte, error) {
	if b.Local != nil && b.Local.Has(id) {
		if body, err := b.Local.ReadChunk(id); err == nil {
			return body, nil
		}
	}
	l, ok := b.where(id)
	if !ok || l.e.Comp == compDelta || l.e.Type != object.TypeChunk {
		return nil, fmt.Errorf("base %s: %w as a whole chunk in %s", id.Short(), object.ErrNotFound, b)
	}
	var body []byte
	err := b.readRuns(ctx, l.pack, []indexEntry{l.e}, func(e indexEntry, r object.Raw) error {
		var err error
		if body, err = expand(r); err == nil && object.Hash(object.TypeChunk, body) != id {
			err = fmt.Errorf("base %s: content does not match its ID: %w", id.Short(), object.ErrCorrupt)
		}
		return err
	})
	return body, err
}

// objectAD binds a sealed object to its ID, type and compression.
func objectAD(id object.ID, t object.Type, comp uint8) []byte {
	return append(append([]byte("object\x00"), id[:]...), byte(t), comp)
}

// Get sends each of ids, in order, each run of neighbours in a pack read
// with one ranged GET.
func (b *Bucket) Get(ctx context.Context, ids []object.ID, fn remote.ObjectFunc) error {
	if err := b.load(ctx); err != nil {
		return err
	}
	var runs []run
	for i := 0; i < len(ids); {
		l, ok, err := b.find(ctx, ids[i])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("object %s: %w in %s", ids[i].Short(), object.ErrNotFound, b)
		}
		r := run{pack: l.pack, es: []indexEntry{l.e}, start: l.e.Off, end: l.e.Off + int64(l.e.Len)}
		j := i + 1
		for ; j < len(ids); j++ {
			n, ok := b.where(ids[j])
			if !ok || n.pack != l.pack || n.e.Off < r.end || n.e.Off-r.end > maxGap || n.e.Off+int64(n.e.Len)-r.start > maxSpan {
				break
			}
			r.es = append(r.es, n.e)
			r.end = n.e.Off + int64(n.e.Len)
		}
		runs = append(runs, r)
		i = j
	}
	return b.readAll(ctx, runs, func(e indexEntry, r object.Raw) error { return fn(e.ID, r) })
}

// PushResult says what a push wrote.
type PushResult struct {
	remote.Stats
	Pack     string `json:"pack,omitempty"` // the last one written
	Packs    int    `json:"packs"`
	UpToDate bool   `json:"upToDate"`
	Seq      uint64 `json:"seq"`
}

// typeOrder is the order a push writes objects in: what others name
// before what names them, so that every pack, once finished, holds the
// closure of its objects.
var typeOrder = map[object.Type]int{object.TypeChunk: 0, object.TypeFile: 1, object.TypeTree: 2, object.TypeCommit: 3}

// MaxPack bounds the objects of one pack, in bytes: the most a push cut
// short has to send again.
var MaxPack int64 = 128 << 20

// Push writes what the bucket lacks of head's closure from local as one
// pack and its index, then this device's ref of branch at head.
func (b *Bucket) Push(ctx context.Context, local *object.Store, id *remote.Identity, branch string, head object.ID) (*PushResult, error) {
	refs, err := b.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	return b.PushBranch(ctx, refs, local, id, branch, head)
}

// Prepare readies the bucket for pushes, writing its format object if it
// has none, and reads the refs they go on from.
func (b *Bucket) Prepare(ctx context.Context) (map[string]*Ref, error) {
	if _, err := b.checkConfig(ctx, true); err != nil {
		return nil, err
	}
	return b.Refs(ctx)
}

// PushBranch is Push of one branch, on the refs Prepare read: a device
// pushing several branches reads the bucket's refs once.
func (b *Bucket) PushBranch(ctx context.Context, refs map[string]*Ref, local *object.Store, id *remote.Identity, branch string, head object.ID) (*PushResult, error) {
	me := id.ID.String()
	res := &PushResult{}
	var seq uint64
	if r, ok := refs[me+"/"+branch]; ok {
		seq = r.Seq
		if r.Commit == head {
			res.UpToDate, res.Seq = true, r.Seq
			return res, nil
		}
	}
	if s, ok := b.loadSeen()[me+"/"+branch]; ok && s.Seq > seq {
		seq = s.Seq
	}
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	missing, prev, err := b.missingWithOld(local, head)
	if err != nil {
		return nil, err
	}
	deltas := b.deltaPlan(local, prev)
	// Packs of at most MaxPack bytes, leaves first: each one finished
	// holds the closure of all it names (with what was there before), so
	// a push cut short and run again sends only what no finished pack
	// holds.
	for len(missing) > 0 {
		n, size := 0, int64(0)
		for n < len(missing) && (n == 0 || size+missing[n].size <= MaxPack) {
			size += missing[n].size
			n++
		}
		name, st, err := b.writePackDeltas(ctx, local, missing[:n], deltas)
		res.Objects += st.Objects
		res.Bytes += st.Bytes
		if err != nil {
			return res, err
		}
		res.Pack, res.Packs = name, res.Packs+1
		missing = missing[n:]
	}
	ref := &Ref{Device: me, Branch: branch, Commit: head, Seq: seq + 1, Time: time.Now().Unix()}
	ref.sign(id.Key)
	plain, _ := json.Marshal(ref)
	key := b.refKey(me, branch)
	sealed := b.keys.seal(nil, []byte("ref\x00"+key), plain)
	if err := b.st.Put(ctx, key, strings.NewReader(string(sealed)), int64(len(sealed))); err != nil {
		return nil, err
	}
	seen := b.loadSeen()
	seen[me+"/"+branch] = seenRef{ref.Seq, head}
	res.Seq = ref.Seq
	return res, b.saveSeen(seen)
}

// pushed is an object a push sends.
type pushed struct {
	id   object.ID
	t    object.Type
	size int64 // expanded
}

// missing lists what head's closure has that the bucket lacks. An object
// the bucket holds has its closure there too: a push writes closures.
func (b *Bucket) missing(local *object.Store, head object.ID) ([]pushed, error) {
	out, _, err := b.missingWithOld(local, head)
	return out, err
}

// missingWithOld is missing, also giving for each new file the file at
// the same path in its commit's first parent (the version its chunks
// are likely edits of), where there is one.
func (b *Bucket) missingWithOld(local *object.Store, head object.ID) ([]pushed, map[object.ID]object.ID, error) {
	type item struct{ id, old object.ID }
	var out []pushed
	prev := map[object.ID]object.ID{}
	seen := map[object.ID]bool{}
	stack := []item{{id: head}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		id := it.id
		if seen[id] || b.has(id) {
			continue
		}
		seen[id] = true
		t, size, err := local.Stat(id)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, pushed{id, t, size})
		if t == object.TypeChunk {
			continue
		}
		_, body, err := local.Get(id)
		if err != nil {
			return nil, nil, err
		}
		corrupt := func(err error) error { return fmt.Errorf("object %s: %w (%w)", id.Short(), err, object.ErrCorrupt) }
		var kids []item
		switch t {
		case object.TypeCommit:
			c, err := object.DecodeCommit(body)
			if err != nil {
				return nil, nil, corrupt(err)
			}
			var oldTree object.ID
			if len(c.Parents) > 0 {
				if pc, err := local.ReadCommit(c.Parents[0]); err == nil {
					oldTree = pc.Tree
				}
			}
			kids = append(kids, item{c.Tree, oldTree})
			for _, p := range c.Parents {
				kids = append(kids, item{id: p})
			}
		case object.TypeTree:
			tr, err := object.DecodeTree(body)
			if err != nil {
				return nil, nil, corrupt(err)
			}
			var ot *object.Tree
			if !it.old.IsZero() {
				ot, _ = local.ReadTree(it.old)
			}
			for _, e := range tr.Entries {
				k := item{id: e.ID}
				if ot != nil {
					if oe, ok := ot.Find(e.Name); ok && (oe.Kind == object.KindDir) == (e.Kind == object.KindDir) {
						k.old = oe.ID
					}
				}
				kids = append(kids, k)
			}
		default:
			if !it.old.IsZero() && t == object.TypeFile {
				prev[id] = it.old
			}
			ids, err := object.Children(t, body)
			if err != nil {
				return nil, nil, corrupt(err)
			}
			for _, k := range ids {
				kids = append(kids, item{id: k})
			}
		}
		// Taken off the stack in their own order: a file's chunks
		// land in the pack as the file has them, so one ranged GET
		// reads a run of them.
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return typeOrder[out[i].t] < typeOrder[out[j].t] })
	return out, prev, nil
}

// deltaPlan gives the new chunks of the files in prev the bases of the
// old versions' chunks they may be sent as deltas against: only bases
// the bucket holds whole, so a reader needs nothing more.
func (b *Bucket) deltaPlan(local *object.Store, prev map[object.ID]object.ID) map[object.ID][]remote.DeltaBase {
	plan := map[object.ID][]remote.DeltaBase{}
	for nf, of := range prev {
		nw, err1 := local.ReadFile(nf)
		old, err2 := local.ReadFile(of)
		if err1 != nil || err2 != nil {
			continue
		}
		for i, bases := range remote.DeltaBases(nw.Chunks, old.Chunks) {
			ok := len(bases) > 0
			for _, base := range bases {
				l, in := b.where(base.ID)
				ok = ok && in && l.e.Comp != compDelta && l.e.Type == object.TypeChunk
			}
			if ok && !b.has(nw.Chunks[i].ID) {
				plan[nw.Chunks[i].ID] = bases
			}
		}
	}
	return plan
}

// writePack streams objects into a new pack, each sealed on its own,
// then writes its index: only then does the pack count.
func (b *Bucket) writePack(ctx context.Context, local *object.Store, objs []pushed) (string, remote.Stats, error) {
	return b.writePackDeltas(ctx, local, objs, nil)
}

// sealedDelta is chunk id as a delta against bases, when that is clearly
// smaller than raw, the chunk as stored.
func sealedDelta(local *object.Store, id object.ID, raw object.Raw, bases []remote.DeltaBase) ([]byte, bool) {
	if len(bases) == 0 || raw.Size < 4<<10 {
		return nil, false
	}
	body, err := local.ReadChunk(id)
	if err != nil {
		return nil, false
	}
	dict, err := remote.DeltaDict(bases, local.ReadChunk)
	if err != nil {
		return nil, false
	}
	d, err := remote.EncodeDelta(body, dict)
	if err != nil || len(d) > len(raw.Data)*3/4 {
		return nil, false
	}
	return d, true
}

// writePackDeltas is writePack sending the chunks deltas plans as deltas
// where that pays.
func (b *Bucket) writePackDeltas(ctx context.Context, local *object.Store, objs []pushed, deltas map[object.ID][]remote.DeltaBase) (string, remote.Stats, error) {
	return b.upload(ctx, len(objs), func(emit func(indexEntry, []byte) error) error {
		for _, o := range objs {
			raw, err := local.GetRaw(o.id)
			if err != nil {
				return err
			}
			e := indexEntry{ID: o.id, Type: raw.Type, Comp: raw.Comp, Size: uint32(raw.Size)}
			data := raw.Data
			if d, ok := sealedDelta(local, o.id, raw, deltas[o.id]); ok {
				e.Comp, e.Bases, data = compDelta, deltas[o.id], d
			}
			if err := emit(e, data); err != nil {
				return err
			}
		}
		return nil
	})
}

// upload writes a new pack of the n objects produce emits (each an
// entry, without its place, and its stored bytes), sealing each as it
// streams, then the pack's index: only then does the pack count.
func (b *Bucket) upload(ctx context.Context, n int, produce func(emit func(indexEntry, []byte) error) error) (string, remote.Stats, error) {
	name := randomName()
	var st remote.Stats
	entries := make([]indexEntry, 0, n)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var off int64
		var buf []byte
		err := produce(func(e indexEntry, data []byte) error {
			buf = b.keys.seal(buf[:0], objectAD(e.ID, e.Type, e.Comp), data)
			if _, err := pw.Write(buf); err != nil {
				return err
			}
			e.Off, e.Len = off, uint32(len(buf))
			entries = append(entries, e)
			off += int64(len(buf))
			st.Objects++
			st.Bytes += int64(len(buf))
			return nil
		})
		pw.CloseWithError(err) // nil: the end of the pack
	}()
	err := b.st.Put(ctx, packsDir+name, pr, -1)
	pr.CloseWithError(errors.New("upload ended"))
	<-done
	if err != nil {
		return "", st, err
	}
	if len(entries) != n {
		return "", st, fmt.Errorf("%s: the pack's upload ended after %d of %d objects", b, len(entries), n)
	}
	sealed := b.keys.seal(nil, []byte("index\x00"+name), encodeIndex(entries))
	if err := b.st.Put(ctx, indexesDir+name, strings.NewReader(string(sealed)), int64(len(sealed))); err != nil {
		return "", st, err
	}
	b.index(name, entries)
	return name, st, nil
}
