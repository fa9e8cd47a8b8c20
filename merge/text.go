package merge

import "bytes"

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
	StyleMerge  ConflictStyle = iota // ours ======= theirs
	StyleDiff3                       // ours ||||||| base ======= theirs
	StyleZDiff3                      // diff3, with lines common to both sides moved out of the conflict
)

// TextOptions label the sides in conflict markers.
type TextOptions struct {
	Ours, Base, Theirs string
	Style              ConflictStyle
}

// IsBinary applies git's rule: a NUL byte in the first 8000 bytes.
func IsBinary(b []byte) bool {
	if len(b) > 8000 {
		b = b[:8000]
	}
	return bytes.IndexByte(b, 0) >= 0
}

// Merge levels, as git's: how hard the merge tries to shrink a conflict.
const (
	levelMinimal      = iota // every overlapping change conflicts
	levelEager               // identical changes do not conflict
	levelZealous             // a conflict is re-diffed to its differing lines
	levelZealousAlnum        // and conflicts with only punctuation between them join
)

// mhunk is one region of the merge: base[i0:i0+chg0] became
// ours[i1:i1+chg1] and theirs[i2:i2+chg2].
type mhunk struct {
	mode     int // 0 conflict, 1 take ours, 2 take theirs, 4 the same on both sides
	i0, chg0 int
	i1, chg1 int
	i2, chg2 int
}

