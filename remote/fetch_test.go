package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

func store(t *testing.T) *object.Store {
	t.Helper()
	s, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func local(t *testing.T) *Local {
	t.Helper()
	return &Local{Objects: store(t), Refs: object.OpenRefs(t.TempDir()), Name: t.Name()}
}

// history makes n commits in a row; the content of f repeats every three.
func history(t *testing.T, s *object.Store, n int) []object.ID {
	t.Helper()
	var ids, parent []object.ID
	for i := 0; i < n; i++ {
		b := s.NewBatch()
		content := []byte(fmt.Sprintf("content %d", i%3))
		chunk, _ := b.Put(object.TypeChunk, content)
		file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: int64(len(content))}}}).Encode())
		tb, _ := (&object.Tree{Entries: []object.Entry{{Name: "f", Kind: object.KindFile, Size: int64(len(content)), ID: file}}}).Encode()
		tree, _ := b.Put(object.TypeTree, tb)
		c, _ := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Parents: parent, Time: int64(i)}).Encode())
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		parent = []object.ID{c}
		ids = append(ids, c)
	}
	return ids
}

var testChunking = object.Chunking{Algorithm: "jc-v1.1.0", Min: 1 << 10, Normal: 4 << 10, Max: 16 << 10}

// bigCommit commits one file of data (cut with testChunking) on parent.
func bigCommit(t *testing.T, s *object.Store, data []byte, parent ...object.ID) object.ID {
	t.Helper()
	return commitFile(t, s, testChunking, data, parent...)
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A transport connects a test to a peer serving src.
type transport struct {
	name    string
	connect func(t *testing.T, src *Local) Peer
}

func transports() []transport {
	return []transport{
		{"path", func(t *testing.T, src *Local) Peer { return src }},
		{"tls", func(t *testing.T, src *Local) Peer {
			m := testMesh(t)
			addr := serve(t, &Server{Auth: newAuth(t, m), Local: src})
			c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}},
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testMesh(t *testing.T) Mesh {
	m, err := NewMesh()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newAuth(t *testing.T, m Mesh) *Auth {
	id, err := NewIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &Auth{Identity: id, Mesh: m}
}

// serve runs s on an ephemeral port of 127.0.0.1 until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func fsckClean(t *testing.T, s *object.Store) int {
	t.Helper()
	rep, err := object.Fsck(context.Background(), s, object.OpenRefs(t.TempDir()), true)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
	return rep.Objects
}

func TestFetchOnlyWhatIsMissing(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			src, dst := local(t), store(t)
			ids := history(t, src.Objects, 5)
			p := tr.connect(t, src)
			st, err := Fetch(testCtx(t), p, dst, ids[2:3], nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Objects != 3*3+3 { // 3 commits, 3 trees, 3 files, 3 chunks
				t.Fatalf("first fetch moved %d objects", st.Objects)
			}
			st, err = Fetch(testCtx(t), p, dst, ids[4:], ids[2:3])
			if err != nil {
				t.Fatal(err)
			}
			// Commits 3 and 4 have the trees of 0 and 1 (contents repeat
			// every three commits): only the two commits are new.
			if st.Objects != 2 {
				t.Fatalf("second fetch moved %d objects, want 2", st.Objects)
			}
			if n := fsckClean(t, dst); n != 14 {
				t.Fatalf("dst holds %d objects, want 14", n)
			}
			// Nothing to do is not an error, and moves nothing.
			st, err = Fetch(testCtx(t), p, dst, ids, ids[4:])
			if err != nil || st.Objects != 0 {
				t.Fatalf("fetch of what is there: %+v %v", st, err)
			}
		})
	}
}

func TestFetchSendsOnlyNewChunks(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			src, dst := local(t), store(t)
			data := randomBytes(1, 1<<20)
			first := bigCommit(t, src.Objects, data)
			// A 1 KiB insertion in the middle.
			edited := append(append(append([]byte{}, data[:len(data)/2]...), randomBytes(2, 1<<10)...), data[len(data)/2:]...)
			second := bigCommit(t, src.Objects, edited, first)
			p := tr.connect(t, src)
			st, err := Fetch(testCtx(t), p, dst, []object.ID{first}, nil)
			if err != nil || st.Bytes < int64(len(data)) {
				t.Fatalf("first fetch: %+v %v", st, err)
			}
			st, err = Fetch(testCtx(t), p, dst, []object.ID{second}, []object.ID{first})
			if err != nil {
				t.Fatal(err)
			}
			// A few chunks around the insertion, the file, tree and commit.
			if st.Bytes > 4*int64(testChunking.Max)+8<<10 {
				t.Fatalf("an insertion of 1 KiB moved %d bytes", st.Bytes)
			}
			fsckClean(t, dst)
			var out bytes.Buffer
			c, _ := dst.ReadCommit(second)
			tr2, _ := dst.ReadTree(c.Tree)
			if _, err := dst.WriteFileTo(context.Background(), &out, tr2.Entries[0].ID); err != nil || !bytes.Equal(out.Bytes(), edited) {
				t.Fatalf("fetched file differs: %v", err)
			}
		})
	}
}

