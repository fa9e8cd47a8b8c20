package remote

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/mesh-sync/mesh/object"
)

func TestAnotherMeshGetsNothing(t *testing.T) {
	src := local(t)
	ids := history(t, src.Objects, 1)
	if err := src.Refs.Update(context.Background(), "heads/main", object.ZeroID, ids[0], "test"); err != nil {
		t.Fatal(err)
	}
	m := testMesh(t)
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: src})

	// A device of another mesh is refused.
	_, err := newAuth(t, testMesh(t)).Dial(testCtx(t), addr, DeviceID{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("dial from another mesh: %v", err)
	}

	// Speaking the protocol by hand: a wrong proof, then a request for
	// refs, gets one error frame and the end of the connection.
	outsider := newAuth(t, m) // right mesh, but it will lie about the proof
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, outsider.tlsConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	w := newWire(tc)
	w.writeJSON(kindHello, helloMsg{Version: ProtocolVersion, Mesh: m.ID(), Device: outsider.Identity.ID.String(), Proof: make([]byte, 32)})
	w.write(kindRefsReq)
	w.flush()
	if _, _, err := w.read(); !strings.Contains(err.Error(), "not of this mesh") {
		t.Fatalf("first frame after a bad proof: %v", err)
	}
	if k, b, err := w.read(); err == nil {
		t.Fatalf("after the error frame, a %s frame of %d bytes", k, len(b))
	}

	// The server is still there for the mesh's devices.
	c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refs, err := c.ListRefs(testCtx(t))
	if err != nil || refs["heads/main"] != ids[0] {
		t.Fatalf("refs: %v %v", refs, err)
	}
}

