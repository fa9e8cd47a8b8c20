package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killTrials is how many times TestKilledUpdates kills each operation:
// a few by default, MESH_KILL_TRIALS (100 and more) for the long run.
func killTrials(t *testing.T) int {
	if s := os.Getenv("MESH_KILL_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MESH_KILL_TRIALS=%q: want a number of trials", s)
		}
		return n
	}
	return 3
}

// fullRuns is how many uninterrupted runs time an operation: one for the
// few trials of the default run, two for a long run.
func fullRuns(trials int) int {
	if trials > 10 {
		return 2
	}
	return 1
}

// killCase is one operation of TestKilledUpdates: a template repository
// (copied afresh for every trial) in which args is run, killed, and run
// again.
type killCase struct {
	name string
	tmpl string   // the repository, as it is before the operation
	args []string // the operation; "{out}" stands for a fresh folder
	// check says what is wrong with the trial's repository (and out)
	// after the operation finally succeeded; "" when nothing is.
	check func(dir, out string) string
	// rerun is what is run after the kill (default: args again).
	rerun []string
	// full runs the operation uninterrupted and says how long it took
	// (default: args run to their end).
	full func(dir, out string) time.Duration
}

// TestKilledUpdates kills each operation that rewrites a working tree
// (checkout, merge, pull, restore, restore --to, the daemon's commit), and
// gc's repack,
// with SIGKILL at a random moment, sometimes kills the command run after
// it too, and then runs it once more: that run must succeed, the tree
// must end exactly at the target, edits made before the operation must
// still be there, and fsck --read-data must pass.
func TestKilledUpdates(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	trials := killTrials(t)
	root := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, kc := range killCases(t, bin, root) {
		rng := rand.New(rand.NewSource(rng.Int63())) // each case its own: they run two at a time
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			// How long the operation takes when nothing kills it (the slower
			// of the runs): the kills land anywhere from its start to then.
			full := time.Duration(0)
			for range fullRuns(trials) {
				dir, out := trialDirs(t, kc.tmpl, root)
				if kc.full != nil {
					full = max(full, kc.full(dir, out))
				} else {
					t0 := time.Now()
					mustMesh(t, bin, dir, expand(kc.args, out)...)
					full = max(full, time.Since(t0))
				}
				if msg := kc.check(dir, out); msg != "" {
					t.Fatalf("without a kill: %s", msg)
				}
				os.RemoveAll(filepath.Dir(dir))
			}
			var refused, lost, damaged, finished int
			for i := range trials {
				dir, out := trialDirs(t, kc.tmpl, root)
				kills := 1 + rng.Intn(2)
				for k := range kills {
					args := kc.args
					if k > 0 && kc.rerun != nil {
						args = kc.rerun
					}
					cmd := meshCmd(bin, dir, expand(args, out)...)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Duration(rng.Int63n(int64(full) + 1)))
					cmd.Process.Kill()
					if cmd.Wait() == nil {
						finished++
					}
				}
				again := kc.args
				if kc.rerun != nil {
					again = kc.rerun
				}
				r := runMesh(t, meshCmd(bin, dir, expand(again, out)...))
				switch {
				case r.code != 0:
					refused++
					t.Errorf("trial %d: the run after the kill failed: exit %d: %s", i, r.code, r.stderr)
				default:
					if msg := kc.check(dir, out); msg != "" {
						lost++
						t.Errorf("trial %d: %s", i, msg)
					}
				}
				if r := runMesh(t, meshCmd(bin, dir, "fsck", "--read-data")); r.code != 0 {
					damaged++
					t.Errorf("trial %d: fsck --read-data: %s %s", i, r.stdout, r.stderr)
				}
				os.RemoveAll(filepath.Dir(dir))
			}
			t.Logf("%s: %d trials (%d kills came after the end), uninterrupted run %v: %d refused, %d lost or wrong, %d failed fsck",
				kc.name, trials, finished, full.Round(time.Millisecond), refused, lost, damaged)
		})
	}
}

