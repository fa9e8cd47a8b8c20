package merge

import (
	"bytes"
	"container/heap"
	"fmt"
	"sort"

	"github.com/mesh-sync/mesh/object"
)

// CommitReader reads commits; *object.Store does.
type CommitReader interface {
	ReadCommit(id object.ID) (*object.Commit, error)
}

// CachedCommits remembers decoded commits, so repeated walks over one
// history (merge bases of several heads) read each commit once.
type CachedCommits struct {
	R CommitReader
	m map[object.ID]*object.Commit
}

// ReadCommit returns the commit, from the cache when it was read before.
func (c *CachedCommits) ReadCommit(id object.ID) (*object.Commit, error) {
	if cm, ok := c.m[id]; ok {
		return cm, nil
	}
	cm, err := c.R.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[object.ID]*object.Commit{}
	}
	c.m[id] = cm
	return cm, nil
}

const (
	fromA = 1 << iota
	fromB
	stale
	result
)

type queued struct {
	id       object.ID
	time     int64
	nonStale bool // counted in nonStale when pushed
}

// byTime pops the newest commit first, ties broken by ID, so that the walk
// is the same on every device.
type byTime []queued

func (q byTime) Len() int { return len(q) }
func (q byTime) Less(i, j int) bool {
	if q[i].time != q[j].time {
		return q[i].time > q[j].time
	}
	return bytes.Compare(q[i].id[:], q[j].id[:]) < 0
}
func (q byTime) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *byTime) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *byTime) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// Bases returns the best common ancestors of a and b: common ancestors
// that are not ancestors of another common ancestor. There are several in
// a criss-cross history. The result is sorted by ID, so it is the same on
// every device whatever order the heads came in.
//
// The walk paints commits reachable from a and from b, newest first (git's
// paint-down-to-common). Time only orders the work: a commit that gains a
// mark after it was processed is queued again, so clock skew between
// devices cannot change the answer, only how long it takes.
func Bases(r CommitReader, a, b object.ID) ([]object.ID, error) {
	if a == b {
		return []object.ID{a}, nil
	}
	marks := map[object.ID]int{}
	q := &byTime{}
	nonStale := 0
	push := func(id object.ID, m int) error {
		old := marks[id]
		if old&m == m {
			return nil
		}
		c, err := r.ReadCommit(id)
		if err != nil {
			return fmt.Errorf("merge base: %w", err)
		}
		marks[id] = old | m
		ns := (old|m)&stale == 0
		heap.Push(q, queued{id: id, time: c.Time, nonStale: ns})
		if ns {
			nonStale++
		}
		return nil
	}
	if err := push(a, fromA); err != nil {
		return nil, err
	}
	if err := push(b, fromB); err != nil {
		return nil, err
	}
	var found []object.ID
	for q.Len() > 0 && nonStale > 0 {
		e := heap.Pop(q).(queued)
		m := marks[e.id]
		if e.nonStale {
			nonStale--
		}
		flags := m & (fromA | fromB | stale)
		if flags&(fromA|fromB) == fromA|fromB && m&stale == 0 {
			if m&result == 0 {
				marks[e.id] |= result
				found = append(found, e.id)
			}
			flags |= stale
		}
		c, err := r.ReadCommit(e.id)
		if err != nil {
			return nil, fmt.Errorf("merge base: %w", err)
		}
		for _, p := range c.Parents {
			if err := push(p, flags); err != nil {
				return nil, err
			}
		}
	}
	// A found commit that was later reached with the stale mark lies below
	// another found commit; the rest may still be each other's ancestors
	// where the walk stopped early: drop those too.
	var bases []object.ID
	for _, id := range found {
		if marks[id]&stale == 0 {
			bases = append(bases, id)
		}
	}
	bases, err := removeRedundant(r, bases)
	if err != nil {
		return nil, err
	}
	sortIDs(bases)
	return bases, nil
}

// removeRedundant drops every candidate that is an ancestor of another.
func removeRedundant(r CommitReader, cands []object.ID) ([]object.ID, error) {
	if len(cands) < 2 {
		return cands, nil
	}
	var out []object.ID
	for i, c := range cands {
		redundant := false
		for j, d := range cands {
			if i == j || redundant {
				continue
			}
			anc, err := IsAncestor(r, c, d)
			if err != nil {
				return nil, err
			}
			redundant = anc
		}
		if !redundant {
			out = append(out, c)
		}
	}
	return out, nil
}

// IsAncestor reports whether a is reachable from b (a commit is its own
// ancestor).
func IsAncestor(r CommitReader, a, b object.ID) (bool, error) {
	if a == b {
		return true, nil
	}
	seen := map[object.ID]bool{b: true}
	stack := []object.ID{b}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		c, err := r.ReadCommit(id)
		if err != nil {
			return false, err
		}
		for _, p := range c.Parents {
			if p == a {
				return true, nil
			}
			// No pruning by time: clocks of other devices may be wrong.
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	return false, nil
}

func sortIDs(ids []object.ID) {
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
}
