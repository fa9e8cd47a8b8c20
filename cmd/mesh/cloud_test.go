package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/remote/cloud/s3test"
)

// TestCloudPeer runs the commands a user types against a real S3 server:
// A pushes to a bucket and stops; B joins from the bucket alone, edits,
// pushes and stops; A pulls B's edit. Then both push at once and both
// heads survive, each pull converges on the same commit, and nothing the
// server keeps holds a name or a line of the files.
func TestCloudPeer(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "team", "notes")
	bin := meshBin(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	os.MkdirAll(a, 0o755)
	mustMesh(t, bin, a, "init")
	secretLine := "a line of the plan nobody else may read"
	os.WriteFile(filepath.Join(a, "plan.txt"), []byte(secretLine+"\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "the plan")
	mustMesh(t, bin, a, "remote", "add", "cloud", url)
	if out := mustMesh(t, bin, a, "push", "cloud"); !strings.Contains(out, "cloud") {
		t.Fatalf("push: %s", out)
	}
	// B joins with a token that names the bucket.
	tok := strings.TrimSpace(mustMesh(t, bin, a, "invite", "--addr", url))
	mustMesh(t, bin, root, "join", tok, b)
	if got, _ := os.ReadFile(filepath.Join(b, "plan.txt")); string(got) != secretLine+"\n" {
		t.Fatalf("B after join: plan.txt is %q", got)
	}
	os.WriteFile(filepath.Join(b, "plan.txt"), []byte(secretLine+"\nB's addition\n"), 0o644)
	mustMesh(t, bin, b, "commit", "-m", "B adds")
	mustMesh(t, bin, b, "push", "origin")
	mustMesh(t, bin, a, "pull", "cloud")
	if got, _ := os.ReadFile(filepath.Join(a, "plan.txt")); !strings.Contains(string(got), "B's addition") {
		t.Fatalf("A after pull: plan.txt is %q", got)
	}
	// Both push at once, then each pulls: one merge commit, the same.
	os.WriteFile(filepath.Join(a, "from-a.txt"), []byte("A's file\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "A's file")
	os.WriteFile(filepath.Join(b, "from-b.txt"), []byte("B's file\n"), 0o644)
	mustMesh(t, bin, b, "commit", "-m", "B's file")
	var wg sync.WaitGroup
	errs := make([]string, 2)
	for i, dir := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			remoteName := map[string]string{a: "cloud", b: "origin"}[dir]
			if r := runMesh(t, meshCmd(bin, dir, "push", remoteName)); r.code != 0 {
				errs[i] = r.stderr
			}
		}()
	}
	wg.Wait()
	if errs[0] != "" || errs[1] != "" {
		t.Fatalf("concurrent pushes: %q", errs)
	}
	mustMesh(t, bin, a, "pull", "cloud")
	mustMesh(t, bin, b, "pull", "origin")
	headA := strings.TrimSpace(mustMesh(t, bin, a, "rev-parse", "HEAD"))
	headB := strings.TrimSpace(mustMesh(t, bin, b, "rev-parse", "HEAD"))
	if headA != headB {
		t.Fatalf("after both pulled: A at %s, B at %s", headA, headB)
	}
	for _, dir := range []string{a, b} {
		for _, f := range []string{"from-a.txt", "from-b.txt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Fatalf("%s lacks %s after the pulls", dir, f)
			}
		}
	}
	// The server's files: no content, no names.
	files := s.Files(t, "team")
	if len(files) < 8 {
		t.Fatalf("the bucket holds %d files", len(files))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, plain := range []string{secretLine, "B's addition", "plan.txt", "from-a.txt", "the plan"} {
			if bytes.Contains(data, []byte(plain)) {
				t.Errorf("%s holds %q in plaintext", f, plain)
			}
		}
	}
	// An artifact published on A and pushed: mesh get takes it from the
	// bucket with a token alone, and a second get of a new version moves
	// only the chunks it lacks.
	build := filepath.Join(root, "build")
	os.MkdirAll(build, 0o755)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	os.WriteFile(filepath.Join(build, "app.bin"), big, 0o644)
	mustMesh(t, bin, a, "publish", "-b", "artifacts/app", "-m", "build 1", build)
	mustMesh(t, bin, a, "push", "cloud")
	getter := filepath.Join(root, "getter")
	os.MkdirAll(getter, 0o755)
	get := func(to string) string {
		c := meshCmd(bin, getter, "get", "--json", "--cache", filepath.Join(getter, "cache"), url, "artifacts/app", "--to", to)
		c.Env = append(c.Env, "MESH_TOKEN="+tok)
		r := runMesh(t, c)
		if r.code != 0 {
			t.Fatalf("get from the bucket: exit %d: %s", r.code, r.stderr)
		}
		if got, _ := os.ReadFile(filepath.Join(getter, to, "app.bin")); !bytes.Equal(got, big) {
			t.Fatalf("get from the bucket: app.bin differs (%d bytes)", len(got))
		}
		return r.stdout
	}
	get("v1")
	copy(big[1<<20:], bytes.Repeat([]byte("new"), 1000))
	os.WriteFile(filepath.Join(build, "app.bin"), big, 0o644)
	mustMesh(t, bin, a, "publish", "-b", "artifacts/app", "-m", "build 2", build)
	mustMesh(t, bin, a, "push", "cloud")
	var second struct {
		Fetched struct{ Bytes int64 } `json:"fetched"`
	}
	if err := json.Unmarshal([]byte(get("v2")), &second); err != nil || second.Fetched.Bytes <= 0 || second.Fetched.Bytes > 1<<20 {
		t.Fatalf("the second get moved %d bytes for a 3 KB change of a 3 MiB file (%v)", second.Fetched.Bytes, err)
	}
	files = s.Files(t, "team")
	// fsck and gc of the bucket.
	if out := mustMesh(t, bin, a, "fsck", "--remote", "cloud", "--read-data"); !strings.Contains(out, "checked") || !strings.Contains(out, "3 refs") {
		t.Fatalf("fsck --remote: %s", out)
	}
	if out := mustMesh(t, bin, a, "gc", "--remote", "cloud"); !strings.Contains(out, "deleted 0 packs, rewrote 0") {
		t.Fatalf("gc --remote within the grace period: %s", out)
	}
	var pack string
	for _, f := range files {
		if strings.Contains(f, "/packs/") {
			pack = f
		}
	}
	good, _ := os.ReadFile(pack)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	os.WriteFile(pack, bad, 0o644)
	if r := runMesh(t, meshCmd(bin, a, "fsck", "--remote", "cloud", "--read-data")); r.code == 0 || !strings.Contains(r.stdout, "does not open") {
		t.Fatalf("fsck --remote of a damaged pack: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	os.WriteFile(pack, good, 0o644)
	// A ref that does not open (a device that lies, or damage) is left
	// out and named; the rest is still fetched and merged.
	junk := filepath.Join(s.Dir, "team", "notes", "devices", "0123456789", "abcdef")
	os.MkdirAll(filepath.Dir(junk), 0o755)
	os.WriteFile(junk, bytes.Repeat([]byte("junk"), 40), 0o644)
	os.WriteFile(filepath.Join(a, "after-junk.txt"), []byte("still synced\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "after the junk")
	if r := runMesh(t, meshCmd(bin, a, "push", "cloud")); r.code != 0 {
		t.Fatalf("push beside a junk ref: %s", r.stderr)
	}
	if r := runMesh(t, meshCmd(bin, b, "pull", "origin")); r.code == 0 || !strings.Contains(r.stderr, "left out") {
		t.Fatalf("pull beside a junk ref: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(b, "after-junk.txt")); err != nil {
		t.Fatal("B's pull beside a junk ref did not merge A's commit")
	}
	os.Remove(junk)
	mustMesh(t, bin, b, "pull", "origin")
	// A URL mesh does not speak is an error, never a folder.
	if r := runMesh(t, meshCmd(bin, a, "remote", "add", "other", "s4://bucket/x")); r.code == 0 || !strings.Contains(r.stderr, "unknown URL scheme") {
		t.Fatalf("remote add s4://: exit %d: %s", r.code, r.stderr)
	}
}

// TestCloudDaemons: two daemons that are never up at the same time
// converge through the bucket.
func TestCloudDaemons(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "laptop-desktop", "")
	bin := meshBin(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	os.MkdirAll(a, 0o755)
	mustMesh(t, bin, a, "init")
	os.WriteFile(filepath.Join(a, "todo.txt"), []byte("one\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "first")
	mustMesh(t, bin, a, "remote", "add", "cloud", url)
	tok := strings.TrimSpace(mustMesh(t, bin, a, "invite", "--addr", url))

	// The laptop's daemon pushes its edit, then stops. (Each edit waits
	// for the daemon's first push: an edit during its first round would
	// leave that round's pull refusing to merge over it.)
	d := startDaemon(t, bin, a, "")
	waitFor(t, "the laptop's first push", func() bool { return strings.Contains(d.log.String(), "Pushed to the bucket") }, d)
	os.WriteFile(filepath.Join(a, "todo.txt"), []byte("one\ntwo, from the laptop\n"), 0o644)
	waitFor(t, "the laptop's edit in the bucket", func() bool {
		return strings.Count(d.log.String(), "Pushed to the bucket") >= 2
	}, d)
	d.stop(t)

	// The desktop joins from the bucket, its daemon pushes an edit, stops.
	mustMesh(t, bin, root, "join", tok, b)
	if got, _ := os.ReadFile(filepath.Join(b, "todo.txt")); !strings.Contains(string(got), "from the laptop") {
		t.Fatalf("the desktop after join: %q", got)
	}
	d = startDaemon(t, bin, b, "")
	waitFor(t, "the desktop's first push", func() bool { return strings.Contains(d.log.String(), "Pushed to the bucket") }, d)
	os.WriteFile(filepath.Join(b, "todo.txt"), []byte("one\ntwo, from the laptop\nthree, from the desktop\n"), 0o644)
	waitFor(t, "the desktop's edit in the bucket", func() bool {
		// Its first push is its ref at the head it joined at.
		return strings.Count(d.log.String(), "Pushed to the bucket") >= 2
	}, d)
	d.stop(t)

	// The laptop's daemon, alone again, takes it.
	d = startDaemon(t, bin, a, "")
	waitFor(t, "the desktop's edit on the laptop", func() bool {
		got, _ := os.ReadFile(filepath.Join(a, "todo.txt"))
		return strings.Contains(string(got), "from the desktop")
	}, d)
	d.stop(t)
	headA := strings.TrimSpace(mustMesh(t, bin, a, "rev-parse", "HEAD"))
	headB := strings.TrimSpace(mustMesh(t, bin, b, "rev-parse", "HEAD"))
	if headA != headB {
		t.Fatalf("the laptop is at %s, the desktop at %s", headA, headB)
	}
}

// TestCloudPushKilled: mesh push to a bucket killed with SIGKILL at
// random points, then run again, leaves a bucket whose fsck finds nothing
// wrong and from which a new device joins with the whole file.
func TestCloudPushKilled(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "killed", "")
	bin := meshBin(t)
	root := t.TempDir()
	a := filepath.Join(root, "a")
	os.MkdirAll(a, 0o755)
	mustMesh(t, bin, a, "init")
	mustMesh(t, bin, a, "remote", "add", "cloud", url)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	big := make([]byte, 24<<20)
	for trial := range 3 {
		rng.Read(big)
		os.WriteFile(filepath.Join(a, "big.bin"), big, 0o644)
		mustMesh(t, bin, a, "commit", "-m", fmt.Sprintf("version %d", trial))
		cmd := meshCmd(bin, a, "push", "cloud")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(400 * time.Millisecond))))
		cmd.Process.Kill()
		if cmd.Wait() == nil {
			t.Logf("trial %d: the push had finished before the kill", trial)
		}
		mustMesh(t, bin, a, "push", "cloud")
		if out := mustMesh(t, bin, a, "fsck", "--remote", "cloud", "--read-data"); !strings.Contains(out, "1 refs") {
			t.Fatalf("trial %d: fsck --remote after a killed push: %s", trial, out)
		}
	}
	tok := strings.TrimSpace(mustMesh(t, bin, a, "invite", "--addr", url))
	b := filepath.Join(root, "b")
	mustMesh(t, bin, root, "join", tok, b)
	if got, _ := os.ReadFile(filepath.Join(b, "big.bin")); !bytes.Equal(got, big) {
		t.Fatalf("the file joined from the bucket differs (%d bytes)", len(got))
	}
	// What the killed pushes left unnamed, gc deletes once old enough.
	mustMesh(t, bin, a, "gc", "--remote", "cloud", "--grace", "0s")
	if out := mustMesh(t, bin, a, "fsck", "--remote", "cloud"); strings.Contains(out, "no index names it") {
		t.Fatalf("fsck after gc: %s", out)
	}
}
