package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// IdleTimeout bounds how long either side waits for the other to read or
// write anything; a peer silent for longer is cut off.
var IdleTimeout = 60 * time.Second

// idleConn extends its deadline on every read and write, so a long
// transfer may take as long as it takes but a stalled peer cannot hold a
// connection (and its goroutine) forever.
// During the handshake, a fixed deadline bounds the whole exchange.
type idleConn struct {
	net.Conn
	fixed time.Time
	// lastRead is when a read last returned bytes (Unix ns): a swarm
	// tells a device that is slow from one that sends nothing.
	lastRead atomic.Int64
	// written is the bytes written, for a server's Traffic.
	written atomic.Int64
}

func (c *idleConn) deadline() time.Time {
	if !c.fixed.IsZero() {
		return c.fixed
	}
	return time.Now().Add(IdleTimeout)
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(c.deadline())
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// lastRead is when the peer last sent anything.
func (c *Conn) lastRead() time.Time { return time.Unix(0, c.ic.lastRead.Load()) }

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(c.deadline())
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// A Conn is a Peer: the methods below ask the device at the other end.
// One request runs at a time; after an error the connection is closed,
// since the stream can no longer be trusted to be in step.

func (c *Conn) lock() func() {
	c.mu.Lock()
	return c.mu.Unlock
}

func (c *Conn) String() string { return fmt.Sprintf("device %s at %s", c.Peer.Short(), c.Addr) }

func (c *Conn) fail(err error) error {
	if err != nil {
		c.tls.Close()
	}
	return err
}

// ListRefs asks for the peer's refs.
func (c *Conn) ListRefs(ctx context.Context) (map[string]object.ID, error) {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	if err := c.w.write(kindRefsReq); err != nil {
		return nil, c.fail(err)
	}
	if err := c.w.flush(); err != nil {
		return nil, c.fail(err)
	}
	refs := map[string]object.ID{}
	if err := c.w.readJSON(kindRefs, &refs); err != nil {
		return nil, c.fail(err)
	}
	for name := range refs {
		if !object.ValidRefName(name) {
			return nil, c.fail(fmt.Errorf("ref name %q: %w", name, ErrProtocol))
		}
	}
	return refs, nil
}

// cancelOn closes the connection when ctx ends, which unblocks any read
// or write in progress.
func (c *Conn) cancelOn(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { c.tls.Close() })
}

// ctxErr prefers the context's error to the one closing the connection
// caused.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Commits asks the peer for the commits reachable from wants and not from haves.
func (c *Conn) Commits(ctx context.Context, wants, haves []object.ID, fn ObjectFunc) error {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	if len(wants)+len(haves) > maxIDsPerRequest {
		haves = haves[:max(0, maxIDsPerRequest-len(wants))]
		if len(wants) > maxIDsPerRequest {
			return fmt.Errorf("%d wanted commits in one request, at most %d", len(wants), maxIDsPerRequest)
		}
	}
	if err := c.w.write(kindCommits, encodeCommitsRequest(wants, haves)); err != nil {
		return c.fail(err)
	}
	if err := c.w.flush(); err != nil {
		return c.fail(err)
	}
	for {
		k, b, err := c.w.read()
		if err != nil {
			return c.fail(ctxErr(ctx, err))
		}
		switch k {
		case kindEnd:
			return nil
		case kindObject:
			id, r, err := decodeObject(b)
			if err == nil {
				err = fn(id, r)
			}
			if err != nil {
				return c.fail(ctxErr(ctx, err))
			}
		default:
			return c.fail(fmt.Errorf("a %s frame among commits: %w", k, ErrProtocol))
		}
	}
}

// Get asks for ids and calls fn with each in order. Requests go out while
// answers come in, so a long list costs one round trip.
func (c *Conn) Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error {
	_, err := c.getObjects(ctx, ids, fn, false)
	return err
}

// GetSome asks for ids and calls fn with each one the peer has, in
// order; it returns the ones the peer does not have (a swarm member that
// is still fetching), where Get would fail.
func (c *Conn) GetSome(ctx context.Context, ids []object.ID, fn ObjectFunc) ([]object.ID, error) {
	return c.getObjects(ctx, ids, fn, true)
}

func (c *Conn) getObjects(ctx context.Context, ids []object.ID, fn ObjectFunc, missingOK bool) ([]object.ID, error) {
	return c.request(ctx, ids, func() error {
		for start := 0; start < len(ids); start += maxIDsPerRequest {
			end := min(len(ids), start+maxIDsPerRequest)
			if err := c.w.write(kindGet, encodeIDs(ids[start:end])); err != nil {
				return err
			}
		}
		return nil
	}, fn, missingOK, false)
}