func TestDialChecksTheExpectedDevice(t *testing.T) {
	m := testMesh(t)
	server := newAuth(t, m)
	addr := serve(t, &Server{Auth: server, Local: local(t)})
	other := newAuth(t, m).Identity.ID
	if _, err := newAuth(t, m).Dial(testCtx(t), addr, other); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), other.Short()) {
		t.Fatalf("dial expecting another device: %v", err)
	}
	c, err := newAuth(t, m).Dial(testCtx(t), addr, server.Identity.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// A hostile client: garbage instead of TLS, a silent connection, a member
// that sends a huge length prefix. Each is cut off; the server goes on.
func TestHostileClients(t *testing.T) {
	defer func(old time.Duration) { handshakeTimeout = old }(handshakeTimeout)
	handshakeTimeout = 200 * time.Millisecond
	m := testMesh(t)
	src := local(t)
	history(t, src.Objects, 1)
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: src})

	garbage, _ := net.Dial("tcp", addr)
	garbage.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	silent, _ := net.Dial("tcp", addr)
	c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte
	hdr[0] = byte(kindGet)
	binary.BigEndian.PutUint32(hdr[1:], 1<<31)
	c.tls.Write(hdr[:])
	for _, conn := range []net.Conn{garbage, silent} {
		if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if !errors.As(err, &ne) {
				t.Fatalf("read from a cut connection: %v", err)
			}
		}
		conn.Close()
	}
	if _, _, err := c.w.read(); !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("after a huge frame: %v", err)
	}
	c.Close()
	good, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if _, err := good.ListRefs(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// hostileServer is a member of the mesh that answers each request with
// what act writes; act returns false to close the connection.
func hostileServer(t *testing.T, m Mesh, act func(w *wire, k frameKind, b []byte) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, m)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer raw.Close()
				c, err := a.accept(context.Background(), raw)
				if err != nil {
					return
				}
				for {
					k, b, err := c.w.read()
					if err != nil {
						return
					}
					more := act(c.w, k, b)
					c.w.flush()
					if !more {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// commitFlood sends n unrelated commits with message msg, then the end:
// history without end, or metadata past what a fetch may hold.
func commitFlood(n int, msg string) func(*wire) bool {
	return func(w *wire) bool {
		for i := 0; i < n; i++ {
			c := object.Commit{Tree: object.EmptyTreeID, Time: int64(i), Message: msg}
			body := c.Encode()
			if w.writeObject(object.Hash(object.TypeCommit, body), object.RawOf(object.TypeCommit, body)) != nil {
				return false
			}
		}
		w.write(kindEnd)
		return true
	}
}

func TestHostileServers(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 64<<20), nil)
	m := testMesh(t)
	honest := local(t)
	head := bigCommit(t, honest.Objects, randomBytes(5, 256<<10))
	res := &responder{local: honest}
	// onCommits answers every request as an honest peer would, but a
	// request for commits, which send answers (false: hang up).
	onCommits := func(send func(w *wire) bool) func(w *wire, k frameKind, b []byte) bool {
		return func(w *wire, k frameKind, b []byte) bool {
			if k != kindCommits {
				return res.handle(context.Background(), w, k, b) == nil
			}
			return send(w)
		}
	}
	header := func(w *wire, k frameKind, n uint32) {
		var hdr [5]byte
		hdr[0] = byte(k)
		binary.BigEndian.PutUint32(hdr[1:], n)
		w.w.Write(hdr[:])
	}
	cases := []struct {
		name string
		act  func(w *wire, k frameKind, b []byte) bool
		want error
	}{
		{"wrong bytes", func(w *wire, k frameKind, b []byte) bool {
			if k != kindGet {
				return res.handle(context.Background(), w, k, b) == nil
			}
			ids, _ := decodeIDs(b)
			for _, id := range ids {
				t, body, _ := honest.Objects.Get(id)
				w.writeObject(id, object.RawOf(t, append([]byte{1}, body...)))
			}
			return true
		}, object.ErrCorrupt},
		{"huge length prefix", func(w *wire, k frameKind, b []byte) bool {
			header(w, kindObject, 0xffffffff)
			return true
		}, ErrProtocol},
		{"truncated stream", func(w *wire, k frameKind, b []byte) bool {
			header(w, kindObject, 1000)
			w.w.Write([]byte("only this"))
			return false
		}, io.ErrUnexpectedEOF},
		{"garbage", func(w *wire, k frameKind, b []byte) bool {
			w.w.Write([]byte("HTTP/1.1 400 Bad Request\r\n"))
			return true
		}, ErrProtocol},
		{"objects never asked for", onCommits(func(w *wire) bool {
			w.writeObject(head, object.RawOf(object.TypeCommit, []byte("not the commit")))
			w.write(kindEnd)
			return true
		}), object.ErrCorrupt},
		{"endless history", onCommits(commitFlood(1000, "more")), ErrProtocol},
		{"commit bomb", onCommits(func(w *wire) bool {
			// A few KB that expand to 64 MiB, stated as such: refused
			// before anything is decompressed.
			w.writeObject(head, object.Raw{Type: object.TypeCommit, Comp: 1, Size: 64 << 20, Data: bomb})
			w.write(kindEnd)
			return true
		}), object.ErrTooLarge},
		{"commit bomb stating a small size", onCommits(func(w *wire) bool {
			w.writeObject(head, object.Raw{Type: object.TypeCommit, Comp: 1, Size: 1 << 10, Data: bomb})
			w.write(kindEnd)
			return true
		}), object.ErrMalformed},
		{"metadata flood", onCommits(commitFlood(5000, strings.Repeat("x", 512))), ErrProtocol},
		{"history with a hole", onCommits(func(w *wire) bool {
			c := object.Commit{Tree: object.EmptyTreeID, Parents: []object.ID{{7}}, Message: "orphan"}
			body := c.Encode()
			w.writeObject(object.Hash(object.TypeCommit, body), object.RawOf(object.TypeCommit, body))
			w.write(kindEnd)
			return true
		}), ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "endless history" {
				defer func(old int) { MaxCommitsPerFetch = old }(MaxCommitsPerFetch)
				MaxCommitsPerFetch = 100
			}
			if tc.name == "metadata flood" {
				// 5000 distinct commits of about 600 bytes: over 1 MiB held.
				defer func(old int64) { MaxMetaPerFetch = old }(MaxMetaPerFetch)
				MaxMetaPerFetch = 1 << 20
			}
			dst := store(t)
			want := head
			if tc.name == "history with a hole" {
				c := object.Commit{Tree: object.EmptyTreeID, Parents: []object.ID{{7}}, Message: "orphan"}
				want = object.Hash(object.TypeCommit, c.Encode())
			}
			fetchHostile(t, m, tc.act, dst, want, nil, tc.want)
		})
	}
}

