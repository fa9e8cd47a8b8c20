package merge

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// memDAG is an in-memory history for tests.
type memDAG map[object.ID]*object.Commit

func (m memDAG) ReadCommit(id object.ID) (*object.Commit, error) {
	c, ok := m[id]
	if !ok {
		return nil, fmt.Errorf("commit %s: %w", id.Short(), object.ErrNotFound)
	}
	return c, nil
}

func (m memDAG) add(n int, t int64, parents ...object.ID) object.ID {
	c := &object.Commit{Parents: parents, Time: t, Message: fmt.Sprint(n)}
	id := object.Hash(object.TypeCommit, c.Encode())
	m[id] = c
	return id
}

func (m memDAG) ancestors(id object.ID) map[object.ID]bool {
	out := map[object.ID]bool{}
	stack := []object.ID{id}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[x] {
			continue
		}
		out[x] = true
		stack = append(stack, m[x].Parents...)
	}
	return out
}

// bruteBases is the definition: common ancestors not below another one.
func (m memDAG) bruteBases(a, b object.ID) []object.ID {
	aa, bb := m.ancestors(a), m.ancestors(b)
	var common []object.ID
	for id := range aa {
		if bb[id] {
			common = append(common, id)
		}
	}
	var best []object.ID
	for _, c := range common {
		below := false
		for _, d := range common {
			if c != d && m.ancestors(d)[c] {
				below = true
				break
			}
		}
		if !below {
			best = append(best, c)
		}
	}
	sortIDs(best)
	return best
}

// randomDAG grows a history where each commit has one or two parents
// among recent commits, with times that are sometimes wrong (skewed
// clocks on other devices).
func randomDAG(r *rand.Rand, n int) (memDAG, []object.ID) {
	m := memDAG{}
	ids := []object.ID{m.add(0, 1000)}
	for i := 1; i < n; i++ {
		p1 := ids[len(ids)-1-r.Intn(min(len(ids), 6))]
		parents := []object.ID{p1}
		if r.Intn(3) == 0 {
			p2 := ids[r.Intn(len(ids))]
			if p2 != p1 {
				parents = append(parents, p2)
			}
		}
		t := int64(1000 + i*10)
		if r.Intn(5) == 0 {
			t = int64(1000 + r.Intn(n*10)) // a skewed clock
		}
		ids = append(ids, m.add(i, t, parents...))
	}
	return m, ids
}

func TestBasesMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for iter := 0; iter < 300; iter++ {
		m, ids := randomDAG(r, 5+r.Intn(40))
		a, b := ids[r.Intn(len(ids))], ids[r.Intn(len(ids))]
		got, err := Bases(m, a, b)
		if err != nil {
			t.Fatal(err)
		}
		want := m.bruteBases(a, b)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iteration %d: Bases = %v, want %v", iter, got, want)
		}
		rev, _ := Bases(m, b, a)
		if !reflect.DeepEqual(rev, got) {
			t.Fatalf("iteration %d: Bases depends on argument order", iter)
		}
	}
}

func TestCrissCrossHasTwoBases(t *testing.T) {
	m := memDAG{}
	root := m.add(0, 10)
	x := m.add(1, 20, root)
	y := m.add(2, 20, root)
	a := m.add(3, 30, x, y)
	b := m.add(4, 30, y, x)
	got, _ := Bases(m, a, b)
	want := []object.ID{x, y}
	sortIDs(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("criss-cross bases %v, want %v", got, want)
	}
	if anc, _ := IsAncestor(m, root, a); !anc {
		t.Fatal("root is not an ancestor of a")
	}
	if anc, _ := IsAncestor(m, a, root); anc {
		t.Fatal("a is an ancestor of root")
	}
}

// BenchmarkBasesLongHistory: a 10,000-commit linear history with a branch
// of 10 commits off its tip and 10 more on the trunk.
func BenchmarkBasesLongHistory(b *testing.B) {
	m := memDAG{}
	tip := m.add(0, 1)
	for i := 1; i < 10000; i++ {
		tip = m.add(i, int64(i), tip)
	}
	fork := tip
	x, y := fork, fork
	for i := 0; i < 10; i++ {
		x = m.add(20000+i, int64(10000+i), x)
		y = m.add(30000+i, int64(10000+i), y)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Bases(m, x, y)
		if err != nil || len(got) != 1 || got[0] != fork {
			b.Fatalf("bases %v %v", got, err)
		}
	}
}

// BenchmarkBasesDeepFork: the branch left the trunk at its root, 10,000
// commits ago, so the walk must go all the way down one side.
func BenchmarkBasesDeepFork(b *testing.B) {
	m := memDAG{}
	root := m.add(0, 1)
	trunk := root
	for i := 1; i < 10000; i++ {
		trunk = m.add(i, int64(i), trunk)
	}
	side := m.add(-1, 5000, root)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Bases(m, trunk, side)
		if err != nil || len(got) != 1 || got[0] != root {
			b.Fatalf("bases %v %v", got, err)
		}
	}
}
