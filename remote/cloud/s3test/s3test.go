// Package s3test runs a real S3 server for tests: versitygw, on
// 127.0.0.1 over a temporary directory, and a proxy in front of it that
// fails requests on purpose.
package s3test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
