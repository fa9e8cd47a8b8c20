package syncer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
)

// poison makes, in r's store, a commit on top of HEAD whose tree also
// holds .mesh/config, and moves r's branch to it.
func poison(t *testing.T, r *repo.Repo) object.ID {
	t.Helper()
	h, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := r.Store.ReadCommit(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	top, err := r.Store.ReadTree(hc.Tree)
	if err != nil {
		t.Fatal(err)
	}
	b := r.Store.NewBatch()
	body := []byte(`{"version":1,"device":"evil"}`)
	chunk, _ := b.Put(object.TypeChunk, body)
	file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: int64(len(body))}}}).Encode())
	sub, _ := (&object.Tree{Entries: []object.Entry{{Name: "config", Kind: object.KindFile, Size: int64(len(body)), ID: file}}}).Encode()
	subID, _ := b.Put(object.TypeTree, sub)
	entries := append([]object.Entry{{Name: ".mesh", Kind: object.KindDir, ID: subID}}, top.Entries...)
	tb, err := (&object.Tree{Entries: entries}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	treeID, _ := b.Put(object.TypeTree, tb)
	c := &object.Commit{Tree: treeID, Parents: []object.ID{h.ID}, Device: r.Config.Device, Author: "evil", Time: time.Now().Unix(), Message: "poison"}
	id, err := b.Put(object.TypeCommit, c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := r.Refs.Update(context.Background(), object.BranchRef(h.Branch), h.ID, id, "poison"); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPoisonedHeadIsRefused: a member announces a head whose tree would
// write .mesh/config. The others refuse it (no ref, nothing written into
// .mesh, one log line), one of them though it already held the objects,
// and keep converging with each other, also after the poisoner is gone;
// mesh peers' file names the refusal and why.
func TestPoisonedHeadIsRefused(t *testing.T) {
	defer func(r, d time.Duration) { Rejoin, Debounce = r, d }(Rejoin, Debounce)
	Rejoin, Debounce = 300*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	devs := startDevices(t, ctx, 3, func(i int, r *repo.Repo, o *Options) {
		if i == 0 {
			os.WriteFile(filepath.Join(r.Root, "base.txt"), []byte("base\n"), 0o644)
			if _, err := r.Commit(ctx, repo.CommitOptions{Message: "base"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	// d2, the poisoner, runs no daemon loop of its own (which would
	// commit its folder, without .mesh, on top): it syncs once, then only
	// serves and gossips.
	defer devs[2].s.Repo.Close()
	stop := runDevices(t, ctx, cancel, devs[:2])
	defer func() { stop() }()
	for _, d := range devs[:2] {
		waitUntil(t, filepath.Base(d.dir)+" gets base.txt", func() bool { return d.has("base.txt", "base\n") }, devs)
	}
	waitUntil(t, "d2 syncs once", func() bool {
		devs[2].s.Once(ctx)
		return devs[2].has("base.txt", "base\n")
	}, devs)
	configs := map[int][]byte{}
	for i, d := range devs[:2] {
		configs[i], _ = os.ReadFile(filepath.Join(d.dir, ".mesh", "config"))
	}

	// d1 already holds the poisoned objects (as a store from before
	// receipt checked trees would): it must refuse them too.
	evil := devs[2].s.Repo
	bad := poison(t, evil)
	if err := copyStore(evil, devs[1].s.Repo); err != nil {
		t.Fatal(err)
	}
	devs[2].s.Node.Announce("main", bad)

	for i, d := range devs[:2] {
		waitUntil(t, filepath.Base(d.dir)+" refuses the poisoned head", func() bool {
			for _, r := range LoadRefused(d.s.Repo.Meta) {
				if r.Device == devs[2].s.Me && strings.Contains(r.Reason, "reserved name") {
					return true
				}
			}
			return false
		}, devs)
		if b, _ := os.ReadFile(filepath.Join(d.dir, ".mesh", "config")); !bytes.Equal(b, configs[i]) {
			t.Fatalf("%s: .mesh/config was overwritten", d.dir)
		}
		if id, ok, _ := d.s.Repo.Refs.Get("devices/" + devs[2].s.Me + "/main"); ok && id == bad {
			t.Fatalf("%s: a ref points at the poisoned head", d.dir)
		}
	}

	// d0 and d1 keep converging, with the poisoner there and once it is
	// gone.
	os.WriteFile(filepath.Join(devs[0].dir, "after.txt"), []byte("after\n"), 0o644)
	waitUntil(t, "d1 gets d0's new file", func() bool { return devs[1].has("after.txt", "after\n") }, devs)
	devs[2].s.Close()
	os.WriteFile(filepath.Join(devs[1].dir, "later.txt"), []byte("later\n"), 0o644)
	waitUntil(t, "d0 gets d1's new file", func() bool { return devs[0].has("later.txt", "later\n") }, devs)
	for _, d := range devs[:2] {
		if n := strings.Count(d.log.String(), "Refused a device's head"); n < 1 || n > 3 {
			t.Errorf("%s logged the refusal %d times", d.dir, n)
		}
		// A round may fail because the test's own edit landed while it
		// ran (the next round commits it); none may fail for any other
		// reason, such as the poisoned head.
		for _, l := range strings.Split(d.log.String(), "\n") {
			if strings.Contains(l, "Sync round failed") && !strings.Contains(l, "uncommitted changes in the way") {
				t.Errorf("%s: a round failed:\n%s", d.dir, d.log.String())
			}
		}
	}
}

// copyStore copies every object of from's store into to's.
func copyStore(from, to *repo.Repo) error {
	b := to.Store.NewBatch()
	for id := range from.Store.IDs() {
		r, err := from.Store.GetRaw(id)
		if err == nil {
			err = b.PutRaw(id, r)
		}
		if err != nil {
			b.Abort()
			return err
		}
	}
	return b.Finish()
}
