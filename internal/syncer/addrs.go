package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// A device's addresses. Other devices remember where they last reached
// this one (.mesh/peers.json), so a device that came back elsewhere would
// be a stranger to them until some live device told them: a device keeps
// its addresses across restarts.
//
//   - Without --listen or --gossip, a session binds what the device bound
//     last time (.mesh/addrs.json), else the defaults (:7420 and
//     0.0.0.0:7421). When that port is taken by another program, it picks a
//     free one, says so, and keeps that one from then on.
//   - An explicit HOST:PORT is bound as given or not at all; HOST:0 takes
//     the port remembered for HOST, if free, else any free port.
//   - What other devices dial: --advertise HOST, else the bind host when
//     it is a specific address, else the first address of an interface
//     that is up and not loopback (the log says which). Gossip advertises
//     exactly the port it bound.

// Defaults a daemon binds when neither flags nor memory say otherwise.
const (
	DefaultListen = ":7420"
	DefaultGossip = "0.0.0.0:7421"
)

// AddrsFile, in .mesh, remembers what the last session bound.
const AddrsFile = "addrs.json"

// Addrs is what a session bound and advertised.
type Addrs struct {
	Listen    string `json:"listen"`              // TLS bind, host:port
	Gossip    string `json:"gossip"`              // memberlist bind, host:port
	Advertise string `json:"advertise,omitempty"` // --advertise as given
}

// LoadAddrs reads .mesh/addrs.json (zero if absent or damaged).
func LoadAddrs(meta string) Addrs {
	var a Addrs
	if b, err := os.ReadFile(filepath.Join(meta, AddrsFile)); err == nil {
		if json.Unmarshal(b, &a) != nil {
			return Addrs{}
		}
	}
	return a
}

func saveAddrs(meta string, a Addrs) error {
	b, _ := json.MarshalIndent(a, "", "  ")
	return object.WriteFileAtomic(filepath.Join(meta, AddrsFile), append(b, '\n'), 0o644, true)
}

// bindCandidates lists, in order, the addresses a session tries to bind
// for one of its two listeners: given (a flag, "" when not set), what was
// bound last time, and the default. Only the first that binds is used.
func bindCandidates(given, remembered, def string) []string {
	var out []string
	if given != "" {
		host, port, err := net.SplitHostPort(given)
		if err == nil && port == "0" && remembered != "" {
			if rh, _, err := net.SplitHostPort(remembered); err == nil && rh == host {
				out = append(out, remembered)
			}
		}
		return append(out, given)
	}
	if remembered != "" {
		out = append(out, remembered)
	}
	out = append(out, def)
	if host, _, err := net.SplitHostPort(def); err == nil {
		out = append(out, net.JoinHostPort(host, "0"))
	}
	return slices.Compact(out)
}

// advertiseHost is the host other devices dial for a listener bound to
// bindHost.
func advertiseHost(bindHost, advertise string) (string, error) {
	if advertise != "" {
		if remote.Unspecified(advertise) {
			return "", fmt.Errorf("--advertise %s: %w; give an address of this machine that other devices reach", advertise, remote.ErrBadAddr)
		}
		return advertise, nil
	}
	if !remote.Unspecified(bindHost) {
		return bindHost, nil
	}
	h, err := remote.RoutableHost()
	if err != nil {
		return "", fmt.Errorf("bound to all addresses, and %v: give --advertise HOST, the address other devices reach this one at", err)
	}
	return h, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}

// mergePeers is what .mesh/peers.json holds after a round: every device
// known now, and the ones remembered that this session has not heard of
// (yet), so a session that starts while the others are down does not
// forget them. The newest maxPeers by last contact are kept.
func mergePeers(old, now []gossip.Peer) []gossip.Peer {
	byDev := map[string]gossip.Peer{}
	for _, p := range old {
		p.Alive = false
		byDev[p.Device] = p
	}
	for _, p := range now {
		if o, ok := byDev[p.Device]; ok {
			// Keep what only the old entry knew: an address gossip has
			// not brought yet, the last contact.
			if p.GossipAddr == "" {
				p.GossipAddr = o.GossipAddr
			}
			if p.FetchAddr == "" {
				p.FetchAddr = o.FetchAddr
			}
			if p.LastContact.IsZero() {
				p.LastContact = o.LastContact
			}
		}
		byDev[p.Device] = p
	}
	out := make([]gossip.Peer, 0, len(byDev))
	for _, p := range byDev {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b gossip.Peer) int { return b.LastContact.Compare(a.LastContact) })
	if len(out) > maxPeers {
		out = out[:maxPeers]
	}
	slices.SortFunc(out, func(a, b gossip.Peer) int {
		if a.Device < b.Device {
			return -1
		}
		if a.Device > b.Device {
			return 1
		}
		return 0
	})
	return out
}

// maxPeers bounds .mesh/peers.json.
const maxPeers = 256

// backoff spaces the attempts to reach addresses that did not answer:
// the first retry after RetryMin, doubling up to RetryMax; an address
// that answers starts over.
type backoff struct {
	mu   sync.Mutex
	next map[string]time.Time
	wait map[string]time.Duration
}

// Retry bounds for backoff (variables for tests).
var (
	RetryMin = time.Second
	RetryMax = 30 * time.Second
)

// due returns the addresses whose time has come, in the order given.
func (b *backoff) due(addrs []string, now time.Time) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, a := range addrs {
		if t, ok := b.next[a]; !ok || !now.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// failed pushes addr's next attempt out.
func (b *backoff) failed(addr string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		b.next, b.wait = map[string]time.Time{}, map[string]time.Duration{}
	}
	w := b.wait[addr]
	if w == 0 {
		w = RetryMin
	} else {
		w = min(2*w, RetryMax)
	}
	b.wait[addr] = w
	b.next[addr] = now.Add(w)
}

// answered forgets addr's failures.
func (b *backoff) answered(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.next, addr)
	delete(b.wait, addr)
}

// joinEach dials every address at once (a machine that is off costs a
// connect timeout, and one after the other those add up) and reports how
// many answered, recording each outcome in b.
func joinEach(n *gossip.Node, addrs []string, b *backoff) (int, error) {
	var (
		mu   sync.Mutex
		ok   int
		errs []error
		wg   sync.WaitGroup
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.Join([]string{a})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				b.failed(a, time.Now())
				return
			}
			ok++
			b.answered(a)
		}()
	}
	wg.Wait()
	if ok > 0 {
		return ok, nil
	}
	return 0, errors.Join(errs...)
}
