//go:build linux

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// hostile: mesh serve under attack by strangers (no mesh secret), and a
// device fetching from a member that serves a history of commits as big
// as a commit may be (4 MiB messages that compress to a few KB). Timed:
// a member's mesh join with and without 400 stranger TCP connections held
// open (b.runs each, alternating, min and median), and serve's peak RSS
// after 16 strangers finish TLS and each declare a 64 MiB frame where the
// hello belongs, and stream it. Attacks by members (bombs, endless
// history, poisoned heads) are in the tests (remote's TestHostileServers,
// syncer's TestPoisonedHeadIsRefused), which assert the limits.
func (b *bench) hostile() {
	root := filepath.Join(b.work, "hostile")
	defer os.RemoveAll(root)
	src := filepath.Join(root, "src")
	check(os.MkdirAll(src, 0o755))
	b.must(src, b.mesh, "init")
	writeRandom(filepath.Join(src, "data.bin"), 16<<20, 7)
	b.must(src, b.mesh, "commit", "-m", "data")
	srv, addr := b.serve(src)
	defer srv.stop()
	tok, err := b.outputIn(src, b.mesh, "invite")
	check(err)
	tok = strings.TrimSpace(tok)

	n := 0
	join := func() time.Duration {
		n++
		m := b.must("", b.mesh, "join", tok, filepath.Join(root, "j"+strconv.Itoa(n)))
		os.RemoveAll(filepath.Join(root, "j"+strconv.Itoa(n)))
		return m.Wall
	}
	hold := func(k int) []net.Conn {
		var cs []net.Conn
		for range k {
			c, err := net.Dial("tcp", addr)
			check(err)
			cs = append(cs, c)
		}
		return cs
	}
	var quiet, flooded []time.Duration
	for range max(b.runs, 1) {
		quiet = append(quiet, join())
		cs := hold(400)
		flooded = append(flooded, join())
		for _, c := range cs {
			c.Close()
		}
	}
	qmin, qmed := minMedian(quiet)
	fmin, fmed := minMedian(flooded)
	b.add(row{Scenario: "a member's join (16 MiB) while strangers hold 400 connections to mesh serve", Mesh: measurement{Wall: fmed},
		Target: "≤2 s more than without",
		Note: fmt.Sprintf("%d runs each, alternating: flooded min %.2fs median %.2fs; quiet min %.2fs median %.2fs (+%.2fs)",
			len(quiet), fmin.Seconds(), fmed.Seconds(), qmin.Seconds(), qmed.Seconds(), (fmed - qmed).Seconds())})

	// Strangers that finish TLS (any self-signed Ed25519 certificate
	// passes it; membership is proved after) and send a 64 MiB frame.
	before := peakRSS(srv.cmd.Process.Pid)
	cfg := strangerTLS()
	done := make(chan int64, 16)
	for range 16 {
		go func() {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				done <- 0
				return
			}
			defer c.Close()
			var hdr [5]byte
			hdr[0] = 8 // an object frame
			binary.BigEndian.PutUint32(hdr[1:], 64<<20)
			c.Write(hdr[:])
			junk := make([]byte, 1<<20)
			var sent int64
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			for range 64 {
				k, err := c.Write(junk)
				sent += int64(k)
				if err != nil {
					break
				}
			}
			done <- sent
		}()
	}
	var sent int64
	for range 16 {
		sent += <-done
	}
	after := peakRSS(srv.cmd.Process.Pid)
	b.add(row{Scenario: "mesh serve, 16 strangers each declaring a 64 MiB frame before the hello", Mesh: measurement{MaxRSS: after},
		Target: "peak RSS ≤256 MiB",
		Note:   fmt.Sprintf("serve's peak RSS %d MiB (before the attack %d MiB); the strangers got %d MiB through before being cut off", after>>10, before>>10, sent>>20)})

	// A member whose history is 400 commits of 4 MiB each (1.6 GB
	// expanded, a few hundred KB sent): the device joining it.
	evil := filepath.Join(root, "evil")
	b.must("", b.mesh, "join", tok, evil)
	const commits = 400
	st, err := object.OpenStore(filepath.Join(evil, ".mesh", "objects"))
	check(err)
	batch := st.NewBatch()
	empty, _ := (&object.Tree{}).Encode()
	_, err = batch.Put(object.TypeTree, empty)
	check(err)
	var head object.ID
	msg := strings.Repeat("\x00", object.MaxCommitSize-1024)
	for i := range commits {
		c := &object.Commit{Tree: object.EmptyTreeID, Device: "evil", Author: "evil", Time: int64(i), Message: msg}
		if !head.IsZero() {
			c.Parents = []object.ID{head}
		}
		head, err = batch.Put(object.TypeCommit, c.Encode())
		check(err)
	}
	check(batch.Finish())
	st.Close()
	check(os.WriteFile(filepath.Join(evil, ".mesh", "refs", "heads", "main"), []byte(head.String()+"\n"), 0o644))
	esrv, _ := b.serve(evil)
	etok, err := b.outputIn(evil, b.mesh, "invite")
	check(err)
	victim, err := b.time("", b.mesh, "join", strings.TrimSpace(etok), filepath.Join(root, "victim"))
	esrv.stop()
	joined := "it took the history in (within the limits)"
	if err != nil {
		joined = "it refused the history: " + lastLineOf(err.Error())
	}
	b.add(row{Scenario: fmt.Sprintf("mesh join from a member serving %d commits of 4 MiB (compressed to a few KB)", commits), Mesh: victim,
		Target: "peak RSS ≤256 MiB",
		Note:   fmt.Sprintf("the joining device's peak RSS %d MiB; %s", victim.MaxRSS>>10, joined)})
}

// lastLineOf is the line of a failed command's output that says why
// (mesh's "mesh: ..." line).
func lastLineOf(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "mesh: ") {
			return l
		}
	}
	return s
}

func minMedian(ds []time.Duration) (time.Duration, time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[0], s[len(s)/2]
}

// peakRSS is a process's peak resident set (VmHWM), in KiB.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// strangerTLS is a TLS client with a self-signed Ed25519 certificate of
// no mesh.
func strangerTLS() *tls.Config {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	check(err)
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
