package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNoObject is the kind of error for a key the bucket does not hold.
var ErrNoObject = errors.New("no such object in the bucket")

// Store is object storage under one prefix: what a bucket must do.
type Store interface {
	// Put writes key from r (size -1: unknown, streamed in parts).
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get reads key whole.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange reads n bytes of key from off.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// List lists the keys under prefix, with their sizes and times.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
	// String names the bucket and prefix in errors.
	String() string
}

// Info is a listed key.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// ParseURL splits s3://BUCKET/PREFIX.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%s: not an s3://BUCKET/PREFIX URL", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" || strings.ContainsAny(bucket, " \\?#") {
		return "", "", fmt.Errorf("%s: no bucket name (s3://BUCKET/PREFIX)", u)
	}
	return bucket, prefix, nil
}

// S3 is a bucket reached with the AWS conventions: AWS_ENDPOINT_URL
// (default https://s3.amazonaws.com), AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the profile
// AWS_PROFILE (default "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), and
// AWS_REGION (or AWS_DEFAULT_REGION).
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

// OpenS3 connects to s3://BUCKET/PREFIX; nothing is sent until used.
func OpenS3(u string) (*S3, error) {
	bucket, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	ep, err := url.Parse(endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("AWS_ENDPOINT_URL %q: want http(s)://HOST[:PORT]", endpoint)
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Profile: os.Getenv("AWS_PROFILE")},
	})
	lookup := minio.BucketLookupAuto
	if ep.Host != "s3.amazonaws.com" && !strings.HasSuffix(ep.Host, ".amazonaws.com") {
		lookup = minio.BucketLookupPath // MinIO, Ceph, Garage, versitygw
		if region == "" {
			region = "us-east-1" // what they answer to; spares a location request
		}
	}
	c, err := minio.New(ep.Host, &minio.Options{
		Creds:        creds,
		Secure:       ep.Scheme == "https",
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   8, // with backoff, on 5xx, throttling and resets
		Transport:    transport(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if prefix != "" {
		prefix += "/"
	}
	return &S3{c: c, bucket: bucket, prefix: prefix}, nil
}

// Timeout bounds how long a request waits for the server to answer, or
// to send or take the next bytes, before it is given up and retried.
var Timeout = 60 * time.Second

// transport bounds each step of a request, so a server that stalls is
// retried instead of waited on for ever.
func transport() *http.Transport {
	timeout := Timeout
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = timeout
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = 16
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stallConn{Conn: c, timeout: timeout}, nil
	}
	return t
}

// stallConn fails a read or write that makes no progress for timeout: a
// body that stops halfway is an error to retry, not a hang.
type stallConn struct {
	net.Conn
	timeout time.Duration
}

func (c *stallConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// refused reports whether the server answered err with a 4xx that
// trying again does not change (not a timeout or throttling).
func refused(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.StatusCode >= 400 && er.StatusCode < 500 &&
		er.StatusCode != http.StatusRequestTimeout && er.StatusCode != http.StatusTooManyRequests
}

// Requests are tried this many times, with backoff between: the client
// retries what fails before the body starts, this what fails during it.
const readAttempts = 5

// retry runs f until it succeeds, the object is missing, the server
// refuses it, the context ends, or readAttempts have failed.
func retry(ctx context.Context, f func() error) error {
	wait := 100 * time.Millisecond
	var err error
	for i := 0; i < readAttempts; i++ {
		if err = f(); err == nil || errors.Is(err, ErrNoObject) || ctx.Err() != nil || refused(err) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
	return err
}

func (s *S3) String() string { return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/") }

func (s *S3) wrap(key string, err error) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == "NoSuchKey" || er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket") {
		return fmt.Errorf("%s/%s: %w", s, key, ErrNoObject)
	}
	return fmt.Errorf("%s/%s: %w", s, key, err)
}

// partSize is the size of a streamed upload's parts: what it holds in
// memory at a time. (S3 wants parts of at least 5 MiB but the last.)
var partSize = 16 << 20

// Put sends r in parts of partSize, each tried again (readAttempts, with
// backoff) on its own: an object up to one part with one PUT, a larger
// one as a multipart upload, aborted if a part cannot be sent.
//
// Every attempt gets a reader of its own that cannot seek, so the client
// never retries a body itself: after a failed request the HTTP transport
// may still be reading the old body, and a retry that rewinds the same
// reader races with it.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	buf := make([]byte, partSize)
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return s.wrap(key, err)
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}
	if n < partSize {
		return retry(ctx, func() error {
			_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, onlyReader{bytes.NewReader(buf[:n])}, int64(n), opts)
			return s.wrap(key, err)
		})
	}
	core := minio.Core{Client: s.c}
	var id string
	if err := retry(ctx, func() (err error) {
		id, err = core.NewMultipartUpload(ctx, s.bucket, s.prefix+key, opts)
		return s.wrap(key, err)
	}); err != nil {
		return err
	}
	var parts []minio.CompletePart
	fail := func(err error) error {
		// Its parts go; a gc of the bucket would not see them.
		core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, s.prefix+key, id)
		return err
	}
	for n > 0 {
		part := len(parts) + 1
		var got minio.ObjectPart
		err := retry(ctx, func() (err error) {
			got, err = core.PutObjectPart(ctx, s.bucket, s.prefix+key, id, part, onlyReader{bytes.NewReader(buf[:n])}, int64(n),
				minio.PutObjectPartOptions{DisableContentSha256: true})
			return s.wrap(key, err)
		})
		if err != nil {
			return fail(err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: part, ETag: got.ETag})
		// The part is sent: nothing reads buf now.
		if n, err = io.ReadFull(r, buf); err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return fail(s.wrap(key, err))
		}
	}
	if err := retry(ctx, func() error {
		_, err := core.CompleteMultipartUpload(ctx, s.bucket, s.prefix+key, id, parts, opts)
		return s.wrap(key, err)
	}); err != nil {
		return fail(err)
	}
	return nil
}

// onlyReader hides a reader's Seek.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }

func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := retry(ctx, func() error {
		o, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
		if err != nil {
			return s.wrap(key, err)
		}
		defer o.Close()
		if b, err = io.ReadAll(o); err != nil {
			return s.wrap(key, err)
		}
		return nil
	})
	return b, err
}

func (s *S3) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	var o minio.GetObjectOptions
	if err := o.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	err := retry(ctx, func() error {
		r, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, o)
		if err != nil {
			return s.wrap(key, err)
		}
		defer r.Close()
		if _, err := io.ReadFull(r, b); err != nil {
			return s.wrap(key, fmt.Errorf("bytes %d-%d: %w", off, off+n-1, err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	err := retry(ctx, func() error {
		out = nil
		lctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the listing's goroutine on an error
		for o := range s.c.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
			if o.Err != nil {
				return s.wrap(prefix, o.Err)
			}
			out = append(out, Info{Key: strings.TrimPrefix(o.Key, s.prefix), Size: o.Size, Modified: o.LastModified})
		}
		return nil
	})
	return out, err
}

func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return s.wrap(key, err)
	}
	return nil
}
