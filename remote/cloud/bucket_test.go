package cloud

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud/s3test"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// device is a store with a history and an identity.
type device struct {
	st  *object.Store
	id  *remote.Identity
	dir string
}

func newDevice(t *testing.T) *device {
	dir := t.TempDir()
	st, err := object.OpenStore(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := remote.NewIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &device{st: st, id: id, dir: dir}
}

// commit writes a commit of one file with content, on parents.
func (d *device) commit(t *testing.T, name string, content []byte, parents ...object.ID) object.ID {
	t.Helper()
	b := d.st.NewBatch()
	chunk, err := b.Put(object.TypeChunk, content)
	if err != nil {
		t.Fatal(err)
	}
	fb := (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: int64(len(content))}}}).Encode()
	file, _ := b.Put(object.TypeFile, fb)
	tb, _ := (&object.Tree{Entries: []object.Entry{{Name: name, Kind: object.KindFile, Size: int64(len(content)), ID: file}}}).Encode()
	tree, _ := b.Put(object.TypeTree, tb)
	cb := (&object.Commit{Tree: tree, Parents: parents, Device: d.id.ID.String(), Author: "a", Time: 1700000000, Message: name}).Encode()
	c, err := b.Put(object.TypeCommit, cb)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (d *device) open(t *testing.T, url string, secret []byte) *Bucket {
	st, err := OpenS3(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(st, secret, filepath.Join(d.dir, "cloud"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestPushFetchThroughBucket: A pushes and stops; B fetches A's head
// from the bucket alone, checked as any fetch; B pushes an edit, A
// fetches only that; the bucket's files hold no plaintext; two devices'
// heads both survive.
func TestPushFetchThroughBucket(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "mesh-test", "team/folder")
	m, _ := remote.NewMesh()
	a, b := newDevice(t), newDevice(t)
	secretText := []byte("the plaintext no bucket may hold " + strings.Repeat("x", 100))
	c1 := a.commit(t, "notes.txt", append(secretText, randomData(1, 200<<10)...))
	ctx := testCtx(t)
	res, err := a.open(t, url, m.Secret[:]).Push(ctx, a.st, a.id, "main", c1)
	if err != nil || res.Objects != 4 || res.Seq != 1 {
		t.Fatalf("first push: %+v %v", res, err)
	}
	if res, err := a.open(t, url, m.Secret[:]).Push(ctx, a.st, a.id, "main", c1); err != nil || !res.UpToDate {
		t.Fatalf("push again: %+v %v", res, err)
	}
	// B, from the bucket alone.
	bb := b.open(t, url, m.Secret[:])
	refs, err := bb.ListRefs(ctx)
	if err != nil || refs["devices/"+a.id.ID.String()+"/main"] != c1 || len(refs) != 1 {
		t.Fatalf("refs B sees: %v %v", refs, err)
	}
	st, err := remote.Fetch(ctx, bb, b.st, []object.ID{c1}, nil)
	if err != nil || st.Objects != 4 {
		t.Fatalf("B's fetch: %+v %v", st, err)
	}
	if rep, err := object.Fsck(ctx, b.st, object.OpenRefs(t.TempDir()), true); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("B's store after the fetch: %+v %v", rep, err)
	}
	c2 := b.commit(t, "notes.txt", []byte("B's edit\n"), c1)
	if res, err := bb.Push(ctx, b.st, b.id, "main", c2); err != nil || res.Objects != 4 {
		t.Fatalf("B's push: %+v %v", res, err)
	}
	// A, again: both heads, and only B's new objects move.
	ab := a.open(t, url, m.Secret[:])
	refs, err = ab.ListRefs(ctx)
	if err != nil || len(refs) != 2 || refs["devices/"+b.id.ID.String()+"/main"] != c2 {
		t.Fatalf("refs A sees: %v %v", refs, err)
	}
	st, err = remote.Fetch(ctx, ab, a.st, []object.ID{c2}, []object.ID{c1})
	if err != nil || st.Objects != 4 {
		t.Fatalf("A's fetch of B's edit: %+v %v", st, err)
	}
	// Nothing the bucket holds shows the content or the names.
	filepath.Walk(s.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			for _, plain := range [][]byte{secretText[:32], []byte("notes.txt"), []byte("B's edit"), []byte(a.id.ID.String())} {
				if bytes.Contains(data, plain) {
					t.Errorf("%s holds %q in plaintext", p, plain)
				}
			}
		}
		return nil
	})
	// The wrong secret opens nothing, and says so.
	other, _ := remote.NewMesh()
	if _, err := newDevice(t).open(t, url, other.Secret[:]).Push(ctx, a.st, a.id, "main", c1); err == nil || !strings.Contains(err.Error(), "another mesh") {
		t.Fatalf("push with another mesh's secret: %v", err)
	}
}

