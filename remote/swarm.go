package remote

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// Swarm spreads the chunks of one fetch over every device that holds, or
// is itself fetching, the same commit, the way Kraken and Dragonfly spread
// image layers: the source's tracker names them, each is asked which of
// the missing chunks it has, and chunks no other device has yet come from
// the source. So a publisher sends each chunk about once however many
// runners fetch at the same time. A device that fails, stalls or sends
// anything that does not hash to its ID is dropped and its chunks are
// fetched elsewhere.
type Swarm struct {
	Auth *Auth
	// Source serves everything and keeps the tracker.
	Source *Conn
	// Commits are what the swarm is fetching, the tracker's keys: one
	// artifact version for a get, the wanted heads for a fetch (the
	// first maxSwarmCommits are asked about).
	Commits []object.ID
	// Advertise is where this device serves what it holds ("": it does not).
	Advertise string
	// MaxPeers bounds the devices fetched from besides the source (8).
	MaxPeers int
	// Batch is the bytes asked of one device at once (4 MiB).
	Batch int64
	// Flush is the bytes received between making chunks durable
	// (FlushEvery). While this device serves (Advertise), what arrives
	// is passed on before that, from the unfinished pack (a readable
	// batch), so the others need not wait for an fsync.
	Flush int64
	// Poll is how long a device with nothing wanted waits to ask again.
	Poll time.Duration
	// MinBytes: with fewer bytes of chunks missing than this, they all
	// come from the source, with no tracker or other device involved (a
	// daemon fetching an edit to a text file).
	MinBytes int64
	Log      *slog.Logger

	mu       sync.Mutex
	received map[string]int64
	dropped  map[string]string
}

// Received is the bytes received from each device (by device ID).
func (sw *Swarm) Received() map[string]int64 {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return maps.Clone(sw.received)
}

// Dropped says which devices were dropped, and why.
func (sw *Swarm) Dropped() map[string]string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return maps.Clone(sw.dropped)
}

func (sw *Swarm) defaults() {
	if sw.MaxPeers <= 0 {
		sw.MaxPeers = 8
	}
	if sw.Batch <= 0 {
		sw.Batch = 4 << 20
	}
	if sw.Flush <= 0 {
		sw.Flush = FlushEvery
	}
	if sw.Poll <= 0 {
		sw.Poll = 200 * time.Millisecond
	}
	if sw.Log == nil {
		sw.Log = slog.New(slog.DiscardHandler)
	}
	sw.mu.Lock()
	if sw.received == nil {
		sw.received, sw.dropped = map[string]int64{}, map[string]string{}
	}
	sw.mu.Unlock()
}

// swarmRun is one swarm fetch's state.
type swarmRun struct {
	sw *Swarm
	f  *fetcher

	mu       sync.Mutex
	pending  map[object.ID]want  // not held, not asked for
	inflight map[object.ID]claim // asked for
	// progress is when each device was last given a batch or sent a
	// chunk; busy, whether it has a batch now; handing, whether a chunk
	// of it waits for a verifier (this side is the slow one: its socket
	// is not read meanwhile); conns, its connection.
	progress map[string]time.Time
	busy     map[string]bool
	handing  map[string]bool
	conns    map[string]*Conn
	left     int // not yet stored
	has      map[string]map[object.ID]bool
	live     map[string]bool // devices with a running worker
	finished chan struct{}

	bmu        sync.RWMutex // PutRaw under R, swapping the batch under W
	batch      *object.Batch
	batchBytes int64

	verify chan arrivedFrom
	fatal  chan error
}

// claim is a chunk asked of a device.
type claim struct {
	w     want
	dev   string
	since time.Time
}

// A device that has a batch and sends nothing for stallAfter hangs: it is
// dropped and its chunks go back (dropStalled). In the end game, a chunk
// on its way from another device for slowAfter (it crawls) is asked of
// the source too. Shorter waits re-send on a shared link what is merely
// queued behind other chunks, on the link that is the swarm's bottleneck.
var (
	stallAfter = 3 * time.Second
	slowAfter  = 10 * time.Second
)

type arrivedFrom struct {
	dev string
	arrived
}

const sourceName = "source"

// maxSwarmCommits bounds the commits a swarm asks the tracker about.
const maxSwarmCommits = 8

