package repo

import (
	"context"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// serveSlow serves r on 127.0.0.1 with every write delayed by delay and
// returns the address.
func serveSlow(t *testing.T, r *Repo, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Serve(sctx, &slowListener{ln, delay}, ln.Addr().String(), nil) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// fsckClean fails unless r's store checks out, every chunk re-read.
func fsckClean(t *testing.T, r *Repo) {
	t.Helper()
	rep, err := object.Fsck(ctx, r.Store, r.Refs, true)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("fsck of %s: %v %+v", r.Root, err, rep)
	}
}

// TestFetchSpreadsOverSwarm: the author of a large commit uploads slowly;
// another device that holds the commit serves it and says so to the
// author's tracker. A daemon's fetch of the commit (FetchDevice) and a
// mesh fetch over TLS both receive chunks from that device as well as
// from the author, and end with the whole commit. A small edit later
// comes from the author alone: it is not worth a swarm.
func TestFetchSpreadsOverSwarm(t *testing.T) {
	a := newRepo(t)
	// Devices of a's mesh, made before a serves, with nothing fetched.
	holder, d, e := joined(t, a), joined(t, a), joined(t, a)
	big := make([]byte, 40<<20)
	rand.New(rand.NewSource(3)).Read(big)
	if err := os.WriteFile(filepath.Join(a.Root, "app.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, a, "notes.txt", "v1\n")
	c1 := commit(t, a, "big")
	aAddr := serveSlow(t, a, 2*time.Millisecond)
	aID, _ := remote.ParseDeviceID(a.Config.Device)

	// The holder: a whole copy (through the path, no swarm), served fast.
	if _, err := holder.Fetch(ctx, a.Root); err != nil {
		t.Fatal(err)
	}
	if !holder.Store.Has(c1) {
		t.Fatal("the holder did not fetch the commit")
	}
	hAddr := serveSlow(t, holder, 0)
	hAuth, err := holder.Auth()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := hAuth.Dial(ctx, aAddr, aID)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Holders(ctx, c1, hAddr, true); err != nil {
		t.Fatal(err)
	}
	hID := holder.Config.Device

	// A daemon's fetch of the announced head.
	res, err := d.FetchDevice(ctx, DeviceFetch{Addr: aAddr, Src: aID, Owner: aID, Branch: "main", Commit: c1})
	if err != nil {
		t.Fatalf("fetch through the swarm: %v", err)
	}
	if res.Received[hID] == 0 {
		t.Fatalf("nothing came from the holder: %v (%+v)", res.Received, res.Stats)
	}
	if sum := res.Received[hID] + res.Received["source"]; sum < int64(len(big)) {
		t.Fatalf("received %d bytes of chunks in all (%v), the file has %d", sum, res.Received, len(big))
	}
	if got, _, _ := d.Refs.Get(deviceRef(aID, "main")); got != c1 {
		t.Fatalf("devices/%s/main is %s, want %s", aID.Short(), got.Short(), c1.Short())
	}
	t.Logf("FetchDevice received %v", res.Received)
	fsckClean(t, d)

	// mesh fetch over TLS.
	fr, err := e.Fetch(ctx, "tls://"+aAddr)
	if err != nil {
		t.Fatal(err)
	}
	if fr[0].Received[hID] == 0 {
		t.Fatalf("mesh fetch: nothing came from the holder: %v", fr[0].Received)
	}
	if !e.Store.Has(c1) {
		t.Fatal("mesh fetch did not bring the commit")
	}
	fsckClean(t, e)
	if _, err := e.Merge(ctx, "remotes/"+fr[0].Remote+"/main", MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(e.Root, "app.bin")); err != nil || string(got) != string(big) {
		t.Fatalf("app.bin after the swarm fetch differs (%v)", err)
	}

	// A small edit: the author sends it all; the holder is not asked.
	write(t, a, "notes.txt", "v2\n")
	c2 := commit(t, a, "edit")
	res, err = d.FetchDevice(ctx, DeviceFetch{Addr: aAddr, Src: aID, Owner: aID, Branch: "main", Commit: c2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Received) != 1 || res.Received["source"] == 0 {
		t.Fatalf("a small fetch was spread: %v", res.Received)
	}
	if res.Remote != aID.String() {
		t.Fatalf("the fetch names %q, not the author %s", res.Remote, aID)
	}
}

// TestSwarmFetchSendsDeltas: an edit all through a large file makes more
// new chunks than a fetch takes from its source alone (swarmMinBytes),
// so it goes the swarm's way; yet nearly all their bytes are the old
// version's, which the fetching device holds. It receives about the
// bytes that are new, and ends with the right file.
func TestSwarmFetchSendsDeltas(t *testing.T) {
	a := newRepo(t)
	e := joined(t, a)
	big := make([]byte, 40<<20)
	rand.New(rand.NewSource(4)).Read(big)
	if err := os.WriteFile(filepath.Join(a.Root, "app.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c1 := commit(t, a, "big")
	addr := serveSlow(t, a, 0)
	fetchMerge := func() *FetchResult {
		t.Helper()
		fr, err := e.Fetch(ctx, "tls://"+addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Merge(ctx, "remotes/"+fr[0].Remote+"/main", MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		return fr[0]
	}
	fetchMerge()
	// A byte inserted every 512 KiB: every chunk changes.
	var edited []byte
	for i := 0; i < len(big); i += 512 << 10 {
		edited = append(append(edited, big[i:min(i+512<<10, len(big))]...), 'x')
	}
	if err := os.WriteFile(filepath.Join(a.Root, "app.bin"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := commit(t, a, "edit")
	chunks := func(c object.ID) []object.ChunkRef {
		cm, err := a.Store.ReadCommit(c)
		if err != nil {
			t.Fatal(err)
		}
		tr, _ := a.Store.ReadTree(cm.Tree)
		f, err := a.Store.ReadFile(tr.Entries[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return f.Chunks
	}
	old := map[object.ID]bool{}
	for _, c := range chunks(c1) {
		old[c.ID] = true
	}
	var fresh int64
	for _, c := range chunks(c2) {
		if !old[c.ID] {
			fresh += c.Size
		}
	}
	if fresh < swarmMinBytes {
		t.Fatalf("the edit made %d bytes of new chunks, under the %d that go the swarm's way", fresh, swarmMinBytes)
	}
	res := fetchMerge()
	var got int64
	for _, n := range res.Received {
		got += n
	}
	if got == 0 || got > 1<<20 {
		t.Fatalf("received %d bytes of chunks (%v) for %d new bytes in %d of new chunks", got, res.Received, len(edited)-len(big), fresh)
	}
	t.Logf("received %d bytes for %d new bytes in %d of new chunks", got, len(edited)-len(big), fresh)
	if b, err := os.ReadFile(filepath.Join(e.Root, "app.bin")); err != nil || string(b) != string(edited) {
		t.Fatalf("app.bin after the fetch differs (%v)", err)
	}
	fsckClean(t, e)
}
