//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is a background server: mesh serve or an rsync daemon.
type daemon struct{ cmd *exec.Cmd }

func (d *daemon) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

func (b *bench) start(dir, name string, args ...string) *daemon {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, b.env
	check(cmd.Start())
	return &daemon{cmd}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// rsyncd serves dir as module "m" on loopback.
func (b *bench) rsyncd(dir string) (*daemon, string) { return b.rsyncdOn(loopback, dir) }

// rsyncdOn serves dir as module "m" on h.
func (b *bench) rsyncdOn(h host, dir string) (*daemon, string) {
	port := freePort()
	conf := filepath.Join(b.work, fmt.Sprintf("rsyncd-%d.conf", port))
	// As root, rsyncd would serve as nobody, who cannot read the scratch
	// directory: serve as whoever runs the benchmark.
	check(os.WriteFile(conf, []byte(fmt.Sprintf("use chroot = no\nuid = %d\ngid = %d\n[m]\npath = %s\nread only = yes\nexclude = .mesh/\n", os.Getuid(), os.Getgid(), dir)), 0o644))
	cmd := h.command("rsync", "--daemon", "--no-detach", "--config="+conf, "--address="+h.ip, fmt.Sprintf("--port=%d", port))
	cmd.Env = b.env
	check(cmd.Start())
	d := &daemon{cmd}
	url := fmt.Sprintf("rsync://%s:%d/m/", h.ip, port)
	for i := 0; i < 100; i++ {
		if out, err := h.command("rsync", url).CombinedOutput(); err == nil {
			break
		} else if i == 99 {
			d.stop()
			check(fmt.Errorf("rsync daemon on %s did not start: %s", h.ip, out))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d, url
}

// serve runs mesh serve in repo and returns its address.
func (b *bench) serve(repo string) (*daemon, string) {
	addrFile := filepath.Join(repo, ".mesh", "serve.addr")
	os.Remove(addrFile)
	d := b.start(repo, b.mesh, "serve", "--listen", "127.0.0.1:0")
	for i := 0; i < 200; i++ {
		if a, err := os.ReadFile(addrFile); err == nil {
			return d, strings.TrimSpace(string(a))
		}
		time.Sleep(25 * time.Millisecond)
	}
	check(fmt.Errorf("mesh serve in %s did not start", repo))
	return nil, ""
}

// join times mesh join of src's mesh into a new repository: init, fetch
// over TLS from src's server, checkout (git clone's job).
func (b *bench) join(src, name string) (measurement, string) {
	tok, err := b.outputIn(src, b.mesh, "invite")
	check(err)
	dst := filepath.Join(b.work, name)
	return b.must("", b.mesh, "join", strings.TrimSpace(tok), dst), dst
}

func (b *bench) outputIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, b.env
	out, err := cmd.Output()
	return string(out), err
}

// pullJSON times mesh pull --json in dir and returns the bytes it fetched.
func (b *bench) pullJSON(dir string) (measurement, int64) {
	syscall.Sync()
	cmd := exec.Command(b.mesh, "pull", "--json")
	cmd.Dir, cmd.Env = dir, b.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	m := measurement{Wall: time.Since(start)}
	if err != nil {
		check(fmt.Errorf("mesh pull in %s: %v\n%s", dir, err, errb.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.MaxRSS = ru.Maxrss
	}
	var res struct {
		Fetched []struct {
			Bytes int64 `json:"bytes"`
		} `json:"fetched"`
	}
	check(json.Unmarshal(out.Bytes(), &res))
	var n int64
	for _, f := range res.Fetched {
		n += f.Bytes
	}
	return m, n
}

// pullBigFile: mesh pull of a large random file into an empty repository
// over TLS on loopback, against rsync from an rsync daemon; then the same
// after a 1 MiB insertion in the middle.
func (b *bench) pullBigFile() {
	if !have("rsync") {
		fmt.Fprintln(os.Stderr, "rsync is not installed: skipping the pull scenarios (apt-get install -y rsync)")
		return
	}
	src := filepath.Join(b.work, "pull-src")
	check(os.MkdirAll(src, 0o755))
	file := filepath.Join(src, "random.bin")
	writeRandom(file, b.size, 7)
	b.must(src, b.mesh, "init")
	b.must(src, b.mesh, "commit", "-m", "big")
	srv, _ := b.serve(src)
	defer srv.stop()
	rd, url := b.rsyncd(src)
	defer rd.stop()

	r := row{Scenario: fmt.Sprintf("join+pull %d MiB random file into an empty repository (TLS, loopback)", b.size>>20), Others: map[string]measurement{}, Target: "≤1.3× rsync"}
	m, dst := b.join(src, "pull-dst")
	r.Mesh = m
	rdst := filepath.Join(b.work, "pull-rsync")
	whole, err := b.time("", "rsync", "-a", url, rdst+"/")
	check(err)
	r.Others["rsync (daemon)"] = whole
	b.add(r)

	// Insert 1 MiB in the middle, commit, pull again. Streamed, so that
	// meshbench's own memory does not show in the children's peak RSS
	// (a vforked child's ru_maxrss counts its parent's pages).
	insertMiB(file, b.size/2)
	b.must(src, b.mesh, "commit", "-m", "insert 1 MiB")
	r = row{Scenario: "pull after a 1 MiB insertion in its middle", Others: map[string]measurement{}, Target: "≤0.3× rsync of the whole file; ≤3% of the file sent"}
	var got int64
	r.Mesh, got = b.pullJSON(dst)
	r.Others["rsync whole file (above)"] = whole
	delta, stats, err := b.timeOutput("", "rsync", "-a", "--stats", url, rdst+"/")
	check(err)
	r.Others["rsync delta"] = delta
	r.Note = fmt.Sprintf("mesh received %d KiB = %.2f%% of the file", got>>10, 100*float64(got)/float64(b.size))
	if rb := rsyncReceived(stats); rb > 0 {
		r.Note += fmt.Sprintf("; rsync received %d KiB (mesh/rsync %.2f×, goal ≤1.5×)", rb>>10, float64(got)/float64(rb))
	}
	b.add(r)
	os.RemoveAll(src)
	os.RemoveAll(dst)
	os.RemoveAll(rdst)
}

// pullGoTree: mesh pull of the Go tree (committed by the gotree scenario)
// into an empty repository, against rsync from a daemon.
func (b *bench) pullGoTree(tree string) {
	if !have("rsync") {
		return
	}
	srv, _ := b.serve(tree)
	defer srv.stop()
	rd, url := b.rsyncd(tree)
	defer rd.stop()
	files, _ := countTree(tree)
	r := row{Scenario: fmt.Sprintf("join+pull the Go tree (%d files) into an empty repository", files), Others: map[string]measurement{}, Target: "≤1.0× rsync"}
	r.Mesh, _ = b.join(tree, "pull-gotree")
	m, err := b.time("", "rsync", "-a", url, filepath.Join(b.work, "pull-gotree-rsync")+"/")
	check(err)
	r.Others["rsync (daemon)"] = m
	b.add(r)
}

// rsyncReceived reads "Total bytes received: N" from rsync --stats
// output (0 if it is not there).
func rsyncReceived(stats string) int64 {
	for _, l := range strings.Split(stats, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Total bytes received:"); ok {
			n, _ := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(v), ",", ""), 10, 64)
			return n
		}
	}
	return 0
}

// insertMiB inserts 1 MiB of fresh random bytes into file at offset at.
func insertMiB(file string, at int64) {
	in, err := os.Open(file)
	check(err)
	tmp := file + ".new"
	out, err := os.Create(tmp)
	check(err)
	_, err = io.CopyN(out, in, at)
	check(err)
	_, err = io.CopyN(out, rand.New(rand.NewSource(at)), 1<<20)
	check(err)
	_, err = io.Copy(out, in)
	check(err)
	in.Close()
	check(out.Close())
	check(os.Rename(tmp, file))
}

// gitImport: mesh import-git of a 1,000-commit history against git
// fast-export | git fast-import of the same history into a fresh repository.
func (b *bench) gitImport() {
	if !have("git") {
		return
	}
	src := filepath.Join(b.work, "git-history")
	b.must("", "git", "init", "-q", "-b", "main", src)
	// The history: 200 files, each commit edits three of them.
	var stream strings.Builder
	files := make([]string, 200)
	for i := range files {
		files[i] = fmt.Sprintf("pkg%d/file%d.txt", i%20, i)
	}
	content := func(i, v int) string {
		return strings.Repeat(fmt.Sprintf("file %d version %d line\n", i, v), 40+i%50)
	}
	version := make([]int, len(files))
	for c := 0; c < 1000; c++ {
		fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter B <b@b> %d +0000\ndata 12\ncommit %05d\n", 1700000000+c*60, c)
		// Without a "from", fast-import continues the branch's tip.
		edit := []int{c % 200, (c * 7) % 200, (c * 13) % 200}
		if c == 0 {
			edit = edit[:0]
			for i := range files {
				edit = append(edit, i)
			}
		}
		for _, i := range edit {
			version[i]++
			d := content(i, version[i])
			fmt.Fprintf(&stream, "M 100644 inline %s\ndata %d\n%s\n", files[i], len(d), d)
		}
	}
	cmd := exec.Command("git", "-C", src, "fast-import", "--quiet")
	cmd.Stdin = strings.NewReader(stream.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		check(fmt.Errorf("build the git history: %v\n%s", err, out))
	}
	r := row{Scenario: "import a 1,000-commit git history", Others: map[string]measurement{}, Target: "≤2× git fast-export|fast-import"}
	dst := filepath.Join(b.work, "git-import-mesh")
	check(os.MkdirAll(dst, 0o755))
	b.must(dst, b.mesh, "init")
	b.must(dst, b.mesh, "commit", "--allow-empty", "-m", "so that import does not check out")
	r.Mesh = b.must(dst, b.mesh, "import-git", src)
	gdst := filepath.Join(b.work, "git-import-git")
	b.must("", "git", "init", "-q", gdst)
	m, err := b.shell("", fmt.Sprintf("git -C %s fast-export --all | git -C %s fast-import --quiet", src, gdst))
	check(err)
	r.Others["git fast-export|fast-import"] = m
	b.add(r)
}

// cluster: 16 mesh daemons on loopback. The time from a mesh commit on one
// device until every device has the file checked out (median of 5), and
// from 16 concurrent commits (one per device) until all 16 are on one head.
func (b *bench) cluster() {
	const n = 16
	root := filepath.Join(b.work, "cluster")
	dirs := b.meshOf(root, n)
	hosts := make([]host, n)
	for i := range hosts {
		hosts[i] = loopback
	}
	daemons := b.daemons(dirs, hosts)
	defer func() {
		for _, d := range daemons {
			d.stop()
		}
	}()
	head := func(d string) string {
		b, _ := os.ReadFile(filepath.Join(d, ".mesh", "refs", "heads", "main"))
		return strings.TrimSpace(string(b))
	}
	waitAll := func(cond func(d string) bool) time.Duration { return waitDirs(dirs, root, cond) }

	var one []time.Duration
	for i := 0; i < 5; i++ {
		d := dirs[(i*5+3)%n]
		name := fmt.Sprintf("one-%d.txt", i)
		check(os.WriteFile(filepath.Join(d, name), []byte(name), 0o644))
		t0 := time.Now()
		_, err := b.outputIn(d, b.mesh, "commit", "-m", name)
		check(err)
		waitAll(func(d string) bool { _, err := os.Stat(filepath.Join(d, name)); return err == nil })
		one = append(one, time.Since(t0))
	}
	sort.Slice(one, func(i, j int) bool { return one[i] < one[j] })
	b.add(row{Scenario: "16 daemons: a commit on one is checked out on all (median of 5)", Mesh: measurement{Wall: one[2]}, Target: "≤2 s median",
		Note: fmt.Sprintf("all five: %v", one)})

	t0 := time.Now()
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("concurrent-%02d.txt", i)
			os.WriteFile(filepath.Join(d, name), []byte(name), 0o644)
			b.outputIn(d, b.mesh, "commit", "-m", name)
		}()
	}
	wg.Wait()
	waitAll(func(d string) bool {
		h := head(d)
		if h == "" || h != head(dirs[0]) {
			return false
		}
		for i := range dirs {
			if _, err := os.Stat(filepath.Join(d, fmt.Sprintf("concurrent-%02d.txt", i))); err != nil {
				return false
			}
		}
		return true
	})
	conv := time.Since(t0)
	merges := 0
	if out, err := b.outputIn(dirs[0], b.mesh, "log", "--json", "-n", "200"); err == nil {
		merges = strings.Count(out, `"author": "mesh"`)
	}
	b.add(row{Scenario: "16 daemons: 16 concurrent commits converge to one head", Mesh: measurement{Wall: conv}, Target: "≤10 s",
		Note: fmt.Sprintf("%d merge commits in the history", merges)})
}

