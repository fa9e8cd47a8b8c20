//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// host is where one process of a scenario runs: this machine's loopback
// (ns "") or a network namespace of a lab.
type host struct{ ns, ip string }

var loopback = host{ip: "127.0.0.1"}

// command is name args run on h.
func (h host) command(name string, args ...string) *exec.Cmd {
	if h.ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// lab emulates a LAN of separate machines on this one: a network
// namespace per machine, each with one link to a switch (a bridge in a
// namespace of its own) limited to rate in each direction by a token
// bucket. The machines' addresses are 10.213.0.0/24, which exists only
// inside these namespaces. What the lab cannot separate is the CPU and
// the memory: every machine runs on this machine's cores.
type lab struct {
	prefix string
	hosts  []host
}

// labUsable says why a lab cannot be made here, or "".
func labUsable() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces)"
	}
	for _, t := range []string{"ip", "tc"} {
		if !have(t) {
			return "needs " + t + " (apt-get install -y iproute2)"
		}
	}
	return ""
}

func newLab(machines int, rate string) (*lab, error) {
	l := &lab{prefix: fmt.Sprintf("mb%d", os.Getpid())}
	sw := l.prefix + "-sw"
	run := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{
		{"ip", "netns", "add", sw},
		{"ip", "-n", sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", sw, "link", "set", "br0", "up"},
	}
	for i := 0; i < machines; i++ {
		ns, port := fmt.Sprintf("%s-%d", l.prefix, i), fmt.Sprintf("p%d", i)
		ip := fmt.Sprintf("10.213.0.%d", i+1)
		l.hosts = append(l.hosts, host{ns: ns, ip: ip})
		bucket := []string{"root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"}
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", sw, "link", "set", port, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			// the machine's uplink, and its downlink (the switch's port)
			append([]string{"tc", "-n", ns, "qdisc", "add", "dev", "eth0"}, bucket...),
			append([]string{"tc", "-n", sw, "qdisc", "add", "dev", port}, bucket...),
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

// close removes the namespaces (and with them the links).
func (l *lab) close() {
	exec.Command("ip", "netns", "del", l.prefix+"-sw").Run()
	for _, h := range l.hosts {
		exec.Command("ip", "netns", "del", h.ns).Run()
	}
}

// removeAll removes a scenario's folder, unless -keep asked to leave it.
func (b *bench) removeAll(dir string) {
	if b.keep {
		fmt.Fprintln(os.Stderr, "kept", dir)
		return
	}
	os.RemoveAll(dir)
}

// inLab runs a scenario (named name in messages) on a new lab of
// machines, with a scratch folder on the lab's disk; it says why when a
// lab cannot be made here, and then runs nothing.
func (b *bench) inLab(name string, machines int, run func(root string, hosts []host)) {
	if why := labUsable(); why != "" {
		fmt.Fprintln(os.Stderr, name+":", why, "- not run")
		return
	}
	l, err := newLab(machines, b.link)
	check(err)
	defer l.close()
	root, err := os.MkdirTemp(labBase(b.work), "meshbench-"+name+"-")
	check(err)
	defer b.removeAll(root)
	run(root, l.hosts)
}

// loopbackHosts is n hosts, all this machine's loopback.
func loopbackHosts(n int) []host {
	hosts := make([]host, n)
	for i := range hosts {
		hosts[i] = loopback
	}
	return hosts
}
