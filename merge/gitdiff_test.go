package merge

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var mergeCases = flag.Int("merge.cases", 3000, "random cases for the differential test against git merge-file (each in three styles); the long run is -merge.cases=100000")

// smallAlphabetSides draws a base from a few lines that repeat, as real
// code repeats "}", blank lines and "end", and edits it twice. This is
// where diff alignment decides merges: every line has several candidates.
func smallAlphabetSides(r *rand.Rand) (base, ours, theirs []byte) {
	alphabets := [][]string{
		{"a", "b"},
		{"a", "b", "c"},
		{"a", "b", "c", "d"},
		{"}", "", "end", "x"},
		{"{", "}", "", "return", "if x"},
	}
	alpha := alphabets[r.Intn(len(alphabets))]
	// One case in eight is longer and mixes in lines found nowhere else,
	// so that xdiff's discarding of unmatched lines and of frequent lines
	// among them decides the alignment.
	long := r.Intn(8) == 0
	uniq := 0
	pick := func() string {
		if long && r.Intn(3) == 0 {
			uniq++
			return fmt.Sprintf("u%d", uniq)
		}
		return alpha[r.Intn(len(alpha))]
	}
	n := r.Intn(10)
	if long {
		n = 20 + r.Intn(100)
	}
	B := make([]string, n)
	for i := range B {
		B[i] = pick()
	}
	edit := func() []string {
		if r.Intn(10) == 0 {
			out := make([]string, r.Intn(8))
			for i := range out {
				out[i] = pick()
			}
			return out
		}
		var out []string
		for _, l := range B {
			switch r.Intn(9) {
			case 0: // delete
			case 1: // replace
				out = append(out, pick())
			case 2: // insert before
				out = append(out, pick(), l)
			case 3: // insert two after
				out = append(out, l, pick(), pick())
			case 4: // in long cases, a run of new lines with a frequent one among them
				if long {
					uniq += 8
					out = append(out, l, fmt.Sprintf("r%d", uniq), fmt.Sprintf("r%d", uniq+1), fmt.Sprintf("r%d", uniq+2),
						alpha[0], fmt.Sprintf("r%d", uniq+3), fmt.Sprintf("r%d", uniq+4), fmt.Sprintf("r%d", uniq+5))
				} else {
					out = append(out, l)
				}
			default:
				out = append(out, l)
			}
		}
		if r.Intn(4) == 0 {
			out = append(out, pick())
		}
		return out
	}
	crlf := r.Intn(6) == 0
	join := func(ls []string) []byte {
		if len(ls) == 0 {
			return nil
		}
		eol := "\n"
		if crlf {
			eol = "\r\n"
		}
		var b strings.Builder
		for i, l := range ls {
			b.WriteString(l)
			switch {
			case i < len(ls)-1:
				b.WriteString(eol)
			case r.Intn(4) != 0: // a quarter of files lack the final newline
				b.WriteString(eol)
			}
		}
		if r.Intn(30) == 0 {
			b.WriteString("\n") // mixed line ends
		}
		return []byte(b.String())
	}
	return join(B), join(edit()), join(edit())
}

