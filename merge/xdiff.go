package merge

// This file is a line diff that aligns exactly as git's xdiff does when
// `git merge-file` runs it: Myers' algorithm by divide and conquer on the
// middle snake, with xdiff's preparation (lines with no match on the other
// side, and frequent lines inside runs of those, are decided "changed"
// before the search), its cost heuristics on large inputs, and its final
// sliding of change groups. The merge's verdicts and conflict text depend
// on the alignment whenever lines repeat, so matching git here is what
// makes a merge give the same answer as git's. The code is written from
// the behaviour of git's xdiff (LGPL libxdiff, as git ships it), not
// copied from it.

// xfile is one side of a two-way diff.
type xfile struct {
	class  []int  // per line: equal lines have equal classes
	rchg   []bool // changed[i] is rchg[i+1]; rchg[0] and rchg[n+1] stay false
	rindex []int  // lines taking part in the search, by position in the search
	ha     []int  // their classes
	dstart int    // first line not in the common prefix
	dend   int    // last line not in the common suffix
}

func (f *xfile) n() int                   { return len(f.class) }
func (f *xfile) changed(i int) bool       { return f.rchg[i+1] }
func (f *xfile) setChanged(i int, v bool) { f.rchg[i+1] = v }

// xchange replaces a[i1:i1+chg1] with b[i2:i2+chg2].
type xchange struct {
	i1, i2     int
	chg1, chg2 int
}

const (
	xMaxEqLimit    = 1024 // cap on how often a line may occur before it is "frequent"
	xSimScanWindow = 100  // how far the frequent-line scan looks each way
	xKpdisRun      = 4
	xMaxCostMin    = 256
	xHeurMinCost   = 256
	xSnakeCnt      = 20
	xKHeur         = 4
	xLineMax       = int(^uint(0) >> 1)
)

// bogosqrt is xdiff's integer square root estimate: the power of two
// 2^ceil(bits(n)/2).
func bogosqrt(n int) int {
	i := 1
	for ; n > 0; n >>= 2 {
		i <<= 1
	}
	return i
}

// xprepare classifies the lines of both sides, trims the common prefix and
// suffix, and picks the lines the search will look at.
func xprepare(a, b [][]byte) (*xfile, *xfile) {
	classes := map[string]int{}
	var count1, count2 []int
	classify := func(ls [][]byte, pass int) *xfile {
		f := &xfile{class: make([]int, len(ls)), rchg: make([]bool, len(ls)+2)}
		for i, l := range ls {
			c, ok := classes[string(l)]
			if !ok {
				c = len(classes)
				classes[string(l)] = c
				count1 = append(count1, 0)
				count2 = append(count2, 0)
			}
			if pass == 1 {
				count1[c]++
			} else {
				count2[c]++
			}
			f.class[i] = c
		}
		return f
	}
	x, y := classify(a, 1), classify(b, 2)

	// Trim the common ends.
	lim := min(x.n(), y.n())
	i := 0
	for i < lim && x.class[i] == y.class[i] {
		i++
	}
	x.dstart, y.dstart = i, i
	lim -= i
	j := 0
	for j < lim && x.class[x.n()-1-j] == y.class[y.n()-1-j] {
		j++
	}
	x.dend, y.dend = x.n()-j-1, y.n()-j-1

	// Lines with no match on the other side are changed; so are lines
	// that match too often when they sit among those.
	pick := func(f *xfile, other []int) {
		mlim := min(bogosqrt(f.n()), xMaxEqLimit)
		dis := make([]byte, f.n()+1)
		for i := f.dstart; i <= f.dend; i++ {
			switch nm := other[f.class[i]]; {
			case nm == 0:
				dis[i] = 0
			case nm >= mlim:
				dis[i] = 2
			default:
				dis[i] = 1
			}
		}
		for i := f.dstart; i <= f.dend; i++ {
			if dis[i] == 1 || (dis[i] == 2 && !cleanMultimatch(dis, i, f.dstart, f.dend)) {
				f.rindex = append(f.rindex, i)
				f.ha = append(f.ha, f.class[i])
			} else {
				f.setChanged(i, true)
			}
		}
	}
	pick(x, count2)
	pick(y, count1)
	return x, y
}

