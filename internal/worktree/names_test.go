package worktree

import (
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestWindowsInvalid(t *testing.T) {
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"a.txt", false}, {"x:y", true}, {"what?.txt", true}, {`a\b`, true}, {"a<b>", true},
		{`"q"`, true}, {"p|q", true}, {"star*", true}, {"tab\tname", true},
		{"name.", true}, {"name ", true}, {".bashrc", false}, {"..x", false},
		{"aux", true}, {"AUX.txt", true}, {"aux.tar.gz", true}, {"Aux .txt", true}, {"auxx.txt", false},
		{"con", true}, {"nul.c", true}, {"com1", true}, {"COM9.log", true}, {"com10", false},
		{"lpt3.txt", true}, {"lpt0", false}, {"COM¹", true}, {"prn2", false},
		{"é", false}, {"日本.txt", false},
	} {
		if got := WindowsInvalid(c.name) != ""; got != c.bad {
			t.Errorf("WindowsInvalid(%q) = %q, want invalid %v", c.name, WindowsInvalid(c.name), c.bad)
		}
	}
}

func TestEscapeName(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"a.txt", "a.txt"},
		{"x:y", "x\uF03Ay"},
		{"what?.txt", "what\uF03F.txt"},
		{"name.", "name\uF02E"},
		{"a. .", "a\uF02E\uF020\uF02E"},
		{"aux.txt", "au\uF078.txt"},
		{"AUX", "AU\uF058"},
		{"con.tar.gz", "co\uF06E.tar.gz"},
		{"COM¹.txt", "\uF043OM¹.txt"},
		{"Aux .txt", "Aux\uF020.txt"},
	} {
		got := EscapeName(c.in)
		if got != c.out {
			t.Errorf("EscapeName(%q) = %q, want %q", c.in, got, c.out)
		}
		if WindowsInvalid(got) != "" {
			t.Errorf("EscapeName(%q) = %q, which Windows refuses: %s", c.in, got, WindowsInvalid(got))
		}
		if back := UnescapeName(got); back != c.in {
			t.Errorf("UnescapeName(%q) = %q, want %q", got, back, c.in)
		}
	}
}

func TestFoldKey(t *testing.T) {
	nfc, nfd := "caf\u00e9.txt", "cafe\u0301.txt"
	if norm.NFC.String(nfd) != nfc {
		t.Fatal("test strings are not the two forms of one name")
	}
	linux := FolderRules{}
	mac := FolderRules{CaseInsensitive: true, Normalizing: true}
	hfsCase := FolderRules{Normalizing: true}
	win := FolderRules{CaseInsensitive: true, WindowsNames: true}
	for _, c := range []struct {
		a, b string
		r    FolderRules
		same bool
	}{
		{"A.txt", "a.txt", linux, false},
		{"A.txt", "a.txt", mac, true},
		{"A.txt", "a.txt", win, true},
		{"A.txt", "a.txt", hfsCase, false},
		{nfc, nfd, linux, false},
		{nfc, nfd, hfsCase, true},
		{nfc, nfd, mac, true},
		{"CAFE\u0301.TXT", nfc, mac, true},
		{"Straße", "STRASSE", mac, true}, // full folding: errs towards a clash, never a loss
		{"a.txt", "b.txt", mac, false},
	} {
		if got := SameName(c.a, c.b, c.r); got != c.same {
			t.Errorf("SameName(%q, %q, %+v) = %v", c.a, c.b, c.r, got)
		}
	}
}

// issueNames is the tree the issue names: a case clash, a device name, a
// colon, a trailing dot, and one name in both normalizations.
var issueNames = []string{"A.txt", "a.txt", "aux.txt", "x:y", "name.", "caf\u00e9", "cafe\u0301", "b.txt", "a.name-clash-1.txt"}

// checkPlan: under rules r, every name of names has one place, no two
// places are one to the folder, and each place is a name the folder can
// hold.
func checkPlan(t *testing.T, names []string, r FolderRules) map[string]string {
	t.Helper()
	plan := PlanNames(names, r)
	seen := map[string]string{}
	for _, n := range names {
		place := n
		if p, ok := plan[n]; ok {
			place = p
		}
		if r.WindowsNames && WindowsInvalid(place) != "" {
			t.Fatalf("%q is kept as %q, which Windows refuses", n, place)
		}
		k := FoldKey(place, r)
		if other, dup := seen[k]; dup {
			t.Fatalf("%q and %q are both kept as %q to a folder with %+v", other, n, place, r)
		}
		seen[k] = n
	}
	return plan
}

