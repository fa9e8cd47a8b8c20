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

// artifact: one publisher and 8 runners on loopback. The runners get one
// 512 MiB artifact at the same time (seeding each other until all are
// done); reported: the bytes the publisher sent, and the last runner's
// time against one runner's alone. Then a build whose only change is one
// 10 MiB file: the bytes a runner with the last version cached receives.
func (b *bench) artifact() {
	const runners = 8
	root := filepath.Join(b.work, "artifact")
	build := filepath.Join(root, "build")
	check(os.MkdirAll(build, 0o755))
	var size int64
	for i := 0; i < 48; i++ {
		writeRandom(filepath.Join(build, fmt.Sprintf("part-%02d.bin", i)), 10<<20, int64(1000+i))
		size += 10 << 20
	}
	writeRandom(filepath.Join(build, "rest.bin"), 32<<20, 999)
	size += 32 << 20
	pub := filepath.Join(root, "pub")
	check(os.MkdirAll(pub, 0o755))
	b.must(pub, b.mesh, "init")
	b.must(pub, b.mesh, "publish", "-b", "artifacts/build", build)

	serve := exec.Command(b.mesh, "serve", "--listen", "127.0.0.1:0")
	serve.Dir, serve.Env = pub, b.env
	check(serve.Start())
	d := &daemon{serve}
	defer d.stop()
	var addr string
	for i := 0; i < 400 && addr == ""; i++ {
		if bs, err := os.ReadFile(filepath.Join(pub, ".mesh", "serve.addr")); err == nil {
			addr = strings.TrimSpace(string(bs))
		}
		time.Sleep(25 * time.Millisecond)
	}
	if addr == "" {
		check(fmt.Errorf("mesh serve did not start"))
	}
	tok, err := b.outputIn(pub, b.mesh, "invite")
	check(err)
	env := append(append([]string(nil), b.env...), "MESH_TOKEN="+strings.TrimSpace(tok))

	// get runs one mesh get and returns its result and when it printed it;
	// with seed it keeps running (seeding) and is returned to be stopped.
	get := func(name string, seed bool) (getResult, time.Duration, *exec.Cmd) {
		args := []string{"get", "--json", "--cache", filepath.Join(root, "cache-"+name), "--to", filepath.Join(root, "out-"+name)}
		if seed {
			args = append(args, "--seed-for", "2m")
		}
		args = append(args, addr, "artifacts/build")
		cmd := exec.Command(b.mesh, args...)
		cmd.Dir, cmd.Env = root, env
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

	syncDisk()
	_, single, _ := get("single", false)

	syncDisk()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		last  time.Duration
		fromP int64
		cmds  []*exec.Cmd
	)
	for i := 0; i < runners; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, took, cmd := get(fmt.Sprintf("r%d", i), true)
			mu.Lock()
			defer mu.Unlock()
			last = max(last, took)
			fromP += r.Received["source"]
			cmds = append(cmds, cmd)
		}()
	}
	wg.Wait()
	for _, c := range cmds {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	b.add(row{Scenario: "8 runners get one 512 MiB artifact at once: bytes the publisher sent", Mesh: measurement{Wall: last},
		Target: "≤2× the artifact; last runner ≤2× one runner's time",
		Note: fmt.Sprintf("publisher sent %.0f MiB = %.2f× the artifact (a plain server: 8×); last runner %.2fs = %.2f× one runner alone (%.2fs)",
			float64(fromP)/(1<<20), float64(fromP)/float64(size), last.Seconds(), last.Seconds()/single.Seconds(), single.Seconds())})

	// The next build changes one 10 MiB file.
	writeRandom(filepath.Join(build, "part-17.bin"), 10<<20, 4242)
	b.must(pub, b.mesh, "publish", "-b", "artifacts/build", build)
	r, _, _ := get("single2", false) // a cold cache, for comparison
	// the cache of the first single get, which holds the last build
	r2, took2 := b.getWithCache(env, root, addr, "cache-single")
	b.add(row{Scenario: "get of the next build (one 10 MiB file changed of 512 MiB), last build cached", Mesh: measurement{Wall: took2},
		Target: "≤15 MiB received",
		Note:   fmt.Sprintf("received %.2f MiB (a cold cache: %.0f MiB)", float64(r2.Fetched.Bytes)/(1<<20), float64(r.Fetched.Bytes)/(1<<20))})
}

func (b *bench) getWithCache(env []string, root, addr, cache string) (getResult, time.Duration) {
	out := filepath.Join(root, "out-"+cache+"-next")
	cmd := exec.Command(b.mesh, "get", "--json", "--no-seed", "--cache", filepath.Join(root, cache), "--to", out, addr, "artifacts/build")
	cmd.Dir, cmd.Env = root, env
	t0 := time.Now()
	o, err := cmd.Output()
	took := time.Since(t0)
	if err != nil {
		check(fmt.Errorf("mesh get: %v\n%s", err, o))
	}
	var r getResult
	check(json.Unmarshal(o, &r))
	return r, took
}

func syncDisk() { exec.Command("sync").Run() }