// cleanMultimatch says whether the frequent line i sits in a run of
// unmatched lines long enough that it should be decided changed too.
func cleanMultimatch(dis []byte, i, s, e int) bool {
	if i-s > xSimScanWindow {
		s = i - xSimScanWindow
	}
	if e-i > xSimScanWindow {
		e = i + xSimScanWindow
	}
	rdis0, rpdis0 := 0, 1
	for r := 1; i-r >= s; r++ {
		if dis[i-r] == 0 {
			rdis0++
		} else if dis[i-r] == 2 {
			rpdis0++
		} else {
			break
		}
	}
	if rdis0 == 0 {
		return false
	}
	rdis1, rpdis1 := 0, 1
	for r := 1; i+r <= e; r++ {
		if dis[i+r] == 0 {
			rdis1++
		} else if dis[i+r] == 2 {
			rpdis1++
		} else {
			break
		}
	}
	if rdis1 == 0 {
		return false
	}
	rdis1 += rdis0
	rpdis1 += rpdis0
	return rpdis1*xKpdisRun < rpdis1+rdis1
}

// xsearch holds the Myers search state over the picked lines.
type xsearch struct {
	x, y   *xfile // their ha are the lines searched
	kvd    []int
	fo, bo int // offsets of the forward and backward vectors in kvd
	mxcost int
}

type xsplit struct {
	i1, i2       int
	minLo, minHi bool
}

func (s *xsearch) kf(d int) int  { return s.kvd[s.fo+d] }
func (s *xsearch) kb(d int) int  { return s.kvd[s.bo+d] }
func (s *xsearch) setF(d, v int) { s.kvd[s.fo+d] = v }
func (s *xsearch) setB(d, v int) { s.kvd[s.bo+d] = v }

