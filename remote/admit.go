package remote

import (
	"container/list"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Admission of connections that have not proved membership yet. A
// stranger can open TCP connections and hold them; what that may cost is
// bounded, and members are never starved by it:
//
//   - every connection must finish the TLS handshake and its membership
//     proof within AcceptTimeout, reading nothing but a hello of at most
//     maxHelloFrame bytes, into small buffers;
//   - at most MaxPending connections are in that state at once, and at
//     most MaxPendingPerIP from one address; a new one over either bound
//     pushes out the oldest pending one (of that address first), which has
//     had the longest to prove itself: a member's handshake takes
//     milliseconds, so it gets through however many connections a
//     stranger holds;
//   - authenticated connections have a budget of their own
//     (Server.MaxConns) that strangers never touch.

// Bounds on connections that have not proved membership (variables for
// tests).
var (
	AcceptTimeout   = 5 * time.Second
	MaxPending      = 256
	MaxPendingPerIP = 32
)

// pendingConns tracks the connections still in their handshake, oldest
// first.
type pendingConns struct {
	mu    sync.Mutex
	order *list.List // of *pendingConn
	byIP  map[string]int
	// Evicted counts connections pushed out to make room (tests, logs).
	evicted int
}

type pendingConn struct {
	conn net.Conn
	ip   string
	el   *list.Element
}

func newPendingConns() *pendingConns {
	return &pendingConns{order: list.New(), byIP: map[string]int{}}
}

func ipOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// add admits c, pushing out the oldest pending connection of its address
// or of all when a bound is reached. done must be called when c's
// handshake ends, whatever its outcome.
func (p *pendingConns) add(c net.Conn) (done func()) {
	pc := &pendingConn{conn: c, ip: ipOf(c)}
	p.mu.Lock()
	if p.byIP[pc.ip] >= MaxPendingPerIP {
		for e := p.order.Front(); e != nil; e = e.Next() {
			if o := e.Value.(*pendingConn); o.ip == pc.ip {
				p.evictLocked(o)
				break
			}
		}
	}
	if p.order.Len() >= MaxPending {
		p.evictLocked(p.order.Front().Value.(*pendingConn))
	}
	pc.el = p.order.PushBack(pc)
	p.byIP[pc.ip]++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.removeLocked(pc)
	}
}

func (p *pendingConns) removeLocked(pc *pendingConn) {
	if pc.el == nil {
		return
	}
	p.order.Remove(pc.el)
	pc.el = nil
	if p.byIP[pc.ip]--; p.byIP[pc.ip] <= 0 {
		delete(p.byIP, pc.ip)
	}
}

func (p *pendingConns) evictLocked(pc *pendingConn) {
	p.removeLocked(pc)
	p.evicted++
	pc.conn.Close() // its handshake fails at once
}

// rateLog writes at most burst lines per period, then one line saying how
// many it held back: junk traffic must not flood the log.
type rateLog struct {
	mu      sync.Mutex
	log     *slog.Logger
	period  time.Duration
	burst   int
	start   time.Time
	n       int
	dropped int
}

func newRateLog(log *slog.Logger) *rateLog {
	return &rateLog{log: log, period: 10 * time.Second, burst: 10}
}

// warn logs msg unless the period's burst is spent.
func (r *rateLog) warn(msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.start) >= r.period {
		if r.dropped > 0 {
			r.log.Warn("Connection warnings held back", "count", r.dropped, "period", r.period.String())
		}
		r.start, r.n, r.dropped = now, 0, 0
	}
	r.n++
	ok := r.n <= r.burst
	if !ok {
		r.dropped++
	}
	r.mu.Unlock()
	if ok {
		r.log.Warn(msg, args...)
	}
}
