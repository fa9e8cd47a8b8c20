package merge

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

const oldMaxEditCost = 1000

// oldDiff is the diff mesh used before it aligned as git does: Myers'
// O(ND) algorithm on line hashes after stripping the common prefix and
// suffix, with a plain trace. It is kept to benchmark against.
func oldDiff(a, b [][]byte) []Op {
	ids := map[string]int{}
	intern := func(ls [][]byte) []int {
		out := make([]int, len(ls))
		for i, l := range ls {
			id, ok := ids[string(l)]
			if !ok {
				id = len(ids)
				ids[string(l)] = id
			}
			out[i] = id
		}
		return out
	}
	x, y := intern(a), intern(b)
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var ops []Op
	if pre > 0 {
		ops = append(ops, Op{Kind: Equal, A0: 0, A1: pre, B0: 0, B1: pre})
	}
	ops = append(ops, oldMyers(x[pre:len(x)-suf], y[pre:len(y)-suf], pre, pre)...)
	if suf > 0 {
		ops = append(ops, Op{Kind: Equal, A0: len(x) - suf, A1: len(x), B0: len(y) - suf, B1: len(y)})
	}
	return oldCoalesce(ops)
}

func oldMyers(x, y []int, ao, bo int) []Op {
	n, m := len(x), len(y)
	if n == 0 && m == 0 {
		return nil
	}
	replace := func() []Op {
		var ops []Op
		if n > 0 {
			ops = append(ops, Op{Kind: Delete, A0: ao, A1: ao + n, B0: bo, B1: bo})
		}
		if m > 0 {
			ops = append(ops, Op{Kind: Insert, A0: ao + n, A1: ao + n, B0: bo, B1: bo + m})
		}
		return ops
	}
	if n == 0 || m == 0 {
		return replace()
	}
	max := n + m
	if max > oldMaxEditCost {
		max = oldMaxEditCost
	}
	off := max + 1
	v := make([]int, 2*max+3)
	// trace[d] holds v[k] for k in [-d, d] as it was before step d.
	var trace [][]int
	found := false
	for d := 0; d <= max && !found; d++ {
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var i int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				i = v[off+k+1]
			} else {
				i = v[off+k-1] + 1
			}
			j := i - k
			for i < n && j < m && x[i] == y[j] {
				i++
				j++
			}
			v[off+k] = i
			if i >= n && j >= m {
				found = true
				break
			}
		}
	}
	if !found {
		return replace()
	}
	// Walk back through the trace, collecting single-line steps.
	var rev []Op
	i, j := n, m
	for d := len(trace) - 1; d > 0; d-- {
		vv := trace[d]
		at := func(k int) int { return vv[k+d] }
		k := i - j
		var pk int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		pi := at(pk)
		pj := pi - pk
		for i > pi && j > pj {
			rev = append(rev, Op{Kind: Equal, A0: ao + i - 1, A1: ao + i, B0: bo + j - 1, B1: bo + j})
			i--
			j--
		}
		if pk == k+1 {
			rev = append(rev, Op{Kind: Insert, A0: ao + pi, A1: ao + pi, B0: bo + pj, B1: bo + pj + 1})
		} else {
			rev = append(rev, Op{Kind: Delete, A0: ao + pi, A1: ao + pi + 1, B0: bo + pj, B1: bo + pj})
		}
		i, j = pi, pj
	}
	for i > 0 && j > 0 {
		rev = append(rev, Op{Kind: Equal, A0: ao + i - 1, A1: ao + i, B0: bo + j - 1, B1: bo + j})
		i--
		j--
	}
	ops := make([]Op, len(rev))
	for k := range rev {
		ops[k] = rev[len(rev)-1-k]
	}
	return ops
}

// coalesce merges adjacent ops of the same kind.
func oldCoalesce(ops []Op) []Op {
	var out []Op
	for _, o := range ops {
		if n := len(out); n > 0 && out[n-1].Kind == o.Kind && out[n-1].A1 == o.A0 && out[n-1].B1 == o.B0 {
			out[n-1].A1, out[n-1].B1 = o.A1, o.B1
			continue
		}
		out = append(out, o)
	}
	return out
}

// goTreePairs reads Go source files from GOROOT and pairs each with an
// edited copy (every 17th line dropped, a line added every 23rd), as
// edits to code look.
func goTreePairs(b *testing.B) (pairs [][2][][]byte, size int64) {
	root := filepath.Join(runtime.GOROOT(), "src")
	for _, d := range []string{"net/http", "go/types", "runtime", "cmd/compile/internal/ssa"} {
		files, _ := filepath.Glob(filepath.Join(root, d, "*.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			a := Lines(src)
			var e [][]byte
			for i, l := range a {
				if i%17 == 5 {
					continue
				}
				if i%23 == 7 {
					e = append(e, []byte("\t// edited\n"))
				}
				e = append(e, l)
			}
			pairs = append(pairs, [2][][]byte{a, e})
			size += int64(len(src))
		}
	}
	if len(pairs) == 0 {
		b.Fatal("no Go sources under GOROOT")
	}
	return pairs, size
}

// BenchmarkDiff compares the git-aligned diff with the old one on the Go
// tree: go test ./merge -run '^$' -bench Diff -count 10.
func BenchmarkDiff(b *testing.B) {
	pairs, size := goTreePairs(b)
	for _, impl := range []struct {
		name string
		diff func(a, b [][]byte) []Op
	}{{"xdiff", Diff}, {"old", oldDiff}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for _, p := range pairs {
					impl.diff(p[0], p[1])
				}
			}
		})
	}
}

// TestOldDiffStillRebuilds keeps the benchmark honest: the old diff it is
// compared with produces correct scripts.
func TestOldDiffStillRebuilds(t *testing.T) {
	a := Lines([]byte("a\nb\nc\nd\n"))
	b := Lines([]byte("a\nc\nx\nd\n"))
	if got := bytes.Join(apply(t, a, b, oldDiff(a, b)), nil); string(got) != "a\nc\nx\nd\n" {
		t.Fatalf("old diff rebuilds %q", got)
	}
}