// split finds where to cut the box (off1,off2)-(lim1,lim2): the middle
// snake of the forward and backward searches, or, past the cost bounds, a
// good enough point.
func (s *xsearch) split(off1, lim1, off2, lim2 int, needMin bool) xsplit {
	ha1, ha2 := s.x.ha, s.y.ha
	dmin, dmax := off1-lim2, lim1-off2
	fmid, bmid := off1-off2, lim1-lim2
	odd := (fmid-bmid)&1 != 0
	fmin, fmax := fmid, fmid
	bmin, bmax := bmid, bmid
	s.setF(fmid, off1)
	s.setB(bmid, lim1)
	for ec := 1; ; ec++ {
		gotSnake := false
		if fmin > dmin {
			fmin--
			s.setF(fmin-1, -1)
		} else {
			fmin++
		}
		if fmax < dmax {
			fmax++
			s.setF(fmax+1, -1)
		} else {
			fmax--
		}
		for d := fmax; d >= fmin; d -= 2 {
			var i1 int
			if s.kf(d-1) >= s.kf(d+1) {
				i1 = s.kf(d-1) + 1
			} else {
				i1 = s.kf(d + 1)
			}
			prev1 := i1
			i2 := i1 - d
			for i1 < lim1 && i2 < lim2 && ha1[i1] == ha2[i2] {
				i1++
				i2++
			}
			if i1-prev1 > xSnakeCnt {
				gotSnake = true
			}
			s.setF(d, i1)
			if odd && bmin <= d && d <= bmax && s.kb(d) <= i1 {
				return xsplit{i1: i1, i2: i2, minLo: true, minHi: true}
			}
		}

		if bmin > dmin {
			bmin--
			s.setB(bmin-1, xLineMax)
		} else {
			bmin++
		}
		if bmax < dmax {
			bmax++
			s.setB(bmax+1, xLineMax)
		} else {
			bmax--
		}
		for d := bmax; d >= bmin; d -= 2 {
			var i1 int
			if s.kb(d-1) < s.kb(d+1) {
				i1 = s.kb(d - 1)
			} else {
				i1 = s.kb(d+1) - 1
			}
			prev1 := i1
			i2 := i1 - d
			for i1 > off1 && i2 > off2 && ha1[i1-1] == ha2[i2-1] {
				i1--
				i2--
			}
			if prev1-i1 > xSnakeCnt {
				gotSnake = true
			}
			s.setB(d, i1)
			if !odd && fmin <= d && d <= fmax && i1 <= s.kf(d) {
				return xsplit{i1: i1, i2: i2, minLo: true, minHi: true}
			}
		}

		if needMin {
			continue
		}

		// Past the heuristic threshold, a diagonal far along and ending
		// in a long enough snake is taken as the cut.
		if gotSnake && ec > xHeurMinCost {
			best, sp := 0, xsplit{}
			for d := fmax; d >= fmin; d -= 2 {
				dd := d - fmid
				if dd < 0 {
					dd = -dd
				}
				i1 := s.kf(d)
				i2 := i1 - d
				v := (i1 - off1) + (i2 - off2) - dd
				if v > xKHeur*ec && v > best &&
					off1+xSnakeCnt <= i1 && i1 < lim1 &&
					off2+xSnakeCnt <= i2 && i2 < lim2 {
					for k := 1; ha1[i1-k] == ha2[i2-k]; k++ {
						if k == xSnakeCnt {
							best = v
							sp.i1, sp.i2 = i1, i2
							break
						}
					}
				}
			}
			if best > 0 {
				sp.minLo, sp.minHi = true, false
				return sp
			}
			for d := bmax; d >= bmin; d -= 2 {
				dd := d - bmid
				if dd < 0 {
					dd = -dd
				}
				i1 := s.kb(d)
				i2 := i1 - d
				v := (lim1 - i1) + (lim2 - i2) - dd
				if v > xKHeur*ec && v > best &&
					off1 < i1 && i1 <= lim1-xSnakeCnt &&
					off2 < i2 && i2 <= lim2-xSnakeCnt {
					for k := 0; ha1[i1+k] == ha2[i2+k]; k++ {
						if k == xSnakeCnt-1 {
							best = v
							sp.i1, sp.i2 = i1, i2
							break
						}
					}
				}
			}
			if best > 0 {
				sp.minLo, sp.minHi = false, true
				return sp
			}
		}

		// Enough: cut at the furthest-reaching point found so far.
		if ec >= s.mxcost {
			fbest, fbest1 := -1, -1
			for d := fmax; d >= fmin; d -= 2 {
				i1 := min(s.kf(d), lim1)
				i2 := i1 - d
				if lim2 < i2 {
					i1, i2 = lim2+d, lim2
				}
				if fbest < i1+i2 {
					fbest, fbest1 = i1+i2, i1
				}
			}
			bbest, bbest1 := xLineMax, xLineMax
			for d := bmax; d >= bmin; d -= 2 {
				i1 := max(off1, s.kb(d))
				i2 := i1 - d
				if i2 < off2 {
					i1, i2 = off2+d, off2
				}
				if i1+i2 < bbest {
					bbest, bbest1 = i1+i2, i1
				}
			}
			if (lim1+lim2)-bbest < fbest-(off1+off2) {
				return xsplit{i1: fbest1, i2: fbest - fbest1, minLo: true, minHi: false}
			}
			return xsplit{i1: bbest1, i2: bbest - bbest1, minLo: false, minHi: true}
		}
	}
}

// compare marks the changed lines of the box (off1,off2)-(lim1,lim2),
// splitting it recursively.
func (s *xsearch) compare(off1, lim1, off2, lim2 int, needMin bool) {
	for {
		ha1, ha2 := s.x.ha, s.y.ha
		for off1 < lim1 && off2 < lim2 && ha1[off1] == ha2[off2] {
			off1++
			off2++
		}
		for off1 < lim1 && off2 < lim2 && ha1[lim1-1] == ha2[lim2-1] {
			lim1--
			lim2--
		}
		switch {
		case off1 == lim1:
			for ; off2 < lim2; off2++ {
				s.y.setChanged(s.y.rindex[off2], true)
			}
			return
		case off2 == lim2:
			for ; off1 < lim1; off1++ {
				s.x.setChanged(s.x.rindex[off1], true)
			}
			return
		}
		sp := s.split(off1, lim1, off2, lim2, needMin)
		s.compare(off1, sp.i1, off2, sp.i2, sp.minLo)
		// The second half in this loop, not by recursion.
		off1, off2, needMin = sp.i1, sp.i2, sp.minHi
	}
}