// meshOf makes n repositories of one new mesh under root: the first with
// a commit of seed.txt, the others joined to it (through a mesh serve
// that stops again) with seed.txt fetched.
func (b *bench) meshOf(root string, n int) []string {
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(root, fmt.Sprintf("d%02d", i))
	}
	check(os.MkdirAll(dirs[0], 0o755))
	b.must(dirs[0], b.mesh, "init")
	check(os.WriteFile(filepath.Join(dirs[0], "seed.txt"), []byte("seed\n"), 0o644))
	b.must(dirs[0], b.mesh, "commit", "-m", "seed")
	srv, _ := b.serve(dirs[0])
	defer srv.stop()
	tok, err := b.outputIn(dirs[0], b.mesh, "invite")
	check(err)
	for _, d := range dirs[1:] {
		b.must("", b.mesh, "join", strings.TrimSpace(tok), d)
	}
	return dirs
}

// startDaemon starts mesh daemon in dir on h, joining join's gossip
// ("": none), with its log in dir.log.
func (b *bench) startDaemon(dir string, h host, join string) *daemon {
	args := []string{"--fast", "--gossip", h.ip + ":0", "--listen", h.ip + ":0"}
	if join != "" {
		args = append(args, "--join", join)
	}
	return b.startDaemonArgs(dir, h, args)
}

