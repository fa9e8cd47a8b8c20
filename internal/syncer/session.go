package syncer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Options start a Session.
type Options struct {
	// Listen is where mesh serve's TLS listens, and Gossip where
	// memberlist binds (host:port; port 0 picks one); "" binds what this
	// device bound last time, else DefaultListen and DefaultGossip (see
	// addrs.go).
	Listen string
	Gossip string
	// Advertise is the host other devices dial for both; default: the
	// bind host, or an interface address when that is unspecified.
	Advertise string
	// Join lists gossip addresses of devices to join, besides the ones
	// remembered in .mesh/peers.json and the remotes' gossip addresses.
	Join []string
	Log  *slog.Logger
	// Fast shortens gossip intervals (loopback clusters, tests).
	Fast bool
	// Transport replaces gossip's network (tests: partitions); it must
	// advertise its own address.
	Transport memberlist.Transport
	// Artifacts are path.Match patterns of the artifact branches this
	// device mirrors ("artifacts/*"): see mirrorArtifacts.
	Artifacts []string
}

// Files in .mesh a session keeps.
const (
	GossipAddrFile = repo.GossipAddrFile
	PeersFile      = "peers.json"
)

// Session is this device taking part in its mesh: serving, gossiping,
// syncing.
type Session struct {
	Syncer
	opts     Options
	cancel   context.CancelFunc
	serving  sync.WaitGroup
	serveErr error
	lock     *object.Lock // .mesh/serve.lock
	joining  atomic.Bool  // a rejoin is dialing
	retry    backoff      // addresses that did not answer
	started  time.Time

	ctx          context.Context             // ends at Close
	fetchAddr    string                      // where this device serves
	node         atomic.Pointer[gossip.Node] // Node, for the server's tracker
	mirroring    atomic.Bool                 // mirrorArtifacts is running
	background   sync.WaitGroup              // mirrorArtifacts
	artMu        sync.Mutex
	artAnnounced map[string]object.ID // artifact branch → tip announced
	passed       map[object.ID]bool   // versions older than their branch's tip
}

// listen binds the first candidate that is free.
func listen(cands []string) (net.Listener, error) {
	var errs []error
	for _, a := range cands {
		ln, err := net.Listen("tcp", a)
		if err == nil {
			return ln, nil
		}
		errs = append(errs, fmt.Errorf("listen on %s: %w", a, err))
	}
	return nil, errors.Join(errs...)
}

// Start serves the repository over TLS, starts gossip and joins: the
// devices given, the ones remembered and the remotes' gossip addresses.
// One process serves a repository at a time (Repo.LockServing).
func Start(ctx context.Context, r *repo.Repo, o Options) (*Session, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	auth, err := r.Auth()
	if err != nil {
		return nil, err
	}
	lock, err := r.LockServing()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Release()
		}
	}()
	mem := LoadAddrs(r.Meta)
	if o.Advertise == "" {
		o.Advertise = mem.Advertise
	}
	ln, err := listen(bindCandidates(o.Listen, mem.Listen, DefaultListen))
	if err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			ln.Close()
		}
	}()
	lHost, lPort, _ := splitHostPort(ln.Addr().String())
	if o.Listen != "" {
		lHost, _, _ = splitHostPort(o.Listen)
	}
	fp := sha256.Sum256(auth.Identity.DER)
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{opts: o, ctx: sctx, cancel: cancel, passed: map[object.ID]bool{}, lock: lock, started: time.Now()}
	s.Repo, s.Log, s.Me = r, log, auth.Identity.ID.String()
	s.Metrics = &Metrics{}

	// Gossip first: its bind decides the advertised host, which the
	// server's address shares when it listens on every address.
	var node *gossip.Node
	var gossipBound string
	var errs []error
	for _, cand := range bindCandidates(o.Gossip, mem.Gossip, DefaultGossip) {
		gHost, gPort, err := splitHostPort(cand)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("--gossip %s: %w", cand, err)
		}
		adv, err := advertiseHost(gHost, o.Advertise)
		if err != nil {
			cancel()
			return nil, err
		}
		fetchHost := lHost
		if remote.Unspecified(fetchHost) || o.Advertise != "" {
			fetchHost = adv
		}
		s.fetchAddr = net.JoinHostPort(fetchHost, strconv.Itoa(lPort))
		node, err = gossip.Start(gossip.Config{
			Device: s.Me, Key: auth.Identity.Key,
			DeviceOf:  func(pub ed25519.PublicKey) string { return remote.DeviceIDOf(pub).String() },
			SecretKey: auth.Mesh.GossipKey(), Label: auth.Mesh.ID(),
			BindAddr: gHost, BindPort: gPort, AdvertiseAddr: adv,
			FetchAddr: s.fetchAddr, CertFP: hex.EncodeToString(fp[:16]),
			Fast: o.Fast, Log: log, Transport: o.Transport,
		})
		if err == nil {
			gossipBound = net.JoinHostPort(gHost, strconv.Itoa(node.Port()))
			if o.Gossip == "" && cand != bindCandidates("", mem.Gossip, DefaultGossip)[0] {
				log.Warn("Gossip port taken; using another, kept from now on", "tried", errors.Join(errs...), "gossip", gossipBound)
			}
			break
		}
		errs = append(errs, err)
	}
	if node == nil {
		cancel()
		return nil, errors.Join(errs...)
	}
	s.Advertise = s.fetchAddr
	s.Node = node
	s.node.Store(node)
	tracker := remote.NewTracker()
	tracker.Known = s.knownHolders
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		s.serveErr = r.ServeTracking(sctx, ln, s.fetchAddr, log, tracker, s.Metrics.sent)
	}()
	ok = true
	// Remember what was bound, so the next start (and the other devices'
	// memory of this one) stays right.
	listenBound := net.JoinHostPort(lHost, strconv.Itoa(lPort))
	if err := saveAddrs(r.Meta, Addrs{Listen: listenBound, Gossip: gossipBound, Advertise: o.Advertise}); err != nil {
		s.Close()
		return nil, err
	}
	if err := object.WriteFileAtomic(filepath.Join(r.Meta, GossipAddrFile), []byte(node.Addr()+"\n"), 0o644, false); err != nil {
		s.Close()
		return nil, err
	}
	if join := s.seeds(true); len(join) > 0 {
		if n, err := joinEach(node, join, &s.retry); err != nil {
			log.Warn("No device answered", "tried", join, "error", err)
		} else {
			log.Info("Joined", "devices", n)
		}
	}
	log.Info("Syncing", "device", s.Me, "gossip", node.Addr(), "fetch", s.fetchAddr)
	return s, nil
}