// TestBucketTamper: a flipped byte in any object the bucket holds is
// found (no fetch takes it), and a ref moved back is refused.
func TestBucketTamper(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "tamper", "")
	m, _ := remote.NewMesh()
	a := newDevice(t)
	ctx := testCtx(t)
	c1 := a.commit(t, "f", randomData(3, 64<<10))
	ab := a.open(t, url, m.Secret[:])
	if _, err := ab.Push(ctx, a.st, a.id, "main", c1); err != nil {
		t.Fatal(err)
	}
	files := s.Files(t, "tamper")
	if len(files) != 4 { // mesh, a pack, its index, a ref
		t.Fatalf("the bucket holds %d files, want 4: %v", len(files), files)
	}
	for _, f := range files {
		good, _ := os.ReadFile(f)
		for _, at := range []int{0, len(good) / 2, len(good) - 1} {
			bad := bytes.Clone(good)
			bad[at] ^= 0x20
			os.WriteFile(f, bad, 0o644)
			b := newDevice(t)
			bb := b.open(t, url, m.Secret[:])
			refs, err := bb.ListRefs(ctx)
			if head, ok := refs["devices/"+a.id.ID.String()+"/main"]; err == nil && !ok {
				if len(bb.Refused()) == 0 {
					t.Errorf("%s with byte %d flipped: the ref is gone and nothing says why", f, at)
				}
				err = errors.New("refused")
			} else if err == nil {
				_, err = remote.Fetch(ctx, bb, b.st, []object.ID{head}, nil)
			}
			if err == nil {
				t.Errorf("%s with byte %d flipped: the fetch took it", f, at)
			}
			if err == nil && b.st.Has(c1) {
				if rep, _ := object.Fsck(ctx, b.st, object.OpenRefs(t.TempDir()), true); len(rep.Problems) != 0 {
					t.Errorf("%s with byte %d flipped: the fetch stored a damaged object: %+v", f, at, rep.Problems)
				}
			}
			os.WriteFile(f, good, 0o644)
		}
	}
	// A rollback: the ref of push 1 put back over push 2.
	ref := ab.refKey(a.id.ID.String(), "main")
	old, _ := os.ReadFile(filepath.Join(s.Dir, "tamper", filepath.FromSlash(ref)))
	c2 := a.commit(t, "f", []byte("second"), c1)
	if _, err := ab.Push(ctx, a.st, a.id, "main", c2); err != nil {
		t.Fatal(err)
	}
	b := newDevice(t)
	bb := b.open(t, url, m.Secret[:])
	if refs, err := bb.ListRefs(ctx); err != nil || refs["devices/"+a.id.ID.String()+"/main"] != c2 {
		t.Fatalf("before the rollback: %v %v", refs, err)
	}
	os.WriteFile(filepath.Join(s.Dir, "tamper", filepath.FromSlash(ref)), old, 0o644)
	refs, err := bb.ListRefs(ctx)
	if err != nil || refs["devices/"+a.id.ID.String()+"/main"] != c2 || len(bb.Rollbacks) != 1 {
		t.Fatalf("after the rollback: %v %v, rollbacks %v", refs, err, bb.Rollbacks)
	}
	// A ref copied to another device's place does not open there.
	if err := ab.st.Put(ctx, ab.refKey("SOMEONE-ELSE", "main"), bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	refs, err = bb.ListRefs(ctx)
	if err != nil || len(refs) != 1 || len(bb.Refused()) != 1 {
		t.Fatalf("a ref copied to another device's key: refs %v, refused %v, %v", refs, bb.Refused(), err)
	}
}

// TestSharedCredentials: with no key in the environment, the profile
// AWS_PROFILE names in the shared credentials file is used, and a wrong
// key is an error that names the bucket.
func TestSharedCredentials(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "profiles", "x")
	creds := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(creds, []byte("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[mesh]\naws_access_key_id = "+s3test.Access+"\naws_secret_access_key = "+s3test.Secret+"\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	m, _ := remote.NewMesh()
	a := newDevice(t)
	c := a.commit(t, "f", []byte("x"))
	ctx := testCtx(t)
	t.Setenv("AWS_PROFILE", "mesh")
	if _, err := a.open(t, url, m.Secret[:]).Push(ctx, a.st, a.id, "main", c); err != nil {
		t.Fatalf("push with the profile's key: %v", err)
	}
	t.Setenv("AWS_PROFILE", "default")
	_, err := a.open(t, url, m.Secret[:]).ListRefs(ctx)
	if err == nil || !strings.Contains(err.Error(), "s3://profiles/x") {
		t.Fatalf("the default profile's wrong key: %v", err)
	}
}
