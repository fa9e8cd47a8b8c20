package merge

import "bytes"

// OpKind says what an edit does.
type OpKind int

// Edit operations.
const (
	Equal OpKind = iota
	Delete
	Insert
)

// Op is a run of lines: A[A0:A1] for Equal and Delete, B[B0:B1] for Equal
// and Insert.
type Op struct {
	Kind   OpKind
	A0, A1 int
	B0, B1 int
}

// maxEditCost bounds the Myers search: past it the middle of the diff is
// reported as one replacement, which is correct but not minimal. The trace
// keeps 2d+1 diagonals for each step d, so memory stays under
// maxEditCost² ints (8 MB) on pathological inputs.
const maxEditCost = 1000

// Lines splits b into lines, each keeping its "\n" (the last may lack one),
// so that joining them gives b back byte for byte.
func Lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// Diff returns the edit script from lines a to lines b: Myers' O(ND)
// algorithm on line hashes after stripping the common prefix and suffix.
func Diff(a, b [][]byte) []Op {
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
	ops = append(ops, myers(x[pre:len(x)-suf], y[pre:len(y)-suf], pre, pre)...)
	if suf > 0 {
		ops = append(ops, Op{Kind: Equal, A0: len(x) - suf, A1: len(x), B0: len(y) - suf, B1: len(y)})
	}
	return coalesce(ops)
}

func myers(x, y []int, ao, bo int) []Op {
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
	if max > maxEditCost {
		max = maxEditCost
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
func coalesce(ops []Op) []Op {
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