// getChunks is Get of chunks (GetSome, with missingOK). When the peer
// sends deltas and ws name bases (chunks this side holds), it asks for
// deltas: fn then may get a chunk with Comp compDelta, to be expanded
// against its bases.
func (c *Conn) getChunks(ctx context.Context, ws []want, fn ObjectFunc, missingOK bool) ([]object.ID, error) {
	if !c.deltas || !hasBases(ws) {
		return c.getObjects(ctx, idsOf(ws), fn, missingOK)
	}
	return c.request(ctx, idsOf(ws), func() error {
		for _, b := range encodeDeltaRequests(ws) {
			if err := c.w.write(kindGetDelta, b); err != nil {
				return err
			}
		}
		return nil
	}, fn, missingOK, true)
}

// request sends a request for ids (write queues its frames) while it
// reads the answers, one per ID in order.
func (c *Conn) request(ctx context.Context, ids []object.ID, write func() error, fn ObjectFunc, missingOK, deltas bool) ([]object.ID, error) {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	werr := make(chan error, 1)
	go func() {
		if err := write(); err != nil {
			werr <- err
			return
		}
		werr <- c.w.flush()
	}()
	missing, err := c.readObjects(ids, fn, missingOK, deltas)
	if err != nil {
		c.tls.Close() // unblocks the writer
	}
	if e := <-werr; err == nil && e != nil {
		err = c.fail(e)
	}
	return missing, ctxErr(ctx, err)
}

func (c *Conn) readObjects(ids []object.ID, fn ObjectFunc, missingOK, deltas bool) ([]object.ID, error) {
	var missing []object.ID
	for _, want := range ids {
		k, b, err := c.w.read()
		if err != nil {
			return missing, err
		}
		switch k {
		case kindObject:
			id, r, err := decodeObject(b)
			if err != nil {
				return missing, err
			}
			if err := fn(id, r); err != nil {
				return missing, err
			}
		case kindDelta:
			if !deltas {
				return missing, fmt.Errorf("a delta where %s was asked for whole: %w", want.Short(), ErrProtocol)
			}
			id, r, err := decodeDelta(b)
			if err != nil {
				return missing, err
			}
			if id != want {
				return missing, fmt.Errorf("a delta of %s where %s was asked: %w", id.Short(), want.Short(), ErrProtocol)
			}
			if err := fn(id, r); err != nil {
				return missing, err
			}
		case kindMissing:
			if !missingOK {
				return missing, fmt.Errorf("%s: %w there", want.Short(), object.ErrNotFound)
			}
			if len(b) != len(want) || object.ID(b) != want {
				return missing, fmt.Errorf("said %x is missing where %s was asked: %w", b, want.Short(), ErrProtocol)
			}
			missing = append(missing, want)
		default:
			return missing, fmt.Errorf("a %s frame where an object belongs: %w", k, ErrProtocol)
		}
	}
	return missing, nil
}

// Push offers the peer head new for branch (whose ref for this device
// was old), serves the objects it asks for, and returns what it fetched.
// The peer moves the ref only after it has the whole closure, and only
// as a fast-forward.
func (c *Conn) Push(ctx context.Context, local *Local, branch string, old, new object.ID) (Stats, error) {
	defer c.lock()()
	stop := c.cancelOn(ctx)
	defer stop()
	if err := c.w.writeJSON(kindPush, pushMsg{Branch: branch, Old: old, New: new}); err != nil {
		return Stats{}, c.fail(err)
	}
	if err := c.w.flush(); err != nil {
		return Stats{}, c.fail(err)
	}
	res := &responder{local: local}
	for {
		k, b, err := c.w.read()
		if err != nil {
			return Stats{}, c.fail(ctxErr(ctx, err))
		}
		if k == kindPushDone {
			var r pushResult
			if err := unmarshalFrame(k, b, &r); err != nil {
				return Stats{}, c.fail(err)
			}
			if r.Error != "" {
				return r.Stats, &PeerError{Msg: r.Error}
			}
			return r.Stats, nil
		}
		if err := res.handle(ctx, c.w, k, b); err != nil {
			return Stats{}, c.fail(ctxErr(ctx, err))
		}
	}
}

// errNotARequest is handle's verdict on a frame that is not a request.
var errNotARequest = errors.New("not a request")
