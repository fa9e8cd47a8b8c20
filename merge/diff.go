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

// Diff returns the edit script from lines a to lines b. It aligns lines
// exactly as git's default (Myers) diff does, so that where lines repeat
// mesh pairs the same ones git would.
func Diff(a, b [][]byte) []Op {
	changes := xdiff(a, b)
	var ops []Op
	ai, bi := 0, 0
	for _, c := range changes {
		if c.i1 > ai {
			ops = append(ops, Op{Kind: Equal, A0: ai, A1: c.i1, B0: bi, B1: c.i2})
		}
		if c.chg1 > 0 {
			ops = append(ops, Op{Kind: Delete, A0: c.i1, A1: c.i1 + c.chg1, B0: c.i2, B1: c.i2})
		}
		if c.chg2 > 0 {
			ops = append(ops, Op{Kind: Insert, A0: c.i1 + c.chg1, A1: c.i1 + c.chg1, B0: c.i2, B1: c.i2 + c.chg2})
		}
		ai, bi = c.i1+c.chg1, c.i2+c.chg2
	}
	if ai < len(a) {
		ops = append(ops, Op{Kind: Equal, A0: ai, A1: len(a), B0: bi, B1: len(b)})
	}
	return ops
}
