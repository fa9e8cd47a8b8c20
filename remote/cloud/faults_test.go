package cloud

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud/s3test"
)

// TestFaultsConverge: with a proxy that answers 500, resets connections,
// stalls and cuts bodies short in front of the server, A's pushes and B's
// fetches, each run again when it fails as a daemon's next round would,
// still bring B every head of A; nothing half-written is ever named by
// an index or a ref (fsck finds no problem), and gc removes what pushes
// cut short left.
func TestFaultsConverge(t *testing.T) {
	old := Timeout
	Timeout = 400 * time.Millisecond
	t.Cleanup(func() { Timeout = old })
	s := s3test.Start(t)
	url := s.Bucket(t, "faults", "p")
	direct := s.Endpoint
	proxy := s.NewProxy(t, 11, map[s3test.Fault]float64{s3test.Fail500: 0.12, s3test.Reset: 0.06, s3test.Stall: 0.03, s3test.Cut: 0.06})
	proxy.StallFor = 1500 * time.Millisecond
	m, _ := remote.NewMesh()
	a, b := newDevice(t), newDevice(t)
	ctx := testCtx(t)
	again := func(what string, f func() error) {
		t.Helper()
		var err error
		for i := 0; i < 20; i++ {
			if err = f(); err == nil {
				return
			}
		}
		t.Fatalf("%s failed 20 times: %v", what, err)
	}
	var head object.ID
	for round := range 6 {
		var parents []object.ID
		if !head.IsZero() {
			parents = []object.ID{head}
		}
		head = a.commit(t, fmt.Sprintf("f%d", round), randomData(uint64(round), 300<<10), parents...)
		again("push", func() error {
			_, err := a.open(t, url, m.Secret[:]).Push(ctx, a.st, a.id, "main", head)
			return err
		})
		again("fetch", func() error {
			bb := b.open(t, url, m.Secret[:])
			refs, err := bb.ListRefs(ctx)
			if err != nil {
				return err
			}
			want := refs["devices/"+a.id.ID.String()+"/main"]
			if want != head {
				return fmt.Errorf("the bucket names %s, A pushed %s", want.Short(), head.Short())
			}
			_, err = remote.Fetch(ctx, bb, b.st, []object.ID{want}, nil)
			return err
		})
		if !b.st.Has(head) {
			t.Fatalf("round %d: B lacks A's head", round)
		}
	}
	if rep, err := object.Fsck(ctx, b.st, object.OpenRefs(t.TempDir()), true); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("B's store: %+v %v", rep, err)
	}
	counts := proxy.Counts()
	for _, f := range []s3test.Fault{s3test.Fail500, s3test.Reset, s3test.Stall, s3test.Cut} {
		if counts[f] == 0 {
			t.Errorf("the proxy injected no fault %d in %d requests: %v", f, counts[s3test.Pass], counts)
		}
	}
	// Straight to the server: what the bucket names is whole.
	t.Setenv("AWS_ENDPOINT_URL", direct)
	ab := a.open(t, url, m.Secret[:])
	rep, err := ab.Fsck(ctx, true)
	if err != nil || len(rep.Problems) != 0 || rep.Refs != 1 {
		t.Fatalf("fsck of the bucket: %+v %v", rep, err)
	}
	t.Logf("faults %v; %d packs, %d objects, %d left unreferenced by pushes cut short", counts, rep.Packs, rep.Objects, len(rep.Unreferenced))
	gc, err := ab.GC(ctx, 0, time.Now().Add(time.Second))
	if err != nil || gc.PacksDeleted < len(rep.Unreferenced) {
		t.Fatalf("gc: %+v %v (%d unreferenced)", gc, err, len(rep.Unreferenced))
	}
	if rep, err = ab.Fsck(ctx, true); err != nil || len(rep.Problems) != 0 || len(rep.Unreferenced) != 0 {
		t.Fatalf("fsck after gc: %+v %v", rep, err)
	}
	c := newDevice(t)
	if _, err := remote.Fetch(ctx, c.open(t, url, m.Secret[:]), c.st, []object.ID{head}, nil); err != nil {
		t.Fatalf("a new device's fetch after gc: %v", err)
	}
}

// TestBucketGC: gc keeps what any ref needs and packs younger than the
// grace period, and deletes a pack nothing needs and one no index names.
func TestBucketGC(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "gc-test", "")
	m, _ := remote.NewMesh()
	a := newDevice(t)
	ctx := context.Background()
	ab := a.open(t, url, m.Secret[:])
	c1 := a.commit(t, "f", randomData(1, 100<<10))
	if _, err := ab.Push(ctx, a.st, a.id, "main", c1); err != nil {
		t.Fatal(err)
	}
	// A push whose ref was never written (the device died after the
	// index): a whole closure no ref names.
	lost := a.commit(t, "g", randomData(2, 100<<10))
	objs, err := ab.missing(a.st, lost)
	if err != nil || len(objs) != 4 {
		t.Fatalf("what the bucket lacks of another history: %v %v", objs, err)
	}
	if _, _, err := ab.writePack(ctx, a.st, objs); err != nil {
		t.Fatal(err)
	}
	// A pack cut short: no index.
	if err := ab.st.Put(ctx, packsDir+randomName(), bytesReader([]byte("half a pack")), 11); err != nil {
		t.Fatal(err)
	}
	before, err := ab.Fsck(ctx, false)
	if err != nil || len(before.Unreferenced) != 1 || before.Packs != 2 {
		t.Fatalf("fsck before gc: %+v %v", before, err)
	}
	// Within the grace period nothing goes.
	if res, err := ab.GC(ctx, time.Hour, time.Now()); err != nil || res.PacksDeleted != 0 {
		t.Fatalf("gc within grace: %+v %v", res, err)
	}
	res, err := ab.GC(ctx, 0, time.Now().Add(time.Second))
	if err != nil || res.PacksDeleted != 2 {
		t.Fatalf("gc: %+v %v", res, err)
	}
	after, err := ab.Fsck(ctx, true)
	if err != nil || len(after.Problems) != 0 || after.Packs != 1 || len(after.Unreferenced) != 0 {
		t.Fatalf("fsck after gc: %+v %v", after, err)
	}
	b := newDevice(t)
	if _, err := remote.Fetch(ctx, b.open(t, url, m.Secret[:]), b.st, []object.ID{c1}, nil); err != nil {
		t.Fatalf("fetch after gc: %v", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