// flaky passes objects through until it has sent limit chunks, then fails.
type flaky struct {
	Peer
	limit, sent int
}

var errCut = errors.New("connection cut")

func (f *flaky) Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error {
	return f.Peer.Get(ctx, ids, func(id object.ID, r object.Raw) error {
		if r.Type == object.TypeChunk {
			if f.sent == f.limit {
				return errCut
			}
			f.sent++
		}
		return fn(id, r)
	})
}

func TestFetchResumes(t *testing.T) {
	defer func(old int64) { FlushEvery = old }(FlushEvery)
	FlushEvery = 64 << 10
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			src, dst := local(t), store(t)
			head := bigCommit(t, src.Objects, randomBytes(3, 1<<20))
			p := &flaky{Peer: tr.connect(t, src), limit: 100}
			if _, err := Fetch(testCtx(t), p, dst, []object.ID{head}, nil); !errors.Is(err, errCut) {
				t.Fatalf("cut fetch: %v", err)
			}
			if dst.Has(head) {
				t.Fatal("a cut fetch left the commit in the store")
			}
			kept := len(dst.IDs())
			if kept == 0 || kept > 100 {
				t.Fatalf("a cut fetch kept %d chunks", kept)
			}
			p = &flaky{Peer: tr.connect(t, src), limit: 1 << 30}
			st, err := Fetch(testCtx(t), p, dst, []object.ID{head}, nil)
			if err != nil {
				t.Fatal(err)
			}
			total := fsckClean(t, dst)
			if st.Skipped < kept || st.Objects != total-kept {
				t.Fatalf("resumed fetch moved %d objects and skipped %d; %d were kept, %d in all", st.Objects, st.Skipped, kept, total)
			}
		})
	}
}

// lying sends a different body for one ID.
type lying struct {
	Peer
	victim object.ID
	t      object.Type
	body   []byte
}

func (l lying) Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error {
	return l.Peer.Get(ctx, ids, func(id object.ID, r object.Raw) error {
		if id == l.victim {
			return fn(id, object.RawOf(l.t, l.body))
		}
		return fn(id, r)
	})
}

func TestFetchRefusesWrongBytes(t *testing.T) {
	src := local(t)
	ids := history(t, src.Objects, 2)
	c, _ := src.Objects.ReadCommit(ids[1])
	tree, _ := src.Objects.ReadTree(c.Tree)
	file, _ := src.Objects.ReadFile(tree.Entries[0].ID)
	for _, liar := range []lying{
		{Peer: src, victim: c.Tree, t: object.TypeTree, body: []byte("garbage")},
		{Peer: src, victim: file.Chunks[0].ID, t: object.TypeChunk, body: []byte("x")},
		// the true bytes of a file, but called a chunk
		{Peer: src, victim: tree.Entries[0].ID, t: object.TypeChunk, body: file.Encode()},
	} {
		dst := store(t)
		_, err := Fetch(testCtx(t), liar, dst, ids[1:], nil)
		if !errors.Is(err, object.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(liar.victim.Short())) {
			t.Fatalf("lying peer: %v", err)
		}
		if dst.Has(ids[1]) || dst.Has(c.Tree) {
			t.Fatal("metadata from a lying peer was kept")
		}
	}
}

func TestWalkCommitsStopsAtHaves(t *testing.T) {
	s := store(t)
	ids := history(t, s, 20)
	var got []object.ID
	err := walkCommits(context.Background(), s, ids[19:], ids[14:15], func(id object.ID, _ object.Raw) error {
		got = append(got, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0] != ids[19] || got[4] != ids[15] {
		t.Fatalf("walk sent %d commits", len(got))
	}
	// A have the store does not hold is ignored, a want it does not hold is an error.
	err = walkCommits(context.Background(), s, ids[1:2], []object.ID{{1}}, func(object.ID, object.Raw) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	err = walkCommits(context.Background(), s, []object.ID{{1}}, nil, func(object.ID, object.Raw) error { return nil })
	if !errors.Is(err, object.ErrNotFound) {
		t.Fatalf("unknown want: %v", err)
	}
}

// TestServerCountsSent: the server tells Sent, per member, at least the
// bytes of the objects it sent that member, over the member's own ID.
func TestServerCountsSent(t *testing.T) {
	src, dst := local(t), store(t)
	ids := history(t, src.Objects, 5)
	m := testMesh(t)
	var mu sync.Mutex
	sent := map[DeviceID]int64{}
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: src, Sent: func(p DeviceID, n int64) {
		mu.Lock()
		sent[p] += n
		mu.Unlock()
	}})
	client := newAuth(t, m)
	c, err := client.Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Fetch(testCtx(t), c, dst, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The last request's count is told when the connection ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got, n := sent[client.Identity.ID], len(sent)
		mu.Unlock()
		if got >= st.Bytes && st.Bytes > 0 {
			if n != 1 {
				t.Fatalf("Sent told of %d devices, want 1", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sent told %d bytes to %s, the fetch received %d bytes of objects", got, client.Identity.ID.Short(), st.Bytes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