// Text merges ours and theirs, both derived from base, line by line with
// exactly git merge-file's rules and results: the two diffs from base
// align as git's do; changes on both sides that overlap or touch
// (adjacent lines, or insertions at one place) conflict unless they are
// the same change; a conflict shrinks to the lines where the sides
// really differ, and conflicts with at most three lines or only
// punctuation between them are joined (not in the diff3 styles, which
// show the base). Bytes are kept exactly (CRLF, a missing final newline);
// conflict markers end their lines as the text around them does.
func Text(base, ours, theirs []byte, o TextOptions) TextResult {
	switch {
	case bytes.Equal(base, ours):
		return TextResult{Merged: append([]byte(nil), theirs...)}
	case bytes.Equal(base, theirs), bytes.Equal(ours, theirs):
		return TextResult{Merged: append([]byte(nil), ours...)}
	}
	B, O, T := Lines(base), Lines(ours), Lines(theirs)
	s1 := xdiff(B, O)
	s2 := xdiff(B, T)
	level := levelZealousAlnum
	if o.Style == StyleDiff3 || o.Style == StyleZDiff3 {
		// A diff3 conflict shows the base, which refining against the
		// other side would misrepresent.
		level = levelEager
	}

	var ms []mhunk
	add := func(h mhunk) {
		if n := len(ms); n > 0 {
			m := &ms[n-1]
			if h.i1 <= m.i1+m.chg1 || h.i2 <= m.i2+m.chg2 {
				if h.mode != m.mode {
					m.mode = 0
				}
				m.chg0 = h.i0 + h.chg0 - m.i0
				m.chg1 = h.i1 + h.chg1 - m.i1
				m.chg2 = h.i2 + h.chg2 - m.i2
				return
			}
		}
		ms = append(ms, h)
	}
	a, b := 0, 0
	for a < len(s1) && b < len(s2) {
		x1, x2 := s1[a], s2[b]
		if x1.i1+x1.chg1 < x2.i1 {
			add(mhunk{mode: 1, i0: x1.i1, chg0: x1.chg1, i1: x1.i2, chg1: x1.chg2, i2: x2.i2 - x2.i1 + x1.i1, chg2: x1.chg1})
			a++
			continue
		}
		if x2.i1+x2.chg1 < x1.i1 {
			add(mhunk{mode: 2, i0: x2.i1, chg0: x2.chg1, i1: x1.i2 - x1.i1 + x2.i1, chg1: x2.chg1, i2: x2.i2, chg2: x2.chg2})
			b++
			continue
		}
		if level == levelMinimal || x1.i1 != x2.i1 || x1.chg1 != x2.chg1 || x1.chg2 != x2.chg2 ||
			!sameLines(O[x1.i2:x1.i2+x1.chg2], T[x2.i2:x2.i2+x1.chg2]) {
			off := x1.i1 - x2.i1
			ffo := off + x1.chg1 - x2.chg1
			h := mhunk{i0: x1.i1, i1: x1.i2, i2: x2.i2}
			if off > 0 {
				h.i0 -= off
				h.i1 -= off
			} else {
				h.i2 += off
			}
			h.chg0 = x1.i1 + x1.chg1 - h.i0
			h.chg1 = x1.i2 + x1.chg2 - h.i1
			h.chg2 = x2.i2 + x2.chg2 - h.i2
			if ffo < 0 {
				h.chg0 -= ffo
				h.chg1 -= ffo
			} else {
				h.chg2 += ffo
			}
			add(h)
		}
		e1, e2 := x1.i1+x1.chg1, x2.i1+x2.chg1
		if e1 >= e2 {
			b++
		}
		if e2 >= e1 {
			a++
		}
	}
	for ; a < len(s1); a++ {
		x1 := s1[a]
		add(mhunk{mode: 1, i0: x1.i1, chg0: x1.chg1, i1: x1.i2, chg1: x1.chg2, i2: x1.i1 + len(T) - len(B), chg2: x1.chg1})
	}
	for ; b < len(s2); b++ {
		x2 := s2[b]
		add(mhunk{mode: 2, i0: x2.i1, chg0: x2.chg1, i1: x2.i1 + len(O) - len(B), chg1: x2.chg1, i2: x2.i2, chg2: x2.chg2})
	}

	switch {
	case o.Style == StyleZDiff3:
		ms = trimConflicts(ms, O, T)
	case level >= levelZealous:
		ms = refineConflicts(ms, O, T)
		ms = joinConflicts(ms, O, level > levelZealous)
	}

	var out bytes.Buffer
	res := TextResult{}
	i := 0
	for _, m := range ms {
		switch {
		case m.mode == 0:
			res.Conflicts++
			writeLines(&out, O[i:m.i1], false, false)
			cr := needsCR(B, O, T, m)
			marker(&out, '<', o.Ours, cr)
			writeLines(&out, O[m.i1:m.i1+m.chg1], cr, true)
			if o.Style == StyleDiff3 || o.Style == StyleZDiff3 {
				marker(&out, '|', o.Base, cr)
				writeLines(&out, B[m.i0:m.i0+m.chg0], cr, true)
			}
			marker(&out, '=', "", cr)
			writeLines(&out, T[m.i2:m.i2+m.chg2], cr, true)
			marker(&out, '>', o.Theirs, cr)
		case m.mode&3 != 0:
			writeLines(&out, O[i:m.i1], false, false)
			if m.mode&1 != 0 {
				writeLines(&out, O[m.i1:m.i1+m.chg1], needsCR(B, O, T, m), m.mode&2 != 0)
			}
			if m.mode&2 != 0 {
				writeLines(&out, T[m.i2:m.i2+m.chg2], false, false)
			}
		default:
			continue
		}
		i = m.i1 + m.chg1
	}
	writeLines(&out, O[i:], false, false)
	res.Merged = out.Bytes()
	return res
}

// refineConflicts diffs the two sides of each conflict against each other
// and keeps only the regions where they differ, each its own conflict.
func refineConflicts(ms []mhunk, O, T [][]byte) []mhunk {
	var out []mhunk
	for _, m := range ms {
		if m.mode != 0 || m.chg1 == 0 || m.chg2 == 0 {
			out = append(out, m)
			continue
		}
		sub := xdiff(O[m.i1:m.i1+m.chg1], T[m.i2:m.i2+m.chg2])
		if len(sub) == 0 {
			m.mode = 4
			out = append(out, m)
			continue
		}
		for _, c := range sub {
			n := m
			n.i1, n.chg1 = m.i1+c.i1, c.chg1
			n.i2, n.chg2 = m.i2+c.i2, c.chg2
			out = append(out, n)
		}
	}
	return out
}

