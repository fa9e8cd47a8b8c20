//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bigFile: commit of one large random file, against restic backup and git
// add+commit of the same file.
func (b *bench) bigFile() {
	data := filepath.Join(b.work, "big")
	check(os.MkdirAll(data, 0o755))
	writeRandom(filepath.Join(data, "random.bin"), b.size, 1)
	r := row{Scenario: fmt.Sprintf("commit %d MiB random file", b.size>>20), Others: map[string]measurement{},
		Target: "≤0.3× restic, ≤0.1× git, ≤150 MiB RSS"}
	b.must(data, b.mesh, "init")
	r.Mesh = b.must(data, b.mesh, "commit", "-m", "big")
	if have("restic") {
		repo := filepath.Join(b.work, "restic-big")
		b.must("", "restic", "init", "-q", "-r", repo)
		m, err := b.time("", "restic", "-q", "-r", repo, "backup", filepath.Join(data, "random.bin"))
		check(err)
		r.Others["restic backup"] = m
	}
	if have("git") {
		g := filepath.Join(b.work, "git-big")
		check(os.MkdirAll(g, 0o755))
		b.must(g, "git", "init", "-q")
		check(os.Link(filepath.Join(data, "random.bin"), filepath.Join(g, "random.bin")))
		m, err := b.shell(g, "git add -A && git -c gc.auto=0 commit -q -m big")
		check(err)
		r.Others["git add+commit"] = m
	}
	b.add(r)
	os.RemoveAll(data)
	os.RemoveAll(filepath.Join(b.work, "restic-big"))
	os.RemoveAll(filepath.Join(b.work, "git-big"))
}

// copyGoTree copies the Go distribution's source into the scratch
// directory twice, one copy for mesh and one for git.
func (b *bench) copyGoTree() string {
	out, err := b.output("go", "env", "GOROOT")
	check(err)
	src := filepath.Join(strings.TrimSpace(out), "src")
	dst := filepath.Join(b.work, "gotree")
	b.copyTree(src, dst)
	b.copyTree(src, filepath.Join(b.work, "gotree-git"))
	return dst
}

func (b *bench) output(name string, args ...string) (string, error) {
	out, err := execOutput(name, args...)
	return string(out), err
}

func (b *bench) firstCommit(tree string) {
	files, bytes := countTree(tree)
	r := row{Scenario: fmt.Sprintf("first commit of Go tree (%d files, %d MiB)", files, bytes>>20), Others: map[string]measurement{}, Target: "≤0.5× git"}
	b.must(tree, b.mesh, "init")
	r.Mesh = b.must(tree, b.mesh, "commit", "-m", "first")
	if have("git") {
		g := tree + "-git"
		b.must(g, "git", "init", "-q")
		m, err := b.shell(g, "git add -A && git -c gc.auto=0 commit -q -m first")
		check(err)
		r.Others["git add+commit"] = m
	}
	b.add(r)
}

func (b *bench) status(tree string) {
	r := row{Scenario: "status on the clean Go tree (median)", Others: map[string]measurement{}, Target: "≤1.0× git"}
	b.must(tree, b.mesh, "status") // the first after a commit refreshes racy stat entries, like git's
	r.Mesh = b.median(tree, b.mesh, "status")
	if have("git") {
		b.must(tree+"-git", "git", "status")
		r.Others["git status"] = b.median(tree+"-git", "git", "status")
	}
	b.add(r)
}

func (b *bench) oneFile(tree string) {
	r := row{Scenario: "commit after a one-file change", Others: map[string]measurement{}, Target: "≤1.0× git"}
	for _, d := range []string{tree, tree + "-git"} {
		f, err := os.OpenFile(filepath.Join(d, "fmt", "print.go"), os.O_APPEND|os.O_WRONLY, 0)
		check(err)
		fmt.Fprintln(f, "// changed by meshbench")
		f.Close()
	}
	r.Mesh = b.must(tree, b.mesh, "commit", "-m", "one file")
	if have("git") {
		m, err := b.shell(tree+"-git", "git add -A && git -c gc.auto=0 commit -q -m 'one file'")
		check(err)
		r.Others["git add+commit"] = m
	}
	b.add(r)
}

func (b *bench) restore(tree string) {
	r := row{Scenario: "restore the Go tree into an empty folder", Others: map[string]measurement{}, Target: "≤1.0× restic restore"}
	out := filepath.Join(b.work, "restore-mesh")
	r.Mesh = b.must(tree, b.mesh, "restore", "--to", out)
	if have("restic") {
		repo := filepath.Join(b.work, "restic-tree")
		b.must("", "restic", "init", "-q", "-r", repo)
		b.must(tree, "restic", "-q", "-r", repo, "backup", "--exclude", ".mesh", ".")
		m, err := b.time("", "restic", "-q", "-r", repo, "restore", "latest", "--target", filepath.Join(b.work, "restore-restic"))
		check(err)
		r.Others["restic restore"] = m
	}
	b.add(r)
}

func countTree(dir string) (int, int64) {
	var n int
	var size int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
			size += fi.Size()
		}
		return nil
	})
	return n, size
}

// goFiles lists n .go files of a tree, in a fixed order.
func goFiles(tree string, n int) []string {
	var out []string
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() && (fi.Name() == ".mesh" || fi.Name() == ".git" || fi.Name() == "testdata") {
			if fi != nil && fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if len(out) < n && strings.HasSuffix(p, ".go") {
			rel, _ := filepath.Rel(tree, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// edit appends (or prepends) a line to each file.
func edit(dir string, files []string, prepend bool, tag string) {
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		check(err)
		line := "// " + tag + "\n"
		if prepend {
			b = append([]byte(line), b...)
		} else {
			b = append(b, line...)
		}
		check(os.WriteFile(p, b, 0o644))
	}
}

// mergeBranches: two lines of work on the Go tree, 100 files changed on
// each; mesh merges the other device's head, git merges a branch.
func (b *bench) mergeBranches(tree string) {
	r := row{Scenario: "merge two branches of the Go tree, 100 files changed on each", Others: map[string]measurement{}, Target: "≤1.0× git merge"}
	files := goFiles(tree, 200)
	if len(files) < 200 {
		check(fmt.Errorf("only %d .go files in %s", len(files), tree))
	}
	other := filepath.Join(b.work, "gotree-other")
	check(os.MkdirAll(other, 0o755))
	b.must(other, b.mesh, "init")
	b.must(other, b.mesh, "fetch", tree)
	b.must(other, b.mesh, "merge", "remotes/gotree/main")
	edit(tree, files[:100], false, "mine")
	b.must(tree, b.mesh, "commit", "-m", "mine")
	edit(other, files[100:], true, "theirs")
	b.must(other, b.mesh, "commit", "-m", "theirs")
	b.must(tree, b.mesh, "fetch", other)
	r.Mesh = b.must(tree, b.mesh, "merge", "remotes/gotree-other/main")
	if have("git") {
		g := tree + "-git"
		b.must(g, "git", "checkout", "-q", "-b", "side")
		edit(g, files[100:], true, "theirs")
		b.must(g, "sh", "-c", "git add -A && git -c gc.auto=0 commit -q -m theirs")
		b.must(g, "git", "checkout", "-q", "-")
		edit(g, files[:100], false, "mine")
		b.must(g, "sh", "-c", "git add -A && git -c gc.auto=0 commit -q -m mine")
		m, err := b.time(g, "git", "-c", "gc.auto=0", "merge", "-q", "--no-edit", "side")
		check(err)
		r.Others["git merge"] = m
	}
	b.add(r)
}
