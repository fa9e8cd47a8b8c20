//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	fanoutDevices = 8
	fanoutFiles   = 8 // of 32 MiB each: a 256 MiB commit
)

// fanout: mesh daemons keeping one folder in sync, one device committing
// 256 MiB of new files. First a single other device fetches such a commit
// alone; then with all 8 running, the next one reaches the other 7 at
// once. Reported: the last device's time against the single one's, and
// the bytes the author sent, against one copy per device that fetching
// only from the announcer costs. On hosts of a lab each daemon is on a
// machine of its own.
func (b *bench) fanout(where string, root string, hosts []host) {
	dirs := b.meshOf(root, fanoutDevices)
	var daemons []*daemon
	defer func() {
		for _, d := range daemons {
			d.stop()
		}
	}()
	daemons = append(daemons, b.startDaemon(dirs[0], hosts[0], ""))
	daemons = append(daemons, b.startDaemon(dirs[1], hosts[1], gossipAddr(dirs[0])))
	waitDirs(dirs[:2], root, func(d string) bool { return exists(filepath.Join(d, "seed.txt")) })
	author := b.deviceID(dirs[0])

	// commit writes a 256 MiB folder of new files on the author's device
	// and commits it; it returns a test for "d has it checked out". The
	// folder is written beside the repository and renamed into it, or the
	// author's daemon would commit each file as it settles, and the
	// others would fetch half-written builds.
	commit := func(name string, seed int64) func(d string) bool {
		staging := filepath.Join(root, "staging-"+name)
		check(os.MkdirAll(staging, 0o755))
		for i := 0; i < fanoutFiles; i++ {
			writeRandom(filepath.Join(staging, fmt.Sprintf("part-%d.bin", i)), 32<<20, seed+int64(i))
		}
		check(os.Rename(staging, filepath.Join(dirs[0], name)))
		b.must(dirs[0], b.mesh, "commit", "-m", name) // or the daemon did
		return func(d string) bool {
			for i := 0; i < fanoutFiles; i++ {
				fi, err := os.Stat(filepath.Join(d, name, fmt.Sprintf("part-%d.bin", i)))
				if err != nil || fi.Size() != 32<<20 {
					return false
				}
			}
			return true
		}
	}
	syncDisk()
	has := commit("build-1", 100)
	single := waitDirs(dirs[1:2], root, has)

	for i, d := range dirs[2:] {
		daemons = append(daemons, b.startDaemon(d, hosts[i+2], gossipAddr(dirs[0])))
	}
	waitDirs(dirs, root, has)
	before := sentBy(dirs[1:], author)
	syncDisk()
	has = commit("build-2", 200)
	last := waitDirs(dirs[1:], root, has)
	sent := sentBy(dirs[1:], author) - before

	size := int64(fanoutFiles) << 25
	others := len(dirs) - 1
	b.add(row{Scenario: fmt.Sprintf("%d daemons: one commits %d MiB, the other %d fetch it at once, %s", len(dirs), size>>20, others, where),
		Mesh: measurement{Wall: last}, Target: "author sends ≤2× the commit; last device ≤2× one device's time",
		Note: fmt.Sprintf("author sent %.0f MiB = %.2f× the commit (fetching from the announcer only: %d×); last device %.2fs = %.2f× one device alone (%.2fs)",
			float64(sent)/(1<<20), float64(sent)/float64(size), others, last.Seconds(), last.Seconds()/single.Seconds(), single.Seconds())})
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// deviceID is the device ID of the repository in dir.
func (b *bench) deviceID(dir string) string {
	out, err := b.outputIn(dir, b.mesh, "id")
	check(err)
	return strings.Fields(out)[0]
}

// fetchedRE matches a daemon's log line for a fetch: the device fetched
// from, the bytes received, and from each device ("source" is that one;
// a build before swarm fetches logs no map: all came from the source).
var fetchedRE = regexp.MustCompile(`msg=Fetched device=(\S+) .*?bytes=(\d+)(?: from="?map\[([^\]]*)\])?`)

// sentBy adds up, over the logs of dirs' daemons, the chunk bytes they
// received from device dev: as the source of a fetch, or as a member of
// its swarm.
func sentBy(dirs []string, dev string) int64 {
	var n int64
	for _, d := range dirs {
		log, err := os.ReadFile(d + ".log")
		check(err)
		for _, m := range fetchedRE.FindAllStringSubmatch(string(log), -1) {
			if m[3] == "" {
				if m[1] == dev {
					all, _ := strconv.ParseInt(m[2], 10, 64)
					n += all
				}
				continue
			}
			for _, kv := range strings.Fields(m[3]) {
				k, v, _ := strings.Cut(kv, ":")
				bytes, err := strconv.ParseInt(v, 10, 64)
				if err == nil && (k == dev || (k == "source" && m[1] == dev)) {
					n += bytes
				}
			}
		}
	}
	return n
}

// fanoutLoopback runs fanout with every daemon on this machine's loopback.
func (b *bench) fanoutLoopback() {
	root := filepath.Join(b.work, "fanout")
	b.fanout("loopback", root, loopbackHosts(fanoutDevices))
	os.RemoveAll(root)
}

// fanoutLab runs fanout on the emulated machines of a lab (see artifactLab).
func (b *bench) fanoutLab() {
	b.inLab("fanoutlab", fanoutDevices, func(root string, hosts []host) {
		t0 := time.Now()
		b.fanout(fmt.Sprintf("emulated machines, %s links, tmpfs", b.link), root, hosts)
		fmt.Fprintf(os.Stderr, "fanoutlab took %v\n", time.Since(t0).Round(time.Second))
	})
}
