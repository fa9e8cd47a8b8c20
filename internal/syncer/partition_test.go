package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/remote"
)

// partition says which gossip addresses can reach which.
type partition struct {
	mu    sync.Mutex
	side  map[string]int
	split bool
}

func (p *partition) cut(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.split && p.side[from] != p.side[to]
}

func (p *partition) set(split bool) {
	p.mu.Lock()
	p.split = split
	p.mu.Unlock()
}

// gate is a real UDP/TCP memberlist transport on 127.0.0.1 that drops
// whatever it would send across the partition. Every node has one, so a
// cut holds both ways.
type gate struct {
	nt   *memberlist.NetTransport
	self string
	p    *partition
}

func (g *gate) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.ParseIP("127.0.0.1"), g.nt.GetAutoBindPort(), nil
}

func (g *gate) WriteTo(b []byte, addr string) (time.Time, error) {
	if g.p.cut(g.self, addr) {
		return time.Now(), nil // lost on the way, as UDP is
	}
	return g.nt.WriteTo(b, addr)
}

func (g *gate) PacketCh() <-chan *memberlist.Packet { return g.nt.PacketCh() }

func (g *gate) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if g.p.cut(g.self, addr) {
		return nil, errors.New("network is unreachable (test partition)")
	}
	return g.nt.DialTimeout(addr, timeout)
}

func (g *gate) StreamCh() <-chan net.Conn { return g.nt.StreamCh() }
func (g *gate) Shutdown() error           { return g.nt.Shutdown() }

// lockedBuffer collects one device's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type device struct {
	dir string
	s   *Session
	log *lockedBuffer
}

func (d *device) has(name, content string) bool {
	b, err := os.ReadFile(filepath.Join(d.dir, name))
	return err == nil && string(b) == content
}

func (d *device) head() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, ".mesh", "refs", "heads", "main"))
	return strings.TrimSpace(string(b))
}

// baseVersions is every file named base.txt or a conflict copy of it,
// concatenated.
func (d *device) baseVersions() string {
	m, _ := filepath.Glob(filepath.Join(d.dir, "base*"))
	var all strings.Builder
	for _, p := range m {
		b, _ := os.ReadFile(p)
		all.Write(b)
	}
	return all.String()
}

func waitUntil(t *testing.T, what string, cond func() bool, devs []*device) {
	t.Helper()
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	var logs strings.Builder
	for _, d := range devs {
		fmt.Fprintf(&logs, "--- %s\n%s", filepath.Base(d.dir), d.log.String())
	}
	t.Fatalf("%s: not within 45 s\n%s", what, logs.String())
}

