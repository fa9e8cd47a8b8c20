//go:build linux

// Command meshbench times whole mesh processes beside git, restic and rsync
// on the same data in the same run, and prints the ratios the issues set
// targets for. It builds mesh from this checkout, generates or copies its
// data sets into a scratch directory, and removes them afterwards.
//
//	go run ./cmd/meshbench [-only NAME,...] [-size BYTES] [-runs N] [-keep] [-mesh BINARY]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// measurement is one timed process.
type measurement struct {
	Wall   time.Duration `json:"wallNs"`
	MaxRSS int64         `json:"maxRssKiB"`
}

// row is one scenario: mesh's time and each other tool's.
type row struct {
	Scenario string                 `json:"scenario"`
	Mesh     measurement            `json:"mesh"`
	Others   map[string]measurement `json:"others"`
	Target   string                 `json:"target"`
	Note     string                 `json:"note,omitempty"`
}

type bench struct {
	work, mesh string
	runs       int
	size       int64
	link       string
	keep       bool // leave the scratch directories (and the labs' logs)
	// historyCommits is the last checkpoint of the history scenario.
	historyCommits int
	// files is the size of the manyfiles folder.
	files int
	rows  []row
	env   []string
}

func main() { os.Exit(benchMain()) }

// failure is how check stops a scenario: run recovers it, records the
// scenario as failed and goes on with the next, so a failure never costs
// the other results or leaves the scratch directory behind.
type failure struct{ err error }

func benchMain() (code int) {
	only := flag.String("only", "", "comma-separated scenarios to run (bigfile,pull,gotree,status,onefile,restore,merge,pullgo,history,gitimport,cluster,fanout,gossip256,artifact,restart,hostile; run only when named: history100k, manyfiles, logpath, cloud (needs versitygw and rclone), and artifactlab,fanoutlab,restartlab, which need root)")
	link := flag.String("link", "200mbit", "artifactlab: each emulated machine's link speed, each way (tc rate)")
	size := flag.Int64("size", 1<<30, "size of the random file in bytes")
	runs := flag.Int("runs", 5, "runs of the quick commands (status); the median is reported")
	keep := flag.Bool("keep", false, "keep the scratch directory")
	prebuilt := flag.String("mesh", "", "time this mesh binary instead of building one from this checkout (an A/B run against another build)")
	asJSON := flag.Bool("json", false, "print results as JSON")
	files := flag.Int("files", 200_000, "manyfiles: the number of 1 KiB files")
	historyCommits := flag.Int("history", 1000, "history: the number of commits of its last checkpoint (after 100 and 1,000); 10000 for the issue's target")
	flag.Parse()

	work, err := os.MkdirTemp("", "meshbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		return 1
	}
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintln(os.Stderr, "scratch directory:", work)
	}
	defer func() {
		switch r := recover().(type) {
		case nil:
		case failure: // setup failed before any scenario
			fmt.Fprintln(os.Stderr, "meshbench:", r.err)
			code = 1
		default:
			panic(r)
		}
	}()
	b := &bench{work: work, runs: *runs, size: *size, link: *link, keep: *keep, historyCommits: *historyCommits, files: *files}
	b.env = append(os.Environ(), "RESTIC_PASSWORD=meshbench", "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b", "MESH_AUTHOR=bench")
	// A static build, as mesh ships: cgo (pulled in through os/user by a
	// dependency) only adds dynamic-loader time to every command's start.
	b.env = append(b.env, "CGO_ENABLED=0")
	if *prebuilt != "" {
		b.mesh, err = filepath.Abs(*prebuilt)
		check(err)
	} else {
		b.mesh = filepath.Join(work, "mesh")
		fmt.Fprintln(os.Stderr, "building mesh…")
		b.must("", "go", "build", "-tags", "urfave_cli_no_docs", "-o", b.mesh, "./cmd/mesh")
	}

	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	failed := 0
	run := func(name string, f func()) {
		if len(want) > 0 && !want[name] {
			return
		}
		fmt.Fprintln(os.Stderr, "scenario", name, "…")
		defer func() {
			switch r := recover().(type) {
			case nil:
			case failure:
				failed++
				fmt.Fprintf(os.Stderr, "scenario %s failed: %v\n", name, r.err)
				b.add(row{Scenario: name, Target: "FAILED", Note: firstLine(r.err.Error())})
			default:
				panic(r)
			}
		}()
		f()
	}
	run("bigfile", b.bigFile)
	run("pull", b.pullBigFile)
	goTree := ""
	if len(want) == 0 || want["gotree"] || want["status"] || want["onefile"] || want["restore"] || want["merge"] || want["pullgo"] {
		goTree = b.copyGoTree()
	}
	if len(want) > 0 && !want["gotree"] && goTree != "" {
		want["gotree"] = true // every Go-tree scenario starts from its first commit
	}
	run("gotree", func() { b.firstCommit(goTree) })
	run("status", func() { b.status(goTree) })
	run("onefile", func() { b.oneFile(goTree) })
	run("restore", func() { b.restore(goTree) })
	run("merge", func() { b.mergeBranches(goTree) })
	run("pullgo", func() { b.pullGoTree(goTree) })
	run("history", b.history)
	run("gitimport", b.gitImport)
	run("cluster", b.cluster)
	run("fanout", b.fanoutLoopback)
	run("gossip256", b.gossipSim)
	run("artifact", b.artifact)
	run("restart", b.restartLoopback)
	run("hostile", b.hostile)
	if want["history100k"] { // minutes of generating and gc: only when named
		run("history100k", b.bigHistory)
	}
	if want["manyfiles"] { // 1.6 GB of small files: only when named
		run("manyfiles", b.manyFiles)
	}
	if want["logpath"] { // a 5,000-commit history of the Go tree: only when named
		run("logpath", b.logPath)
	}
	if want["cloud"] { // 1 GiB through a local S3 server, against rclone: only when named
		run("cloud", b.cloud)
	}
	if want["artifactlab"] {
		run("artifactlab", b.artifactLab)
	}
	if want["fanoutlab"] {
		run("fanoutlab", b.fanoutLab)
	}
	if want["restartlab"] {
		run("restartlab", b.restartLab)
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		check(enc.Encode(b.rows))
	} else {
		b.print()
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "meshbench: %d scenario(s) failed; the table holds every one that completed\n", failed)
		return 1
	}
	return 0
}

