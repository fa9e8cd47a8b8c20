package remote

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// Holder is a device that holds (Complete) or is fetching a commit's
// files, and serves what it has at Addr.
type Holder struct {
	Device   string `json:"device"`
	Addr     string `json:"addr"`
	Complete bool   `json:"complete"`
}

// holdersReq asks who holds Commit; a non-empty Addr also says that the
// asking device serves it there (Complete: all of it).
type holdersReq struct {
	Commit   object.ID `json:"commit"`
	Addr     string    `json:"addr,omitempty"`
	Complete bool      `json:"complete,omitempty"`
}

// HolderTTL is how long a device stays listed after it last said it
// holds a commit; a swarm member says so again well within it.
var HolderTTL = 30 * time.Second

// Tracker remembers, for a server, which devices said they hold which
// commits, so that a device fetching one can spread the load over them
// (the way a BitTorrent tracker does). It is memory only and bounded.
type Tracker struct {
	// Known, if set, names holders this server knows of otherwise: the
	// devices whose gossip says they hold the commit (a daemon's mirrors
	// of an artifact branch). They are listed as complete.
	Known func(commit object.ID) []Holder

	mu  sync.Mutex
	m   map[object.ID]map[DeviceID]tracked
	now func() time.Time
}

type tracked struct {
	h       Holder
	expires time.Time
}

const (
	maxTrackedCommits = 1024
	maxTrackedHolders = 512
	maxHoldersSent    = 64
)

// NewTracker makes an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{m: map[object.ID]map[DeviceID]tracked{}, now: time.Now}
}

// register records that dev serves commit at addr. The device ID is the
// one the connection proved, so a member cannot list another device; an
// address it lies about only fails the pinned handshake of whoever dials it.
func (t *Tracker) register(commit object.ID, dev DeviceID, addr string, complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	hs := t.m[commit]
	if hs == nil {
		if len(t.m) >= maxTrackedCommits {
			return
		}
		hs = map[DeviceID]tracked{}
		t.m[commit] = hs
	}
	if _, ok := hs[dev]; !ok && len(hs) >= maxTrackedHolders {
		return
	}
	hs[dev] = tracked{Holder{Device: dev.String(), Addr: addr, Complete: complete}, now.Add(HolderTTL)}
}

func (t *Tracker) expire(now time.Time) {
	for c, hs := range t.m {
		for d, h := range hs {
			if now.After(h.expires) {
				delete(hs, d)
			}
		}
		if len(hs) == 0 {
			delete(t.m, c)
		}
	}
}

// holders lists up to maxHoldersSent devices holding commit, other than
// who asks: complete ones first, each group in random order, so that
// askers spread over them.
func (t *Tracker) holders(commit object.ID, except DeviceID) []Holder {
	var known []Holder
	if t.Known != nil {
		known = t.Known(commit)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.now())
	var out []Holder
	at := map[string]int{except.String(): -1} // device → index in out
	for d, h := range t.m[commit] {
		if _, dup := at[d.String()]; !dup {
			at[d.String()] = len(out)
			out = append(out, h.h)
		}
	}
	for _, h := range known {
		i, dup := at[h.Device]
		switch {
		case h.Addr == "" || i < 0:
		case dup:
			out[i].Complete = true // it was fetching; it has it all now
		default:
			at[h.Device] = len(out)
			h.Complete = true
			out = append(out, h)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Complete && !out[j].Complete })
	return out[:min(len(out), maxHoldersSent)]
}

// answerHolders handles a holders request from the device c proved to be.
func (s *Server) answerHolders(c *Conn, b []byte) error {
	var req holdersReq
	if err := unmarshalFrame(kindHoldersReq, b, &req); err != nil {
		return err
	}
	if s.Tracker == nil {
		return c.w.writeJSON(kindHolders, []Holder{})
	}
	if req.Addr != "" {
		if len(req.Addr) > 256 {
			return fmt.Errorf("a holder address of %d bytes: %w", len(req.Addr), ErrProtocol)
		}
		s.Tracker.register(req.Commit, c.Peer, req.Addr, req.Complete)
	}
	hs := s.Tracker.holders(req.Commit, c.Peer)
	if hs == nil {
		hs = []Holder{}
	}
	if err := c.w.writeJSON(kindHolders, hs); err != nil {
		return err
	}
	return c.w.flush()
}

// Holders asks the peer which devices hold commit; with addr set, it also
// tells the peer that this device serves commit there.
func (c *Conn) Holders(ctx context.Context, commit object.ID, addr string, complete bool) ([]Holder, error) {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	if err := c.w.writeJSON(kindHoldersReq, holdersReq{Commit: commit, Addr: addr, Complete: complete}); err != nil {
		return nil, c.fail(ctxErr(ctx, err))
	}
	if err := c.w.flush(); err != nil {
		return nil, c.fail(ctxErr(ctx, err))
	}
	var hs []Holder
	if err := c.w.readJSON(kindHolders, &hs); err != nil {
		return nil, c.fail(ctxErr(ctx, err))
	}
	if len(hs) > maxHoldersSent {
		return nil, c.fail(fmt.Errorf("sent %d holders, more than %d: %w", len(hs), maxHoldersSent, ErrProtocol))
	}
	return hs, nil
}

// Have asks which of ids the peer holds.
func (c *Conn) Have(ctx context.Context, ids []object.ID) ([]bool, error) {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	out := make([]bool, 0, len(ids))
	for start := 0; start < len(ids); start += maxIDsPerRequest {
		part := ids[start:min(len(ids), start+maxIDsPerRequest)]
		if err := c.w.write(kindHaveReq, encodeIDs(part)); err != nil {
			return nil, c.fail(ctxErr(ctx, err))
		}
		if err := c.w.flush(); err != nil {
			return nil, c.fail(ctxErr(ctx, err))
		}
		b, err := c.w.expect(kindHave)
		if err != nil {
			return nil, c.fail(ctxErr(ctx, err))
		}
		if len(b) != (len(part)+7)/8 {
			return nil, c.fail(fmt.Errorf("a have frame of %d bytes for %d IDs: %w", len(b), len(part), ErrProtocol))
		}
		for i := range part {
			out = append(out, b[i/8]&(1<<(i%8)) != 0)
		}
	}
	return out, nil
}

// answerHave handles a have request.
func answerHave(w *wire, s *object.Store, b []byte) error {
	ids, err := decodeIDs(b)
	if err != nil {
		return err
	}
	bits := make([]byte, (len(ids)+7)/8)
	for i, id := range ids {
		if s.Has(id) || s.HasPending(id) {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return w.write(kindHave, bits)
}