// startDevices makes n repositories of one mesh under a temporary
// directory (d0 makes the mesh, the others join its gossip) and starts a
// session on each, with setup adjusting each one's repository and options
// first.
func startDevices(t *testing.T, ctx context.Context, n int, setup func(i int, r *repo.Repo, o *Options)) []*device {
	t.Helper()
	root := t.TempDir()
	var devs []*device
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%d", i))
		var inv *remote.Invite
		if i > 0 {
			first := devs[0].s.Repo
			m, err := first.Mesh()
			if err != nil {
				t.Fatal(err)
			}
			inv = &remote.Invite{Mesh: m, Chunking: first.Config.Chunking}
		}
		r, err := repo.Init(dir, inv)
		if err != nil {
			t.Fatal(err)
		}
		d := &device{dir: dir, log: &lockedBuffer{}}
		o := Options{Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0", Fast: true,
			Log: slog.New(slog.NewTextHandler(d.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if i > 0 {
			o.Join = []string{devs[0].s.Node.Addr()}
		}
		setup(i, r, &o)
		if d.s, err = Start(ctx, r, o); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	return devs
}

// runDevices runs every device's daemon loop; the function it returns
// cancels ctx (with cancel), waits for the loops and closes everything.
func runDevices(t *testing.T, ctx context.Context, cancel context.CancelFunc, devs []*device) func() {
	var running sync.WaitGroup
	for _, d := range devs {
		running.Add(1)
		go func() {
			defer running.Done()
			if err := d.s.Run(ctx); err != nil {
				t.Errorf("%s: %v", d.dir, err)
			}
		}()
	}
	return func() {
		cancel()
		running.Wait()
		for _, d := range devs {
			d.s.Close()
			d.s.Repo.Close()
		}
	}
}

// TestPartitionHeals: four daemons; the gossip between {d0,d1} and {d2,d3}
// is cut until each side has declared the other dead; both sides commit
// (new files, and the same file edited two ways); each side syncs within
// itself and learns nothing of the other; once the cut is gone the four
// find each other again and end on one head holding every edit.
func TestPartitionHeals(t *testing.T) {
	defer func(r, d time.Duration) { Rejoin, Debounce = r, d }(Rejoin, Debounce)
	Rejoin, Debounce = 300*time.Millisecond, 100*time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &partition{side: map[string]int{}}
	devs := startDevices(t, ctx, 4, func(i int, r *repo.Repo, o *Options) {
		if i == 0 {
			os.WriteFile(filepath.Join(r.Root, "base.txt"), []byte("base\n"), 0o644)
			if _, err := r.Commit(ctx, repo.CommitOptions{Message: "base"}); err != nil {
				t.Fatal(err)
			}
		}
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		self := fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
		p.side[self] = i / 2
		o.Gossip, o.Transport = self, &gate{nt: nt, self: self, p: p}
	})
	defer runDevices(t, ctx, cancel, devs)()
	for _, d := range devs {
		waitUntil(t, filepath.Base(d.dir)+" gets base.txt", func() bool { return d.has("base.txt", "base\n") }, devs)
	}

	// Split, and wait until each side has given the other up.
	p.set(true)
	gone := func(d *device, others ...*device) func() bool {
		return func() bool {
			for _, peer := range d.s.Node.Peers() {
				for _, o := range others {
					if peer.Device == o.s.Me && peer.Alive {
						return false
					}
				}
			}
			return true
		}
	}
	waitUntil(t, "d0 declares d2, d3 dead", gone(devs[0], devs[2], devs[3]), devs)
	waitUntil(t, "d2 declares d0, d1 dead", gone(devs[2], devs[0], devs[1]), devs)

	os.WriteFile(filepath.Join(devs[0].dir, "left.txt"), []byte("left side\n"), 0o644)
	os.WriteFile(filepath.Join(devs[0].dir, "base.txt"), []byte("left\n"), 0o644)
	os.WriteFile(filepath.Join(devs[2].dir, "right.txt"), []byte("right side\n"), 0o644)
	os.WriteFile(filepath.Join(devs[2].dir, "base.txt"), []byte("right\n"), 0o644)
	waitUntil(t, "d1 gets its side's commit", func() bool { return devs[1].has("left.txt", "left side\n") }, devs)
	waitUntil(t, "d3 gets its side's commit", func() bool { return devs[3].has("right.txt", "right side\n") }, devs)
	if devs[1].has("right.txt", "right side\n") || devs[3].has("left.txt", "left side\n") {
		t.Fatal("a commit crossed the partition")
	}

	// Outlast the time memberlist keeps gossiping to the dead (2 s with
	// Fast): after it, only a rejoin brings the sides back together.
	time.Sleep(3 * time.Second)

	// Heal: every device ends on one head with every edit.
	p.set(false)
	waitUntil(t, "the four converge after the partition heals", func() bool {
		h := devs[0].head()
		for _, d := range devs {
			if d.head() != h || !d.has("left.txt", "left side\n") || !d.has("right.txt", "right side\n") {
				return false
			}
			if v := d.baseVersions(); !strings.Contains(v, "left") || !strings.Contains(v, "right") {
				return false
			}
		}
		return true
	}, devs)
	cs, err := devs[3].s.Repo.Conflicts()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Path != "base.txt" {
		t.Fatalf("conflicts after the heal: %+v", cs)
	}
}
