package merge

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

func TestTextCases(t *testing.T) {
	cases := []struct {
		name               string
		base, ours, theirs string
		want               string
		conflicts          int
	}{
		{"disjoint edits", "a\nb\nc\nd\ne\n", "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "A\nb\nc\nd\nE\n", 0},
		{"same edit both sides", "a\nb\nc\n", "a\nX\nc\n", "a\nX\nc\n", "a\nX\nc\n", 0},
		{"same edit plus another", "a\nb\nc\nd\ne\n", "a\nX\nc\nd\ne\n", "a\nX\nc\nd\nE\n", "a\nX\nc\nd\nE\n", 0},
		{"overlapping edits", "a\nb\nc\n", "a\nO\nc\n", "a\nT\nc\n", "", 1},
		{"adjacent edits conflict", "a\nb\nc\nd\n", "a\nB\nc\nd\n", "a\nb\nC\nd\n", "", 1},
		{"inserts at one place", "a\nb\n", "a\nx\nb\n", "a\ny\nb\n", "", 1},
		{"one side unchanged", "a\nb\n", "a\nb\n", "z\n", "z\n", 0},
		{"crlf kept", "a\r\nb\r\nc\r\nd\r\n", "A\r\nb\r\nc\r\nd\r\n", "a\r\nb\r\nc\r\nD\r\n", "A\r\nb\r\nc\r\nD\r\n", 0},
		{"no final newline kept", "a\nb\nc\nd", "A\nb\nc\nd", "a\nb\nc\nD", "A\nb\nc\nD", 0},
		{"delete vs edit elsewhere", "a\nb\nc\nd\ne\n", "a\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "a\nc\nd\nE\n", 0},
	}
	for _, c := range cases {
		r := Text([]byte(c.base), []byte(c.ours), []byte(c.theirs), TextOptions{Ours: "ours", Theirs: "theirs"})
		if r.Conflicts != c.conflicts {
			t.Errorf("%s: %d conflicts, want %d:\n%s", c.name, r.Conflicts, c.conflicts, r.Merged)
			continue
		}
		if c.conflicts == 0 && string(r.Merged) != c.want {
			t.Errorf("%s: merged %q, want %q", c.name, r.Merged, c.want)
		}
		if c.conflicts > 0 && !bytes.Contains(r.Merged, []byte("<<<<<<< ours\n")) {
			t.Errorf("%s: no conflict markers in %q", c.name, r.Merged)
		}
	}
}

// genSides makes a base of unique lines and two edited copies. Unique
// lines make every diff unambiguous, so any difference from git is a
// difference in merge rules, not in how a diff happened to align.
func genSides(r *rand.Rand, iter int) (base, ours, theirs []byte) {
	n := r.Intn(12)
	var B []string
	for i := 0; i < n; i++ {
		B = append(B, fmt.Sprintf("base %d", i))
	}
	uniq := 0
	edit := func(tag string) []string {
		var out []string
		for i, l := range B {
			switch r.Intn(7) {
			case 0: // delete
			case 1: // modify
				uniq++
				out = append(out, fmt.Sprintf("%s %d.%d", tag, iter, uniq))
			case 2: // insert before
				uniq++
				out = append(out, fmt.Sprintf("%s %d.%d", tag, iter, uniq), l)
			case 3: // the same modification both sides would make
				out = append(out, fmt.Sprintf("common %d", i))
			default:
				out = append(out, l)
			}
		}
		if r.Intn(4) == 0 {
			uniq++
			out = append(out, fmt.Sprintf("%s %d.%d tail", tag, iter, uniq))
		}
		return out
	}
	join := func(ls []string) []byte {
		if len(ls) == 0 {
			return nil
		}
		s := strings.Join(ls, "\n")
		if r.Intn(5) != 0 {
			s += "\n"
		}
		return []byte(s)
	}
	return join(B), join(edit("ours")), join(edit("theirs"))
}

// FuzzText: no panic; with one side unchanged the result is the other
// side; a clean merge does not depend on which side is "ours", and every
// line of it comes from base, ours or theirs.
func FuzzText(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("a\nB\nc\n"), []byte("a\nb\nC\n"))
	f.Add([]byte("x"), []byte(""), []byte("y\r\n"))
	f.Fuzz(func(t *testing.T, base, ours, theirs []byte) {
		if len(base)+len(ours)+len(theirs) > 1<<14 {
			return
		}
		r := Text(base, ours, theirs, TextOptions{})
		if u := Text(base, base, theirs, TextOptions{}); u.Conflicts != 0 || !bytes.Equal(u.Merged, theirs) {
			t.Fatalf("merge with ours unchanged did not give theirs")
		}
		if u := Text(base, ours, base, TextOptions{}); u.Conflicts != 0 || !bytes.Equal(u.Merged, ours) {
			t.Fatalf("merge with theirs unchanged did not give ours")
		}
		if r.Conflicts == 0 {
			known := map[string]bool{}
			for _, b := range [][]byte{base, ours, theirs} {
				for _, l := range Lines(b) {
					known[string(l)] = true
				}
			}
			for _, l := range Lines(r.Merged) {
				if !known[string(l)] {
					t.Fatalf("clean merge invented the line %q", l)
				}
			}
			sym := Text(base, theirs, ours, TextOptions{})
			if sym.Conflicts != 0 || !bytes.Equal(sym.Merged, r.Merged) {
				t.Fatalf("clean merge depends on side order:\n%q\n%q", r.Merged, sym.Merged)
			}
		}
	})
}