// trialDirs copies the template into a new folder: the repository, and
// beside it a path for restore --to.
func trialDirs(t *testing.T, tmpl, root string) (dir, out string) {
	t.Helper()
	base, err := os.MkdirTemp(root, "trial-")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "repo")
	if b, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the template: %v: %s", err, b)
	}
	return dir, filepath.Join(base, "out")
}

func expand(args []string, out string) []string {
	res := make([]string, len(args))
	for i, a := range args {
		res[i] = strings.ReplaceAll(a, "{out}", out)
	}
	return res
}

// writeTree fills dir with a tree of files made from seed: small text
// files in nested directories and a few multi-chunk ones. Files whose
// number is in keep are the same for every seed.
func writeTree(t *testing.T, dir string, seed int64, small int) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for i := range small {
		if rng.Intn(5) == 0 {
			continue // absent in this version
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d/s%d/f%03d.txt", i%13, i%3, i))
		if seed%2 == 1 && i%17 == 0 {
			// A directory in one version is a file in the other.
			p = filepath.Join(dir, fmt.Sprintf("d%02d", 20+i%3))
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := []byte(strings.Repeat(fmt.Sprintf("line %d of %d seed %d\n", i, small, rng.Intn(4)), 1+rng.Intn(200)))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if i > 0 && int64(i) == seed%3 {
			continue // absent in one version
		}
		// One file of 8 MiB or more: such a file is replaced by removing
		// the old version first (see worktree.writeFile), a window in which
		// the path is missing.
		n := 1<<20 + rng.Intn(1<<20)
		if i == 0 {
			n = 9<<20 + rng.Intn(1<<20)
		}
		b := make([]byte, n)
		rng.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("big%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeNamesTree is writeTree plus names a Windows folder cannot hold as
// they are, which clash differently from one seed to the next: upper- and
// lower-case twins of some files (a twin only in some seeds), colons and
// question marks in file and directory names.
func writeNamesTree(t *testing.T, dir string, seed int64, small int) {
	t.Helper()
	writeTree(t, dir, seed, small)
	for i := range small / 4 {
		d := filepath.Join(dir, fmt.Sprintf("n%d:dir", i%4))
		os.MkdirAll(d, 0o755)
		b := []byte(fmt.Sprintf("file %d\n", i))
		os.WriteFile(filepath.Join(d, fmt.Sprintf("F%03d.txt", i)), b, 0o644)
		if (int64(i)+seed)%3 != 0 {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d.txt", i)), append(b, "lower\n"...), 0o644)
		}
		if (int64(i)+seed)%2 == 0 {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("what%d?", i)), b, 0o644)
		}
	}
}

// clearTree removes everything but .mesh and the names in keep.
func clearTree(t *testing.T, dir string, keep ...string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != ".mesh" && !slices.Contains(keep, e.Name()) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

func revParse(t *testing.T, bin, dir, rev string) string {
	return strings.TrimSpace(mustMesh(t, bin, dir, "rev-parse", rev))
}

// changesOf lists what mesh status --json (or diff --name-status) says.
func changesOf(t *testing.T, bin, dir string, args ...string) []string {
	r := runMesh(t, meshCmd(bin, dir, args...))
	if r.code != 0 {
		return []string{"error: " + r.stderr}
	}
	var st struct {
		Changes []struct {
			Path   string `json:"path"`
			Status string `json:"status"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, c := range st.Changes {
		out = append(out, c.Status+" "+c.Path)
	}
	return out
}

// twoVersions makes a repository in root/name with commit a (tree seed
// 2) and on top commit b (tree seed 3, keep kept from the first) and
// returns their IDs.
func twoVersions(t *testing.T, bin, root, name string, small int, keep ...string) (dir, a, b string) {
	dir = filepath.Join(root, name)
	os.Mkdir(dir, 0o755)
	mustMesh(t, bin, dir, "init")
	writeTree(t, dir, 2, small)
	for _, k := range keep {
		os.WriteFile(filepath.Join(dir, k), []byte("committed\n"), 0o644)
	}
	mustMesh(t, bin, dir, "commit", "-m", "A")
	a = revParse(t, bin, dir, "HEAD")
	clearTree(t, dir, keep...)
	writeTree(t, dir, 3, small)
	mustMesh(t, bin, dir, "commit", "-m", "B")
	return dir, a, revParse(t, bin, dir, "HEAD")
}

func killCases(t *testing.T, bin, root string) []killCase {
	var cases []killCase
	small := 120
	if killTrials(t) > 10 {
		small = 240
	}
	mine := "an edit made before the operation\n"

	// checkout: main at B, a commit A with a different tree; an untracked
	// file and an edit of a file both versions share ride along.
	{
		dir, a, _ := twoVersions(t, bin, root, "checkout", small, "keep.txt")
		os.WriteFile(filepath.Join(dir, "mine.txt"), []byte(mine), 0o644)
		os.WriteFile(filepath.Join(dir, "keep.txt"), []byte(mine), 0o644)
		cases = append(cases, killCase{name: "checkout", tmpl: dir, args: []string{"checkout", a},
			check: func(dir, _ string) string {
				if h := revParse(t, bin, dir, "HEAD"); h != a {
					return "HEAD is " + h + ", not the commit checked out"
				}
				return editsKept(t, bin, dir, mine, "modified keep.txt", "added mine.txt")
			}})
	}

	// merge: HEAD at R (P plus r.txt), merging Q (P with most files
	// changed): the deterministic merge commit is the target.
	var mergeTarget string
	{
		dir, p, q := twoVersions(t, bin, root, "merge", small)
		mustMesh(t, bin, dir, "checkout", p)
		os.WriteFile(filepath.Join(dir, "r.txt"), []byte("r\n"), 0o644)
		mustMesh(t, bin, dir, "commit", "-m", "R")
		cases = append(cases, killCase{name: "merge", tmpl: dir, args: []string{"merge", q},
			check: func(dir, _ string) string {
				h := revParse(t, bin, dir, "HEAD")
				if mergeTarget == "" {
					mergeTarget = h // the first, uninterrupted run
				}
				if h != mergeTarget {
					return "HEAD is " + h + ", not the merge commit " + mergeTarget
				}
				return editsKept(t, bin, dir, "")
			}})
	}

	// pull: from another repository (a path remote) that went on from P
	// to Q while this one committed R.
	var pullTarget string
	{
		src, dir := filepath.Join(root, "pull-src"), filepath.Join(root, "pull")
		os.Mkdir(src, 0o755)
		mustMesh(t, bin, src, "init")
		writeTree(t, src, 2, small)
		mustMesh(t, bin, src, "commit", "-m", "P")
		if b, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		clearTree(t, src)
		writeTree(t, src, 3, small)
		mustMesh(t, bin, src, "commit", "-m", "Q")
		mustMesh(t, bin, dir, "remote", "add", "src", src)
		os.WriteFile(filepath.Join(dir, "r.txt"), []byte("r\n"), 0o644)
		mustMesh(t, bin, dir, "commit", "-m", "R")
		cases = append(cases, killCase{name: "pull", tmpl: dir, args: []string{"pull", "src"},
			check: func(dir, _ string) string {
				h := revParse(t, bin, dir, "HEAD")
				if pullTarget == "" {
					pullTarget = h
				}
				if h != pullTarget {
					return "HEAD is " + h + ", not the merge commit " + pullTarget
				}
				return editsKept(t, bin, dir, "")
			}})
	}

	// restore: the whole tree to an older commit, HEAD staying; an
	// untracked file stays.
	{
		dir, a, b := twoVersions(t, bin, root, "restore", small)
		os.WriteFile(filepath.Join(dir, "mine.txt"), []byte(mine), 0o644)
		cases = append(cases, killCase{name: "restore", tmpl: dir, args: []string{"restore", "--source", a},
			check: func(dir, _ string) string {
				if h := revParse(t, bin, dir, "HEAD"); h != b {
					return "restore moved HEAD to " + h
				}
				if got := changesOf(t, bin, dir, "diff", "--json", a); !slices.Equal(got, []string{"added mine.txt"}) {
					return fmt.Sprintf("the tree is not the restored commit's: %q", got)
				}
				if b, _ := os.ReadFile(filepath.Join(dir, "mine.txt")); string(b) != mine {
					return "the untracked file is gone or changed"
				}
				return ""
			}})

		// restore --to a folder: the same commit, run again into the
		// folder a killed run left.
		ref := filepath.Join(root, "restore-ref")
		mustMesh(t, bin, dir, "restore", "--source", a, "--to", ref)
		want := treeDigest(t, ref)
		cases = append(cases, killCase{name: "restore-to", tmpl: dir, args: []string{"restore", "--source", a, "--to", "{out}"},
			check: func(_, out string) string {
				if treeDigest(t, out) != want {
					return "the folder restored into differs from the commit"
				}
				return ""
			}})
	}

	// checkout on a folder with Windows's rules (simulated: the rules a
	// probe of NTFS finds, where mesh keeps them) between two versions
	// whose names clash differently: files move between their own and
	// their escaped or clash names; killed anywhere, the next run ends at
	// the target with every file where the plan puts it.
	{
		src := filepath.Join(root, "names-src")
		os.Mkdir(src, 0o755)
		mustMesh(t, bin, src, "init")
		writeNamesTree(t, src, 2, small)
		mustMesh(t, bin, src, "commit", "-m", "A")
		a := revParse(t, bin, src, "HEAD")
		clearTree(t, src)
		writeNamesTree(t, src, 3, small)
		mustMesh(t, bin, src, "commit", "-m", "B")
		dir := filepath.Join(root, "names")
		os.Mkdir(dir, 0o755)
		mustMesh(t, bin, dir, "init")
		rules := `{"version":1,"rules":{"caseInsensitive":true,"windowsNames":true,"noExecBits":true}}`
		if err := os.WriteFile(filepath.Join(dir, ".mesh", "folder.json"), []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		mustMesh(t, bin, dir, "remote", "add", "src", src)
		mustMesh(t, bin, dir, "pull", "--allow-unrelated", "src")
		cases = append(cases, killCase{name: "checkout-names", tmpl: dir, args: []string{"checkout", a},
			check: func(dir, _ string) string {
				if h := revParse(t, bin, dir, "HEAD"); h != a {
					return "HEAD is " + h + ", not the commit checked out"
				}
				if got := changesOf(t, bin, dir, "status", "--json"); len(got) != 0 {
					return fmt.Sprintf("the folder differs from HEAD: %q", got)
				}
				var bad []string
				filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
					if err == nil && fi.IsDir() && filepath.Base(p) != ".mesh" {
						seen := map[string]bool{}
						ents, _ := os.ReadDir(p)
						for _, e := range ents {
							k := strings.ToLower(e.Name())
							if seen[k] || strings.ContainsAny(e.Name(), ":?") {
								bad = append(bad, filepath.Join(p, e.Name()))
							}
							seen[k] = true
						}
					} else if fi != nil && fi.IsDir() {
						return filepath.SkipDir
					}
					return nil
				})
				if len(bad) > 0 {
					return fmt.Sprintf("names this folder cannot hold: %q", bad)
				}
				return ""
			}})
	}

	// The daemon's commit of a folder full of new files, killed; then
	// mesh commit. The commit must hold exactly the files on disk.
	{
		dir := filepath.Join(root, "daemon")
		os.Mkdir(dir, 0o755)
		mustMesh(t, bin, dir, "init")
		writeTree(t, dir, 2, small)
		mustMesh(t, bin, dir, "commit", "-m", "A")
		clearTree(t, dir)
		writeTree(t, dir, 3, small)
		daemon := []string{"daemon", "--fast", "--gossip", "127.0.0.1:0", "--listen", "127.0.0.1:0"}
		before := revParse(t, bin, dir, "HEAD")
		full := func(dir, _ string) time.Duration {
			// Until the daemon has committed the folder, then a clean stop.
			d := meshCmd(bin, dir, daemon...)
			t0 := time.Now()
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			defer d.Wait()
			defer d.Process.Signal(syscall.SIGTERM)
			for deadline := t0.Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if r := runMesh(t, meshCmd(bin, dir, "rev-parse", "HEAD")); r.code == 0 && strings.TrimSpace(r.stdout) != before {
					return time.Since(t0)
				}
			}
			t.Fatal("the daemon did not commit within a minute")
			return 0
		}
		cases = append(cases, killCase{name: "daemon-commit", tmpl: dir, args: daemon, full: full,
			rerun: []string{"commit", "-m", "after the kill"},
			check: func(dir, _ string) string {
				if got := changesOf(t, bin, dir, "status", "--json"); len(got) != 0 {
					return fmt.Sprintf("after the commit the tree still differs from HEAD: %q", got)
				}
				ls := mustMesh(t, bin, dir, "ls", "-r")
				if strings.Contains(ls, ".tmp-") {
					return "a temporary file was committed"
				}
				return ""
			}})
	}

	// gc, which repacks every pack into one: killed at any point (copying
	// objects, between deleting old packs), the next gc finishes or
	// discards the repack, every commit still reads, and one pack stays.
	{
		dir := filepath.Join(root, "repack")
		os.Mkdir(dir, 0o755)
		mustMesh(t, bin, dir, "init")
		for seed := int64(2); seed < 6; seed++ {
			clearTree(t, dir)
			writeTree(t, dir, seed, small)
			mustMesh(t, bin, dir, "commit", "-m", fmt.Sprint("version ", seed))
		}
		head := revParse(t, bin, dir, "HEAD")
		gc := []string{"gc", "--grace", "0s"}
		cases = append(cases, killCase{name: "gc-repack", tmpl: dir, args: gc,
			check: func(dir, _ string) string {
				if h := revParse(t, bin, dir, "HEAD"); h != head {
					return "HEAD moved to " + h
				}
				if n := strings.Count(mustMesh(t, bin, dir, "log", "--oneline"), "\n"); n != 4 {
					return fmt.Sprintf("log lists %d commits, want 4", n)
				}
				packs, _ := filepath.Glob(filepath.Join(dir, ".mesh", "objects", "*.pack"))
				recs, _ := filepath.Glob(filepath.Join(dir, ".mesh", "objects", "*.superseded"))
				if len(packs) != 1 || len(recs) != 0 {
					return fmt.Sprintf("after gc: %d packs, repack records %v", len(packs), recs)
				}
				if got := changesOf(t, bin, dir, "status", "--json"); len(got) != 0 {
					return fmt.Sprintf("the tree differs from HEAD: %q", got)
				}
				return ""
			}})
	}
	return cases
}

// editsKept checks that status shows exactly the edits made before the
// operation (want), and that mine.txt and keep.txt, where edited, still
// hold them.
func editsKept(t *testing.T, bin, dir, mine string, want ...string) string {
	got := changesOf(t, bin, dir, "status", "--json")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		return fmt.Sprintf("status shows %q, want exactly the edits made before: %q", got, want)
	}
	for _, w := range want {
		name := w[strings.LastIndexByte(w, ' ')+1:]
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != mine {
			return name + " lost its edit"
		}
	}
	return ""
}
