//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// cloud: a 1 GiB file through a local S3 server (versitygw over a
// scratch folder, behind a proxy that counts requests and bytes): mesh
// push to a bucket against rclone copy of the file to the same server,
// then mesh join from the bucket against rclone copy back, alternating;
// then a 1 MiB edit, pushed and pulled. Targets: ≤1.2× rclone's time,
// ~1 MiB moved for the edit.
func (b *bench) cloud() {
	gw, err := exec.LookPath("versitygw")
	if err != nil {
		if p := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw"); fileExists(p) {
			gw = p
		}
	}
	if gw == "" || !have("rclone") {
		fmt.Fprintln(os.Stderr, "cloud: needs versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0) and rclone (apt-get install -y rclone); skipped")
		return
	}
	dir := filepath.Join(b.work, "cloud")
	defer b.remove(dir)
	s3dir := filepath.Join(dir, "s3")
	check(os.MkdirAll(s3dir, 0o755))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	gwAddr := ln.Addr().String()
	ln.Close()
	const access, secret = "benchkey", "benchsecret0123456789"
	srv := exec.Command(gw, "--access", access, "--secret", secret, "--port", gwAddr, "posix", s3dir)
	check(srv.Start())
	defer func() { srv.Process.Kill(); srv.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", gwAddr); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			check(fmt.Errorf("versitygw did not start on %s", gwAddr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	px := startCountingProxy(gwAddr)
	defer px.close()
	env := b.env
	defer func() { b.env = env }()
	var kept []string
	for _, e := range env {
		// rclone's AWS SDK refuses a CA bundle with its own transport;
		// the server is plain HTTP on loopback anyway.
		if !strings.HasPrefix(e, "AWS_") && !strings.HasPrefix(e, "RCLONE_") {
			kept = append(kept, e)
		}
	}
	b.env = append(kept,
		"AWS_ENDPOINT_URL=http://"+px.addr, "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1",
		"RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Other", "RCLONE_CONFIG_BENCH_ENDPOINT=http://"+px.addr,
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+access, "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+secret, "RCLONE_CONFIG_BENCH_REGION=us-east-1")

	b.must(dir, "rclone", "mkdir", "bench:bench") // the bucket, made through the API

	a := filepath.Join(dir, "a")
	check(os.MkdirAll(a, 0o755))
	writeRandom(filepath.Join(a, "big.bin"), b.size, 9)
	b.must(a, b.mesh, "init")
	b.must(a, b.mesh, "commit", "-m", "big")
	gib := float64(b.size) / (1 << 30)
	perGiB := func(c counts) string {
		return fmt.Sprintf("%.0f requests/GiB (%s), %.2f GiB sent, %.2f GiB received", float64(c.requests)/gib, c.byMethod(), float64(c.in)/(1<<30), float64(c.out)/(1<<30))
	}
	var meshPush, rclonePush, meshPull, rclonePull counts
	run := 0
	b.alternate(fmt.Sprintf("push %d MiB to a local S3 server", b.size>>20), "≤1.2× rclone",
		func() measurement {
			px.reset()
			m := b.must(a, b.mesh, "push", fmt.Sprintf("s3://bench/mesh-%d", run))
			meshPush = px.snapshot()
			return m
		}, "rclone copy",
		func() measurement {
			px.reset()
			m := b.must(a, "rclone", "copy", "big.bin", fmt.Sprintf("bench:bench/rclone-%d", run))
			rclonePush = px.snapshot()
			run++
			return m
		})
	b.rows[len(b.rows)-1].Note += "; mesh " + perGiB(meshPush) + "; rclone " + perGiB(rclonePush)
	tok := strings.TrimSpace(mustOutput(a, b.env, b.mesh, "invite", "--addr", "s3://bench/mesh-0"))
	pulls := 0
	b.alternate(fmt.Sprintf("pull %d MiB from a local S3 server (mesh join)", b.size>>20), "≤1.2× rclone",
		func() measurement {
			to := filepath.Join(dir, fmt.Sprintf("b-%d", pulls))
			px.reset()
			m := b.must(dir, b.mesh, "join", tok, to)
			meshPull = px.snapshot()
			if pulls > 0 {
				os.RemoveAll(to)
			}
			return m
		}, "rclone copy",
		func() measurement {
			to := filepath.Join(dir, fmt.Sprintf("r-%d", pulls))
			px.reset()
			m := b.must(dir, "rclone", "copy", "bench:bench/rclone-0/big.bin", to)
			rclonePull = px.snapshot()
			os.RemoveAll(to)
			pulls++
			return m
		})
	b.rows[len(b.rows)-1].Note += "; mesh " + perGiB(meshPull) + "; rclone " + perGiB(rclonePull)

	// A 1 MiB edit in the middle: what moves each way.
	f, err := os.OpenFile(filepath.Join(a, "big.bin"), os.O_WRONLY, 0)
	check(err)
	edit := make([]byte, 1<<20)
	rand.New(rand.NewSource(10)).Read(edit)
	_, err = f.WriteAt(edit, b.size/2)
	check(err)
	check(f.Close())
	b.must(a, b.mesh, "commit", "-m", "1 MiB edit")
	px.reset()
	pm, out, err := b.timeOutput(a, b.mesh, "push", "--json", "s3://bench/mesh-0")
	check(err)
	pushC := px.snapshot()
	var pushed []struct{ Bytes int64 }
	json.Unmarshal([]byte(out), &pushed)
	px.reset()
	lm, out, err := b.timeOutput(filepath.Join(dir, "b-0"), b.mesh, "pull", "--json", "origin")
	check(err)
	pullC := px.snapshot()
	var pulled struct {
		Fetched []struct{ Bytes int64 } `json:"fetched"`
	}
	json.Unmarshal([]byte(out), &pulled)
	var sent, got int64
	if len(pushed) > 0 {
		sent = pushed[0].Bytes
	}
	if len(pulled.Fetched) > 0 {
		got = pulled.Fetched[0].Bytes
	}
	b.add(row{Scenario: "push a 1 MiB edit of the file", Mesh: pm, Target: "~1 MiB moves",
		Note: fmt.Sprintf("objects %.2f MiB; on the wire %.2f MiB in %d requests (%s)", float64(sent)/(1<<20), float64(pushC.in)/(1<<20), pushC.requests, pushC.byMethod())})
	b.add(row{Scenario: "pull the 1 MiB edit", Mesh: lm, Target: "~1 MiB moves",
		Note: fmt.Sprintf("objects %.2f MiB; on the wire %.2f MiB in %d requests (%s)", float64(got)/(1<<20), float64(pullC.out)/(1<<20), pullC.requests, pullC.byMethod())})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// mustOutput runs a command with env and returns its output.
func mustOutput(dir string, env []string, name string, args ...string) string {
	c := exec.Command(name, args...)
	c.Dir, c.Env = dir, env
	out, err := c.Output()
	if err != nil {
		check(fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err))
	}
	return string(out)
}

// countingProxy forwards to an S3 server, counting requests by method and
// bytes each way.
type countingProxy struct {
	addr                 string
	ln                   net.Listener
	requests, in, out    atomic.Int64
	get, put, post, list atomic.Int64
	other                atomic.Int64
	target               string
	transport            *http.Transport
}

type counts struct {
	requests, in, out           int64
	get, put, post, list, other int64
}

func (c counts) byMethod() string {
	return fmt.Sprintf("%d GET, %d PUT, %d POST, %d LIST, %d other", c.get, c.put, c.post, c.list, c.other)
}

func startCountingProxy(target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	p := &countingProxy{addr: ln.Addr().String(), ln: ln, target: target,
		transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}
	go http.Serve(ln, p)
	return p
}

func (p *countingProxy) close() { p.ln.Close() }

func (p *countingProxy) reset() {
	for _, c := range []*atomic.Int64{&p.requests, &p.in, &p.out, &p.get, &p.put, &p.post, &p.list, &p.other} {
		c.Store(0)
	}
}

func (p *countingProxy) snapshot() counts {
	return counts{p.requests.Load(), p.in.Load(), p.out.Load(), p.get.Load(), p.put.Load(), p.post.Load(), p.list.Load(), p.other.Load()}
}

type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
func (c countingReader) Close() error { return c.r.Close() }

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	switch {
	case r.Method == http.MethodGet && (r.URL.Query().Has("list-type") || r.URL.Query().Has("prefix") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0):
		p.list.Add(1)
	case r.Method == http.MethodGet:
		p.get.Add(1)
	case r.Method == http.MethodPut:
		p.put.Add(1)
	case r.Method == http.MethodPost:
		p.post.Add(1)
	default:
		p.other.Add(1)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI, out.Host = "http", p.target, "", r.Host
	if r.Body != nil {
		out.Body = countingReader{r.Body, &p.in}
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	n, _ := io.Copy(w, resp.Body)
	p.out.Add(n)
}
