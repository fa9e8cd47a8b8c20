package gossip

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/object"
)

// Config starts a Node.
type Config struct {
	// Device is this device's ID: the node's name (never the hostname:
	// cloned machines share those).
	Device string
	Key    ed25519.PrivateKey
	// DeviceOf derives a device ID from a public key, to check heads.
	DeviceOf func(ed25519.PublicKey) string
	// SecretKey (32 bytes, from the mesh secret) encrypts and
	// authenticates all gossip; Label (the mesh ID) is checked first.
	SecretKey []byte
	Label     string
	// BindAddr and BindPort: where to listen (port 0 picks one);
	// AdvertiseAddr is what others dial (needed for 127.0.0.1).
	BindAddr      string
	BindPort      int
	AdvertiseAddr string
	// FetchAddr is where this device serves objects (mesh serve), and
	// CertFP its certificate's fingerprint, both sent in the node meta.
	FetchAddr string
	CertFP    string
	// Transport replaces the network (tests: memberlist.MockNetwork).
	Transport memberlist.Transport
	// Fast shortens memberlist's intervals (loopback, tests).
	Fast bool
	Log  *slog.Logger
}

// Node is this device in the mesh's gossip.
type Node struct {
	cfg Config
	ml  *memberlist.Memberlist
	mlp atomic.Pointer[memberlist.Memberlist] // for memberlist's own goroutines
	q   *memberlist.TransmitLimitedQueue
	log *slog.Logger

	mu      sync.Mutex
	heads   map[string]*Head // device/branch → newest head
	seq     uint64
	contact map[string]time.Time
	members map[string]member // copied in event callbacks (see events)
	changed chan struct{}
}

// member is what Peers needs of a memberlist node, copied while
// memberlist holds its lock: the *memberlist.Node that Members returns is
// written by memberlist's goroutines, so reading it later races.
type member struct {
	addr  string
	meta  meta
	alive bool
}

// meta is what a node's memberlist meta carries (under 512 bytes).
type meta struct {
	Addr string `json:"a,omitempty"`
	Cert string `json:"f,omitempty"`
}

// Start joins nothing yet: it opens this node (call Join next).
func Start(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: cfg.Log, heads: map[string]*Head{}, contact: map[string]time.Time{}, members: map[string]member{}, changed: make(chan struct{}, 1)}
	// A sequence that survives restarts without a file: never below the
	// clock, always above the last one.
	n.seq = uint64(time.Now().UnixNano())
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.GossipInterval = 50 * time.Millisecond
		mc.ProbeInterval = 200 * time.Millisecond
		mc.PushPullInterval = 2 * time.Second
		mc.GossipToTheDeadTime = 2 * time.Second
	}
	mc.Name = cfg.Device
	mc.BindAddr, mc.BindPort = cfg.BindAddr, cfg.BindPort
	// Advertise exactly the port bound: memberlist's AdvertisePort stays
	// at its default (7946) otherwise, and every other device would dial
	// that. (With port 0 memberlist sets it to the port it picked.)
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseAddr, cfg.BindPort
	// A device that crashed and came back at another address takes its
	// name back once the others have seen it dead for this long (after a
	// clean stop it may at once).
	mc.DeadNodeReclaimTime = 5 * time.Second
	mc.SecretKey = cfg.SecretKey
	mc.Label = cfg.Label
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Logger = log.New(io.Discard, "", 0)
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	n.q = &memberlist.TransmitLimitedQueue{NumNodes: func() int {
		if ml := n.mlp.Load(); ml != nil {
			return ml.NumMembers()
		}
		return 1
	}, RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	n.ml = ml
	n.mlp.Store(ml)
	return n, nil
}

// Addr is where this node gossips (host:port).
func (n *Node) Addr() string {
	ln := n.ml.LocalNode()
	return ln.Address()
}

// Port is the port this node gossips on (the one bound, also advertised).
func (n *Node) Port() int { return int(n.ml.LocalNode().Port) }

// Join contacts the given nodes; it succeeds if any answers.
func (n *Node) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	k, err := n.ml.Join(addrs)
	if k > 0 {
		return k, nil
	}
	return 0, fmt.Errorf("join the mesh's gossip at %v: %w", addrs, err)
}

// Announce tells the mesh that this device's branch is at commit.
func (n *Node) Announce(branch string, commit object.ID) error {
	n.mu.Lock()
	n.seq = max(n.seq+1, uint64(time.Now().UnixNano()))
	h := &Head{Device: n.cfg.Device, Branch: branch, Commit: commit, Seq: n.seq, Addr: n.cfg.FetchAddr}
	h.Sign(n.cfg.Key)
	n.heads[h.key()] = h
	n.mu.Unlock()
	b, _ := json.Marshal(h)
	n.q.QueueBroadcast(&broadcast{name: "head/" + h.key(), msg: b})
	n.q.Prune(64)
	// A node that misses the broadcast learns the head at its next
	// push/pull. (Putting heads in the node meta instead would make every
	// announcement a second, larger broadcast, and memberlist's
	// UpdateNode waits for it: a second or more in a big mesh.)
	return nil
}

