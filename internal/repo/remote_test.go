package repo

import (
	"errors"
	"testing"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// joined makes a second repository of r's mesh, as a token would, with
// nothing fetched (Join itself needs a device to fetch from).
func joined(t *testing.T, r *Repo) *Repo {
	t.Helper()
	m, err := r.Mesh()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Init(t.TempDir(), &remote.Invite{Mesh: m, Chunking: r.Config.Chunking})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.Config.Mesh != r.Config.Mesh || b.Config.Chunking != r.Config.Chunking || b.Config.Device == r.Config.Device {
		t.Fatalf("joined %+v", b.Config)
	}
	return b
}

func TestPushIsFastForwardOnly(t *testing.T) {
	a := newRepo(t)
	b := joined(t, a)
	if err := b.AddRemote(ctx, "a", a.Root, ""); err != nil {
		t.Fatal(err)
	}
	write(t, b, "f", "one\n")
	first := commit(t, b, "one")
	res, err := b.Push(ctx, "")
	if err != nil || len(res) != 1 || res[0].Objects != 4 {
		t.Fatalf("push: %+v %v", res, err)
	}
	bid, _ := remote.ParseDeviceID(b.Config.Device)
	ref := deviceRef(bid, "main")
	if got, _, _ := a.Refs.Get(ref); got != first {
		t.Fatalf("%s on a is %s, want %s", ref, got.Short(), first.Short())
	}
	if h, err := a.Head(); err != nil || !h.ID.IsZero() {
		t.Fatal("a push moved the other side's branch")
	}

	// Rewrite b's history (a new root): the push must be refused.
	if err := b.Refs.Update(ctx, "heads/main", first, object.ZeroID, "test"); err != nil {
		t.Fatal(err)
	}
	write(t, b, "f", "other\n")
	commit(t, b, "other root")
	if _, err := b.Push(ctx, "a"); !errors.Is(err, ErrNotFastForward) {
		t.Fatalf("non-fast-forward push: %v", err)
	}
	if got, _, _ := a.Refs.Get(ref); got != first {
		t.Fatal("a refused push moved the ref")
	}
	// A push that claims the wrong old value is refused too.
	if err := a.AcceptPush(ctx, bid, "main", object.ZeroID, first); !errors.Is(err, object.ErrRefMoved) {
		t.Fatalf("push with a stale old value: %v", err)
	}
}

func TestFetchPrunesAndPullMerges(t *testing.T) {
	a := newRepo(t)
	b := joined(t, a)
	if err := b.AddRemote(ctx, "a", a.Root, ""); err != nil {
		t.Fatal(err)
	}
	write(t, a, "f", "1\n2\n3\n")
	commit(t, a, "base")
	if err := a.Refs.Update(ctx, "heads/topic", object.ZeroID, mustResolve(t, a, "HEAD"), "test"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Pull(ctx, "", MergeOptions{})
	if err != nil || len(res.Merged) != 1 || !res.Merged[0].FastForward || read(t, b, "f") != "1\n2\n3\n" {
		t.Fatalf("pull: %+v %v", res, err)
	}
	if _, ok, _ := b.Refs.Get("remotes/a/topic"); !ok {
		t.Fatal("remotes/a/topic not fetched")
	}
	// Both edit; pull merges deterministically.
	write(t, a, "f", "one\n2\n3\n")
	commit(t, a, "a edits")
	write(t, b, "f", "1\n2\nthree\n")
	commit(t, b, "b edits")
	if err := a.Refs.Update(ctx, "heads/topic", mustResolve(t, a, "topic"), object.ZeroID, "test"); err != nil {
		t.Fatal(err)
	}
	res, err = b.Pull(ctx, "a", MergeOptions{})
	if err != nil || len(res.Merged) != 1 || res.Merged[0].FastForward || read(t, b, "f") != "one\n2\nthree\n" {
		t.Fatalf("pull: %+v %v", res, err)
	}
	if _, ok, _ := b.Refs.Get("remotes/a/topic"); ok {
		t.Fatal("a branch deleted on the remote was not pruned")
	}
	if _, err := b.Fetch(ctx, "nope"); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("fetch of an unknown remote: %v", err)
	}
}

func mustResolve(t *testing.T, r *Repo, rev string) object.ID {
	t.Helper()
	id, err := r.Resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestConvergeIsOrderFree: three devices commit at once; whatever each
// one's own head, converging on the same set of heads gives every device
// the same commit, and nothing is lost.
func TestConvergeIsOrderFree(t *testing.T) {
	a := newRepo(t)
	write(t, a, "base", "base\n")
	commit(t, a, "base")
	b, c := joined(t, a), joined(t, a)
	for _, x := range []*Repo{b, c} {
		if _, err := x.Fetch(ctx, a.Root); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Merge(ctx, "remotes/"+remoteName(a.Root)+"/main", MergeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	repos := []*Repo{a, b, c}
	var heads []object.ID
	for i, x := range repos {
		write(t, x, "f"+string(rune('a'+i)), "from device\n")
		heads = append(heads, commit(t, x, "work"))
	}
	var results []object.ID
	for _, x := range repos {
		results = append(results, fetchAndConverge(t, x, repos, heads))
		for i := range repos {
			if read(t, x, "f"+string(rune('a'+i))) != "from device\n" {
				t.Fatalf("a device lost file f%c", 'a'+i)
			}
		}
	}
	if results[0] != results[1] || results[1] != results[2] {
		t.Fatalf("devices ended on %s, %s, %s", results[0].Short(), results[1].Short(), results[2].Short())
	}
	// Converging again changes nothing.
	if res, err := a.Converge(ctx, heads, MergeOptions{}); err != nil || !res.UpToDate {
		t.Fatalf("second converge: %+v %v", res, err)
	}
}

// TestSplitURL: tls:// is a device, a path or file:// a repository, and
// any other scheme an error, never a relative path.
func TestSplitURL(t *testing.T) {
	for _, c := range []struct {
		url, target string
		network     bool
		err         error
	}{
		{"tls://10.0.0.1:7420", "10.0.0.1:7420", true, nil},
		{"TLS://h:1", "h:1", true, nil},
		{"../other", "../other", false, nil},
		{"/abs/path", "/abs/path", false, nil},
		{"file:///abs/path", "/abs/path", false, nil},
		{"dir:with:colons", "dir:with:colons", false, nil},
		{"s3://bucket/prefix", "", false, ErrUnknownScheme},
		{"https://example.org/x", "", false, ErrUnknownScheme},
	} {
		target, network, err := splitURL(c.url)
		if !errors.Is(err, c.err) || target != c.target || network != c.network {
			t.Errorf("splitURL(%q) = %q, %v, %v; want %q, %v, %v", c.url, target, network, err, c.target, c.network, c.err)
		}
	}
}
