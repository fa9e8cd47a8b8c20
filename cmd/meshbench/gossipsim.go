//go:build linux

package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/rand"
	"net"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/object"
)

// countingTransport is a memberlist.MockTransport that counts the bytes
// its node sends, datagrams and streams alike.
type countingTransport struct {
	*memberlist.MockTransport
	sent *atomic.Int64
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.sent.Add(int64(len(b)))
	return t.MockTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.sent.Add(int64(len(b)))
	return t.MockTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	c, err := t.MockTransport.DialTimeout(addr, d)
	return t.count(c), err
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	c, err := t.MockTransport.DialAddressTimeout(a, d)
	return t.count(c), err
}

func (t *countingTransport) count(c net.Conn) net.Conn {
	if c == nil {
		return nil
	}
	return &countingConn{Conn: c, sent: t.sent}
}

type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}

// gossipSim: 256 gossip nodes in this process on memberlist's mock network
// (no folders, no fetches), with the settings real devices use (memberlist's
// LAN defaults, encryption on). One node at a time announces a new head;
// the time until all 256 hold it, and the bytes sent per node for it
// beyond the background of probes and push/pull measured beforehand.
func (b *bench) gossipSim() {
	// 256 memberlist nodes with encryption keep about 4 cores busy; on
	// fewer, probes time out and healthy nodes are suspected, which
	// measures the machine, not gossip. Sized to 64 nodes per core.
	n := min(256, 64*runtime.NumCPU())
	const announcements = 40
	mn := &memberlist.MockNetwork{}
	var sent atomic.Int64
	deviceOf := func(pub ed25519.PublicKey) string { return hex.EncodeToString(pub[:12]) }
	key := make([]byte, 32)
	rand.Read(key)
	keys := make([]ed25519.PrivateKey, n)
	trs := make([]*countingTransport, n)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
		trs[i] = &countingTransport{mn.NewTransport(deviceOf(keys[i].Public().(ed25519.PublicKey))), &sent}
	}
	nodes := make([]*gossip.Node, n)
	for i := range nodes {
		var err error
		nodes[i], err = gossip.Start(gossip.Config{
			Device: deviceOf(keys[i].Public().(ed25519.PublicKey)), Key: keys[i], DeviceOf: deviceOf,
			SecretKey: key, Label: "meshbench", Transport: trs[i], FetchAddr: "127.0.0.1:1",
		})
		check(err)
		defer nodes[i].Shutdown()
		if i > 0 {
			_, err = nodes[i].Join([]string{nodes[rand.Intn(i)].Addr()})
			check(err)
		}
	}
	// Wait until membership has settled: every node sees every other, or
	// (a node or two probed while the machine was busy and still under
	// suspicion somewhere) until it stops improving for 10 s.
	deadline := time.Now().Add(3 * time.Minute)
	best, bestAt := -1, time.Now()
	least := 0
	for {
		all := true
		least = n
		for _, nd := range nodes {
			if alive := countAlive(nd); alive < n-1 {
				all = false
				least = min(least, alive)
			}
		}
		if all {
			least = n - 1
			break
		}
		if least > best {
			best, bestAt = least, time.Now()
		} else if time.Since(bestAt) > 10*time.Second && least >= n-3 {
			break
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("gossip simulation: the %d nodes did not all see each other within 3 minutes (at least %d alive everywhere)", n, least))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// the background: membership probes and push/pull, no announcements
	quiet := 10 * time.Second
	before := sent.Load()
	time.Sleep(quiet)
	background := float64(sent.Load()-before) / quiet.Seconds() / float64(n) // bytes per node per second

	var times []time.Duration
	var perNode []float64
	for a := 0; a < announcements; a++ {
		from := nodes[rand.Intn(n)]
		c := object.Hash(object.TypeCommit, []byte(fmt.Sprint("sim", a, time.Now().UnixNano())))
		before := sent.Load()
		t0 := time.Now()
		check(from.Announce("main", c))
		for !everyoneKnows(nodes, c) {
			if time.Since(t0) > time.Minute {
				check(fmt.Errorf("gossip simulation: announcement %d did not reach all %d nodes within a minute", a, n))
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(t0)
		times = append(times, took)
		// let its retransmissions finish before the next one
		time.Sleep(2 * time.Second)
		total := float64(sent.Load()-before) / float64(n)
		perNode = append(perNode, total-background*(took+2*time.Second).Seconds())
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	sort.Float64s(perNode)
	p99 := times[(len(times)*99+99)/100-1]
	b.add(row{Scenario: fmt.Sprintf("gossip simulation, %d nodes: a head reaches all (median)", n), Mesh: measurement{Wall: times[len(times)/2]},
		Target: "report",
		Note: fmt.Sprintf("p99 %v, max %v over %d announcements; %.0f bytes sent per node per announcement (median, background of %.0f B/node/s removed); every node saw at least %d others alive",
			p99.Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), announcements, perNode[len(perNode)/2], background, least)})
}

func countAlive(nd *gossip.Node) int {
	alive := 0
	for _, p := range nd.Peers() {
		if p.Alive {
			alive++
		}
	}
	return alive
}

func everyoneKnows(nodes []*gossip.Node, c object.ID) bool {
	for _, nd := range nodes {
		found := false
		for _, h := range nd.Heads() {
			if h.Commit == c {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
