package repo

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// gitRun runs git in dir at the given commit time, failing the test on
// an error.
func gitRun(t *testing.T, dir string, when int, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	date := fmt.Sprintf("%d +0000", 1700000000+when*60)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// randomGitHistory makes a git history of branches that edit, delete and
// re-add files (each branch its own folder, and one file they share only
// through main), merged now and then, sometimes with -s ours, so that
// git's history simplification has merges that are and are not TREESAME
// to each parent. Every commit's subject is unique.
func randomGitHistory(t *testing.T, dir string, seed int64, commits int) {
	rng := rand.New(rand.NewSource(seed))
	gitRun(t, dir, 0, "init", "-q", "-b", "main")
	when := 1
	commit := func(msg string) {
		gitRun(t, dir, when, "add", "-A")
		gitRun(t, dir, when, "commit", "-q", "--allow-empty", "-m", msg)
		when++
	}
	os.WriteFile(filepath.Join(dir, "shared.txt"), []byte("0\n"), 0o644)
	commit("c0")
	branches := []string{"main", "b1", "b2"}
	for _, b := range branches[1:] {
		gitRun(t, dir, when, "branch", b)
	}
	cur := "main"
	for i := 1; i < commits; i++ {
		switch k := rng.Intn(10); {
		case k < 2:
			// Switch to another branch.
			cur = branches[rng.Intn(len(branches))]
			gitRun(t, dir, when, "checkout", "-q", cur)
		case k < 4 && cur != "main":
			// Merge this branch into main (sometimes keeping main's tree).
			other := cur
			gitRun(t, dir, when, "checkout", "-q", "main")
			args := []string{"merge", "-q", "--no-ff", "-m", fmt.Sprintf("c%d merge %s", i, other)}
			if rng.Intn(3) == 0 {
				args = append(args, "-s", "ours")
			}
			gitRun(t, dir, when, append(args, other)...)
			when++
			cur = "main"
		default:
			folder := cur
			if cur == "main" {
				folder = "m"
			}
			f := filepath.Join(dir, folder, fmt.Sprintf("f%d.txt", rng.Intn(4)))
			os.MkdirAll(filepath.Dir(f), 0o755)
			switch {
			case rng.Intn(6) == 0:
				os.Remove(f)
			case cur == "main" && rng.Intn(4) == 0:
				os.WriteFile(filepath.Join(dir, "shared.txt"), []byte(fmt.Sprintf("%d\n", i)), 0o644)
			default:
				os.WriteFile(f, []byte(fmt.Sprintf("%s %d\n", cur, rng.Intn(3))), 0o644)
			}
			commit(fmt.Sprintf("c%d on %s", i, cur))
		}
	}
	gitRun(t, dir, when, "checkout", "-q", "main")
}

// TestLogPathsAgainstGit: for random histories with merges, mesh log --
// PATH lists the same commits in the same order as git log -- PATH
// (default simplification) on the imported history, for files, folders,
// deleted files and several paths at once.
func TestLogPathsAgainstGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed (apt-get install -y git)")
	}
	total := 0
	for seed := int64(1); seed <= 6; seed++ {
		dir := t.TempDir()
		randomGitHistory(t, dir, seed, 80)
		r := newRepo(t)
		if _, err := r.ImportGit(ctx, dir, "main"); err != nil {
			t.Fatal(err)
		}
		head, err := r.Resolve("HEAD")
		if err != nil {
			t.Fatal(err)
		}
		// import-git made a changed-path filter for each commit with
		// one parent (and the root).
		all, err := r.Log(head, 0)
		if err != nil {
			t.Fatal(err)
		}
		single := 0
		for _, e := range all {
			if len(e.Parents) <= 1 {
				single++
			}
		}
		if f := r.loadPathFilters(); len(f.m) != single || f.whole {
			t.Fatalf("seed %d: %d filters kept (whole file good: %v), want one for each of the %d commits with at most one parent", seed, len(f.m), !f.whole, single)
		}
		// The walk with import's filters, with none (it makes them as
		// it goes), and with a file a flipped byte damaged.
		filters := filepath.Join(r.Meta, changedPathsFile)
		for _, state := range []string{"imported", "none", "damaged"} {
			switch state {
			case "none":
				os.Remove(filters)
			case "damaged":
				b, err := os.ReadFile(filters)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x40
				os.WriteFile(filters, b, 0o644)
			}
			checkLogPaths(t, r, dir, head, fmt.Sprintf("seed %d, filters %s", seed, state), &total)
			if f := r.loadPathFilters(); f.whole || len(f.m) == 0 {
				t.Fatalf("seed %d, filters %s: after a log the file holds %d filters (whole file good: %v)", seed, state, len(f.m), !f.whole)
			}
		}
	}
	if total < 300 {
		t.Fatalf("git listed only %d commits in all: the histories do not exercise the paths", total)
	}
}

