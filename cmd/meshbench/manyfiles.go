//go:build linux

package main

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// manyFiles: a folder of b.files text files of about 1 KiB, 1,000 to a
// folder, committed by mesh and by git; then a clean status of each,
// alternating, with its peak RSS (the target: ≤1.5× git's), and
// the size of .mesh against .git.
func (b *bench) manyFiles() {
	m, g := filepath.Join(b.work, "many-mesh"), filepath.Join(b.work, "many-git")
	defer b.remove(m, g)
	writeTextFiles(m, b.files)
	b.copyTree(m, g)
	b.must(m, b.mesh, "init")
	r := row{Scenario: fmt.Sprintf("%d files of 1 KiB: first commit", b.files), Others: map[string]measurement{}, Target: "≤1.0× git"}
	r.Mesh = b.must(m, b.mesh, "commit", "-m", "files")
	b.must(g, "git", "init", "-q")
	gm, err := b.shell(g, "git add -A && git -c gc.auto=0 commit -q -m files")
	check(err)
	r.Others["git add+commit"] = gm
	b.add(r)
	// Past the racy window of the files written last, so that the first
	// status below trusts the stat cache from then on, as git's does.
	time.Sleep(2100 * time.Millisecond)
	b.must(m, b.mesh, "status")
	b.must(g, "git", "status")
	b.alternate(fmt.Sprintf("%d files of 1 KiB: clean status", b.files), "≤1.0× git",
		func() measurement { return b.must(m, b.mesh, "status") },
		"git status", func() measurement { return b.must(g, "git", "status") })
	b.peakRSS(fmt.Sprintf("%d files of 1 KiB: clean status peak RSS", b.files), "≤1.5× git", m, g, "status")
	b.add(row{Scenario: fmt.Sprintf("%d files of 1 KiB: store size", b.files), Target: ".mesh ≤ 1.0× .git",
		Note: fmt.Sprintf(".mesh %s, .git %s (apparent sizes; git's objects loose, as after a commit)", sizeOf(filepath.Join(m, ".mesh")), sizeOf(filepath.Join(g, ".git")))})
}

// writeTextFiles writes n text files of about 1 KiB (words, so they
// compress as text does) under dir, 1,000 to a folder.
func writeTextFiles(dir string, n int) {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega")
	rnd := rand.New(rand.NewSource(1))
	var sb strings.Builder
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			check(os.MkdirAll(d, 0o755))
		}
		sb.Reset()
		for sb.Len() < 1030 {
			sb.WriteString(words[rnd.Intn(len(words))])
			sb.WriteByte(' ')
		}
		sb.WriteString(fmt.Sprintf("%d\n", i))
		check(os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.txt", i%1000)), []byte(sb.String()), 0o644))
	}
}

// peakRSS records the peak RSS of mesh's and git's cmd, in m and g, as
// GNU time measures it (the largest of b.runs alternating runs each).
// The rows of b.time cannot: Go starts children with vfork, so their
// ru_maxrss is at least meshbench's own.
func (b *bench) peakRSS(scenario, target, m, g, cmd string) {
	if !have("/usr/bin/time") {
		fmt.Fprintln(os.Stderr, "GNU time is not installed: no peak RSS row (apt-get install -y time)")
		return
	}
	out := filepath.Join(b.work, "rss")
	rss := func(dir, name string) int64 {
		_, err := b.time(dir, "/usr/bin/time", "-f", "%M", "-o", out, name, cmd)
		check(err)
		s, err := os.ReadFile(out)
		check(err)
		fields := strings.Fields(string(s))
		check(func() error {
			if len(fields) == 0 {
				return fmt.Errorf("GNU time wrote %q", s)
			}
			return nil
		}())
		kb, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		check(err)
		return kb
	}
	var mesh, git int64
	for i := 0; i < b.runs; i++ {
		mesh = max(mesh, rss(m, b.mesh))
		git = max(git, rss(g, "git"))
	}
	b.add(row{Scenario: scenario, Target: target, Mesh: measurement{MaxRSS: mesh}, Others: map[string]measurement{"git " + cmd: {MaxRSS: git}},
		Note: fmt.Sprintf("peak RSS %d vs %d MiB (%.2f×), the largest of %d alternating runs each under GNU time", mesh>>10, git>>10, float64(mesh)/float64(git), b.runs)})
}
