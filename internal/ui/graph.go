package ui

import (
	"slices"

	"github.com/mesh-sync/mesh/object"
)

// The history page's commit graph, drawn as git log --graph lays it out:
// each commit a dot in a lane, each lane a line down to the commit it
// waits for; a merge opens a lane per further parent, and lanes waiting
// for the same commit join at it. Each row is an SVG of its own, drawn
// on the server, so the page needs no script.

// Graph sizes, in pixels: a lane's width and a row's height.
const (
	laneWidth = 14
	rowHeight = 24
)

// GraphRow is one commit's row of the graph.
type GraphRow struct {
	Width int        // of the SVG
	X     int        // the commit's dot
	Color int        // its lane's colour (an index into the page's)
	Lines []GraphSeg // from the row's top or bottom to the dot, or through
}

// GraphSeg is a line of a row, in the row's pixels.
type GraphSeg struct {
	X1, Y1, X2, Y2 int
	Color          int
}

// graphColors is how many lane colours the page has.
const graphColors = 6

func laneX(i int) int { return i*laneWidth + laneWidth/2 }

// layoutGraph lays out commits shown in this order (newest first), each
// with its parents in the history shown.
func layoutGraph(ids []object.ID, parents [][]object.ID) []GraphRow {
	var lanes []object.ID // what each lane waits for; zero: free
	free := func() int {
		if i := slices.Index(lanes, object.ID{}); i >= 0 {
			return i
		}
		lanes = append(lanes, object.ID{})
		return len(lanes) - 1
	}
	rows := make([]GraphRow, len(ids))
	mid := rowHeight / 2
	for n, id := range ids {
		row := &rows[n]
		col := slices.Index(lanes, id)
		if col < 0 {
			col = free() // a head: nothing above waits for it
		}
		// Top half: every lane waiting comes down, into the dot for the
		// one lane that waits for this commit (a parent already waited
		// for joins that lane, so no two lanes wait for one commit).
		for i, w := range lanes {
			if !w.IsZero() {
				row.Lines = append(row.Lines, GraphSeg{laneX(i), 0, laneX(i), mid, i % graphColors})
			}
		}
		lanes[col] = object.ID{}
		through := slices.Clone(lanes) // the lanes that go on past this row
		// Bottom half: the first parent goes on in this lane unless a
		// lane waits for it already; each other parent joins the lane
		// waiting for it or opens one.
		for k, p := range parents[n] {
			to := slices.Index(lanes, p)
			if to < 0 {
				if k == 0 {
					to = col
				} else {
					to = free()
				}
				lanes[to] = p
			}
			row.Lines = append(row.Lines, GraphSeg{laneX(col), mid, laneX(to), rowHeight, to % graphColors})
		}
		for i, w := range through {
			if !w.IsZero() {
				row.Lines = append(row.Lines, GraphSeg{laneX(i), mid, laneX(i), rowHeight, i % graphColors})
			}
		}
		// Lanes freed at the right end give their room back.
		for len(lanes) > 0 && lanes[len(lanes)-1].IsZero() {
			lanes = lanes[:len(lanes)-1]
		}
		row.X, row.Color = laneX(col), col%graphColors
		row.Width = laneWidth * (max(col+1, len(lanes), widest(row.Lines)))
	}
	return rows
}

// widest is how many lanes segs reach across.
func widest(segs []GraphSeg) int {
	w := 0
	for _, s := range segs {
		w = max(w, s.X1/laneWidth+1, s.X2/laneWidth+1)
	}
	return w
}
