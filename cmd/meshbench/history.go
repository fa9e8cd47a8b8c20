//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
)

// history: a folder of 100 text files and one-line commits in a loop, in
// mesh and in git (gc.auto=0, as a daemon's history is never repacked by
// hand), timed at checkpoints as history grows: status, log -n 10, one more
// commit, and cat of an old version, each alternating mesh and git and
// repeated; plus the average commit while building, the number of packs
// and the size of .mesh against .git.
func (b *bench) history() {
	checkpoints := []int{100, 1000}
	if b.historyCommits > 1000 {
		checkpoints = append(checkpoints, b.historyCommits)
	}
	m, g := filepath.Join(b.work, "history-mesh"), filepath.Join(b.work, "history-git")
	defer b.remove(m, g)
	for _, d := range []string{m, g} {
		check(os.MkdirAll(d, 0o755))
		for i := 0; i < 100; i++ {
			var sb strings.Builder
			for l := 0; l < 20; l++ {
				fmt.Fprintf(&sb, "file %d line %d\n", i, l)
			}
			check(os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d.txt", i)), []byte(sb.String()), 0o644))
		}
	}
	b.must(m, b.mesh, "init")
	b.must(g, "git", "init", "-q")
	b.must(g, "git", "config", "gc.auto", "0")
	commits := 0
	change := func(n int) {
		for _, d := range []string{m, g} {
			f, err := os.OpenFile(filepath.Join(d, fmt.Sprintf("f%03d.txt", n%100)), os.O_APPEND|os.O_WRONLY, 0)
			check(err)
			fmt.Fprintf(f, "commit %d\n", n)
			f.Close()
		}
	}
	meshCommit := func() measurement { return b.must(m, b.mesh, "commit", "-m", "c") }
	gitCommit := func() measurement {
		return b.must(g, "sh", "-c", "git add -A && git commit -q -m c")
	}
	for _, cp := range checkpoints {
		var mt, gt time.Duration
		from := commits
		for commits < cp {
			change(commits)
			mt += meshCommit().Wall
			gt += gitCommit().Wall
			commits++
		}
		if n := commits - from; n > 0 {
			b.add(row{Scenario: fmt.Sprintf("history: average commit, commits %d to %d", from+1, commits),
				Mesh: measurement{Wall: mt / time.Duration(n)}, Others: map[string]measurement{"git add+commit": {Wall: gt / time.Duration(n)}},
				Target: "flat as history grows"})
		}
		b.alternate(fmt.Sprintf("history at %d commits: status", commits), "≤1.1× at 100 commits, ≤1.5× git",
			func() measurement { return b.must(m, b.mesh, "status") },
			"git status", func() measurement { return b.must(g, "git", "status") })
		b.alternate(fmt.Sprintf("history at %d commits: log -n 10", commits), "≤1.1× at 100 commits, ≤1.5× git",
			func() measurement { return b.must(m, b.mesh, "log", "-n", "10") },
			"git log -n 10", func() measurement { return b.must(g, "git", "log", "-n", "10") })
		old := fmt.Sprintf("HEAD~%d:f%03d.txt", commits*3/4, 42)
		b.alternate(fmt.Sprintf("history at %d commits: cat of %s", commits, old), "≤2× git",
			func() measurement { return b.must(m, b.mesh, "cat", old) },
			"git show", func() measurement { return b.must(g, "git", "show", old) })
		b.alternate(fmt.Sprintf("history at %d commits: one more commit", commits), "≤1.1× at 100 commits, ≤1.5× git",
			func() measurement { change(commits); commits++; return meshCommit() },
			"git add+commit", func() measurement { return gitCommit() })
		packs, _ := filepath.Glob(filepath.Join(m, ".mesh", "objects", "*.pack"))
		b.add(row{Scenario: fmt.Sprintf("history at %d commits: packs and size", commits), Target: "packs ≤ ~log2(store size); .mesh ≤ 1.0× .git",
			Note: fmt.Sprintf("%d packs; .mesh %s, .git %s", len(packs), sizeOf(filepath.Join(m, ".mesh")), sizeOf(filepath.Join(g, ".git")))})
	}
}

// alternate runs mesh's and the other tool's command in turn, b.runs
// times each, and records the medians, with the minimums in the note:
// on a noisy machine one run proves nothing.
func (b *bench) alternate(scenario, target string, mesh func() measurement, other string, tool func() measurement) {
	var ms, os []measurement
	for i := 0; i < b.runs; i++ {
		ms = append(ms, mesh())
		os = append(os, tool())
	}
	byWall := func(x []measurement) {
		sort.Slice(x, func(i, j int) bool { return x[i].Wall < x[j].Wall })
	}
	byWall(ms)
	byWall(os)
	b.add(row{Scenario: scenario + " (median)", Mesh: ms[len(ms)/2], Others: map[string]measurement{other: os[len(os)/2]}, Target: target,
		Note: fmt.Sprintf("min %s vs %s, %d alternating runs each; peak RSS of the medians %d vs %d MiB", secs(ms[0].Wall), secs(os[0].Wall), len(ms), ms[len(ms)/2].MaxRSS>>10, os[len(os)/2].MaxRSS>>10)})
}

// remove deletes a scenario's folders, unless -keep asks to leave them.
func (b *bench) remove(dirs ...string) {
	if !b.keep {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
}

// sizeOf is the bytes of the files under dir.
func sizeOf(dir string) string {
	_, n := countTree(dir)
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

// bigHistory: a 100,000-commit history of the same 100-file folder,
// generated through the library (a commit object, a tree and a file per
// commit, in batches of 1,000, repacked as the daemon would), against a
// fresh repository holding the same folder in one commit: status and one
// more commit, alternating. Target: within 10% of the fresh one.
func (b *bench) bigHistory() {
	const n = 100_000
	big, fresh := filepath.Join(b.work, "history100k"), filepath.Join(b.work, "history-fresh")
	defer b.remove(big, fresh)
	for _, d := range []string{big, fresh} {
		check(os.MkdirAll(d, 0o755))
	}
	r, err := repo.Init(big, nil)
	check(err)
	ch, err := object.NewChunker(r.Config.Chunking, 1)
	check(err)
	ctx := context.Background()
	entries := make([]object.Entry, 100)
	batch := r.Store.NewBatch()
	putFile := func(i, gen int) {
		c := fileContent(i, gen)
		id, _, err := ch.WriteFile(ctx, batch, bytes.NewReader(c), int64(len(c)))
		check(err)
		entries[i] = object.Entry{Name: fmt.Sprintf("f%03d.txt", i), Kind: object.KindFile, Size: int64(len(c)), ID: id}
	}
	for i := range entries {
		putFile(i, 0)
	}
	t0 := time.Now()
	var parent object.ID
	gens := make([]int, 100)
	for c := 0; c < n; c++ {
		f := c % 100
		gens[f]++
		putFile(f, gens[f])
		body, err := (&object.Tree{Entries: append([]object.Entry(nil), entries...)}).Encode()
		check(err)
		tree, err := batch.Put(object.TypeTree, body)
		check(err)
		cm := &object.Commit{Tree: tree, Device: r.Config.Device, Author: "bench", Time: 1700000000 + int64(c), Message: fmt.Sprint("commit ", c)}
		if !parent.IsZero() {
			cm.Parents = []object.ID{parent}
		}
		parent, err = batch.Put(object.TypeCommit, cm.Encode())
		check(err)
		if c%1000 == 999 || c == n-1 {
			check(batch.Finish())
			_, err = r.Store.AutoRepack(ctx)
			check(err)
			batch = r.Store.NewBatch()
		}
	}
	check(r.Refs.Update(ctx, object.BranchRef("main"), object.ZeroID, parent, "meshbench: generated history"))
	check(r.Close())
	built := time.Since(t0)
	for i := 0; i < 100; i++ { // the folder as the last commit has it
		check(os.WriteFile(filepath.Join(big, fmt.Sprintf("f%03d.txt", i)), fileContent(i, gens[i]), 0o644))
	}
	for i := 0; i < 100; i++ {
		check(os.WriteFile(filepath.Join(fresh, fmt.Sprintf("f%03d.txt", i)), fileContent(i, gens[i]), 0o644))
	}
	b.must(fresh, b.mesh, "init")
	b.must(fresh, b.mesh, "commit", "-m", "one")
	b.must(big, b.mesh, "gc") // what the daemon's idle repack reaches over time
	b.must(big, b.mesh, "status")
	b.must(fresh, b.mesh, "status")
	packs, _ := filepath.Glob(filepath.Join(big, ".mesh", "objects", "*.pack"))
	b.alternate(fmt.Sprintf("%d-commit history: status", n), "within 10% of a fresh repository",
		func() measurement { return b.must(big, b.mesh, "status") },
		"fresh repository", func() measurement { return b.must(fresh, b.mesh, "status") })
	k := 0
	edit := func(d string) {
		f, err := os.OpenFile(filepath.Join(d, "f007.txt"), os.O_APPEND|os.O_WRONLY, 0)
		check(err)
		fmt.Fprintf(f, "edit %d\n", k)
		f.Close()
	}
	b.alternate(fmt.Sprintf("%d-commit history: one more commit", n), "within 10% of a fresh repository",
		func() measurement { k++; edit(big); return b.must(big, b.mesh, "commit", "-m", "more") },
		"fresh repository", func() measurement { edit(fresh); return b.must(fresh, b.mesh, "commit", "-m", "more") })
	b.add(row{Scenario: fmt.Sprintf("%d-commit history: generated", n), Mesh: measurement{Wall: built}, Target: "report",
		Note: fmt.Sprintf("through the library; %d packs after gc, .mesh %s", len(packs), sizeOf(filepath.Join(big, ".mesh")))})
}

// fileContent is version gen of file i of the history folder.
func fileContent(i, gen int) []byte {
	var sb strings.Builder
	for l := 0; l < 20; l++ {
		fmt.Fprintf(&sb, "file %d line %d\n", i, l)
	}
	fmt.Fprintf(&sb, "version %d\n", gen)
	return []byte(sb.String())
}
