package merge

import (
	"bytes"
	"math/rand"
	"testing"
)

// apply rebuilds b from a and the script, checking that the script covers
// both sides in order.
func apply(t *testing.T, a, b [][]byte, ops []Op) [][]byte {
	t.Helper()
	var out [][]byte
	ai, bi := 0, 0
	for _, o := range ops {
		if o.A0 != ai || o.B0 != bi {
			t.Fatalf("op %+v does not continue at a=%d b=%d", o, ai, bi)
		}
		switch o.Kind {
		case Equal:
			if o.A1-o.A0 != o.B1-o.B0 {
				t.Fatalf("equal op of unequal lengths %+v", o)
			}
			for k := 0; k < o.A1-o.A0; k++ {
				if !bytes.Equal(a[o.A0+k], b[o.B0+k]) {
					t.Fatalf("equal op %+v pairs different lines", o)
				}
			}
			out = append(out, a[o.A0:o.A1]...)
		case Delete:
			if o.B0 != o.B1 {
				t.Fatalf("delete op moves b: %+v", o)
			}
		case Insert:
			if o.A0 != o.A1 {
				t.Fatalf("insert op moves a: %+v", o)
			}
			out = append(out, b[o.B0:o.B1]...)
		}
		ai, bi = o.A1, o.B1
	}
	if ai != len(a) || bi != len(b) {
		t.Fatalf("script ends at a=%d b=%d, want %d %d", ai, bi, len(a), len(b))
	}
	return out
}

func lcs(a, b [][]byte) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if bytes.Equal(a[i], b[j]) {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func randLines(r *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte{byte('a' + r.Intn(4)), '\n'}
	}
	return out
}

func TestDiffRebuildsAndIsMinimal(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for iter := 0; iter < 2000; iter++ {
		a, b := randLines(r, r.Intn(30)), randLines(r, r.Intn(30))
		ops := Diff(a, b)
		got := apply(t, a, b, ops)
		if !bytes.Equal(bytes.Join(got, nil), bytes.Join(b, nil)) {
			t.Fatalf("script does not rebuild b")
		}
		eq := 0
		for _, o := range ops {
			if o.Kind == Equal {
				eq += o.A1 - o.A0
			}
		}
		if want := lcs(a, b); eq != want {
			t.Fatalf("diff keeps %d lines, longest common subsequence is %d", eq, want)
		}
	}
}

func TestLinesKeepBytes(t *testing.T) {
	for _, in := range []string{"", "a", "a\n", "a\r\nb", "\n\n", "x\ny\n"} {
		if got := string(bytes.Join(Lines([]byte(in)), nil)); got != in {
			t.Errorf("Lines(%q) joins to %q", in, got)
		}
	}
}

func TestDiffFallsBackPastCostBound(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	a := make([][]byte, 6000)
	b := make([][]byte, 6000)
	for i := range a {
		a[i] = []byte{byte(r.Intn(256)), byte(r.Intn(256)), '\n'}
		b[i] = []byte{byte(r.Intn(256)), byte(r.Intn(256)), '\n'}
	}
	got := apply(t, a, b, Diff(a, b))
	if !bytes.Equal(bytes.Join(got, nil), bytes.Join(b, nil)) {
		t.Fatal("fallback script does not rebuild b")
	}
}
