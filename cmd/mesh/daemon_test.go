package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a mesh daemon running in a test.
type daemon struct {
	cmd *exec.Cmd
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, bin, dir string, join string, extra ...string) *daemon {
	t.Helper()
	os.Remove(filepath.Join(dir, ".mesh", "gossip.addr"))
	args := []string{"daemon", "--fast", "--gossip", "127.0.0.1:0", "--listen", "127.0.0.1:0"}
	if join != "" {
		args = append(args, "--join", join)
	}
	args = append(args, extra...)
	d := &daemon{cmd: meshCmd(bin, dir, args...), log: &syncBuffer{}}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	waitFor(t, "daemon in "+dir+" to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, ".mesh", "gossip.addr"))
		return err == nil
	}, d)
	return d
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d.log.String())
	}
}

func gossipAddr(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ".mesh", "gossip.addr"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitFor polls cond for up to a minute (convergence is asynchronous; the
// bound keeps the test finite, it is not a speed target).
func waitFor(t *testing.T, what string, cond func() bool, logs ...*daemon) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	var all strings.Builder
	for _, d := range logs {
		all.WriteString(d.log.String())
	}
	t.Fatalf("%s: not within a minute\n%s", what, all.String())
}

func hasFile(dir, name, content string) bool {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return err == nil && string(b) == content
}

// TestDaemonsConverge: three daemons on 127.0.0.1. A commit on one reaches
// the others; concurrent edits on all three end with the same head and the
// same files on every device; a daemon killed with SIGKILL and restarted
// (remembering its peers) catches up; a device of another mesh learns
// nothing.
func TestDaemonsConverge(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	root := t.TempDir()
	a, b, c, stranger := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c"), filepath.Join(root, "s")
	os.Mkdir(a, 0o755)
	mustMesh(t, bin, a, "init")
	os.WriteFile(filepath.Join(a, "base.txt"), []byte("base\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "base")
	da := startDaemon(t, bin, a, "")
	ga := gossipAddr(t, a)
	tok := strings.TrimSpace(mustMesh(t, bin, a, "invite"))
	mustMesh(t, bin, root, "join", tok, b)
	mustMesh(t, bin, root, "join", tok, c)
	os.Mkdir(stranger, 0o755)
	mustMesh(t, bin, stranger, "init")

	db := startDaemon(t, bin, b, ga)
	dc := startDaemon(t, bin, c, ga)
	ds := startDaemon(t, bin, stranger, ga)
	all := []*daemon{da, db, dc, ds}

	for _, dir := range []string{b, c} {
		waitFor(t, dir+" gets base.txt", func() bool { return hasFile(dir, "base.txt", "base\n") }, all...)
	}

	// one commit on b reaches everyone
	os.WriteFile(filepath.Join(b, "from-b.txt"), []byte("b\n"), 0o644)
	for _, dir := range []string{a, c} {
		waitFor(t, dir+" gets from-b.txt", func() bool { return hasFile(dir, "from-b.txt", "b\n") }, all...)
	}

	// concurrent edits everywhere: one head, every file
	for i, dir := range []string{a, b, c} {
		os.WriteFile(filepath.Join(dir, "same.txt"), []byte(strings.Repeat("x", i+1)+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "own-"+string(rune('a'+i))+".txt"), []byte("own\n"), 0o644)
	}
	converged := func() bool {
		var heads []string
		for _, dir := range []string{a, b, c} {
			r := runMesh(t, meshCmd(bin, dir, "rev-parse", "HEAD"))
			heads = append(heads, r.stdout)
			for i := 0; i < 3; i++ {
				if !hasFile(dir, "own-"+string(rune('a'+i))+".txt", "own\n") {
					return false
				}
			}
		}
		return heads[0] != "" && heads[0] == heads[1] && heads[1] == heads[2]
	}
	waitFor(t, "three devices converge", converged, all...)
	for _, dir := range []string{a, b, c} {
		if st := mustMesh(t, bin, dir, "status"); !strings.Contains(st, "clean") {
			t.Fatalf("%s after converging: %s", dir, st)
		}
	}
	// the clash on same.txt is a recorded conflict, both versions kept
	if out := mustMesh(t, bin, a, "conflicts"); !strings.Contains(out, "same.txt") {
		t.Fatalf("conflicts: %s", out)
	}

	// the stranger, of another mesh, got nothing
	if _, err := os.Stat(filepath.Join(stranger, "base.txt")); err == nil {
		t.Fatal("a device of another mesh received files")
	}

	// SIGKILL c, change a, restart c without --join: it catches up
	dc.cmd.Process.Kill()
	dc.cmd.Wait()
	os.WriteFile(filepath.Join(a, "while-c-was-down.txt"), []byte("later\n"), 0o644)
	waitFor(t, "b gets the change", func() bool { return hasFile(b, "while-c-was-down.txt", "later\n") }, all...)
	dc = startDaemon(t, bin, c, "")
	waitFor(t, "restarted c catches up", func() bool { return hasFile(c, "while-c-was-down.txt", "later\n") }, da, db, dc)
	if out := mustMesh(t, bin, c, "fsck"); !strings.Contains(out, "ok") && !strings.Contains(out, "objects") {
		t.Fatalf("fsck on c: %s", out)
	}
	if out := mustMesh(t, bin, a, "peers", "--json"); !strings.Contains(out, `"alive": true`) || !strings.Contains(out, `"branch": "main"`) || strings.Contains(out, `"g":`) {
		t.Fatalf("peers: %s", out)
	}

	for _, d := range []*daemon{da, db, dc, ds} {
		d.stop(t)
	}
}

// TestSyncOnce: mesh sync against a running daemon commits local work,
// brings in the daemon's, and exits once it has every head it heard of;
// the daemon then has the synced work too.
func TestSyncOnce(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	os.Mkdir(a, 0o755)
	mustMesh(t, bin, a, "init")
	os.WriteFile(filepath.Join(a, "from-a.txt"), []byte("a\n"), 0o644)
	mustMesh(t, bin, a, "commit", "-m", "a")
	da := startDaemon(t, bin, a, "")
	// The token carries a's gossip address: b's sync needs no --join.
	mustMesh(t, bin, root, "join", strings.TrimSpace(mustMesh(t, bin, a, "invite")), b)
	os.WriteFile(filepath.Join(b, "from-b.txt"), []byte("b\n"), 0o644)
	out := mustMesh(t, bin, b, "sync", "--fast", "--gossip", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--timeout", "1m")
	if !strings.Contains(out, "committed") || !strings.Contains(out, "in sync with 1 devices") {
		t.Fatalf("sync: %s", out)
	}
	if !hasFile(b, "from-a.txt", "a\n") {
		t.Fatal("sync did not bring a's file")
	}
	waitFor(t, "a gets b's file", func() bool { return hasFile(a, "from-b.txt", "b\n") }, da)
	if out := mustMesh(t, bin, b, "peers"); !strings.Contains(out, "fetch 127.0.0.1:") {
		t.Fatalf("peers: %s", out)
	}
	da.stop(t)
}

// TestDaemonsConflicts: three devices clash on one path in every form
// (modify/modify, adjacent lines, binary, add/add, file/directory) while
// their daemons are down, then their daemons merge in whatever order
// gossip brings the heads. Every device lists the same conflicts, every
// copy in the tree is listed and named after a real device, and resolving
// the paths on one device clears them on all.
func TestDaemonsConflicts(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	root := t.TempDir()
	names := []string{"alpha", "bravo", "charlie"}
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
	os.Mkdir(dirs[0], 0o755)
	mustMesh(t, bin, dirs[0], "init", "--name", names[0])
	os.WriteFile(filepath.Join(dirs[0], "t.txt"), []byte("1\n2\n3\n4\n5\n6\n7\n8\n"), 0o644)
	os.WriteFile(filepath.Join(dirs[0], "adj.txt"), []byte("a\nb\nc\nd\ne\nf\ng\n"), 0o644)
	mustMesh(t, bin, dirs[0], "commit", "-m", "base")
	da := startDaemon(t, bin, dirs[0], "")
	tok := strings.TrimSpace(mustMesh(t, bin, dirs[0], "invite"))
	for i, d := range dirs[1:] {
		mustMesh(t, bin, root, "join", "--name", names[i+1], tok, d)
	}
	da.stop(t)

	for i, d := range dirs {
		lines := strings.Split("1\n2\n3\n4\n5\n6\n7\n8\n", "\n")
		lines[3] = "4 by " + names[i]
		os.WriteFile(filepath.Join(d, "t.txt"), []byte(strings.Join(lines, "\n")), 0o644)
		adj := strings.Split("a\nb\nc\nd\ne\nf\ng\n", "\n")
		adj[2+i] += " by " + names[i]
		os.WriteFile(filepath.Join(d, "adj.txt"), []byte(strings.Join(adj, "\n")), 0o644)
		os.WriteFile(filepath.Join(d, "bin.dat"), []byte("\x00bin\x00"+names[i]), 0o644)
		os.WriteFile(filepath.Join(d, "new.txt"), []byte("new on "+names[i]+"\n"), 0o644)
		if i == 1 {
			os.MkdirAll(filepath.Join(d, "fd"), 0o755)
			os.WriteFile(filepath.Join(d, "fd", "in.txt"), []byte("dir\n"), 0o644)
		} else {
			os.WriteFile(filepath.Join(d, "fd"), []byte("file on "+names[i]+"\n"), 0o644)
		}
		mustMesh(t, bin, d, "commit", "-m", "clash from "+names[i])
	}

	da = startDaemon(t, bin, dirs[0], "")
	ga := gossipAddr(t, dirs[0])
	db := startDaemon(t, bin, dirs[1], ga)
	dc := startDaemon(t, bin, dirs[2], ga)
	all := []*daemon{da, db, dc}

	type conflict struct {
		Path, Copy, Merge, Device, DeviceName string
	}
	listed := func(d string) []conflict {
		var cs []conflict
		if err := json.Unmarshal([]byte(mustMesh(t, bin, d, "conflicts", "--json")), &cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	copies := func(d string) []string {
		var out []string
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Name() == ".mesh" {
				return filepath.SkipDir
			}
			if err == nil && strings.Contains(e.Name(), ".conflict-") {
				rel, _ := filepath.Rel(d, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		slices.Sort(out)
		return out
	}
	sameHead := func() bool {
		var heads []string
		for _, d := range dirs {
			heads = append(heads, runMesh(t, meshCmd(bin, d, "rev-parse", "HEAD")).stdout)
		}
		return heads[0] != "" && heads[0] == heads[1] && heads[1] == heads[2]
	}
	// Converged: one head everywhere, with every clash's copies in place.
	waitFor(t, "three devices converge on the clashes", func() bool {
		return sameHead() && len(copies(dirs[0])) >= 8
	}, all...)

	first := listed(dirs[0])
	for i, d := range dirs {
		cs := listed(d)
		if !slices.Equal(cs, first) {
			t.Fatalf("%s lists %+v\n%s lists %+v", names[i], cs, names[0], first)
		}
		var kept []string
		perPath := map[string]int{}
		for _, c := range cs {
			if !slices.Contains(names, c.DeviceName) || c.Device == "" || strings.Contains(c.Copy, "unknown") {
				t.Errorf("conflict %+v is not named after a device", c)
			}
			if c.Copy != "" {
				kept = append(kept, c.Copy)
			}
			perPath[c.Path]++
		}
		slices.Sort(kept)
		if got := copies(d); !slices.Equal(got, slices.Compact(kept)) {
			t.Fatalf("%s holds copies %v, lists %v", names[i], got, kept)
		}
		for _, p := range []string{"t.txt", "bin.dat", "new.txt", "fd"} {
			if perPath[p] != 2 {
				t.Errorf("%s: %d conflicts at %s, want 2: %+v", names[i], perPath[p], p, cs)
			}
		}
		if perPath["adj.txt"] == 0 {
			t.Errorf("%s: no conflict for the adjacent-line edits", names[i])
		}
	}

	paths := map[string]bool{}
	for _, c := range first {
		paths[c.Path] = true
	}
	for _, p := range sortedKeys(paths) {
		mustMesh(t, bin, dirs[1], "resolve", "--remove-copy", p)
	}
	waitFor(t, "every device sees the conflicts resolved", func() bool {
		for _, d := range dirs {
			if len(listed(d)) != 0 || len(copies(d)) != 0 {
				return false
			}
		}
		return sameHead()
	}, all...)
	for _, d := range all {
		d.stop(t)
	}
}
