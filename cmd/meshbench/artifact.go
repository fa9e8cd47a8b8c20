//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// getResult is what mesh get --json prints (the parts used here).
type getResult struct {
	Fetched struct {
		Bytes int64 `json:"bytes"`
	} `json:"fetched"`
	Received map[string]int64 `json:"received"`
}

const artifactRunners = 8

// artifactBuild writes a 512 MiB build folder (48 files of 10 MiB and
// one of 32 MiB, random) under root and publishes it on artifacts/build
// of a new repository; it returns the folder, the repository and the size.
func (b *bench) artifactBuild(root string) (build, pub string, size int64) {
	build = filepath.Join(root, "build")
	check(os.MkdirAll(build, 0o755))
	for i := 0; i < 48; i++ {
		writeRandom(filepath.Join(build, fmt.Sprintf("part-%02d.bin", i)), 10<<20, int64(1000+i))
		size += 10 << 20
	}
	writeRandom(filepath.Join(build, "rest.bin"), 32<<20, 999)
	size += 32 << 20
	pub = filepath.Join(root, "pub")
	check(os.MkdirAll(pub, 0o755))
	b.must(pub, b.mesh, "init")
	b.must(pub, b.mesh, "publish", "-b", "artifacts/build", build)
	return build, pub, size
}

// swarm is a publisher's mesh serve and the runners that mesh get from it.
type swarm struct {
	b          *bench
	root, addr string
	env        []string
	srv        *daemon
}

// publisher starts mesh serve in pub on h.
func (b *bench) publisher(root, pub string, h host) *swarm {
	addrFile := filepath.Join(pub, ".mesh", "serve.addr")
	os.Remove(addrFile)
	cmd := h.command(b.mesh, "serve", "--listen", h.ip+":0")
	cmd.Dir, cmd.Env = pub, b.env
	check(cmd.Start())
	s := &swarm{b: b, root: root, srv: &daemon{cmd}}
	for i := 0; i < 400 && s.addr == ""; i++ {
		if bs, err := os.ReadFile(addrFile); err == nil {
			s.addr = strings.TrimSpace(string(bs))
		}
		time.Sleep(25 * time.Millisecond)
	}
	if s.addr == "" {
		s.srv.stop()
		check(fmt.Errorf("mesh serve in %s did not start", pub))
	}
	tok, err := b.outputIn(pub, b.mesh, "invite")
	check(err)
	s.env = append(append([]string(nil), b.env...), "MESH_TOKEN="+strings.TrimSpace(tok))
	return s
}

// get runs one mesh get on h into out-NAME with cache-NAME and returns
// its result and when it printed it; with seed it keeps running
// (seeding) and is returned to be stopped.
func (s *swarm) get(h host, name string, seed bool) (getResult, time.Duration, *exec.Cmd) {
	args := []string{"get", "--json", "--cache", filepath.Join(s.root, "cache-"+name), "--to", filepath.Join(s.root, "out-"+name)}
	if seed {
		args = append(args, "--seed-for", "5m")
	} else {
		args = append(args, "--no-seed")
	}
	args = append(args, s.addr, "artifacts/build")
	cmd := h.command(s.b.mesh, args...)
	cmd.Dir, cmd.Env = s.root, s.env
	out, err := cmd.StdoutPipe()
	check(err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	check(cmd.Start())
	var js strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		js.WriteString(sc.Text() + "\n")
		if sc.Text() == "}" {
			break
		}
	}
	took := time.Since(t0)
	var r getResult
	if err := json.Unmarshal([]byte(js.String()), &r); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		check(fmt.Errorf("mesh get %s: %v\n%s%s", name, err, js.String(), stderr.String()))
	}
	if !seed {
		check(cmd.Wait())
	}
	return r, took, cmd
}

// all runs a seeding get on every host at once and returns when the last
// was done and what the publisher sent them.
func (s *swarm) all(hosts []host) (last time.Duration, fromPublisher int64) {
	syncDisk()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		cmds []*exec.Cmd
	)
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, took, cmd := s.get(h, fmt.Sprintf("r%d", i), true)
			mu.Lock()
			defer mu.Unlock()
			last = max(last, took)
			fromPublisher += r.Received["source"]
			cmds = append(cmds, cmd)
		}()
	}
	wg.Wait()
	for _, c := range cmds {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	return last, fromPublisher
}