func TestPlanNames(t *testing.T) {
	if p := PlanNames(issueNames, FolderRules{}); p != nil {
		t.Fatalf("a folder that holds every name got a plan: %v", p)
	}
	win := FolderRules{CaseInsensitive: true, WindowsNames: true}
	mac := FolderRules{CaseInsensitive: true, Normalizing: true}
	for _, r := range []FolderRules{win, mac, {Normalizing: true}, {CaseInsensitive: true}, {WindowsNames: true},
		{CaseInsensitive: true, Normalizing: true, WindowsNames: true}} {
		plan := checkPlan(t, issueNames, r)
		// The plan is the same whatever order the names come in.
		shuffled := append([]string(nil), issueNames...)
		rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := PlanNames(shuffled, r); len(again) != len(plan) {
			t.Fatalf("plan depends on order: %v vs %v", plan, again)
		} else {
			for k, v := range plan {
				if again[k] != v {
					t.Fatalf("plan depends on order: %v vs %v", plan, again)
				}
			}
		}
	}
	plan := PlanNames(issueNames, win)
	want := map[string]string{
		"a.txt":   "a.name-clash-2.txt", // -1 is a name of history itself
		"aux.txt": "au\uF078.txt", "x:y": "x\uF03Ay", "name.": "name\uF02E",
	}
	for k, v := range want {
		if plan[k] != v {
			t.Errorf("plan[%q] = %q, want %q (plan %v)", k, plan[k], v, plan)
		}
	}
	if _, ok := plan["A.txt"]; ok {
		t.Errorf("A.txt, first in byte order, was moved: %v", plan)
	}
	// Exactly one of the two forms of café moved, under a clash name.
	moved := 0
	for _, n := range []string{"caf\u00e9", "cafe\u0301"} {
		if p, ok := plan[n]; ok {
			moved++
			if !strings.Contains(p, ".name-clash-") {
				t.Errorf("%q kept as %q", n, p)
			}
		}
	}
	if moved != 1 {
		t.Errorf("%d of the two forms of café moved: %v", moved, plan)
	}
}

// FuzzPlanNames: whatever the names of a directory, every rule set gives
// each a place the folder can hold, no two the same to it, and an escaped
// name unescapes to the original.
func FuzzPlanNames(f *testing.F) {
	f.Add(strings.Join(issueNames, "/"))
	f.Add("AUX/aux/Aux.txt/aux.txt/au\uF078.txt")
	f.Add("a./a. /a/A/a\uF02E")
	f.Fuzz(func(t *testing.T, joined string) {
		seen := map[string]bool{}
		var names []string
		for _, n := range strings.Split(joined, "/") {
			if n == "" || n == "." || n == ".." || strings.ContainsRune(n, 0) || seen[n] || len(names) == 64 {
				continue
			}
			seen[n] = true
			names = append(names, n)
		}
		sort.Strings(names)
		for _, r := range []FolderRules{{CaseInsensitive: true, WindowsNames: true}, {CaseInsensitive: true, Normalizing: true}, {WindowsNames: true}} {
			checkPlan(t, names, r)
		}
		for _, n := range names {
			if strings.ContainsFunc(n, isEscaped) {
				continue
			}
			if e := EscapeName(n); WindowsInvalid(e) != "" || UnescapeName(e) != n {
				t.Fatalf("EscapeName(%q) = %q", n, e)
			}
		}
	})
}

// TestFoldKeyASCII: the ASCII shortcut agrees with full folding, and a
// name that folds to ASCII from outside it (KELVIN SIGN, long s) meets it.
func TestFoldKeyASCII(t *testing.T) {
	r := FolderRules{CaseInsensitive: true, Normalizing: true}
	for _, n := range []string{"README.md", "Makefile", "a-Z_09.TXT", "", "x"} {
		if got, want := FoldKey(n, r), fold(norm.NFC.String(n)); got != want {
			t.Errorf("FoldKey(%q) = %q, full folding %q", n, got, want)
		}
	}
	if !SameName("\u212A.txt", "k.txt", r) || !SameName("\u017Fun", "SUN", r) {
		t.Error("names that fold to ASCII do not meet their ASCII forms")
	}
}

// TestFoldKeyConcurrent: scans plan directories from many goroutines at
// once, and each must get full folding (ß is ss) there too. (x/text says
// a Caser must not be shared; the fold caser happens to keep no state
// today, so this test does not catch sharing one, only wrong results.)
func TestFoldKeyConcurrent(t *testing.T) {
	r := FolderRules{CaseInsensitive: true, Normalizing: true}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				name := strings.Repeat("Ä", 1+(g+i)%5) + "ß.TXT"
				if got := FoldKey(name, r); got != strings.Repeat("ä", 1+(g+i)%5)+"ss.txt" {
					t.Errorf("FoldKey(%q) = %q", name, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
