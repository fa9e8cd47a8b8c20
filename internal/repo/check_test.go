package repo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// poisonCommit makes in r a commit on top of HEAD whose tree also holds
// dir/.Mesh/config, and moves the branch to it.
func poisonCommit(t *testing.T, r *Repo) object.ID {
	t.Helper()
	h, _ := r.Head()
	hc, _ := r.Store.ReadCommit(h.ID)
	top, _ := r.Store.ReadTree(hc.Tree)
	b := r.Store.NewBatch()
	chunk, _ := b.Put(object.TypeChunk, []byte("x"))
	file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: 1}}}).Encode())
	enc := func(es ...object.Entry) object.ID {
		body, err := (&object.Tree{Entries: es}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := b.Put(object.TypeTree, body)
		return id
	}
	meta := enc(object.Entry{Name: "config", Kind: object.KindFile, Size: 1, ID: file})
	dir := enc(object.Entry{Name: ".Mesh", Kind: object.KindDir, ID: meta})
	root := enc(append([]object.Entry{{Name: "dir", Kind: object.KindDir, ID: dir}}, top.Entries...)...)
	c := &object.Commit{Tree: root, Parents: []object.ID{h.ID}, Device: r.Config.Device, Author: "evil", Time: time.Now().Unix(), Message: "poison"}
	id, err := b.Put(object.TypeCommit, c.Encode())
	if err != nil || b.Finish() != nil {
		t.Fatal(err)
	}
	if err := r.Refs.Update(context.Background(), object.BranchRef(h.Branch), h.ID, id, "poison"); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPoisonedRefsRefused: a head whose tree holds a .mesh name (any
// case, at any depth) is fetched but gets no ref (remotes/*), and a push
// of one gets no devices/* ref; the error names the path.
func TestPoisonedRefsRefused(t *testing.T) {
	a := newRepo(t)
	write(t, a, "f", "one\n")
	good := commit(t, a, "one")
	b := joined(t, a)
	if err := b.AddRemote(ctx, "a", a.Root, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fetch(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	bad := poisonCommit(t, a)
	_, err := b.Fetch(ctx, "a")
	if !errors.Is(err, object.ErrReservedName) || !strings.Contains(err.Error(), "refused remotes/a/main") {
		t.Fatalf("fetch of a poisoned head: %v", err)
	}
	if id, _, _ := b.Refs.Get("remotes/a/main"); id != good {
		t.Fatalf("remotes/a/main is %s, want it left at %s", id.Short(), good.Short())
	}
	if err == nil || !strings.Contains(err.Error(), "dir/") {
		t.Fatalf("the error does not name the path: %v", err)
	}
	// b's own branch goes bad and is pushed to a: refused there.
	bid, _ := remote.ParseDeviceID(b.Config.Device)
	if err := a.AcceptPush(ctx, bid, "main", object.ZeroID, bad); !errors.Is(err, object.ErrReservedName) {
		t.Fatalf("push of a poisoned head: %v", err)
	}
}
