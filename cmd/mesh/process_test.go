package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// meshBin returns a copy of the mesh command (this test binary under the
// name testscript.Main gave it) in a directory any user may enter.
func meshBin(t *testing.T) string {
	t.Helper()
	src, err := exec.LookPath("mesh")
	if err != nil {
		t.Fatal(err)
	}
	dir := openDir(t)
	dst := filepath.Join(dir, "mesh")
	// A hard link writes nothing: a copy's file, open for writing while
	// a parallel test forks, is inherited by that child until it execs,
	// and exec of the copy then fails with "text file busy".
	if real, err := filepath.EvalSymlinks(src); err == nil && os.Link(real, dst) == nil {
		return dst
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// openDir returns a temporary directory that every user may enter and
// write (t.TempDir's are private to the owner).
func openDir(t *testing.T) string {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o777)
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runMesh(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, o.String(), e.String()}
}

func meshCmd(bin, dir string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "MESH_AUTHOR=test")
	return c
}

func mustMesh(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	r := runMesh(t, meshCmd(bin, dir, args...))
	if r.code != 0 {
		t.Fatalf("mesh %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() && fi.Name() == ".mesh" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, p)
		io.WriteString(h, rel+"\x00"+fi.Mode().String()+"\x00")
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return string(h.Sum(nil))
}

// TestKilledCommit kills mesh commit with SIGKILL at different moments:
// every time the store passes fsck, the working tree is untouched, and a
// later commit succeeds.
func TestKilledCommit(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	dir := t.TempDir()
	mustMesh(t, bin, dir, "init")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 40; i++ {
		b := make([]byte, 1<<20+rng.Intn(2<<20))
		rng.Read(b)
		os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), b, 0o644)
	}
	before := treeDigest(t, dir)
	for round, delay := range []time.Duration{0, 5, 20, 40, 80, 120, 200, 300} {
		cmd := meshCmd(bin, dir, "commit", "-m", "killed")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if r := runMesh(t, meshCmd(bin, dir, "fsck")); r.code != 0 {
			t.Fatalf("round %d: fsck after kill: %s %s", round, r.stdout, r.stderr)
		}
		if treeDigest(t, dir) != before {
			t.Fatalf("round %d: the working tree changed", round)
		}
		// Start over from no commit, unless the killed one got through.
		mustMesh(t, bin, dir, "status")
	}
	mustMesh(t, bin, dir, "commit", "-m", "survivor", "--allow-empty")
	if out := mustMesh(t, bin, dir, "fsck", "--read-data"); !strings.Contains(out, "re-hashed") {
		t.Fatalf("fsck --read-data: %s", out)
	}
	if out := mustMesh(t, bin, dir, "status"); !strings.Contains(out, "working tree clean") {
		t.Fatalf("status after commit: %s", out)
	}
}

// TestTwoCommitProcesses: two mesh commit at once on one repository; one
// waits for the other's lock; both succeed, history is linear, fsck clean.
func TestTwoCommitProcesses(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	dir := t.TempDir()
	mustMesh(t, bin, dir, "init")
	b := make([]byte, 8<<20)
	rand.New(rand.NewSource(2)).Read(b)
	os.WriteFile(filepath.Join(dir, "big"), b, 0o644)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = runMesh(t, meshCmd(bin, dir, "commit", "--allow-empty", "-m", "c"))
		}()
	}
	wg.Wait()
	for _, r := range res {
		if r.code != 0 {
			t.Fatalf("concurrent commit failed: %+v", r)
		}
	}
	if out := mustMesh(t, bin, dir, "log", "--oneline"); strings.Count(out, "\n") != 2 {
		t.Fatalf("log:\n%s", out)
	}
	mustMesh(t, bin, dir, "fsck", "--read-data")
}

// TestKilledFetch: a fetch over TLS killed with SIGKILL once it has made
// some chunks durable leaves no ref moved and a clean store; run again, it
// asks only for the chunks it does not hold yet.
func TestKilledFetch(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	src, dst := t.TempDir(), t.TempDir()
	mustMesh(t, bin, src, "init")
	os.WriteFile(filepath.Join(src, "small"), []byte("small\n"), 0o644)
	mustMesh(t, bin, src, "commit", "-m", "small")
	serve := meshCmd(bin, src, "serve", "--listen", "127.0.0.1:0")
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { serve.Process.Signal(os.Interrupt); serve.Wait() }()
	addrFile := filepath.Join(src, ".mesh", "serve.addr")
	for i := 0; ; i++ {
		if _, err := os.Stat(addrFile); err == nil {
			break
		}
		if i > 1000 {
			t.Fatal("mesh serve did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := mustMesh(t, bin, src, "invite")
	mustMesh(t, bin, t.TempDir(), "join", strings.TrimSpace(tok), dst)
	before := strings.TrimSpace(mustMesh(t, bin, dst, "rev-parse", "remotes/origin/main"))
	idxBefore, _ := filepath.Glob(filepath.Join(dst, ".mesh", "objects", "*.idx"))

	b := make([]byte, 160<<20)
	rand.New(rand.NewSource(3)).Read(b)
	if err := os.WriteFile(filepath.Join(src, "big"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	b = nil
	mustMesh(t, bin, src, "commit", "-m", "big")

	fetch := meshCmd(bin, dst, "fetch")
	if err := fetch.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	for i := 0; i < 6000 && !killed; i++ {
		packs, _ := filepath.Glob(filepath.Join(dst, ".mesh", "objects", "*.idx"))
		if len(packs) > len(idxBefore) {
			fetch.Process.Kill()
			killed = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	fetch.Wait()
	if !killed {
		t.Fatal("the fetch made nothing durable in 30 s")
	}
	if got := strings.TrimSpace(mustMesh(t, bin, dst, "rev-parse", "remotes/origin/main")); got != before {
		t.Fatal("a killed fetch moved a ref")
	}
	if r := runMesh(t, meshCmd(bin, dst, "fsck", "--read-data")); r.code != 0 {
		t.Fatalf("fsck after a killed fetch: %s %s", r.stdout, r.stderr)
	}
	out := mustMesh(t, bin, dst, "fetch", "--json")
	var res []struct {
		Objects int   `json:"objects"`
		Bytes   int64 `json:"bytes"`
		Skipped int   `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		t.Fatalf("fetch --json: %v %s", err, out)
	}
	if res[0].Skipped == 0 || res[0].Bytes >= 160<<20 {
		t.Fatalf("the second fetch started over: %+v", res[0])
	}
	mustMesh(t, bin, dst, "merge", "remotes/origin/main")
	if treeDigest(t, dst) != treeDigest(t, src) {
		t.Fatal("the fetched tree differs from the source")
	}
}
