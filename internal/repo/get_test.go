package repo

import (
	"bytes"
	"context"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// slowListener makes every write of the connections it accepts take a
// while, so a transfer lasts long enough for a swarm to form around it.
type slowListener struct {
	net.Listener
	delay time.Duration
}

func (l *slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{c, l.delay}, nil
}

type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c *slowConn) Write(b []byte) (int, error) {
	time.Sleep(c.delay)
	return c.Conn.Write(b)
}

type published struct {
	r      *Repo
	build  string
	commit object.ID
	addr   string
	token  string
}

// publishAndServe publishes a folder of 24 MiB of random data and a few
// small files, and serves the repository (each write delayed by delay).
func publishAndServe(t *testing.T, delay time.Duration) *published {
	t.Helper()
	root := t.TempDir()
	r, err := Init(filepath.Join(root, "repo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	build := filepath.Join(root, "build")
	os.MkdirAll(filepath.Join(build, "lib"), 0o755)
	big := make([]byte, 24<<20)
	rand.New(rand.NewSource(1)).Read(big)
	os.WriteFile(filepath.Join(build, "app.bin"), big, 0o755)
	os.WriteFile(filepath.Join(build, "lib", "small.txt"), []byte("small\n"), 0o644)
	res, err := r.Publish(context.Background(), PublishOptions{Branch: "artifacts/app", Paths: []string{build}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, &slowListener{ln, delay}, ln.Addr().String(), nil) }()
	t.Cleanup(func() { cancel(); <-done })
	tok, err := r.Invite(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &published{r: r, build: build, commit: res.ID, addr: ln.Addr().String(), token: tok}
}

// sameTree fails unless dir holds exactly what want holds.
func sameTree(t *testing.T, want, dir string) {
	t.Helper()
	n := 0
	filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs in %s (%v)", rel, dir, err)
		}
		n++
		return nil
	})
	m := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			m++
		}
		return err
	})
	if n != m {
		t.Fatalf("%s has %d files, the artifact %d", dir, m, n)
	}
}

// TestGetInParallel: three devices get one published artifact over TLS at
// once; each ends with exactly its files. A second get of it from a
// cache fetches no chunk again; a get of a missing REV fails and leaves
// its target alone.
func TestGetInParallel(t *testing.T) {
	p := publishAndServe(t, 0)
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]*GetResult, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var g *Getter
			results[i], g, errs[i] = Get(context.Background(), GetOptions{
				Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "out", string(rune('a'+i))),
				Cache: filepath.Join(dir, "cache", string(rune('a'+i))), Token: p.token,
			})
			g.Close()
		}()
	}
	wg.Wait()
	var received int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		sameTree(t, p.build, filepath.Join(dir, "out", string(rune('a'+i))))
		if results[i].Commit != p.commit {
			t.Fatalf("get %d: commit %s, want %s", i, results[i].Commit, p.commit)
		}
		for _, n := range results[i].Received {
			received += n
		}
	}
	if received < 3*(24<<20) {
		t.Fatalf("received %d bytes in all, less than three artifacts", received)
	}

	// Again, from the first cache, by abbreviated ID and into a subpath.
	res, g, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: p.commit.String()[:10], Path: "lib", To: filepath.Join(dir, "again"),
		Cache: filepath.Join(dir, "cache", "a"), Token: p.token})
	g.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched.Bytes != 0 || res.Files != 1 {
		t.Fatalf("a cached get fetched %d bytes, wrote %d files", res.Fetched.Bytes, res.Files)
	}
	sameTree(t, filepath.Join(p.build, "lib"), filepath.Join(dir, "again"))

	// A missing REV: an error naming it, the target untouched.
	target := filepath.Join(dir, "missing")
	_, g, err = Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/nope", To: target, Cache: filepath.Join(dir, "cache", "a"), Token: p.token})
	g.Close()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("artifacts/nope")) {
		t.Fatalf("get of a missing REV: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("the target of a failed get exists: %v", err)
	}
	// A non-empty target is refused before anything is fetched.
	os.MkdirAll(filepath.Join(dir, "full"), 0o755)
	os.WriteFile(filepath.Join(dir, "full", "keep.txt"), []byte("mine"), 0o644)
	if _, g, err = Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "full"), Token: p.token, Cache: filepath.Join(dir, "cache", "a")}); err == nil {
		t.Fatal("get wrote into a non-empty directory")
	}
	g.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "full", "keep.txt")); string(b) != "mine" {
		t.Fatal("a refused get touched the target")
	}
}

