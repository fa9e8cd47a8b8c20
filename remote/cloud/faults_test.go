package cloud

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud/s3test"
)

// TestFaultsConverge: with a proxy that answers 500, resets connections,
// stalls and cuts bodies short in front of the server, A's pushes (some
// of them multipart uploads) and B's
// fetches, each run again when it fails as a daemon's next round would,
// still bring B every head of A; nothing half-written is ever named by
// an index or a ref (fsck finds no problem), and gc removes what pushes
// cut short left.
func TestFaultsConverge(t *testing.T) {
	old, oldPart := Timeout, partSize
	Timeout = 400 * time.Millisecond
	partSize = 5 << 20 // the least S3 takes: some packs are multipart uploads
	t.Cleanup(func() { Timeout, partSize = old, oldPart })
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
		size := 300 << 10
		if round%3 == 0 {
			size = 6 << 20 // two parts
		}
		head = a.commit(t, fmt.Sprintf("f%d", round), randomData(uint64(round), size), parents...)
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
	// A pack mostly garbage but holding what a ref needs is written
	// again with only that.
	lost2 := a.commit(t, "h", randomData(3, 300<<10))
	c2 := a.commit(t, "f", randomData(4, 20<<10), c1)
	ab = a.open(t, url, m.Secret[:])
	ab.load(ctx)
	garbage, _ := ab.missing(a.st, lost2)
	used, _ := ab.missing(a.st, c2)
	if _, _, err := ab.writePack(ctx, a.st, append(garbage, used...)); err != nil {
		t.Fatal(err)
	}
	if res, err := ab.Push(ctx, a.st, a.id, "main", c2); err != nil || res.Objects != 0 {
		t.Fatalf("the push of what the bucket holds: %+v %v", res, err)
	}
	res, err = ab.GC(ctx, 0, time.Now().Add(time.Second))
	if err != nil || res.PacksRewritten != 1 || res.BytesFreed < 250<<10 {
		t.Fatalf("gc of a mostly unneeded pack: %+v %v", res, err)
	}
	fresh := a.open(t, url, m.Secret[:])
	if rep, err := fresh.Fsck(ctx, true); err != nil || len(rep.Problems) != 0 || rep.Objects != 8 {
		t.Fatalf("fsck after the rewrite: %+v %v", rep, err)
	}
	if fresh.has(lost2) {
		t.Fatal("the rewrite kept an unneeded commit")
	}
	b = newDevice(t)
	if _, err := remote.Fetch(ctx, b.open(t, url, m.Secret[:]), b.st, []object.ID{c2}, nil); err != nil {
		t.Fatalf("fetch after the rewrite: %v", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// cutStore fails the upload of its nth pack partway, as a push killed
// there would leave it.
type cutStore struct {
	Store
	n, packs int
}

func (c *cutStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasPrefix(key, packsDir) {
		c.packs++
		if c.packs == c.n {
			io.CopyN(io.Discard, r, 1000)
			return fmt.Errorf("%s: the upload was cut short", key)
		}
	}
	return c.Store.Put(ctx, key, r, size)
}

// TestPushResumes: a large push is several packs, each whole once its
// index is written; one cut short in the middle and run again sends only
// what no finished pack holds, and the result is whole.
func TestPushResumes(t *testing.T) {
	old := MaxPack
	MaxPack = 200 << 10
	t.Cleanup(func() { MaxPack = old })
	s := s3test.Start(t)
	url := s.Bucket(t, "resume", "")
	m, _ := remote.NewMesh()
	a := newDevice(t)
	ctx := testCtx(t)
	// A file of many chunks.
	data := randomData(5, 2<<20)
	b := a.st.NewBatch()
	var refs []object.ChunkRef
	for off := 0; off < len(data); off += 64 << 10 {
		id, err := b.Put(object.TypeChunk, data[off:off+64<<10])
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, object.ChunkRef{ID: id, Size: 64 << 10})
	}
	file, _ := b.Put(object.TypeFile, (&object.File{Chunks: refs}).Encode())
	tb, _ := (&object.Tree{Entries: []object.Entry{{Name: "big", Kind: object.KindFile, Size: int64(len(data)), ID: file}}}).Encode()
	tree, _ := b.Put(object.TypeTree, tb)
	head, err := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Device: a.id.ID.String(), Author: "a", Time: 1, Message: "big"}).Encode())
	if err != nil || b.Finish() != nil {
		t.Fatal(err)
	}
	st, err := OpenS3(url)
	if err != nil {
		t.Fatal(err)
	}
	cut := &cutStore{Store: st, n: 4}
	ab, _ := Open(cut, m.Secret[:], filepath.Join(a.dir, "cloud"))
	res, err := ab.Push(ctx, a.st, a.id, "main", head)
	if err == nil || res.Packs != 3 {
		t.Fatalf("the push cut at its 4th pack: %+v %v", res, err)
	}
	total := len(refs) + 3
	done := len(ab.objects) // in the packs the first push finished
	if done == 0 || done >= total {
		t.Fatalf("the cut push finished packs of %d of %d objects", done, total)
	}
	res, err = ab.Push(ctx, a.st, a.id, "main", head)
	if err != nil || res.Objects != total-done {
		t.Fatalf("the push run again sent %d objects; %d of %d were in finished packs: %+v %v", res.Objects, done, total, res, err)
	}
	c := newDevice(t)
	cb := c.open(t, url, m.Secret[:])
	if _, err := remote.Fetch(ctx, cb, c.st, []object.ID{head}, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := cb.Fsck(ctx, true)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck: %+v %v", rep, err)
	}
}
