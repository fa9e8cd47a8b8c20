package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/mesh-sync/mesh/object"
)

// PushFunc moves a ref for a push, once the pushed closure is in the
// store: the ref of device from for branch, from old to new. It refuses
// what is not a fast-forward (deciding that is not this package's job).
type PushFunc func(ctx context.Context, from DeviceID, branch string, old, new object.ID) error

// Server serves a repository to the devices of its mesh.
type Server struct {
	Auth  *Auth
	Local *Local
	// Push, when set, accepts pushes; otherwise they are refused.
	Push PushFunc
	// Log receives one line per connection; nil discards.
	Log *slog.Logger
	// MaxConns bounds members' connections served at once; more wait
	// until one ends. Connections still proving membership have bounds
	// of their own (admit.go).
	MaxConns int
	// Tracker, when set, answers which devices hold a commit (swarm
	// fetches); otherwise the answer is always none.
	Tracker *Tracker
	// Sent, when set, is told the bytes sent to a member over its
	// connection (TLS records: answers, objects, refs) after each request
	// it made.
	Sent func(peer DeviceID, bytes int64)
}

// Serve accepts connections on ln until ctx ends, then closes ln and
// every connection and returns once all are done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := s.MaxConns
	if limit <= 0 {
		limit = 64
	}
	// Members' connections: a budget strangers never touch (admit.go).
	slots := make(chan struct{}, limit)
	pending := newPendingConns()
	warn := newRateLog(log)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		raw, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		handshaken := pending.add(raw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeOnDone := context.AfterFunc(ctx, func() { raw.Close() })
			defer closeOnDone()
			defer raw.Close()
			c, err := s.Auth.accept(ctx, raw)
			handshaken()
			if err != nil {
				if ctx.Err() == nil {
					warn.warn("Connection refused", "remote", raw.RemoteAddr().String(), "error", err)
				}
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-slots }()
			err = s.serveConn(ctx, c, log)
			if err != nil && ctx.Err() == nil {
				warn.warn("Connection ended", "device", c.Peer.String(), "remote", raw.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c *Conn, log *slog.Logger) error {
	log.Info("Device connected", "device", c.Peer.String(), "remote", c.Addr)
	res := &responder{local: s.Local}
	var reported int64
	report := func() {
		if s.Sent != nil && c.ic != nil {
			if n := c.ic.written.Load(); n > reported {
				s.Sent(c.Peer, n-reported)
				reported = n
			}
		}
	}
	defer report()
	for {
		report()
		k, b, err := c.w.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isEOF(err) {
				return nil
			}
			if errors.Is(err, ErrProtocol) {
				c.w.sendError(err.Error())
			}
			return fmt.Errorf("device %s: %w", c.Peer.Short(), err)
		}
		if k == kindPush {
			if err := s.receivePush(ctx, c, b, log); err != nil {
				return err
			}
			continue
		}
		if k == kindHoldersReq {
			if err := s.answerHolders(c, b); err != nil {
				if errors.Is(err, ErrProtocol) {
					c.w.sendError(err.Error())
				}
				return err
			}
			continue
		}
		if err := res.handle(ctx, c.w, k, b); err != nil {
			if errors.Is(err, ErrProtocol) || errors.Is(err, errNotARequest) {
				c.w.sendError(err.Error())
			}
			return err
		}
	}
}

// receivePush fetches what the pusher offers, from the pusher, over the
// same connection, then lets Push move the ref.
func (s *Server) receivePush(ctx context.Context, c *Conn, b []byte, log *slog.Logger) error {
	var m pushMsg
	if err := unmarshalFrame(kindPush, b, &m); err != nil {
		return err
	}
	reply := func(st Stats, err error) error {
		r := pushResult{Stats: st}
		if err != nil {
			r.Error = err.Error()
		}
		if werr := c.w.writeJSON(kindPushDone, r); werr != nil {
			return werr
		}
		return c.w.flush()
	}
	if s.Push == nil {
		return reply(Stats{}, errors.New("this device does not accept pushes"))
	}
	if !object.ValidRefName("heads/"+m.Branch) || m.New.IsZero() {
		return reply(Stats{}, fmt.Errorf("cannot push %q to branch %q", m.New.Short(), m.Branch))
	}
	refs, err := s.Local.Refs.List()
	if err != nil {
		return reply(Stats{}, err)
	}
	var haves []object.ID
	for _, id := range refs {
		haves = append(haves, id)
	}
	// The pusher is now the peer we fetch from, over this connection,
	// until we answer.
	st, err := Fetch(ctx, pushPeer{c}, s.Local.Objects, []object.ID{m.New}, haves)
	if err != nil {
		if isPeerFault(err) {
			c.w.sendError(err.Error())
			return err
		}
		return reply(st, err)
	}
	err = s.Push(ctx, c.Peer, m.Branch, m.Old, m.New)
	log.Info("Push received", "device", c.Peer.String(), "branch", m.Branch, "commit", m.New.String(), "objects", st.Objects, "error", err)
	return reply(st, err)
}

// pushPeer is a pushing device, seen from the receiver: it serves
// commits and objects, not refs.
type pushPeer struct{ *Conn }

func (p pushPeer) ListRefs(ctx context.Context) (map[string]object.ID, error) {
	return nil, errors.New("a pushing device is not asked for refs")
}

// responder answers requests from a repository's store and refs.
type responder struct {
	local *Local
	delta *deltaSender // made on the first delta request
}

func (r *responder) handle(ctx context.Context, w *wire, k frameKind, b []byte) error {
	switch k {
	case kindRefsReq:
		refs, err := r.local.Refs.List()
		if err != nil {
			return err
		}
		if err := w.writeJSON(kindRefs, refs); err != nil {
			return err
		}
	case kindCommits:
		wants, haves, err := decodeCommitsRequest(b)
		if err != nil {
			return err
		}
		err = walkCommits(ctx, r.local.Objects, wants, haves, func(id object.ID, raw object.Raw) error {
			return w.writeObject(id, raw)
		})
		if errors.Is(err, object.ErrNotFound) {
			// Tell the peer why the stream ends here: it asked for a
			// head this device does not have.
			w.sendError(err.Error())
			return err
		}
		if err != nil {
			return err
		}
		if err := w.write(kindEnd); err != nil {
			return err
		}
	case kindHaveReq:
		if err := answerHave(w, r.local.Objects, b); err != nil {
			return err
		}
	case kindGet:
		ids, err := decodeIDs(b)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := r.send(w, id, nil); err != nil {
				return err
			}
		}
	case kindGetDelta:
		ds, err := decodeDeltaRequest(b)
		if err != nil {
			return err
		}
		d := r.deltas()
		for _, q := range ds {
			if err := r.send(w, q.id, func(raw object.Raw) (bool, error) { return d.try(w, q.id, raw, q.bases) }); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("a %s frame: %w (%w)", k, errNotARequest, ErrProtocol)
	}
	return w.flush()
}

// send answers a request for id: the object as stored (the receiver
// expands and hashes it anyway, and tells whoever runs it to fsck here if
// it does not match), or that it is missing. alt, when set, may send it
// some other way instead (a delta) and says whether it did.
func (r *responder) send(w *wire, id object.ID, alt func(object.Raw) (bool, error)) error {
	raw, err := r.local.Objects.GetRaw(id)
	if errors.Is(err, object.ErrNotFound) && r.local.Objects.HasPending(id) {
		// A chunk a swarm fetch here has received but not yet made
		// durable: pass it on now.
		raw, err = r.local.Objects.GetPending(id)
	}
	switch {
	case errors.Is(err, object.ErrNotFound):
		return w.write(kindMissing, id[:])
	case err != nil:
		w.sendError(fmt.Sprintf("%v; run mesh fsck on that device", err))
		return err
	case alt != nil:
		if sent, err := alt(raw); sent || err != nil {
			return err
		}
	}
	return w.writeObject(id, raw)
}

func unmarshalFrame(k frameKind, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s frame: %v: %w", k, err, ErrProtocol)
	}
	return nil
}

func isEOF(err error) bool {
	return errors.Is(err, errClosedByPeer)
}