func (sw *Swarm) fetch(ctx context.Context, f *fetcher) error {
	if len(f.chunks) == 0 {
		return nil
	}
	sw.defaults()
	if sw.MinBytes > 0 {
		var n int64
		for _, w := range f.chunks {
			n += w.size
		}
		if n < sw.MinBytes {
			st := f.st
			err := f.fetchChunks(ctx)
			sw.mu.Lock()
			sw.received[sourceName] += f.st.Bytes - st.Bytes
			sw.mu.Unlock()
			return err
		}
	}
	r := &swarmRun{
		sw: sw, f: f, pending: map[object.ID]want{}, inflight: map[object.ID]claim{}, progress: map[string]time.Time{},
		busy: map[string]bool{}, handing: map[string]bool{}, conns: map[string]*Conn{},
		has: map[string]map[object.ID]bool{}, live: map[string]bool{},
		finished: make(chan struct{}),
		verify:   make(chan arrivedFrom, 16), fatal: make(chan error, 1),
	}
	r.batch = r.newBatch()
	for _, w := range f.chunks {
		r.pending[w.id] = w
	}
	r.left = len(r.pending)
	defer func() { r.batch.Abort() }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var verifiers sync.WaitGroup
	for n := max(1, runtime.GOMAXPROCS(0)); n > 0; n-- {
		verifiers.Add(1)
		go func() {
			defer verifiers.Done()
			for a := range r.verify {
				r.store(a)
			}
		}()
	}
	var workers sync.WaitGroup
	workers.Add(2)
	go func() { defer workers.Done(); r.sourceWorker(ctx) }()
	go func() { defer workers.Done(); r.trackerLoop(ctx, &workers) }()

	var err error
	select {
	case <-r.finished:
	case err = <-r.fatal:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	workers.Wait()
	close(r.verify)
	verifiers.Wait()
	if err == nil {
		select {
		case err = <-r.fatal:
		default:
		}
	}
	if err != nil {
		return err
	}
	r.bmu.Lock()
	defer r.bmu.Unlock()
	return r.batch.Finish()
}

// newBatch is where arriving chunks go: readable by this device's server
// before it is finished when there is one.
func (r *swarmRun) newBatch() *object.Batch {
	if r.sw.Advertise != "" {
		return r.f.dst.NewReadableBatch()
	}
	return r.f.dst.NewBatch()
}

func (r *swarmRun) fail(err error) {
	select {
	case r.fatal <- err:
	default:
	}
}

func (r *swarmRun) done() bool {
	select {
	case <-r.finished:
		return true
	default:
		return false
	}
}

// claim takes for dev up to Batch bytes of pending chunks that ok allows,
// in map order: a random scatter, each device its own. (Runs in order from
// a random start were tried: two devices asking the source at one speed
// meet, then ask it for the same chunks side by side to the end: in
// meshbench fanoutlab the source sent 2.5 copies instead of 1.4.)
func (r *swarmRun) claim(dev string, ok func(object.ID) bool) []want {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []want
	var n int64
	for _, w := range r.pending {
		if n >= r.sw.Batch {
			break
		}
		if ok(w.id) {
			out = append(out, w)
			n += max(w.size, 1)
		}
	}
	now := time.Now()
	for _, w := range out {
		delete(r.pending, w.id)
		r.inflight[w.id] = claim{w, dev, now}
	}
	if len(out) > 0 {
		// One batch at a time per device: its stall clock starts now.
		r.progress[dev] = now
		r.busy[dev] = true
	}
	return out
}

// dropStalled drops every device that has a batch and has sent nothing
// at all, not a byte, for stallAfter, and puts its chunks back: it says
// it has them, so without this nothing else would fetch them until its
// connection timed out.
func (r *swarmRun) dropStalled() {
	now := time.Now()
	var stalled []string
	var conns []*Conn
	r.mu.Lock()
	for dev := range r.live {
		c := r.conns[dev]
		if !r.busy[dev] || r.handing[dev] || c == nil {
			continue
		}
		last := r.progress[dev]
		if t := c.lastRead(); t.After(last) {
			last = t
		}
		if now.Sub(last) > stallAfter {
			stalled = append(stalled, dev)
		}
	}
	for _, dev := range stalled {
		conns = append(conns, r.conns[dev])
		for id, c := range r.inflight {
			if c.dev == dev {
				delete(r.inflight, id)
				r.pending[id] = c.w
			}
		}
	}
	r.mu.Unlock()
	for i, dev := range stalled {
		r.drop(dev, fmt.Errorf("sent nothing for %v", stallAfter))
		conns[i].Close() // unblocks its worker
	}
}

// unclaim puts back what dev was asked for and did not send, unless the
// end game has asked another device for it since.
func (r *swarmRun) unclaim(dev string, ws []want) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range ws {
		if c, ok := r.inflight[w.id]; ok && c.dev == dev {
			delete(r.inflight, w.id)
			r.pending[w.id] = w
		}
	}
}