// seeds are the gossip addresses to dial when this device is alone: the
// ones given with --join, every device remembered, and the remotes'
// gossip addresses (origin after mesh join). With all, the ones in
// backoff are included too.
func (s *Session) seeds(all bool) []string {
	addrs := append([]string(nil), s.opts.Join...)
	for _, p := range LoadPeers(s.Repo.Meta) {
		if p.GossipAddr != "" && p.Device != s.Me {
			addrs = append(addrs, p.GossipAddr)
		}
	}
	for _, rc := range s.Repo.Config.Remotes {
		if rc.Gossip != "" {
			addrs = append(addrs, rc.Gossip)
		}
	}
	own := s.Node.Addr()
	addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == own })
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if !all {
		addrs = s.retry.due(addrs, time.Now())
	}
	return addrs
}

func (s *Session) stopServing() {
	s.cancel()
	s.serving.Wait()
	s.background.Wait()
}

// Close leaves the gossip (the others learn at once), stops serving and
// remembers the peers for the next start.
func (s *Session) Close() error {
	s.SavePeers()
	var err error
	if s.Node != nil {
		err = s.Node.Leave(time.Second)
	}
	s.stopServing()
	os.Remove(filepath.Join(s.Repo.Meta, GossipAddrFile))
	s.lock.Release()
	return errors.Join(err, s.serveErr)
}

// SavePeers writes what this device knows of the others to .mesh/peers.json.
func (s *Session) SavePeers() {
	if s.Node == nil {
		return
	}
	ps := mergePeers(LoadPeers(s.Repo.Meta), s.Node.Peers())
	b, _ := json.MarshalIndent(ps, "", "  ")
	object.WriteFileAtomic(filepath.Join(s.Repo.Meta, PeersFile), append(b, '\n'), 0o644, false)
}

// LoadPeers reads .mesh/peers.json (nothing if absent or damaged).
func LoadPeers(meta string) []gossip.Peer {
	b, err := os.ReadFile(filepath.Join(meta, PeersFile))
	if err != nil {
		return nil
	}
	var ps []gossip.Peer
	json.Unmarshal(b, &ps)
	return ps
}