// fetchHostile fetches want (dst holding haves) from a server of mesh m
// that acts as act, and fails unless the fetch fails with wantErr, naming
// the server, and dst keeps nothing of want.
func fetchHostile(t *testing.T, m Mesh, act func(w *wire, k frameKind, b []byte) bool, dst *object.Store, want object.ID, haves []object.ID, wantErr error) {
	t.Helper()
	addr := hostileServer(t, m, act)
	c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = Fetch(testCtx(t), c, dst, []object.ID{want}, haves)
	if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("fetch from a hostile server: %v, want %v naming %s", err, wantErr, addr)
	}
	if dst.Has(want) {
		t.Fatal("the commit from a hostile server was kept")
	}
}

func TestPush(t *testing.T) {
	m := testMesh(t)
	dst := local(t)
	type pushed struct {
		from     DeviceID
		branch   string
		old, new object.ID
	}
	var got []pushed
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: dst, Push: func(ctx context.Context, from DeviceID, branch string, old, new object.ID) error {
		if !dst.Objects.Has(new) {
			return errors.New("push called before the objects arrived")
		}
		got = append(got, pushed{from, branch, old, new})
		return nil
	}})
	src := local(t)
	ids := history(t, src.Objects, 4)
	me := newAuth(t, m)
	c, err := me.Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Push(testCtx(t), src, "main", object.ZeroID, ids[3])
	if err != nil || st.Objects != 4+3*3 {
		t.Fatalf("push: %+v %v", st, err)
	}
	fsckClean(t, dst.Objects)
	if len(got) != 1 || got[0] != (pushed{me.Identity.ID, "main", object.ZeroID, ids[3]}) {
		t.Fatalf("push recorded %+v", got)
	}
	// The connection is still good for a fetch afterwards.
	if _, err := c.ListRefs(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	// A device that does not take pushes says so.
	addr = serve(t, &Server{Auth: newAuth(t, m), Local: local(t)})
	c2, err := me.Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var pe *PeerError
	if _, err := c2.Push(testCtx(t), src, "main", object.ZeroID, ids[3]); !errors.As(err, &pe) || !strings.Contains(err.Error(), "does not accept pushes") {
		t.Fatalf("push to a device that refuses: %v", err)
	}
}

func TestFetchRefusesBadCompression(t *testing.T) {
	src := local(t)
	ids := history(t, src.Objects, 1)
	c, _ := src.Objects.ReadCommit(ids[0])
	for name, bad := range map[string]object.Raw{
		"not zstd":      {Type: object.TypeTree, Comp: 1, Size: 10, Data: []byte("garbage garbage")},
		"size mismatch": {Type: object.TypeTree, Comp: 0, Size: 99, Data: []byte("short")},
		"huge claim":    {Type: object.TypeTree, Comp: 1, Size: 1 << 30, Data: []byte{0}},
		"no such comp":  {Type: object.TypeTree, Comp: 7, Size: 1, Data: []byte{0}},
	} {
		liar := rawLiar{Peer: src, victim: c.Tree, raw: bad}
		dst := store(t)
		if _, err := Fetch(testCtx(t), liar, dst, ids, nil); !errors.Is(err, object.ErrCorrupt) {
			t.Fatalf("%s: %v", name, err)
		}
		if dst.Has(ids[0]) {
			t.Fatalf("%s: the commit was kept", name)
		}
	}
}

type rawLiar struct {
	Peer
	victim object.ID
	raw    object.Raw
}

func (l rawLiar) Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error {
	return l.Peer.Get(ctx, ids, func(id object.ID, r object.Raw) error {
		if id == l.victim {
			r = l.raw
		}
		return fn(id, r)
	})
}