// TestSwarmSurvivesKilledPeer: a device that holds the artifact serves the
// swarm and is stopped while another device fetches from it and from a
// slow source; the fetch completes from the source.
func TestSwarmSurvivesKilledPeer(t *testing.T) {
	p := publishAndServe(t, time.Millisecond)
	dir := t.TempDir()
	// Chunks durable every 8 MiB, so the first pack below appears a
	// third of the way in (the kill's cue).
	defer func(n int64) { remote.FlushEvery = n }(remote.FlushEvery)
	remote.FlushEvery = 8 << 20
	_, seeder, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "seeder"), Cache: filepath.Join(dir, "c1"), Token: p.token})
	if err != nil {
		seeder.Close()
		t.Fatal(err)
	}
	sctx, stopSeeding := context.WithCancel(context.Background())
	go seeder.Seed(sctx)
	// Stop the seeder once the fetch below has made its first chunks
	// durable (a third of the artifact), and note when.
	killed := make(chan time.Time, 1)
	go func() {
		defer func() { killed <- time.Now() }()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if m, _ := filepath.Glob(filepath.Join(dir, "c2", "objects", "*.pack")); len(m) > 0 {
				break
			}
		}
		stopSeeding()
		seeder.Close()
	}()
	res, g, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "out"), Cache: filepath.Join(dir, "c2"), Token: p.token})
	done := time.Now()
	g.Close()
	if err != nil {
		t.Fatalf("get with a peer gone: %v", err)
	}
	if k := <-killed; !k.Before(done) {
		t.Fatal("the seeder was stopped only after the get was done: the test did not test")
	}
	sameTree(t, p.build, filepath.Join(dir, "out"))
	t.Logf("received %v, dropped %v", res.Received, res.Dropped)
}