// gitMerge runs git merge-file on the three versions in dir and returns
// its output and its count of conflicts (its exit code).
func gitMerge(t testing.TB, git, dir string, style ConflictStyle, base, ours, theirs []byte) ([]byte, int) {
	paths := []string{filepath.Join(dir, "ours"), filepath.Join(dir, "base"), filepath.Join(dir, "theirs")}
	for i, b := range [][]byte{ours, base, theirs} {
		if err := os.WriteFile(paths[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"merge-file", "-p", "-L", "ours", "-L", "base", "-L", "theirs"}
	switch style {
	case StyleDiff3:
		args = append(args, "--diff3")
	case StyleZDiff3:
		args = append(args, "--zdiff3")
	}
	cmd := exec.Command(git, append(args, paths...)...)
	cmd.Dir = dir
	// Outside any repository and without user or system configuration, so
	// merge.conflictStyle cannot change git's answer.
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir, "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() < 128:
		return out, ee.ExitCode()
	default:
		t.Fatalf("git merge-file: %v %s", err, ee.Stderr)
		return nil, 0
	}
}

// TestTextAgainstGit is the differential test: on random inputs from small
// line alphabets, in each conflict style, mesh's merge must give git
// merge-file's number of conflicts and its output byte for byte, conflict
// text included. Run it long with -merge.cases=100000.
func TestTextAgainstGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is not installed; .ci/run installs it")
	}
	n := *mergeCases
	if testing.Short() {
		n = 300
	}
	styles := []struct {
		name  string
		style ConflictStyle
	}{{"merge", StyleMerge}, {"diff3", StyleDiff3}, {"zdiff3", StyleZDiff3}}
	type tally struct{ cases, conflicts, disagree int }
	var mu sync.Mutex
	counts := make([]tally, len(styles))
	var failures []string
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		dir := t.TempDir()
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for c := w; c < n; c += workers {
				r := rand.New(rand.NewSource(int64(c)))
				base, ours, theirs := smallAlphabetSides(r)
				for si, st := range styles {
					want, wantN := gitMerge(t, git, dir, st.style, base, ours, theirs)
					got := Text(base, ours, theirs, TextOptions{Ours: "ours", Base: "base", Theirs: "theirs", Style: st.style})
					mu.Lock()
					counts[si].cases++
					if wantN > 0 {
						counts[si].conflicts++
					}
					if got.Conflicts != min(wantN, 127) && !(wantN == 127 && got.Conflicts > 127) || !bytes.Equal(got.Merged, want) {
						counts[si].disagree++
						if len(failures) < 5 {
							failures = append(failures, fmt.Sprintf("case %d, %s: git %d conflicts, mesh %d\nbase   %q\nours   %q\ntheirs %q\ngit  %q\nmesh %q",
								c, st.name, wantN, got.Conflicts, base, ours, theirs, want, got.Merged))
						}
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	for si, st := range styles {
		t.Logf("%s: %d cases, %d with conflicts, %d disagreements with git merge-file", st.name, counts[si].cases, counts[si].conflicts, counts[si].disagree)
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// TestTextIssueCases are the disagreements first seen (issue 17).
func TestTextIssueCases(t *testing.T) {
	lines := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	cases := []struct {
		name               string
		base, ours, theirs []byte
		want               string
		conflicts          int
	}{
		{"repeated line moved", lines("b\n", "d\n", "d\n"), lines("d\n", "b\n"), lines("d\n"), "d\nb\n", 0},
		{"missing final newline", lines("c\n", "c"), lines("c\n", "c\n"), lines("b\n", "c\n", "c\n"), "", 1},
		{"no line duplicated", lines("b\n", "b\n", "a\n", "a\n", "b\n"), lines("a\n", "b\n", "b\n"), lines("b\n", "b\n", "a\n", "a\n", "b\n", "b\n"), "a\nb\nb\n", 0},
	}
	for _, c := range cases {
		got := Text(c.base, c.ours, c.theirs, TextOptions{})
		if got.Conflicts != c.conflicts || c.conflicts == 0 && string(got.Merged) != c.want {
			t.Errorf("%s: %d conflicts, merged %q; want %d, %q", c.name, got.Conflicts, got.Merged, c.conflicts, c.want)
		}
	}
}

// gitHunks runs git diff -U0 without the indent heuristic (git merge-file
// does not use it) and returns its hunk headers.
func gitHunks(t *testing.T, git, dir string, a, b []byte) []string {
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(pa, a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(git, "diff", "--no-index", "--no-color", "-U0", "--no-indent-heuristic", "--diff-algorithm=myers", "a", "b")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("git diff: %v", err)
	}
	var hs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "@@ ") {
			hs = append(hs, strings.SplitN(l, " @@", 2)[0]+" @@")
		}
	}
	return hs
}

// hunkHeaders writes our changes as git's -U0 hunk headers.
func hunkHeaders(cs []xchange) []string {
	rng := func(i, n int) string {
		switch n {
		case 0:
			return fmt.Sprintf("%d,0", i)
		case 1:
			return fmt.Sprint(i + 1)
		}
		return fmt.Sprintf("%d,%d", i+1, n)
	}
	var hs []string
	for _, c := range cs {
		hs = append(hs, fmt.Sprintf("@@ -%s +%s @@", rng(c.i1, c.chg1), rng(c.i2, c.chg2)))
	}
	return hs
}

// TestDiffAgainstGit compares the alignment itself with git's on inputs
// large and different enough that xdiff's cost heuristics cut the search
// (edit costs past 256), and on the small-alphabet cases.
func TestDiffAgainstGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is not installed; .ci/run installs it")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewSource(17))
	mk := func(n, alpha int) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "l%d\n", r.Intn(alpha))
		}
		return b.Bytes()
	}
	type pair struct{ a, b []byte }
	var pairs []pair
	for i := 0; i < 12; i++ {
		a := mk(500+r.Intn(3000), 5+r.Intn(200))
		var b []byte
		if i%2 == 0 {
			b = mk(500+r.Intn(3000), 5+r.Intn(200)) // unrelated: the heuristics decide
		} else {
			ls := Lines(a) // related: long snakes between edits
			var out bytes.Buffer
			for _, l := range ls {
				switch r.Intn(20) {
				case 0:
				case 1:
					fmt.Fprintf(&out, "l%d\n", r.Intn(50))
				default:
					out.Write(l)
				}
			}
			b = out.Bytes()
		}
		pairs = append(pairs, pair{a, b})
	}
	// Large enough (more than 65,536 lines together) that the cost bound
	// passes 256 and the good-snake heuristic gets its turn, with edits in
	// clumps so that long snakes exist between them.
	for i := 0; i < 2; i++ {
		var a, b bytes.Buffer
		for k := 0; k < 36000; k++ {
			l := fmt.Sprintf("l%d\n", r.Intn(1000))
			a.WriteString(l)
			if k%30 < 3+i {
				fmt.Fprintf(&b, "l%d\n", r.Intn(1000))
			} else {
				b.WriteString(l)
			}
		}
		pairs = append(pairs, pair{a.Bytes(), b.Bytes()})
	}
	for c := 0; c < 300; c++ {
		base, ours, _ := smallAlphabetSides(rand.New(rand.NewSource(int64(c))))
		pairs = append(pairs, pair{base, ours})
	}
	for i, p := range pairs {
		cs := xdiff(Lines(p.a), Lines(p.b))
		got, want := hunkHeaders(cs), gitHunks(t, git, dir, p.a, p.b)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			for k := range max(len(got), len(want)) {
				var g, w string
				if k < len(got) {
					g = got[k]
				}
				if k < len(want) {
					w = want[k]
				}
				if g != w {
					t.Fatalf("pair %d (%d and %d lines): hunk %d is %q, git has %q", i, len(Lines(p.a)), len(Lines(p.b)), k, g, w)
				}
			}
		}
	}
}