// startDaemonArgs starts mesh daemon with args in dir on h, with
// its log appended to dir.log, and waits until it gossips.
func (b *bench) startDaemonArgs(dir string, h host, args []string) *daemon {
	os.Remove(filepath.Join(dir, ".mesh", "gossip.addr"))
	cmd := h.command(b.mesh, append([]string{"daemon"}, args...)...)
	cmd.Dir, cmd.Env = dir, b.env
	logf, err := os.OpenFile(dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	check(cmd.Start())
	for i := 0; i < 400; i++ {
		if _, err := os.Stat(filepath.Join(dir, ".mesh", "gossip.addr")); err == nil {
			return &daemon{cmd}
		}
		time.Sleep(25 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	check(fmt.Errorf("daemon in %s did not start (log: %s.log)", dir, dir))
	return nil
}

// gossipAddr is the gossip address of the daemon running in dir.
func gossipAddr(dir string) string {
	ga, err := os.ReadFile(filepath.Join(dir, ".mesh", "gossip.addr"))
	check(err)
	return strings.TrimSpace(string(ga))
}

// daemons starts mesh daemon in each dir on its host, all joining the
// first one's gossip, and waits until every device has seed.txt.
func (b *bench) daemons(dirs []string, hosts []host) []*daemon {
	daemons := []*daemon{b.startDaemon(dirs[0], hosts[0], "")}
	for i, d := range dirs[1:] {
		daemons = append(daemons, b.startDaemon(d, hosts[i+1], gossipAddr(dirs[0])))
	}
	waitDirs(dirs, filepath.Dir(dirs[0]), func(d string) bool { _, err := os.Stat(filepath.Join(d, "seed.txt")); return err == nil })
	return daemons
}

// waitDirs waits (2 minutes at most) until cond holds for every dir and
// returns how long that took.
func waitDirs(dirs []string, logs string, cond func(d string) bool) time.Duration {
	t0 := time.Now()
	var behind []string
	for time.Since(t0) < 2*time.Minute {
		behind = behind[:0]
		for _, d := range dirs {
			if !cond(d) {
				behind = append(behind, filepath.Base(d))
			}
		}
		if len(behind) == 0 {
			return time.Since(t0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	check(fmt.Errorf("the cluster did not converge within 2 minutes: %v behind (logs in %s)", behind, logs))
	return 0
}