// check stops the scenario in progress when err is set (see failure).
func check(err error) {
	if err != nil {
		panic(failure{err})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// time runs a command in dir and measures it; output is discarded unless
// the command fails.
func (b *bench) time(dir string, name string, args ...string) (measurement, error) {
	m, _, err := b.timeOutput(dir, name, args...)
	return m, err
}

// timeOutput is time that also returns what the command printed.
func (b *bench) timeOutput(dir string, name string, args ...string) (measurement, string, error) {
	// Start every tool with no dirty pages of the previous one's still being
	// written back, so each pays only for its own writes.
	syscall.Sync()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := measurement{Wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && cmd.ProcessState != nil {
		m.MaxRSS = ru.Maxrss
	}
	if err != nil {
		return m, "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return m, out.String(), nil
}

func (b *bench) must(dir, name string, args ...string) measurement {
	m, err := b.time(dir, name, args...)
	check(err)
	return m
}

// shell times a shell pipeline (git add + commit is two commands).
func (b *bench) shell(dir, script string) (measurement, error) {
	return b.time(dir, "sh", "-c", script)
}

func have(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}

func (b *bench) median(dir string, name string, args ...string) measurement {
	var ms []measurement
	for i := 0; i < b.runs; i++ {
		ms = append(ms, b.must(dir, name, args...))
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Wall < ms[j].Wall })
	return ms[len(ms)/2]
}

func (b *bench) add(r row) { b.rows = append(b.rows, r) }

func (b *bench) print() {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tmesh\tpeak RSS\tother\ttime\tratio mesh/other\ttarget")
	for _, r := range b.rows {
		names := make([]string, 0, len(r.Others))
		for n := range r.Others {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprintf(w, "%s\t%s\t%s\t-\t-\t-\t%s\n", r.Scenario, secs(r.Mesh.Wall), mib(r.Mesh.MaxRSS), r.Target)
		}
		for i, n := range names {
			o := r.Others[n]
			label, rss := r.Scenario, mib(r.Mesh.MaxRSS)
			mt := secs(r.Mesh.Wall)
			if i > 0 {
				label, rss, mt = "", "", ""
			}
			ot, ratio := secs(o.Wall), fmt.Sprintf("%.2f×", float64(r.Mesh.Wall)/float64(o.Wall))
			if o.Wall == 0 { // a row of memory only (its note says)
				ot, ratio = "-", "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", label, mt, rss, n, ot, ratio, r.Target)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "\t(%s)\n", r.Note)
		}
	}
	w.Flush()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
func mib(kib int64) string        { return fmt.Sprintf("%d MiB", kib/1024) }

// writeRandom writes n pseudo-random bytes (incompressible, like media).
func writeRandom(path string, n int64, seed int64) {
	f, err := os.Create(path)
	check(err)
	defer f.Close()
	_, err = io.CopyN(f, rand.New(rand.NewSource(seed)), n)
	check(err)
}

// copyTree copies src to dst with cp -a, so every tool sees identical files.
func (b *bench) copyTree(src, dst string) {
	b.must("", "cp", "-a", src, dst)
}

func execOutput(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).Output()
}