// checkLogPaths compares LogPaths of some paths with git log -- PATH of
// the git repository dir the history came from.
func checkLogPaths(t *testing.T, r *Repo, dir string, head object.ID, what string, total *int) {
	t.Helper()
	{
		for _, paths := range [][]string{{"shared.txt"}, {"m"}, {"b1"}, {"b2/f1.txt"}, {"m/f0.txt"}, {"b1/f2.txt", "m/f3.txt"}, {"nothing"}} {
			var wantSubjects []string
			for _, l := range strings.Split(strings.TrimSpace(gitRun(t, dir, 0, append([]string{"log", "--format=%s", "--"}, paths...)...)), "\n") {
				if l != "" {
					wantSubjects = append(wantSubjects, strings.Fields(l)[0])
				}
			}
			*total += len(wantSubjects)
			entries, err := r.LogPaths(head, LogOptions{Paths: paths})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, strings.Fields(e.Message)[0])
			}
			if strings.Join(got, " ") != strings.Join(wantSubjects, " ") {
				t.Errorf("%s, log -- %v:\nmesh %v\ngit  %v", what, paths, got, wantSubjects)
			}
			// The parents in the history shown are git's rewritten ones.
			subject := map[object.ID]string{}
			for _, e := range entries {
				subject[e.ID] = strings.Fields(e.Message)[0]
			}
			var gotGraph []string
			for _, e := range entries {
				g := subject[e.ID] + ":"
				for _, p := range e.Graph {
					g += " " + subject[p]
				}
				gotGraph = append(gotGraph, g)
			}
			if want := gitGraph(t, dir, paths); strings.Join(gotGraph, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s, log -- %v, parents in the history shown:\nmesh %v\ngit  %v", what, paths, gotGraph, want)
			}
		}
	}
}

// TestLogFollowAgainstGit: a file renamed twice (once with an edit) and
// edited between, beside a file added under an old name later: mesh log
// --follow lists what git log --follow lists, each commit with the name
// the file had there.
func TestLogFollowAgainstGit(t *testing.T) {
	dir := t.TempDir()
	gitRun(t, dir, 0, "init", "-q", "-b", "main")
	when := 1
	step := func(msg string, do func()) {
		do()
		gitRun(t, dir, when, "add", "-A")
		gitRun(t, dir, when, "commit", "-q", "-m", msg)
		when++
	}
	body := ""
	for i := range 40 {
		body += fmt.Sprintf("line %d of a file that moves\n", i)
	}
	w := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644)
	}
	step("c1", func() { w("a.txt", body); w("other.txt", "x\n") })
	step("c2", func() { w("a.txt", body+"more\n") })
	step("c3", func() { w("other.txt", "y\n") })
	step("c4", func() { os.Remove(filepath.Join(dir, "a.txt")); w("d/b.txt", body+"more\nedited while moved\n") })
	step("c5", func() { w("d/b.txt", "first\n"+body+"more\nedited while moved\n") })
	step("c6", func() { os.Rename(filepath.Join(dir, "d/b.txt"), filepath.Join(dir, "c.txt")) })
	step("c7", func() { w("a.txt", "a new file under the old name\n") })
	step("c8", func() { w("c.txt", "first\n"+body+"last\n") })
	r := newRepo(t)
	if _, err := r.ImportGit(ctx, dir, "main"); err != nil {
		t.Fatal(err)
	}
	head, _ := r.Resolve("HEAD")
	want := strings.Fields(gitRun(t, dir, 0, "log", "--follow", "--format=%s", "--", "c.txt"))
	entries, err := r.LogPaths(head, LogOptions{Paths: []string{"c.txt"}, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	names := map[string]string{}
	for _, e := range entries {
		got = append(got, e.Message)
		names[strings.TrimSpace(e.Message)] = e.Path
	}
	if strings.Join(strings.Fields(strings.Join(got, " ")), " ") != strings.Join(want, " ") || len(want) < 5 {
		t.Fatalf("log --follow c.txt: mesh %q, git %q", got, want)
	}
	if names["c8"] != "c.txt" || names["c5"] != "d/b.txt" || names["c2"] != "a.txt" || names["c1"] != "a.txt" {
		t.Fatalf("names along the way: %v", names)
	}
	// Without --follow the history stops at the rename.
	plain, _ := r.LogPaths(head, LogOptions{Paths: []string{"c.txt"}})
	if len(plain) != 2 {
		t.Fatalf("log c.txt without --follow: %d commits, want 2 (c8, c6)", len(plain))
	}
}

// gitGraph is git log --parents -- paths as "subject: parent subjects"
// lines.
func gitGraph(t *testing.T, dir string, paths []string) []string {
	subject := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(gitRun(t, dir, 0, "log", "--all", "--format=%H %s")), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			subject[f[0]] = f[1]
		}
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(gitRun(t, dir, 0, append([]string{"log", "--parents", "--format=%H %P", "--"}, paths...)...)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		g := subject[f[0]] + ":"
		for _, p := range f[1:] {
			g += " " + subject[p]
		}
		out = append(out, g)
	}
	return out
}
