package syncer

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// TestArtifactsMirror: d0 publishes; d1 and d2 run with --artifacts and
// mirror every version, whole and checked; d0's server names the mirrors
// to a swarm; an older version announced late and a commit with history
// are not taken.
func TestArtifactsMirror(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	devs := startDevices(t, ctx, 3, func(i int, r *repo.Repo, o *Options) {
		if i > 0 {
			o.Artifacts = []string{"artifacts/*"}
		}
	})
	defer runDevices(t, ctx, cancel, devs)()

	// A build of a few chunks, published on d0 (which mirrors nothing).
	build := filepath.Join(root, "build")
	os.MkdirAll(filepath.Join(build, "lib"), 0o755)
	big := make([]byte, 5<<20)
	rand.New(rand.NewSource(1)).Read(big)
	os.WriteFile(filepath.Join(build, "app.bin"), big, 0o755)
	os.WriteFile(filepath.Join(build, "lib", "a.txt"), []byte("v1\n"), 0o644)
	publish := func() object.ID {
		t.Helper()
		res, err := devs[0].s.Repo.Publish(ctx, repo.PublishOptions{Branch: "artifacts/build", Paths: []string{build}})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	tip := func(d *device, branch string) object.ID {
		id, _, _ := d.s.Repo.Refs.Get(object.BranchRef(branch))
		return id
	}
	v1 := publish()
	for _, d := range devs[1:] {
		waitUntil(t, filepath.Base(d.dir)+" mirrors v1", func() bool { return tip(d, "artifacts/build") == v1 }, devs)
	}

	// The mirrors hold all of it, every chunk re-hashed.
	for _, d := range devs[1:] {
		rep, err := object.Fsck(ctx, d.s.Repo.Store, d.s.Repo.Refs, true)
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("%s: fsck after mirroring: %v %+v", d.dir, err, rep)
		}
		out := filepath.Join(root, "out-"+filepath.Base(d.dir))
		if _, g, err := repo.Get(ctx, repo.GetOptions{Source: d.dir, Rev: "artifacts/build", To: out, Cache: filepath.Join(root, "cache")}); err != nil {
			g.Close()
			t.Fatal(err)
		} else {
			g.Close()
		}
		if b, _ := os.ReadFile(filepath.Join(out, "app.bin")); !bytes.Equal(b, big) {
			t.Fatalf("%s: app.bin differs after mirroring", d.dir)
		}
	}
	// The folder's own branch is untouched by it all.
	if h, _ := devs[1].s.Repo.Head(); h.Branch != "main" {
		t.Fatalf("d1's HEAD is %+v", h)
	}

	// d0's server names both mirrors (from their gossip) to a swarm.
	auth, err := devs[1].s.Repo.Auth()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := auth.Dial(ctx, devs[0].s.fetchAddr, remote.DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "d0's tracker names d2 as a holder of v1", func() bool {
		hs, err := conn.Holders(ctx, v1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.Device == devs[2].s.Me && h.Complete && h.Addr == devs[2].s.fetchAddr {
				return true
			}
		}
		return false
	}, devs)

	// A new version replaces it everywhere; the reflog keeps both.
	os.WriteFile(filepath.Join(build, "lib", "a.txt"), []byte("v2\n"), 0o644)
	v2 := publish()
	for _, d := range devs[1:] {
		waitUntil(t, filepath.Base(d.dir)+" mirrors v2", func() bool { return tip(d, "artifacts/build") == v2 }, devs)
		log, err := d.s.Repo.Refs.Log(object.BranchRef("artifacts/build"))
		if err != nil || len(log) != 2 || log[0].New != v1 || log[1].New != v2 {
			t.Fatalf("%s: reflog of artifacts/build: %v %+v", d.dir, err, log)
		}
	}

	// v1 offered again (a late announcement) does not move the branch back.
	dev0, err := remote.ParseDeviceID(devs[0].s.Me)
	if err != nil {
		t.Fatal(err)
	}
	res, err := devs[1].s.Repo.FetchArtifact(ctx, devs[0].s.fetchAddr, dev0, "artifacts/build", v1, "", nil)
	if err != nil || res.Moved || tip(devs[1], "artifacts/build") != v2 {
		t.Fatalf("v1 after v2: moved=%v err=%v, tip %s", res != nil && res.Moved, err, tip(devs[1], "artifacts/build").Short())
	}

	// A commit with history on an artifact branch is refused, by name.
	os.WriteFile(filepath.Join(devs[0].dir, "f.txt"), []byte("one\n"), 0o644)
	if _, err := devs[0].s.Repo.Commit(ctx, repo.CommitOptions{Message: "one"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(devs[0].dir, "f.txt"), []byte("two\n"), 0o644)
	c2, err := devs[0].s.Repo.Commit(ctx, repo.CommitOptions{Message: "two"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = devs[1].s.Repo.FetchArtifact(ctx, devs[0].s.fetchAddr, dev0, "artifacts/history", c2.ID, "", nil)
	if err == nil || !strings.Contains(err.Error(), "root commits") || !strings.Contains(err.Error(), c2.ID.Short()) {
		t.Fatalf("a commit with parents as an artifact: %v", err)
	}
	if id := tip(devs[1], "artifacts/history"); !id.IsZero() {
		t.Fatalf("artifacts/history was set to %s", id.Short())
	}
}