// anyLiveHas reports whether a device other than the source said it has
// id (callers hold r.mu).
func (r *swarmRun) anyLiveHas(id object.ID) bool {
	for dev, set := range r.has {
		if r.live[dev] && set[id] {
			return true
		}
	}
	return false
}

// store verifies and keeps a chunk that arrived from dev.
func (r *swarmRun) store(a arrivedFrom) {
	r.mu.Lock()
	_, wanted := r.inflight[a.w.id]
	r.mu.Unlock()
	if !wanted {
		return // a duplicate of the end game, or put back after its sender was dropped
	}
	body, err := r.f.verify(a.w, a.id, a.raw)
	if err != nil {
		r.drop(a.dev, err)
		r.unclaim(a.dev, []want{a.w})
		if a.dev == sourceName {
			r.fail(err)
		}
		return
	}
	r.bmu.RLock()
	err = r.batch.PutRaw(a.id, r.f.storable(a.raw, body))
	r.bmu.RUnlock()
	if err != nil {
		r.fail(err)
		return
	}
	n := int64(len(a.raw.Data))
	r.sw.mu.Lock()
	r.sw.received[a.dev] += n
	r.sw.mu.Unlock()
	r.mu.Lock()
	if _, ok := r.inflight[a.w.id]; !ok {
		r.mu.Unlock()
		return
	}
	delete(r.inflight, a.w.id)
	r.left--
	r.f.st.Objects++
	r.f.st.Bytes += n
	r.f.prog.Add(0, a.w.size)
	r.batchBytes += n
	flush := r.batchBytes >= r.sw.Flush
	if flush {
		r.batchBytes = 0
	}
	last := r.left == 0
	r.mu.Unlock()
	if flush && !last {
		// Durable: a fetch killed from here on resumes after these.
		r.bmu.Lock()
		old := r.batch
		r.batch = r.newBatch()
		r.bmu.Unlock()
		if err := old.Finish(); err != nil {
			r.fail(err)
			return
		}
	}
	if last {
		close(r.finished)
	}
}

// drop stops using dev; why is kept for the report.
func (r *swarmRun) drop(dev string, why error) {
	r.mu.Lock()
	delete(r.live, dev)
	r.mu.Unlock()
	r.sw.mu.Lock()
	if _, ok := r.sw.dropped[dev]; !ok && dev != sourceName {
		r.sw.dropped[dev] = why.Error()
	}
	r.sw.mu.Unlock()
	r.sw.Log.Warn("Dropped a swarm device", "device", dev, "error", why)
}

// get asks dev (over c) for ws and hands what arrives to the verifiers;
// it returns once all of it is verified or put back.
func (r *swarmRun) get(ctx context.Context, c *Conn, dev string, ws []want) ([]object.ID, error) {
	byID := make(map[object.ID]want, len(ws))
	for _, w := range ws {
		byID[w.id] = w
	}
	defer func() {
		r.mu.Lock()
		r.busy[dev] = false
		r.mu.Unlock()
	}()
	got := map[object.ID]bool{}
	handOver := func(id object.ID, raw object.Raw) error {
		w, ok := byID[id]
		if !ok || got[id] {
			return fmt.Errorf("sent %s, which was not asked for: %w", id.Short(), ErrProtocol)
		}
		got[id] = true
		r.mu.Lock()
		r.handing[dev] = true
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.handing[dev] = false
			r.progress[dev] = time.Now()
			r.mu.Unlock()
		}()
		select {
		case r.verify <- arrivedFrom{dev, arrived{w, id, raw}}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	missing, err := c.getChunks(ctx, ws, handOver, true)
	var back []want
	for _, w := range ws {
		if !got[w.id] {
			back = append(back, w)
		}
	}
	r.unclaim(dev, back)
	if len(missing) > 0 {
		r.mu.Lock()
		if set := r.has[dev]; set != nil {
			for _, id := range missing {
				delete(set, id)
			}
		}
		r.mu.Unlock()
	}
	return missing, err
}

// sourceWorker fetches from the source what no other device has: at the
// start everything, later only what is rare, and at the end whatever
// another device has been slow to send for a while.
func (r *swarmRun) sourceWorker(ctx context.Context) {
	for !r.done() && ctx.Err() == nil {
		r.dropStalled()
		ws := r.claim(sourceName, func(id object.ID) bool { return !r.anyLiveHas(id) })
		if len(ws) == 0 {
			ws = r.endGame()
		}
		if len(ws) == 0 {
			sleep(ctx, r.sw.Poll/4)
			continue
		}
		missing, err := r.get(ctx, r.sw.Source, sourceName, ws)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("chunk %s: %w there (run mesh fsck on it)", missing[0].Short(), object.ErrNotFound)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("%s: %w", r.sw.Source, err))
			}
			return
		}
	}
}

