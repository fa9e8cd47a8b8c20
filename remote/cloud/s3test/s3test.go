// Package s3test runs a real S3 server for tests: versitygw, on
// 127.0.0.1 over a temporary directory, and a proxy in front of it that
// fails requests on purpose.
package s3test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // what it serves: a folder per bucket
}

// Access and Secret are the server's credentials.
const (
	Access = "meshtestkey"
	Secret = "meshtestsecret0123456789"
)

// Start starts versitygw and sets the AWS variables a client reads
// (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION) for the test. It stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		p := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw")
		if _, serr := os.Stat(p); serr != nil {
			t.Fatal("versitygw is needed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
		}
		bin = p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--access", Access, "--secret", Secret, "--port", addr, "posix", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &Server{Endpoint: "http://" + addr, Dir: dir}
	t.Setenv("AWS_ENDPOINT_URL", s.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", Secret)
	t.Setenv("AWS_REGION", "us-east-1")
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Bucket makes a bucket and returns its s3:// URL with prefix.
func (s *Server) Bucket(t testing.TB, name, prefix string) string {
	t.Helper()
	u, _ := url.Parse(s.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(Access, Secret, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return "s3://" + name + "/" + prefix
}

// Files lists the files the server keeps for bucket.
func (s *Server) Files(t testing.TB, bucket string) []string {
	t.Helper()
	var out []string
	filepath.Walk(filepath.Join(s.Dir, bucket), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Fault is a way a request fails on purpose.
type Fault int

// The faults a Proxy injects.
const (
	Pass    Fault = iota
	Fail500       // a 500 InternalError, body unread
	Reset         // the connection closed without an answer
	Stall         // no answer for Proxy.StallFor, then a normal one
	Cut           // the answer's body stops halfway and the connection closes
	nFaults
)

// Proxy stands in front of a server and fails a share of the requests.
type Proxy struct {
	URL      string // http://127.0.0.1:PORT
	StallFor time.Duration

	target string
	mu     sync.Mutex
	rng    *rand.Rand
	rates  [nFaults]float64
	counts [nFaults]int
	rt     http.RoundTripper
}

// NewProxy proxies to s, failing each request with the given chance of
// each fault (rates[Fail500] and so on), from a seeded sequence. It sets
// AWS_ENDPOINT_URL to itself and stops with the test.
func (s *Server) NewProxy(t testing.TB, seed uint64, rates map[Fault]float64) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.Endpoint)
	p := &Proxy{URL: "http://" + ln.Addr().String(), StallFor: 2 * time.Second, target: u.Host,
		rng: rand.New(rand.NewPCG(seed, 7)), rt: &http.Transport{DisableCompression: true}}
	for f, r := range rates {
		p.rates[f] = r
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("AWS_ENDPOINT_URL", p.URL)
	return p
}

// Counts is how many requests met each fault so far.
func (p *Proxy) Counts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for f := Pass; f < nFaults; f++ {
		out[f] = p.counts[f]
	}
	return out
}

// SetRates changes the chances of the faults (none: every request passes).
func (p *Proxy) SetRates(rates map[Fault]float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rates = [nFaults]float64{}
	for f, r := range rates {
		p.rates[f] = r
	}
}

func (p *Proxy) pick() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.rng.Float64()
	f := Pass
	for k := Fail500; k < nFaults; k++ {
		if x < p.rates[k] {
			f = k
			break
		}
		x -= p.rates[k]
	}
	p.counts[f]++
	return f
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.pick()
	switch f {
	case Fail500:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>`)
		return
	case Reset:
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
		return
	case Stall:
		select {
		case <-time.After(p.StallFor):
		case <-r.Context().Done():
			return
		}
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = "http", p.target, ""
	out.Host = r.Host // the signature covers it
	resp, err := p.rt.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if f == Cut && resp.ContentLength > 1 {
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes mid-body
	}
	io.Copy(w, resp.Body)
}
