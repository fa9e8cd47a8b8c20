package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netLab is two emulated machines: a network namespace each, joined by
// a veth pair, with addresses in 10.214.0.0/24 that exist only inside
// them. It needs root and iproute2.
type netLab struct {
	ns [2]string
	ip [2]string
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs ip (apt-get install -y iproute2)"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("the two-machine test %s; .ci/run provides both", why)
		}
		t.Skip(why)
	}
	l := &netLab{}
	for i := range l.ns {
		l.ns[i] = fmt.Sprintf("meshlab%d-%c", os.Getpid(), 'a'+i)
		l.ip[i] = fmt.Sprintf("10.214.0.%d", i+1)
	}
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		for _, ns := range l.ns {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range l.ns {
		run("ip", "netns", "add", ns)
	}
	run("ip", "-n", l.ns[0], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", l.ns[1])
	for i, ns := range l.ns {
		run("ip", "-n", ns, "addr", "add", l.ip[i]+"/24", "dev", "eth0")
		run("ip", "-n", ns, "link", "set", "eth0", "up")
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	return l
}

// mesh runs mesh on machine i in dir.
func (l *netLab) mesh(bin string, i int, dir string, args ...string) *exec.Cmd {
	c := exec.Command("ip", append([]string{"netns", "exec", l.ns[i], bin}, args...)...)
	c.Dir = dir
	c.Env = append(os.Environ(), "MESH_AUTHOR=test")
	return c
}

// TestTwoMachines follows the README's two-machine example on two
// emulated machines, with the default fixed ports: daemons start and a
// change crosses; both stop and start again with no --join (and no other
// flag: each remembers its addresses and the other device) and changes
// cross both ways; then both are killed with SIGKILL and started again,
// and changes still cross.
func TestTwoMachines(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	lab := newNetLab(t)
	bin := meshBin(t)
	root := openDir(t)
	a, b := filepath.Join(root, "a"), filepath.Join(root, "sync")
	os.Mkdir(a, 0o755)
	mustRun := func(c *exec.Cmd) string {
		t.Helper()
		r := runMesh(t, c)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(c.Args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	mustRun(lab.mesh(bin, 0, a, "init"))
	os.WriteFile(filepath.Join(a, "first.txt"), []byte("first\n"), 0o644)
	mustRun(lab.mesh(bin, 0, a, "commit", "-m", "first"))

	var running []*daemon
	t.Cleanup(func() {
		for _, d := range running {
			if d.cmd.ProcessState == nil {
				d.cmd.Process.Kill()
				d.cmd.Wait()
			}
		}
	})
	start := func(i int, dir string, args ...string) *daemon {
		t.Helper()
		os.Remove(filepath.Join(dir, ".mesh", "gossip.addr"))
		d := &daemon{cmd: lab.mesh(bin, i, dir, append([]string{"daemon"}, args...)...), log: &syncBuffer{}}
		d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running = append(running, d)
		waitFor(t, "daemon in "+dir+" to start", func() bool {
			_, err := os.Stat(filepath.Join(dir, ".mesh", "gossip.addr"))
			return err == nil
		}, d)
		return d
	}
	// crosses writes a new file in from and returns how long until it is
	// in to.
	n := 0
	crosses := func(from, to string, ds ...*daemon) time.Duration {
		t.Helper()
		n++
		name, body := fmt.Sprintf("change-%d.txt", n), fmt.Sprintf("change %d\n", n)
		t0 := time.Now()
		os.WriteFile(filepath.Join(from, name), []byte(body), 0o644)
		waitFor(t, name+" reaches "+to, func() bool { return hasFile(to, name, body) }, ds...)
		return time.Since(t0)
	}

	// The README's commands, word for word but for the addresses.
	da := start(0, a, "--advertise", lab.ip[0])
	tok := strings.TrimSpace(mustRun(lab.mesh(bin, 0, a, "invite", "--addr", lab.ip[0]+":7420")))
	mustRun(lab.mesh(bin, 1, root, "join", tok, b))
	db := start(1, b, "--advertise", lab.ip[1], "--join", lab.ip[0]+":7421")
	if ga := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(a, ".mesh", "gossip.addr"))))); ga != lab.ip[0]+":7421" {
		t.Fatalf("machine A advertises gossip at %s, not where it listens (%s:7421)", ga, lab.ip[0])
	}
	first := crosses(a, b, da, db)

	// Both stop; both start again with no flags at all.
	da.stop(t)
	db.stop(t)
	da = start(0, a)
	db = start(1, b)
	afterRestart := crosses(b, a, da, db)
	back := crosses(a, b, da, db)

	// Both killed; the one started first finds the other once it is back.
	for _, d := range []*daemon{da, db} {
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.cmd.Wait()
	}
	da = start(0, a)
	time.Sleep(2 * time.Second) // A is alone for a while, dialing B in vain
	db = start(1, b)
	afterKill := crosses(a, b, da, db)
	afterKillBack := crosses(b, a, da, db)
	da.stop(t)
	db.stop(t)
	t.Logf("a new file reached the other machine: first %v; after both restarted without --join %v (B→A), %v (A→B); after both were killed %v (A→B), %v (B→A)",
		first.Round(time.Millisecond), afterRestart.Round(time.Millisecond), back.Round(time.Millisecond),
		afterKill.Round(time.Millisecond), afterKillBack.Round(time.Millisecond))
	for _, dir := range []string{a, b} {
		mustRun(lab.mesh(bin, 0, dir, "fsck", "--read-data"))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