// SyncUntilDone runs rounds until this device holds every head it heard
// of, waiting for news between rounds; then it stays (up to Linger) until
// every live device has announced a head containing this one's, so that
// the work it brought does not leave with it. The context bounds it all.
func (s *Session) SyncUntilDone(ctx context.Context) (r *Round, err error) {
	defer func() {
		if r != nil && err == nil {
			r.Remotes = s.viaRemotes(ctx, r)
		}
		if r != nil {
			r.Reached, r.Tried = s.reached()+len(r.Remotes), s.seeds(true)
			if r.Tried == nil {
				r.Tried = []string{}
			}
		}
	}()
	// Give push/pull a moment to bring the head vector in before the
	// first round decides there is nothing to do.
	settle := time.NewTimer(500 * time.Millisecond)
	select {
	case <-settle.C:
	case <-s.Node.Changed():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var (
		lingerUntil time.Time
		committed   object.ID
		fetched     []string
	)
	for {
		r, err = s.Once(ctx)
		if r != nil {
			// The result speaks for the whole sync, not its last round.
			if !r.Committed.IsZero() {
				committed = r.Committed
			}
			for _, d := range r.Fetched {
				if !slices.Contains(fetched, d) {
					fetched = append(fetched, d)
				}
			}
			r.Committed, r.Fetched = committed, fetched
		}
		if err != nil && !errors.Is(err, repo.ErrUncommitted) && !errors.Is(err, worktree.ErrWouldOverwrite) {
			return r, err
		}
		s.SavePeers()
		if err == nil && r.Done() {
			if s.othersHave(r.Head) {
				return r, nil
			}
			if lingerUntil.IsZero() {
				lingerUntil = time.Now().Add(Linger)
			} else if time.Now().After(lingerUntil) {
				s.Log.Warn("Leaving before every device has this head", "head", r.Head.String())
				return r, nil
			}
		}
		select {
		case <-s.Node.Changed():
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			if r != nil && len(r.Missing) > 0 {
				return r, fmt.Errorf("%w; heads still missing: %v", ctx.Err(), r.Missing)
			}
			return r, ctx.Err()
		}
	}
}

// reached counts the devices this session has been in contact with:
// alive in the gossip now, or heard from since it started.
func (s *Session) reached() int {
	n := 0
	for _, p := range s.Node.Peers() {
		if p.Alive || p.LastContact.After(s.started) {
			n++
		}
	}
	return n
}

// viaRemotes exchanges with the devices of the remotes (tls://) that take
// no part in the gossip, such as one running a plain mesh serve: it pulls
// their branch of this one's name and pushes this device's head there
// (where it lands as devices/<this device>/<branch>). It returns the
// remotes that answered; one that does not is noted in r.Missing.
func (s *Session) viaRemotes(ctx context.Context, r *Round) []string {
	alive := map[string]bool{}
	for _, p := range s.Node.Peers() {
		if p.Alive {
			alive[p.Device] = true
		}
	}
	out := s.viaCloud(ctx, r)
	for _, name := range s.Repo.RemoteNames() {
		rc := s.Repo.Config.Remotes[name]
		if !strings.HasPrefix(rc.URL, "tls://") || (rc.Device != "" && alive[rc.Device]) {
			continue
		}
		pr, err := s.Repo.Pull(ctx, name, repo.MergeOptions{})
		if err == nil {
			_, err = s.Repo.Push(ctx, name)
		}
		if err != nil {
			s.Log.Warn("Remote did not sync", "remote", name, "url", rc.URL, "error", err)
			r.Missing[name] = err.Error()
			continue
		}
		for _, m := range pr.Merged {
			r.Head = m.ID
		}
		out = append(out, name)
	}
	return out
}

// viaCloud exchanges with the buckets among the remotes (s3://): it
// merges every other device's head of this branch from there and pushes
// this device's. A bucket is always on, so devices that are never online
// together meet there. It returns the buckets that answered; one that
// does not is noted in r.Missing.
func (s *Session) viaCloud(ctx context.Context, r *Round) []string {
	out := []string{}
	for _, name := range s.Repo.RemoteNames() {
		rc := s.Repo.Config.Remotes[name]
		if !strings.HasPrefix(strings.ToLower(rc.URL), "s3://") {
			continue
		}
		pr, err := s.Repo.Pull(ctx, name, repo.MergeOptions{})
		if errors.Is(err, repo.ErrSomeRefused) {
			// A ref that does not check out stops nothing else.
			s.Log.Warn("Bucket refs left out", "remote", name, "error", err)
			err = nil
		}
		if err == nil {
			var pushed []*repo.PushResult
			pushed, err = s.Repo.Push(ctx, name)
			if err == nil && len(pushed) == 1 && !pushed[0].UpToDate {
				s.Log.Info("Pushed to the bucket", "remote", name, "objects", pushed[0].Objects, "bytes", pushed[0].Bytes)
			}
		}
		if err != nil {
			s.Log.Warn("Bucket did not sync", "remote", name, "url", rc.URL, "error", err)
			if r.Missing == nil {
				r.Missing = map[string]string{}
			}
			r.Missing[name] = err.Error()
			continue
		}
		for _, m := range pr.Merged {
			r.Head = m.ID
		}
		out = append(out, name)
	}
	return out
}

// ErrAlone is the kind of error for a sync that reached no other device.
var ErrAlone = errors.New("reached no other device of the mesh")

// Linger bounds how long mesh sync waits for the other devices to take
// in its head once it has theirs.
var Linger = 10 * time.Second

// othersHave reports whether every live device announced a head that is
// head or contains it.
func (s *Session) othersHave(head object.ID) bool {
	h, err := s.Repo.Head()
	if err != nil {
		return false
	}
	for _, p := range s.Node.Peers() {
		if !p.Alive {
			continue
		}
		ok := false
		for _, ph := range p.Heads {
			if ph.Branch != h.Branch {
				continue
			}
			if ph.Commit == head {
				ok = true
			} else if s.Repo.Store.Has(ph.Commit) {
				bases, err := merge.Bases(s.Repo.Store, head, ph.Commit)
				ok = err == nil && len(bases) == 1 && bases[0] == head
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