// xdiff computes the changed lines of a and b as git's Myers diff does,
// slides them as git does, and returns the changes in order.
func xdiff(a, b [][]byte) []xchange {
	x, y := xprepare(a, b)
	n1, n2 := len(x.ha), len(y.ha)
	ndiags := n1 + n2 + 3
	s := &xsearch{
		x:      x,
		y:      y,
		kvd:    make([]int, 2*ndiags+2),
		fo:     n2 + 1,
		bo:     ndiags + n2 + 1,
		mxcost: max(bogosqrt(ndiags), xMaxCostMin),
	}
	s.compare(0, n1, 0, n2, false)
	compact(x, y)
	compact(y, x)
	return script(x, y)
}

// group is a run of changed lines [start,end) in one file.
type group struct{ start, end int }

func groupInit(f *xfile) group {
	g := group{}
	for f.changed(g.end) {
		g.end++
	}
	return g
}

func (g *group) next(f *xfile) bool {
	if g.end == f.n() {
		return false
	}
	g.start = g.end + 1
	g.end = g.start
	for f.changed(g.end) {
		g.end++
	}
	return true
}

func (g *group) previous(f *xfile) bool {
	if g.start == 0 {
		return false
	}
	g.end = g.start - 1
	g.start = g.end
	for f.changed(g.start - 1) {
		g.start--
	}
	return true
}

func (g *group) slideDown(f *xfile) bool {
	if g.end < f.n() && f.class[g.start] == f.class[g.end] {
		f.setChanged(g.start, false)
		g.start++
		f.setChanged(g.end, true)
		g.end++
		for f.changed(g.end) {
			g.end++
		}
		return true
	}
	return false
}

func (g *group) slideUp(f *xfile) bool {
	if g.start > 0 && f.class[g.start-1] == f.class[g.end-1] {
		g.start--
		f.setChanged(g.start, true)
		g.end--
		f.setChanged(g.end, false)
		for f.changed(g.start - 1) {
			g.start--
		}
		return true
	}
	return false
}

// compact slides each group of changed lines in f as far down as it goes,
// merging groups that meet, and then back up to line up with a change in
// the other file o where one is in reach, as git does (without the indent
// heuristic, which git merge-file does not use).
func compact(f, o *xfile) {
	g, gO := groupInit(f), groupInit(o)
	for {
		if g.end != g.start {
			var earliestEnd, endMatchingOther int
			for {
				size := g.end - g.start
				endMatchingOther = -1
				for g.slideUp(f) {
					if !gO.previous(o) {
						panic("merge: diff group sync broken sliding up")
					}
				}
				earliestEnd = g.end
				if gO.end > gO.start {
					endMatchingOther = g.end
				}
				for g.slideDown(f) {
					if !gO.next(o) {
						panic("merge: diff group sync broken sliding down")
					}
					if gO.end > gO.start {
						endMatchingOther = g.end
					}
				}
				if size == g.end-g.start {
					break
				}
			}
			if g.end != earliestEnd && endMatchingOther != -1 {
				for gO.end == gO.start {
					if !g.slideUp(f) {
						panic("merge: diff match disappeared")
					}
					if !gO.previous(o) {
						panic("merge: diff group sync broken sliding to match")
					}
				}
			}
		}
		if !g.next(f) {
			break
		}
		if !gO.next(o) {
			panic("merge: diff group sync broken moving to next group")
		}
	}
}

// script lists the changes in order.
func script(x, y *xfile) []xchange {
	var rev []xchange
	i1, i2 := x.n(), y.n()
	for i1 >= 0 || i2 >= 0 {
		if (i1 > 0 && x.changed(i1-1)) || (i2 > 0 && y.changed(i2-1)) {
			l1, l2 := i1, i2
			for i1 > 0 && x.changed(i1-1) {
				i1--
			}
			for i2 > 0 && y.changed(i2-1) {
				i2--
			}
			rev = append(rev, xchange{i1: i1, i2: i2, chg1: l1 - i1, chg2: l2 - i2})
		}
		i1--
		i2--
	}
	out := make([]xchange, len(rev))
	for k := range rev {
		out[k] = rev[len(rev)-1-k]
	}
	return out
}