// Heads returns the newest head of every device and branch known.
func (n *Node) Heads() []Head {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Head, 0, len(n.heads))
	for _, h := range n.heads {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// Changed is signalled (coalesced) whenever a newer head arrives.
func (n *Node) Changed() <-chan struct{} { return n.changed }

// Peer is another device as this node sees it.
type Peer struct {
	Device      string    `json:"device"`
	GossipAddr  string    `json:"gossipAddr"`
	FetchAddr   string    `json:"fetchAddr,omitempty"`
	Alive       bool      `json:"alive"`
	LastContact time.Time `json:"lastContact"`
	Heads       []Head    `json:"heads"`
}

// Peers lists the other devices: members of the gossip, and devices known
// only from their heads.
func (n *Node) Peers() []Peer {
	byDev := map[string]*Peer{}
	n.mu.Lock()
	for name, m := range n.members {
		if name == n.cfg.Device {
			continue
		}
		byDev[name] = &Peer{Device: name, GossipAddr: m.addr, Alive: m.alive, FetchAddr: m.meta.Addr}
	}
	n.mu.Unlock()
	n.mu.Lock()
	for _, h := range n.heads {
		if h.Device == n.cfg.Device {
			continue
		}
		p := byDev[h.Device]
		if p == nil {
			p = &Peer{Device: h.Device, FetchAddr: h.Addr}
			byDev[h.Device] = p
		}
		p.Heads = append(p.Heads, *h)
	}
	for d, t := range n.contact {
		if p := byDev[d]; p != nil {
			p.LastContact = t
		}
	}
	n.mu.Unlock()
	out := make([]Peer, 0, len(byDev))
	for _, p := range byDev {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

// Leave tells the others this node is going, then stops it. A left node
// cannot come back: start a new one.
func (n *Node) Leave(timeout time.Duration) error {
	err := n.ml.Leave(timeout)
	return errors.Join(err, n.ml.Shutdown())
}

// Shutdown stops the node without telling anyone (as a crash would).
func (n *Node) Shutdown() error { return n.ml.Shutdown() }

// learn takes in a head from gossip; it reports whether it was news.
func (n *Node) learn(h *Head) bool {
	if err := h.Verify(n.cfg.DeviceOf); err != nil {
		n.log.Warn("Ignored head", "error", err)
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.contact[h.Device] = time.Now()
	old := n.heads[h.key()]
	if old != nil && old.Seq >= h.Seq {
		return false
	}
	if h.Device == n.cfg.Device {
		// Our own head from before a restart: continue above it.
		n.seq = max(n.seq, h.Seq)
		if old != nil {
			return false
		}
	}
	n.heads[h.key()] = h
	select {
	case n.changed <- struct{}{}:
	default:
	}
	return true
}

// delegate is Node's memberlist.Delegate.
type delegate Node

func (d *delegate) n() *Node { return (*Node)(d) }

func (d *delegate) NodeMeta(limit int) []byte {
	n := d.n()
	b, _ := json.Marshal(meta{Addr: n.cfg.FetchAddr, Cert: n.cfg.CertFP})
	if len(b) > limit {
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	h, err := decodeHead(b)
	if err != nil {
		d.n().log.Warn("Ignored gossip message", "error", err)
		return
	}
	if d.n().learn(h) {
		// Pass it on, as serf does: without this re-queue, a head only
		// travels as far as its announcer's own broadcasts reach.
		d.n().q.QueueBroadcast(&broadcast{name: "head/" + h.key(), msg: append([]byte(nil), b...)})
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n().q.GetBroadcasts(overhead, limit)
}

// LocalState is the whole head vector, for push/pull anti-entropy.
func (d *delegate) LocalState(join bool) []byte {
	b, _ := json.Marshal(d.n().Heads())
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var heads []Head
	if err := json.Unmarshal(buf, &heads); err != nil {
		d.n().log.Warn("Ignored gossip state", "error", err)
		return
	}
	for i := range heads {
		d.n().learn(&heads[i])
	}
}

// events is Node's memberlist.EventDelegate. Its callbacks run inside
// memberlist and must neither block nor call back into it.
type events Node

func (e *events) record(m *memberlist.Node, alive bool) {
	n := (*Node)(e)
	mb := member{addr: m.Address(), alive: alive}
	json.Unmarshal(m.Meta, &mb.meta)
	n.mu.Lock()
	n.members[m.Name] = mb
	if alive {
		n.contact[m.Name] = time.Now()
	}
	n.mu.Unlock()
}
func (e *events) NotifyJoin(m *memberlist.Node)   { e.record(m, true) }
func (e *events) NotifyUpdate(m *memberlist.Node) { e.record(m, true) }
func (e *events) NotifyLeave(m *memberlist.Node)  { e.record(m, false) }
