//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// logPath: the Go source tree with a 5,000-commit history (each commit
// edits one file; net/http/server.go in 1% of them), made with git
// fast-import and imported into mesh; then log -- PATH of that file,
// alternating mesh and git. Target: ≤1.0× git log -- PATH.
func (b *bench) logPath() {
	if !have("git") {
		return
	}
	const commits, target = 5000, "net/http/server.go"
	src := filepath.Join(b.work, "logpath-git")
	dst := filepath.Join(b.work, "logpath-mesh")
	defer b.remove(src, dst)
	b.must("", "git", "init", "-q", "-b", "main", src)
	root := filepath.Join(runtime.GOROOT(), "src")
	var files []string
	check(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	}))
	sort.Strings(files)
	stream := filepath.Join(b.work, "logpath.fi")
	f, err := os.Create(stream)
	check(err)
	w := bufio.NewWriter(f)
	content := map[string][]byte{}
	read := func(p string) []byte {
		if c, ok := content[p]; ok {
			return c
		}
		c, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		check(err)
		return c
	}
	inline := func(p string, c []byte) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", p, len(c))
		w.Write(c)
		w.WriteString("\n")
	}
	// The files the other commits edit: a few hundred, as a team's work
	// touches a part of a tree.
	rng := rand.New(rand.NewSource(5))
	var edited []string
	for _, p := range files {
		if strings.HasSuffix(p, ".go") && p != target && rng.Intn(40) == 0 {
			edited = append(edited, p)
		}
	}
	touched := 0
	for c := 0; c < commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter B <b@b> %d +0000\ndata 12\ncommit %05d\n", 1700000000+c*60, c)
		if c == 0 {
			for _, p := range files {
				inline(p, read(p))
			}
			touched++
			continue
		}
		p := edited[rng.Intn(len(edited))]
		if c%100 == 0 {
			p = target
			touched++
		}
		next := append(read(p)[:len(read(p)):len(read(p))], fmt.Sprintf("// edit %d\n", c)...)
		content[p] = next
		inline(p, next)
	}
	check(w.Flush())
	check(f.Close())
	in, err := os.Open(stream)
	check(err)
	cmd := exec.Command("git", "-C", src, "fast-import", "--quiet")
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	in.Close()
	os.Remove(stream)
	if err != nil {
		check(fmt.Errorf("build the git history: %v\n%s", err, out))
	}
	check(os.MkdirAll(dst, 0o755))
	b.must(dst, b.mesh, "init")
	b.must(dst, b.mesh, "commit", "--allow-empty", "-m", "so that import does not check out")
	imp := b.must(dst, b.mesh, "import-git", src)
	b.add(row{Scenario: fmt.Sprintf("import the Go tree with a %d-commit history", commits), Mesh: imp,
		Note: fmt.Sprintf("%d files; %s in %d of the commits", len(files), target, touched)})
	lines := func(dir, name string, args ...string) int {
		o, err := b.outputIn(dir, name, args...)
		check(err)
		return strings.Count(o, "\n")
	}
	if m, g := lines(dst, b.mesh, "log", "--oneline", "git/main", "--", target), lines(src, "git", "log", "--oneline", "--", target); m != g || m != touched {
		check(fmt.Errorf("log -- %s: mesh lists %d commits, git %d, %d touched it", target, m, g, touched))
	}
	b.alternate(fmt.Sprintf("log -- PATH (%d of %d commits)", touched, commits), "≤1.0× git",
		func() measurement { return b.must(dst, b.mesh, "log", "--oneline", "git/main", "--", target) },
		"git log -- PATH",
		func() measurement { return b.must(src, "git", "log", "--oneline", "--", target) })
}