// rsyncAll: an rsync daemon on srv serving dir; one client alone, then
// one on every host at once (what a plain server does). It returns both
// times.
func (b *bench) rsyncAll(root, dir string, srv host, hosts []host) (single, last time.Duration) {
	d, url := b.rsyncdOn(srv, dir)
	defer d.stop()
	pull := func(h host, name string) time.Duration {
		dst := filepath.Join(root, "rsync-"+name)
		cmd := h.command("rsync", "-a", url, dst+"/")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			check(fmt.Errorf("rsync on %s: %v\n%s", h.ip, err, out))
		}
		return time.Since(t0)
	}
	syncDisk()
	single = pull(hosts[0], "single")
	os.RemoveAll(filepath.Join(root, "rsync-single"))
	syncDisk()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took := pull(h, fmt.Sprintf("r%d", i))
			mu.Lock()
			last = max(last, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range hosts {
		os.RemoveAll(filepath.Join(root, fmt.Sprintf("rsync-r%d", i)))
	}
	return single, last
}

// swarmRow runs one publisher and the runners (a single get, then all at
// once) and rsync the same way, and adds the row.
func (b *bench) swarmRow(where, root, build, pub string, size int64, ph host, runners []host) {
	s := b.publisher(root, pub, ph)
	defer s.srv.stop()
	syncDisk()
	_, single, _ := s.get(runners[0], "single", false)
	last, fromP := s.all(runners)
	for i := range runners {
		os.RemoveAll(filepath.Join(root, fmt.Sprintf("out-r%d", i)))
		os.RemoveAll(filepath.Join(root, fmt.Sprintf("cache-r%d", i)))
	}
	r := row{Scenario: fmt.Sprintf("%d runners get one %d MiB artifact at once, %s", len(runners), size>>20, where),
		Mesh: measurement{Wall: last}, Others: map[string]measurement{}, Target: "publisher sends ≤2× the artifact; last runner ≤2× one runner's time"}
	note := fmt.Sprintf("publisher sent %.0f MiB = %.2f× the artifact (a plain server: %d×); last runner %.2fs = %.2f× one runner alone (%.2fs)",
		float64(fromP)/(1<<20), float64(fromP)/float64(size), len(runners), last.Seconds(), last.Seconds()/single.Seconds(), single.Seconds())
	if have("rsync") {
		rs, rl := b.rsyncAll(root, build, ph, runners)
		r.Others[fmt.Sprintf("rsync, %d clients of one daemon", len(runners))] = measurement{Wall: rl}
		note += fmt.Sprintf("; rsync: %.2fs alone, last of %d %.2fs = %.2f×", rs.Seconds(), len(runners), rl.Seconds(), rl.Seconds()/rs.Seconds())
	}
	r.Note = note
	b.add(r)
}

// artifact: one publisher and 8 runners on loopback. The runners get one
// 512 MiB artifact at the same time (seeding each other until all are
// done); reported: the bytes the publisher sent, and the last runner's
// time against one runner's alone, beside rsync clients of one daemon.
// Then a build whose only change is one 10 MiB file: the bytes a runner
// with the last version cached receives.
func (b *bench) artifact() {
	root := filepath.Join(b.work, "artifact")
	build, pub, size := b.artifactBuild(root)
	runners := make([]host, artifactRunners)
	for i := range runners {
		runners[i] = loopback
	}
	b.swarmRow("loopback", root, build, pub, size, loopback, runners)

	// The next build changes one 10 MiB file.
	s := b.publisher(root, pub, loopback)
	defer s.srv.stop()
	writeRandom(filepath.Join(build, "part-17.bin"), 10<<20, 4242)
	b.must(pub, b.mesh, "publish", "-b", "artifacts/build", build)
	r, _, _ := s.get(loopback, "single2", false) // a cold cache, for comparison
	// the cache of the single get above, which holds the last build
	os.RemoveAll(filepath.Join(root, "out-single"))
	r2, took2, _ := s.get(loopback, "single", false)
	b.add(row{Scenario: "get of the next build (one 10 MiB file changed of 512 MiB), last build cached", Mesh: measurement{Wall: took2},
		Target: "≤15 MiB received",
		Note:   fmt.Sprintf("received %.2f MiB (a cold cache: %.0f MiB)", float64(r2.Fetched.Bytes)/(1<<20), float64(r.Fetched.Bytes)/(1<<20))})
	os.RemoveAll(root)
}

// artifactLab: the artifact scenario on emulated machines (see lab): the
// publisher and each runner in a network namespace of its own with a
// link of b.link each way, files on tmpfs (separate machines do not
// share a disk). Loopback on two cores measures the cores; this measures
// what the swarm is for, a publisher's uplink shared by many runners.
func (b *bench) artifactLab() {
	b.inLab("artifactlab", 1+artifactRunners, func(root string, hosts []host) {
		build, pub, size := b.artifactBuild(root)
		b.swarmRow(fmt.Sprintf("emulated machines, %s links, tmpfs", b.link), root, build, pub, size, hosts[0], hosts[1:])
	})
}

func syncDisk() { exec.Command("sync").Run() }

// labBase is where a lab's machines keep their files: tmpfs, since
// separate machines do not share a disk (else work).
func labBase(work string) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return work
}