// endGame, once nothing is pending, asks the source again for chunks
// another device has been slow on for slowAfter, so a crawling device
// cannot hold the fetch up. Whichever copy arrives first is kept.
func (r *swarmRun) endGame() []want {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		return nil
	}
	var out []want
	var n int64
	now := time.Now()
	for id, c := range r.inflight {
		if c.dev == sourceName || n >= r.sw.Batch {
			continue
		}
		if now.Sub(c.since) > slowAfter {
			out = append(out, c.w)
			n += max(c.w.size, 1)
			r.inflight[id] = claim{c.w, sourceName, now}
		}
	}
	return out
}

// trackerLoop asks the source who else holds the commits (saying this
// device serves them too), and starts a worker for each new device.
func (r *swarmRun) trackerLoop(ctx context.Context, workers *sync.WaitGroup) {
	started := map[string]bool{}
	commits := r.sw.Commits[:min(len(r.sw.Commits), maxSwarmCommits)]
	for !r.done() && ctx.Err() == nil {
		var hs []Holder
		for _, c := range commits {
			more, err := r.sw.Source.Holders(ctx, c, r.sw.Advertise, false)
			if err != nil {
				if ctx.Err() == nil && !r.done() {
					r.fail(fmt.Errorf("%s: %w", r.sw.Source, err))
				}
				return
			}
			hs = append(hs, more...)
		}
		for _, h := range hs {
			if started[h.Device] || len(started) >= r.sw.MaxPeers {
				continue
			}
			dev, err := ParseDeviceID(h.Device)
			if err != nil {
				continue
			}
			started[h.Device] = true
			r.mu.Lock()
			r.live[h.Device] = true
			r.mu.Unlock()
			workers.Add(1)
			go func() {
				defer workers.Done()
				r.peerWorker(ctx, h, dev)
			}()
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// peerWorker fetches from one other device whatever it says it has.
func (r *swarmRun) peerWorker(ctx context.Context, h Holder, dev DeviceID) {
	c, err := r.sw.Auth.Dial(ctx, h.Addr, dev)
	if err != nil {
		if ctx.Err() == nil {
			r.drop(h.Device, err)
		}
		return
	}
	defer c.Close()
	r.mu.Lock()
	r.conns[h.Device] = c
	r.mu.Unlock()
	for !r.done() && ctx.Err() == nil {
		r.mu.Lock()
		ids := make([]object.ID, 0, min(len(r.pending), maxIDsPerRequest))
		for id := range r.pending {
			if len(ids) == maxIDsPerRequest {
				break
			}
			ids = append(ids, id)
		}
		r.mu.Unlock()
		if len(ids) == 0 {
			sleep(ctx, r.sw.Poll)
			continue
		}
		bits, err := c.Have(ctx, ids)
		if err != nil {
			if ctx.Err() == nil {
				r.drop(h.Device, err)
			}
			return
		}
		set := map[object.ID]bool{}
		for i, ok := range bits {
			if ok {
				set[ids[i]] = true
			}
		}
		r.mu.Lock()
		r.has[h.Device] = set
		alive := r.live[h.Device]
		r.mu.Unlock()
		if !alive {
			return // dropped for a corrupt chunk
		}
		ws := r.claim(h.Device, func(id object.ID) bool { return set[id] })
		if len(ws) == 0 {
			sleep(ctx, r.sw.Poll)
			continue
		}
		if _, err := r.get(ctx, c, h.Device, ws); err != nil {
			if ctx.Err() == nil {
				r.drop(h.Device, err)
			}
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
