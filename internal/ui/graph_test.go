package ui

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// traceGraph follows every line that leaves each commit's dot down the
// rows, failing on a line that breaks off, and returns what each line
// reached: the commit whose dot it ends in, or "below" when it runs off
// the last row.
func traceGraph(t *testing.T, ids []object.ID, rows []GraphRow) map[int][]string {
	t.Helper()
	mid := rowHeight / 2
	reached := map[int][]string{}
	used := map[[2]int]bool{} // row, x: a line leaving a row's bottom that an edge owns
	for i, r := range rows {
		for _, s := range r.Lines {
			if s.Y1 != mid || s.X1 != r.X || s.Y2 != rowHeight {
				continue // not a line out of this dot
			}
			x, got := s.X2, "below"
			used[[2]int{i, x}] = true
		rows:
			for j := i + 1; j < len(rows); j++ {
				var top []GraphSeg
				for _, u := range rows[j].Lines {
					if u.Y1 == 0 && u.X1 == x {
						top = append(top, u)
					}
				}
				if len(top) != 1 {
					t.Fatalf("row %d: the line from commit %d at x=%d meets %d lines at the row's top, want 1", j, i, x, len(top))
				}
				if top[0].X2 == rows[j].X && top[0].Y2 == mid {
					got = fmt.Sprint(j)
					break rows
				}
				// Passing through: it must go on to the bottom.
				through := false
				for _, u := range rows[j].Lines {
					through = through || u.X1 == x && u.X2 == x && u.Y1 == mid && u.Y2 == rowHeight
				}
				if top[0].X2 != x || !through {
					t.Fatalf("row %d: the line from commit %d at x=%d does not go on down", j, i, x)
				}
				used[[2]int{j, x}] = true
			}
			reached[i] = append(reached[i], got)
		}
	}
	// Every line at a row's bottom is on the way from a commit to a
	// parent (none waits for a commit already drawn).
	for i, r := range rows {
		for _, s := range r.Lines {
			if s.Y2 == rowHeight && !used[[2]int{i, s.X2}] {
				t.Fatalf("row %d: a line leaves x=%d on the way from no commit to its parent", i, s.X2)
			}
		}
	}
	// Every line ending at a row's bottom starts the next row.
	for i := 0; i+1 < len(rows); i++ {
		var bottom, top []int
		for _, s := range rows[i].Lines {
			if s.Y2 == rowHeight {
				bottom = append(bottom, s.X2)
			}
		}
		for _, s := range rows[i+1].Lines {
			if s.Y1 == 0 {
				top = append(top, s.X1)
			}
		}
		slices.Sort(bottom)
		bottom = slices.Compact(bottom)
		slices.Sort(top)
		if !slices.Equal(bottom, top) {
			t.Fatalf("rows %d and %d: lines leave at x=%v and arrive at x=%v", i, i+1, bottom, top)
		}
	}
	return reached
}

