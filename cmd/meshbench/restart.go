//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const restartDevices = 6

// restart: 6 daemons on fixed ports, each joining the first, as a user
// deploys them. Timed: a new file on one device until all 6 have it,
// first after they start, then after all stop and start again with no
// flags at all (each remembers its addresses and the others), then after
// all are killed with SIGKILL and started again. Cycles repeat b.runs
// times; min and median are reported. On loopback every daemon has its
// own pair of explicit ports; on a lab's machines all use the defaults
// (:7420, 0.0.0.0:7421) and --advertise their address, as in the README.
func (b *bench) restart(where string, root string, hosts []host, lab bool) {
	dirs := b.meshOf(root, restartDevices)
	var daemons []*daemon
	stopAll := func(kill bool) {
		for _, d := range daemons {
			if kill {
				d.cmd.Process.Kill()
				d.cmd.Wait()
			} else {
				d.stop()
			}
		}
		daemons = nil
	}
	defer stopAll(false)
	startAll := func(first bool) {
		for i, d := range dirs {
			var args []string
			if first {
				if lab {
					args = []string{"--advertise", hosts[i].ip}
				} else {
					p := 17420 + 2*i
					args = []string{"--listen", "127.0.0.1:" + strconv.Itoa(p), "--gossip", "127.0.0.1:" + strconv.Itoa(p+1)}
				}
				if i > 0 {
					args = append(args, "--join", gossipAddr(dirs[0]))
				}
			}
			daemons = append(daemons, b.startDaemonArgs(d, hosts[i], args))
		}
	}
	n := 0
	crossing := func() time.Duration {
		n++
		name, body := fmt.Sprintf("change-%d.txt", n), fmt.Sprintf("change %d\n", n)
		from := dirs[n%len(dirs)]
		check(os.WriteFile(filepath.Join(from, name), []byte(body), 0o644))
		return waitDirs(dirs, root, func(d string) bool {
			got, err := os.ReadFile(filepath.Join(d, name))
			return err == nil && string(got) == body
		})
	}
	startAll(true)
	fresh := crossing()
	var restarted, killed []time.Duration
	for range max(b.runs, 1) {
		stopAll(false)
		startAll(false)
		restarted = append(restarted, crossing())
		stopAll(true)
		startAll(false)
		killed = append(killed, crossing())
	}
	rmin, rmed := minMedian(restarted)
	kmin, kmed := minMedian(killed)
	b.add(row{Scenario: fmt.Sprintf("%d daemons on fixed ports, a new file reaches all; all restarted with no flags, %s", len(dirs), where),
		Mesh: measurement{Wall: rmed}, Target: "≤2 s after a restart",
		Note: fmt.Sprintf("%d cycles: after a restart min %.2fs median %.2fs; after SIGKILL of all and a start min %.2fs median %.2fs; first start %.2fs",
			len(restarted), rmin.Seconds(), rmed.Seconds(), kmin.Seconds(), kmed.Seconds(), fresh.Seconds())})
}

// restartLoopback runs restart on 127.0.0.1.
func (b *bench) restartLoopback() {
	root := filepath.Join(b.work, "restart")
	b.restart("loopback, explicit ports", root, loopbackHosts(restartDevices), false)
	os.RemoveAll(root)
}

// restartLab runs restart on the emulated machines of a lab.
func (b *bench) restartLab() {
	b.inLab("restartlab", restartDevices, func(root string, hosts []host) {
		b.restart(fmt.Sprintf("emulated machines, default ports, %s links", b.link), root, hosts, true)
	})
}