// TestSwarmDropsCorruptPeer: a member of the mesh serves garbage under the
// artifact's chunk IDs and tells the source it holds it all; a get finds
// out, drops it, and completes from the source with the right bytes.
func TestSwarmDropsCorruptPeer(t *testing.T) {
	p := publishAndServe(t, time.Millisecond)
	dir := t.TempDir()

	// The hostile device: metadata as published, chunks replaced.
	bad, err := object.OpenStore(filepath.Join(dir, "bad", "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() }) // after member's server stops
	all, err := p.r.Store.Reachable([]object.ID{p.commit}, false)
	if err != nil {
		t.Fatal(err)
	}
	b := bad.NewBatch()
	for id := range all {
		raw, err := p.r.Store.GetRaw(id)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Type == object.TypeChunk {
			junk := make([]byte, raw.Size)
			rand.Read(junk)
			raw = object.RawOf(object.TypeChunk, junk)
		}
		if err := b.PutRaw(id, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	auth := member(t, p, filepath.Join(dir, "bad"), bad, func(ln net.Listener) net.Listener { return ln })

	res, g, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "out"), Cache: filepath.Join(dir, "c"), Token: p.token})
	g.Close()
	if err != nil {
		t.Fatalf("get with a corrupt peer: %v", err)
	}
	sameTree(t, p.build, filepath.Join(dir, "out"))
	if _, ok := res.Dropped[auth.Identity.ID.String()]; !ok {
		t.Fatalf("the corrupt peer was not dropped: %v (received %v)", res.Dropped, res.Received)
	}
}

// member serves st on 127.0.0.1 as a device of p's mesh with its identity
// in dir (its listener wrapped by wrap), and tells p's tracker that it
// holds p's commit whole. It returns the device's Auth.
func member(t *testing.T, p *published, dir string, st *object.Store, wrap func(net.Listener) net.Listener) *remote.Auth {
	t.Helper()
	auth, err := cacheAuth(dir, p.token)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := &remote.Server{Auth: auth, Local: &remote.Local{Objects: st, Refs: object.OpenRefs(filepath.Join(dir, "refs")), Name: filepath.Base(dir)}}
	go func() { defer close(done); srv.Serve(ctx, wrap(ln)) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := auth.Dial(ctx, p.addr, remote.DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Holders(ctx, p.commit, ln.Addr().String(), true); err != nil {
		t.Fatal(err)
	}
	return auth
}

// stallListener's connections send limit bytes, then hang (until closed):
// a device that accepted a request and went silent.
type stallListener struct {
	net.Listener
	limit int
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, left: l.limit, closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	mu     sync.Mutex
	left   int
	closed chan struct{}
	once   sync.Once
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	n := min(len(b), c.left)
	c.left -= n
	c.mu.Unlock()
	if n > 0 {
		if _, err := c.Conn.Write(b[:n]); err != nil {
			return 0, err
		}
	}
	if n < len(b) {
		<-c.closed
		return n, net.ErrClosed
	}
	return n, nil
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestSwarmOutlastsStalledPeer: a member that holds the whole artifact,
// says so, answers which chunks it has and then stops sending in the
// middle of a chunk. The get takes what it waited for from the source
// (the end game) and completes with the right bytes.
func TestSwarmOutlastsStalledPeer(t *testing.T) {
	p := publishAndServe(t, 2*time.Millisecond)
	dir := t.TempDir()
	_, full, err := Get(context.Background(), GetOptions{Source: p.r.Root, Rev: "artifacts/app", To: filepath.Join(dir, "full-out"), Cache: filepath.Join(dir, "stall"), Token: p.token, NoSeed: true})
	full.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := object.OpenStore(filepath.Join(dir, "stall", "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after member's server stops
	auth := member(t, p, filepath.Join(dir, "stall"), st, func(ln net.Listener) net.Listener { return &stallListener{ln, 256 << 10} })

	res, g, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, "out"), Cache: filepath.Join(dir, "c"), Token: p.token, NoSeed: true})
	g.Close()
	if err != nil {
		t.Fatalf("get with a stalled peer: %v", err)
	}
	sameTree(t, p.build, filepath.Join(dir, "out"))
	if res.Received[auth.Identity.ID.String()] >= 24<<20 {
		t.Fatalf("the stalled peer sent it all (%v): the test did not test", res.Received)
	}
	// Dropped for its silence, not when its connection timed out a
	// minute later.
	if why := res.Dropped[auth.Identity.ID.String()]; !strings.Contains(why, "sent nothing") {
		t.Fatalf("the stalled peer was not dropped as stalled: %q (dropped %v)", why, res.Dropped)
	}
	t.Logf("received %v", res.Received)
}

// TestGetSendsDeltasAgainstLastGet: a runner's next get of an artifact
// branch (a new build, a few KiB inserted into a large file) receives
// about the new bytes, as deltas against what the cache's last get of
// that branch fetched; a cache that holds the old build but no record of
// it receives the new chunks whole.
func TestGetSendsDeltasAgainstLastGet(t *testing.T) {
	p := publishAndServe(t, 0)
	dir := t.TempDir()
	get := func(cache, to string) *GetResult {
		t.Helper()
		res, g, err := Get(context.Background(), GetOptions{Source: p.addr, Rev: "artifacts/app", To: filepath.Join(dir, to), Cache: filepath.Join(dir, cache), Token: p.token, NoSeed: true})
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		sameTree(t, p.build, filepath.Join(dir, to))
		return res
	}
	received := func(res *GetResult) int64 {
		var n int64
		for _, b := range res.Received {
			n += b
		}
		return n
	}
	get("cache", "v1")
	get("bare", "v1-bare")
	if err := os.RemoveAll(filepath.Join(dir, "bare", "last-get")); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(p.build, "app.bin")
	old, _ := os.ReadFile(app)
	ins := make([]byte, 4<<10)
	rand.New(rand.NewSource(9)).Read(ins)
	edited := append(append(append([]byte{}, old[:12<<20]...), ins...), old[12<<20:]...)
	if err := os.WriteFile(app, edited, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.r.Publish(context.Background(), PublishOptions{Branch: "artifacts/app", Paths: []string{p.build}}); err != nil {
		t.Fatal(err)
	}
	withLast, bare := get("cache", "v2"), get("bare", "v2-bare")
	if n := received(withLast); n == 0 || n > 64<<10 {
		t.Fatalf("the next get received %d bytes of chunks (%v) for a 4 KiB insertion", n, withLast.Received)
	}
	if n := received(bare); n < 256<<10 {
		t.Fatalf("a get with no last get to go on received only %d bytes of chunks", n)
	}
	t.Logf("received %d bytes with the last get as bases, %d without", received(withLast), received(bare))
}

// TestMirroredArtifactSendsDeltas: a device mirroring an artifact branch
// fetches a new version as deltas against the version it holds.
func TestMirroredArtifactSendsDeltas(t *testing.T) {
	a := newRepo(t)
	b := joined(t, a)
	build := t.TempDir()
	big := make([]byte, 8<<20)
	rand.New(rand.NewSource(5)).Read(big)
	publish := func(data []byte) object.ID {
		t.Helper()
		if err := os.WriteFile(filepath.Join(build, "app.bin"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := a.Publish(ctx, PublishOptions{Branch: "artifacts/app", Paths: []string{build}})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	addr := serveSlow(t, a, 0)
	aID, _ := remote.ParseDeviceID(a.Config.Device)
	mirror := func(v object.ID) int64 {
		t.Helper()
		res, err := b.FetchArtifact(ctx, addr, aID, "artifacts/app", v, "", nil)
		if err != nil || !res.Moved {
			t.Fatalf("mirror %s: %v (moved %v)", v.Short(), err, res != nil && res.Moved)
		}
		var n int64
		for _, r := range res.Received {
			n += r
		}
		return n
	}
	if n := mirror(publish(big)); n < int64(len(big)) {
		t.Fatalf("the first version came in %d bytes, less than the file", n)
	}
	edited := append(append(append([]byte{}, big[:4<<20]...), "a few new bytes"...), big[4<<20:]...)
	v2 := publish(edited)
	if n := mirror(v2); n == 0 || n > 16<<10 {
		t.Fatalf("the second version, 15 bytes inserted, came in %d bytes", n)
	}
	fsckClean(t, b)
	c, _ := b.Store.ReadCommit(v2)
	tr, _ := b.Store.ReadTree(c.Tree)
	var out bytes.Buffer
	if _, err := b.Store.WriteFileTo(ctx, &out, tr.Entries[0].ID); err != nil || !bytes.Equal(out.Bytes(), edited) {
		t.Fatalf("the mirrored app.bin differs (%v)", err)
	}
}
