package remote

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/mesh-sync/mesh/object"
)

// TestStrangersCannotStall: 400 TCP connections from strangers, held
// open without a byte, and strangers that finish TLS and then declare a
// 64 MiB frame instead of a hello: a member's fetch still gets through,
// each time, and the big frame is refused before its payload is read.
func TestStrangersCannotStall(t *testing.T) {
	src := local(t)
	ids := history(t, src.Objects, 3)
	if err := src.Refs.Update(context.Background(), "heads/main", object.ZeroID, ids[0], "test"); err != nil {
		t.Fatal(err)
	}
	m := testMesh(t)
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: src})
	member := newAuth(t, m)
	fetch := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := member.Dial(ctx, addr, DeviceID{})
		if err != nil {
			t.Fatalf("%s: a member's dial: %v", what, err)
		}
		defer c.Close()
		refs, err := c.ListRefs(ctx)
		if err != nil || refs["heads/main"] != ids[0] {
			t.Fatalf("%s: a member's refs: %v %v", what, refs, err)
		}
	}

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 400 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	fetch("with 400 idle stranger connections held")

	// A stranger (a valid certificate, another mesh) that sends a frame
	// header of 64 MiB where the hello belongs is cut off at once.
	stranger := newAuth(t, testMesh(t))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, stranger.tlsConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte
	hdr[0] = byte(kindObject)
	binary.BigEndian.PutUint32(hdr[1:], MaxObjectFrame-1)
	tc.Write(hdr[:])
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(tc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server waited for the 64 MiB payload of a stranger's frame")
	}
	if len(b) > 0 {
		t.Fatalf("the server answered a stranger with %d bytes", len(b))
	}
	fetch("after a stranger's oversized frame")

	// Connections held past AcceptTimeout are closed by the server.
	old := held[0]
	old.SetReadDeadline(time.Now().Add(AcceptTimeout + 10*time.Second))
	if _, err := old.Read(make([]byte, 1)); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a stranger's idle connection outlived the handshake deadline")
	}
}

// TestPendingEviction: over the bounds, the oldest pending connection
// goes, of the same address first.
func TestPendingEviction(t *testing.T) {
	defer func(a, b int) { MaxPending, MaxPendingPerIP = a, b }(MaxPending, MaxPendingPerIP)
	MaxPending, MaxPendingPerIP = 4, 2
	p := newPendingConns()
	mk := func(ip string) *fakeConn { return &fakeConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}} }
	a1, a2, a3 := mk("10.0.0.1"), mk("10.0.0.1"), mk("10.0.0.1")
	p.add(a1)
	p.add(a2)
	p.add(a3) // a1 goes: its address is at its bound
	if !a1.closed || a2.closed {
		t.Fatalf("per-address eviction: a1 %v a2 %v", a1.closed, a2.closed)
	}
	b1, b2 := mk("10.0.0.2"), mk("10.0.0.2")
	done := p.add(b1)
	p.add(b2) // 4 pending
	c1 := mk("10.0.0.3")
	p.add(c1) // a2, the oldest of all, goes
	if !a2.closed || b1.closed {
		t.Fatalf("eviction of the oldest: a2 %v b1 %v", a2.closed, b1.closed)
	}
	done() // b1 finished its handshake: it is no longer pending
	p.add(mk("10.0.0.4"))
	if b1.closed || p.order.Len() != 4 {
		t.Fatalf("a finished connection was evicted, or the count is off: %v %d", b1.closed, p.order.Len())
	}
}

type fakeConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (f *fakeConn) RemoteAddr() net.Addr { return f.addr }
func (f *fakeConn) Close() error         { f.closed = true; return nil }

// TestRateLog: junk traffic makes at most a burst of lines per period,
// then one that counts what was held back.
func TestRateLog(t *testing.T) {
	var buf lockedBuffer
	rl := newRateLog(slog.New(slog.NewTextHandler(&buf, nil)))
	rl.period = 50 * time.Millisecond
	for range 1000 {
		rl.warn("Connection refused")
	}
	time.Sleep(60 * time.Millisecond)
	rl.warn("Connection refused")
	out := buf.String()
	if n := strings.Count(out, "Connection refused"); n != rl.burst+1 {
		t.Fatalf("%d lines for 1001 warnings", n)
	}
	if !strings.Contains(out, "count=990") {
		t.Fatalf("no count of what was held back:\n%s", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// TestPushBomb: a member pushes a commit that states 64 MiB and
// compresses to a few KB. The receiver refuses it before expanding it,
// moves no ref, keeps a clean store and serves the next member.
func TestPushBomb(t *testing.T) {
	m := testMesh(t)
	dst := local(t)
	moved := false
	var logs lockedBuffer
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: dst, Log: slog.New(slog.NewTextHandler(&logs, nil)), Push: func(context.Context, DeviceID, string, object.ID, object.ID) error {
		moved = true
		return nil
	}})
	enc, _ := zstd.NewWriter(nil)
	bomb := object.Raw{Type: object.TypeCommit, Comp: 1, Size: 64 << 20, Data: enc.EncodeAll(make([]byte, 64<<20), nil)}
	id := object.ID{0xb0, 0x0b}
	c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Speaking push by hand: offer the head, and answer the receiver's
	// request for commits with the bomb.
	c.w.writeJSON(kindPush, pushMsg{Branch: "main", New: id})
	c.w.flush()
	var answer error
	for range 4 {
		k, _, err := c.w.read()
		if err != nil {
			answer = err
			break
		}
		if k == kindCommits {
			c.w.writeObject(id, bomb)
			c.w.write(kindEnd)
			c.w.flush()
		}
		if k == kindPushDone {
			break
		}
	}
	// The receiver cuts the connection, and its log names the device
	// and why.
	if answer == nil || moved {
		t.Fatalf("the receiver's answer to a bomb: %v (ref moved: %v)", answer, moved)
	}
	waitLog := func() bool {
		for range 100 {
			if l := logs.String(); strings.Contains(l, "over the limit") && strings.Contains(l, c.LocalAddr()) {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	if !waitLog() {
		t.Fatalf("the receiver's log does not name the pusher and the limit:\n%s", logs.String())
	}
	fsckClean(t, dst.Objects)
	c2, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatalf("the next member after a bomb: %v", err)
	}
	c2.Close()
}