// TestLayoutGraph: in random histories (merges, several heads, parents
// beyond the rows shown) each line from a commit reaches one of its
// parents' dots, every parent is reached, lines never break between rows,
// and a straight history stays in one lane.
func TestLayoutGraph(t *testing.T) {
	id := func(i int) object.ID { return object.Hash(object.TypeChunk, []byte(fmt.Sprint(i))) }
	// A straight history.
	var ids []object.ID
	var parents [][]object.ID
	for i := range 5 {
		ids = append(ids, id(i))
		parents = append(parents, []object.ID{id(i + 1)})
	}
	rows := layoutGraph(ids, parents)
	for i, r := range rows {
		if r.X != laneX(0) || r.Width != laneWidth {
			t.Fatalf("straight history, row %d: dot at %d, width %d", i, r.X, r.Width)
		}
	}
	if got := traceGraph(t, ids, rows); !slices.Equal(got[4], []string{"below"}) || !slices.Equal(got[0], []string{"1"}) {
		t.Fatalf("straight history: lines reach %v", got)
	}
	merges := 0
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		n := 2 + rng.Intn(40)
		ids, parents = nil, nil
		for i := range n {
			ids = append(ids, id(i))
			var ps []object.ID
			for k := 0; k < 1+rng.Intn(3)/2+rng.Intn(4)/3; k++ {
				// A parent is an older row, or past the last one.
				p := id(i + 1 + rng.Intn(6))
				if !slices.Contains(ps, p) {
					ps = append(ps, p)
				}
			}
			if rng.Intn(15) == 0 {
				ps = nil // a root
			}
			merges += max(0, len(ps)-1)
			parents = append(parents, ps)
		}
		rows := layoutGraph(ids, parents)
		reached := traceGraph(t, ids, rows)
		for i, ps := range parents {
			var want []string
			for _, p := range ps {
				if j := slices.Index(ids, p); j >= 0 {
					want = append(want, fmt.Sprint(j))
				} else {
					want = append(want, "below")
				}
			}
			got := reached[i]
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d, commit %d with parents %v: its lines reach %v, want %v", seed, i, ps, got, want)
			}
		}
	}
	if merges < 100 {
		t.Fatalf("only %d merges in the random histories", merges)
	}
}

// TestHistoryGraph: the history page draws a row per commit and the merge
// with a line to each parent; with a path, the API gives the parents in
// the history shown (mine's parent "third" did not touch notes.txt, so
// mine leads to "second").
func TestHistoryGraph(t *testing.T) {
	f := conflicted(t)
	var h History
	w := f.do("GET", "/api/log", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil || len(h.Commits) != 6 {
		t.Fatalf("history: %s %v", w.Body, err)
	}
	if m := h.Commits[0]; !m.Merge || len(m.Graph) != 2 {
		t.Fatalf("the merge's parents in the graph: %+v", m)
	}
	page := f.do("GET", "/history", nil, nil).Body.String()
	if n := strings.Count(page, "<svg"); n != 6 {
		t.Fatalf("history page: %d graph rows for 6 commits", n)
	}
	row := page[strings.Index(page, "<svg"):]
	row = row[:strings.Index(row, "</svg>")]
	if n := strings.Count(row, `y1="12"`); n != 2 {
		t.Fatalf("the merge's row draws %d lines down from its dot, want 2: %s", n, row)
	}
	w = f.do("GET", "/api/log?path=notes.txt", nil, nil)
	h = History{}
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	subject := map[object.ID]string{}
	for _, c := range h.Commits {
		subject[c.ID] = strings.TrimSpace(c.Message)
	}
	got := map[string][]string{}
	for _, c := range h.Commits {
		for _, p := range c.Graph {
			got[subject[c.ID]] = append(got[subject[c.ID]], subject[p])
		}
	}
	// The merge kept mine's notes.txt, so it is passed over and only
	// mine followed; mine's parent "third" did not touch notes.txt.
	if len(h.Commits) != 3 || !slices.Equal(got["mine"], []string{"second"}) || !slices.Equal(got["second"], []string{"first"}) || len(got["first"]) != 0 {
		t.Fatalf("parents in the history of notes.txt: %q (%d commits)", got, len(h.Commits))
	}
}

// TestThroughHidden: a commit the device filter hides gives way to the
// commits shown below it, through chains and merges of hidden ones.
func TestThroughHidden(t *testing.T) {
	id := func(s string) object.ID { return object.Hash(object.TypeChunk, []byte(s)) }
	hidden := map[object.ID][]object.ID{
		id("h1"): {id("h2")},
		id("h2"): {id("s1"), id("h3")},
		id("h3"): {id("s2"), id("s1")},
	}
	got := throughHidden([]object.ID{id("h1"), id("s3")}, hidden, map[object.ID][]object.ID{})
	if !slices.Equal(got, []object.ID{id("s1"), id("s2"), id("s3")}) {
		t.Fatalf("through hidden commits: %v", got)
	}
}
