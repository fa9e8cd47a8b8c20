package merge

import (
	"bytes"
	"sort"
)

// TextResult is a line-level three-way merge.
type TextResult struct {
	// Merged is the merged content; where Conflicts > 0 it holds conflict
	// markers (Text) or is only meaningful with them.
	Merged    []byte
	Conflicts int
}

// ConflictStyle chooses how a conflict is written into Merged.
type ConflictStyle int

// Conflict styles, as git's merge.conflictStyle.
const (
	StyleMerge ConflictStyle = iota // ours ======= theirs
	StyleDiff3                      // ours ||||||| base ======= theirs
)

// TextOptions label the sides in conflict markers.
type TextOptions struct {
	Ours, Base, Theirs string
	Style              ConflictStyle
}

// hunk replaces base lines [b0,b1) with side lines [s0,s1).
type hunk struct {
	b0, b1 int
	s0, s1 int
	side   int // 0 ours, 1 theirs
}

func hunks(base, side [][]byte, which int) []hunk {
	var out []hunk
	for _, op := range Diff(base, side) {
		if op.Kind == Equal {
			continue
		}
		if n := len(out); n > 0 && out[n-1].b1 == op.A0 && out[n-1].s1 == op.B0 {
			// A delete followed by an insert is one replacement.
			out[n-1].b1, out[n-1].s1 = op.A1, op.B1
			continue
		}
		out = append(out, hunk{b0: op.A0, b1: op.A1, s0: op.B0, s1: op.B1, side: which})
	}
	return out
}

// Text merges ours and theirs, both derived from base, line by line with
// git's rules: changes on both sides that overlap or touch (adjacent
// lines, or insertions at the same place) conflict unless they are the
// same change; everything else merges cleanly. Bytes are kept exactly
// (CRLF, a missing final newline).
func Text(base, ours, theirs []byte, o TextOptions) TextResult {
	if bytes.Equal(ours, theirs) {
		return TextResult{Merged: append([]byte(nil), ours...)}
	}
	if bytes.Equal(base, ours) {
		return TextResult{Merged: append([]byte(nil), theirs...)}
	}
	if bytes.Equal(base, theirs) {
		return TextResult{Merged: append([]byte(nil), ours...)}
	}
	B, O, T := Lines(base), Lines(ours), Lines(theirs)
	all := append(hunks(B, O, 0), hunks(B, T, 1)...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].b0 != all[j].b0 {
			return all[i].b0 < all[j].b0
		}
		return all[i].side < all[j].side
	})
	var out bytes.Buffer
	res := TextResult{}
	pos := 0 // next base line not yet emitted
	for i := 0; i < len(all); {
		// Grow a group while the next hunk overlaps or touches it.
		j := i + 1
		end := all[i].b1
		sides := 1 << all[i].side
		for j < len(all) && all[j].b0 <= end {
			if all[j].b1 > end {
				end = all[j].b1
			}
			sides |= 1 << all[j].side
			j++
		}
		start := all[i].b0
		for _, l := range B[pos:start] {
			out.Write(l)
		}
		// Each side's text for base [start,end): its hunks applied, base
		// lines elsewhere.
		oText := sideText(B, O, all[i:j], 0, start, end)
		tText := sideText(B, T, all[i:j], 1, start, end)
		switch {
		case sides == 1:
			out.Write(oText)
		case sides == 2:
			out.Write(tText)
		case bytes.Equal(oText, tText):
			out.Write(oText)
		default:
			res.Conflicts++
			writeConflict(&out, oText, joinLines(B[start:end]), tText, o)
		}
		pos = end
		i = j
	}
	for _, l := range B[pos:] {
		out.Write(l)
	}
	res.Merged = out.Bytes()
	return res
}

// sideText rebuilds one side's lines for base range [start,end) from the
// group's hunks of that side.
func sideText(B, S [][]byte, group []hunk, side, start, end int) []byte {
	var buf bytes.Buffer
	bpos := start
	for _, h := range group {
		if h.side != side {
			continue
		}
		for _, l := range B[bpos:h.b0] {
			buf.Write(l)
		}
		for _, l := range S[h.s0:h.s1] {
			buf.Write(l)
		}
		bpos = h.b1
	}
	for _, l := range B[bpos:end] {
		buf.Write(l)
	}
	return buf.Bytes()
}

func joinLines(ls [][]byte) []byte { return bytes.Join(ls, nil) }

func writeConflict(out *bytes.Buffer, ours, base, theirs []byte, o TextOptions) {
	marker := func(m, label string) {
		out.WriteString(m)
		if label != "" {
			out.WriteString(" " + label)
		}
		out.WriteByte('\n')
	}
	block := func(b []byte) {
		out.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	marker("<<<<<<<", o.Ours)
	block(ours)
	if o.Style == StyleDiff3 {
		marker("|||||||", o.Base)
		block(base)
	}
	marker("=======", "")
	block(theirs)
	marker(">>>>>>>", o.Theirs)
}

// IsBinary applies git's rule: a NUL byte in the first 8000 bytes.
func IsBinary(b []byte) bool {
	if len(b) > 8000 {
		b = b[:8000]
	}
	return bytes.IndexByte(b, 0) >= 0
}