// trimConflicts moves lines common to both sides at the start and end of
// each conflict out of it (zdiff3).
func trimConflicts(ms []mhunk, O, T [][]byte) []mhunk {
	for k := range ms {
		m := &ms[k]
		if m.mode != 0 {
			continue
		}
		for m.chg1 > 0 && m.chg2 > 0 && bytes.Equal(O[m.i1], T[m.i2]) {
			m.chg1--
			m.chg2--
			m.i1++
			m.i2++
		}
		for m.chg1 > 0 && m.chg2 > 0 && bytes.Equal(O[m.i1+m.chg1-1], T[m.i2+m.chg2-1]) {
			m.chg1--
			m.chg2--
		}
	}
	return ms
}

// joinConflicts makes one conflict of two that have at most three lines
// between them, or (alnum) only lines without a letter or digit.
func joinConflicts(ms []mhunk, O [][]byte, alnum bool) []mhunk {
	for k := 0; k+1 < len(ms); {
		m, next := &ms[k], ms[k+1]
		begin, end := m.i1+m.chg1, next.i1
		if m.mode != 0 || next.mode != 0 || (end-begin > 3 && (!alnum || hasAlnum(O[begin:end]))) {
			k++
			continue
		}
		m.chg1 = next.i1 + next.chg1 - m.i1
		m.chg2 = next.i2 + next.chg2 - m.i2
		ms = append(ms[:k+1], ms[k+2:]...)
	}
	return ms
}

func hasAlnum(ls [][]byte) bool {
	for _, l := range ls {
		for _, c := range l {
			if '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				return true
			}
		}
	}
	return false
}

func sameLines(a, b [][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// writeLines writes ls; with addNL a last line without a newline gets one
// (CRLF where cr), so that a conflict marker starts its own line.
func writeLines(out *bytes.Buffer, ls [][]byte, cr, addNL bool) {
	for _, l := range ls {
		out.Write(l)
	}
	if addNL && len(ls) > 0 {
		if last := ls[len(ls)-1]; len(last) == 0 || last[len(last)-1] != '\n' {
			if cr {
				out.WriteByte('\r')
			}
			out.WriteByte('\n')
		}
	}
}

func marker(out *bytes.Buffer, c byte, label string, cr bool) {
	for range 7 {
		out.WriteByte(c)
	}
	if label != "" {
		out.WriteByte(' ')
		out.WriteString(label)
	}
	if cr {
		out.WriteByte('\r')
	}
	out.WriteByte('\n')
}

// eolCRLF says whether line i of f ends in CRLF (1) or LF (0); for a last
// line without an end it looks at the line before; -1 if it cannot tell.
func eolCRLF(f [][]byte, i int) int {
	crlf := func(l []byte) int {
		if len(l) > 1 && l[len(l)-2] == '\r' {
			return 1
		}
		return 0
	}
	if i < len(f)-1 {
		return crlf(f[i])
	}
	if len(f) == 0 {
		return -1
	}
	if l := f[i]; len(l) > 0 && l[len(l)-1] == '\n' {
		return crlf(l)
	}
	if i == 0 {
		return -1
	}
	return crlf(f[i-1])
}

// needsCR says whether a conflict's markers end in CRLF: when the lines
// before it on both sides, and the base's first line, do (where they can
// tell).
func needsCR(B, O, T [][]byte, m mhunk) bool {
	at := func(i int) int {
		if i > 0 {
			return i - 1
		}
		return 0
	}
	cr := eolCRLF(O, at(m.i1))
	if cr != 0 {
		cr = eolCRLF(T, at(m.i2))
	}
	if cr != 0 {
		cr = eolCRLF(B, 0)
	}
	return cr > 0
}
