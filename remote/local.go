package remote

import (
	"container/heap"
	"context"
	"fmt"

	"github.com/mesh-sync/mesh/object"
)

// Local is a repository on disk as a peer: its objects and refs.
type Local struct {
	Objects *object.Store
	Refs    *object.Refs
	// Name names it in errors (a path).
	Name string
}

// ListRefs lists the repository's refs.
func (s *Local) ListRefs(ctx context.Context) (map[string]object.ID, error) { return s.Refs.List() }

func (s *Local) String() string { return s.Name }

// Get calls fn with each object as stored; the receiver verifies it.
func (s *Local) Get(ctx context.Context, ids []object.ID, fn ObjectFunc) error {
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.Objects.GetRaw(id)
		if err != nil {
			return err
		}
		if err := fn(id, r); err != nil {
			return err
		}
	}
	return nil
}

// Commits calls fn with the commits reachable from wants and not from haves.
func (s *Local) Commits(ctx context.Context, wants, haves []object.ID, fn ObjectFunc) error {
	return walkCommits(ctx, s.Objects, wants, haves, fn)
}

// walkCommits is git's rev-list wants ^haves: newest first, it marks what
// haves reach as known to the other side, and stops once everything left
// to look at is known. Clock skew can only make it send a few commits the
// other side has (which it skips), never miss one it lacks: a commit is
// left out only once it is known to be reachable from a have.
func walkCommits(ctx context.Context, s *object.Store, wants, haves []object.ID, fn ObjectFunc) error {
	const (
		interesting = 1
		known       = 2
	)
	state := map[object.ID]uint8{}
	q := &commitQueue{}
	live := 0 // interesting commits in the queue
	read := func(id object.ID) (*commitItem, error) {
		t, b, err := s.Get(id)
		if err != nil {
			return nil, err
		}
		if t != object.TypeCommit {
			return nil, fmt.Errorf("%s is a %s, not a commit: %w", id.Short(), t, object.ErrNotFound)
		}
		c, err := object.DecodeCommit(b)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", id.Short(), err)
		}
		return &commitItem{id: id, c: c, body: b}, nil
	}
	push := func(id object.ID, mark uint8) error {
		old := state[id]
		switch {
		case old == known, old == interesting && mark == interesting:
			return nil
		case old == interesting: // now known: still queued or already sent
			state[id] = known
			if q.has(id) {
				live--
			}
			return nil
		}
		if mark == known && !s.Has(id) {
			return nil // a have we do not hold tells us nothing
		}
		it, err := read(id)
		if err != nil {
			return err
		}
		state[id] = mark
		if mark == interesting {
			live++
		}
		q.push(it)
		return nil
	}
	for _, h := range haves {
		if err := push(h, known); err != nil {
			return err
		}
	}
	for _, w := range wants {
		if err := push(w, interesting); err != nil {
			return err
		}
	}
	for live > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := q.pop()
		mark := state[it.id]
		if mark == interesting {
			live--
			if err := fn(it.id, object.RawOf(object.TypeCommit, it.body)); err != nil {
				return err
			}
		}
		for _, p := range it.c.Parents {
			if err := push(p, mark); err != nil {
				return err
			}
		}
	}
	return nil
}

type commitItem struct {
	id   object.ID
	c    *object.Commit
	body []byte
}

// commitQueue orders commits newest first (ties by ID, so the walk is
// the same on every run).
type commitQueue struct {
	items []*commitItem
	in    map[object.ID]bool
}

func (q *commitQueue) Len() int { return len(q.items) }
func (q *commitQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.c.Time != b.c.Time {
		return a.c.Time > b.c.Time
	}
	return string(a.id[:]) > string(b.id[:])
}
func (q *commitQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *commitQueue) Push(x any)    { q.items = append(q.items, x.(*commitItem)) }
func (q *commitQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}

func (q *commitQueue) push(it *commitItem) {
	if q.in == nil {
		q.in = map[object.ID]bool{}
	}
	q.in[it.id] = true
	heap.Push(q, it)
}

func (q *commitQueue) pop() *commitItem {
	it := heap.Pop(q).(*commitItem)
	delete(q.in, it.id)
	return it
}

func (q *commitQueue) has(id object.ID) bool { return q.in[id] }
