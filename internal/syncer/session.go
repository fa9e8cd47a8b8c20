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
	// Listen is where mesh serve's TLS listens (port 0 picks one).
	Listen string
	// Gossip is where memberlist binds (host:port; port 0 picks one).
	Gossip string
	// Advertise is the host other devices dial for both; default: the
	// bind host (which must then not be unspecified).
	Advertise string
	// Join lists gossip addresses of devices to join, besides the ones
	// remembered in .mesh/peers.json.
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
	GossipAddrFile = "gossip.addr"
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
	joining  atomic.Bool // a rejoin is dialing

	ctx          context.Context             // ends at Close
	fetchAddr    string                      // where this device serves
	node         atomic.Pointer[gossip.Node] // Node, for the server's tracker
	mirroring    atomic.Bool                 // mirrorArtifacts is running
	background   sync.WaitGroup              // mirrorArtifacts
	artMu        sync.Mutex
	artAnnounced map[string]object.ID // artifact branch → tip announced
	passed       map[object.ID]bool   // versions older than their branch's tip
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// Start serves the repository over TLS, starts gossip and joins.
func Start(ctx context.Context, r *repo.Repo, o Options) (*Session, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	auth, err := r.Auth()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	gHost, gPort, err := splitHostPort(o.Gossip)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--gossip %s: %w", o.Gossip, err)
	}
	adv := o.Advertise
	if adv == "" {
		adv = gHost
	}
	if ip := net.ParseIP(adv); adv == "" || (ip != nil && ip.IsUnspecified()) {
		ln.Close()
		return nil, fmt.Errorf("listening on all addresses, mesh needs --advertise HOST: the address other devices reach this one at")
	}
	_, lPort, _ := splitHostPort(ln.Addr().String())
	fp := sha256.Sum256(auth.Identity.DER)
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{opts: o, ctx: sctx, cancel: cancel, passed: map[object.ID]bool{}}
	s.Repo, s.Log, s.Me = r, log, auth.Identity.ID.String()
	s.fetchAddr = net.JoinHostPort(adv, strconv.Itoa(lPort))
	s.Advertise = s.fetchAddr
	tracker := remote.NewTracker()
	tracker.Known = s.knownHolders
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		s.serveErr = r.ServeTracking(sctx, ln, log, tracker)
	}()
	node, err := gossip.Start(gossip.Config{
		Device: s.Me, Key: auth.Identity.Key,
		DeviceOf:  func(pub ed25519.PublicKey) string { return remote.DeviceIDOf(pub).String() },
		SecretKey: auth.Mesh.GossipKey(), Label: auth.Mesh.ID(),
		BindAddr: gHost, BindPort: gPort, AdvertiseAddr: adv,
		FetchAddr: s.fetchAddr, CertFP: hex.EncodeToString(fp[:16]),
		Fast: o.Fast, Log: log, Transport: o.Transport,
	})
	if err != nil {
		s.stopServing()
		return nil, err
	}
	s.Node = node
	s.node.Store(node)
	if err := object.WriteFileAtomic(filepath.Join(r.Meta, GossipAddrFile), []byte(node.Addr()+"\n"), 0o644, false); err != nil {
		s.Close()
		return nil, err
	}
	join := append([]string(nil), o.Join...)
	for _, p := range LoadPeers(r.Meta) {
		if p.GossipAddr != "" {
			join = append(join, p.GossipAddr)
		}
	}
	if len(join) > 0 {
		if n, err := node.Join(join); err != nil {
			log.Warn("No device answered", "tried", join, "error", err)
		} else {
			log.Info("Joined", "devices", n)
		}
	}
	log.Info("Syncing", "device", s.Me, "gossip", node.Addr(), "fetch", net.JoinHostPort(adv, strconv.Itoa(lPort)))
	return s, nil
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
	return errors.Join(err, s.serveErr)
}

// SavePeers writes what this device knows of the others to .mesh/peers.json.
func (s *Session) SavePeers() {
	if s.Node == nil {
		return
	}
	b, _ := json.MarshalIndent(s.Node.Peers(), "", "  ")
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
func (s *Session) SyncUntilDone(ctx context.Context) (*Round, error) {
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
		r, err := s.Once(ctx)
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
