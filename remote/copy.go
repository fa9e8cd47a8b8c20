package remote

import (
	"context"
	"fmt"

	"github.com/mesh-sync/mesh/object"
)

// Source is a store objects are fetched from.
type Source interface {
	Get(id object.ID) (object.Type, []byte, error)
}

// Stats counts what a fetch moved.
type Stats struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Skipped counts objects the destination already had (with a commit or
	// tree, everything below it, by the closure invariant).
	Skipped int `json:"skipped"`
}

type typed struct {
	id object.ID
	t  object.Type
}

// children lists what an object refers to, with the type each must have.
func children(t object.Type, body []byte) ([]typed, error) {
	var out []typed
	switch t {
	case object.TypeCommit:
		c, err := object.DecodeCommit(body)
		if err != nil {
			return nil, err
		}
		out = append(out, typed{c.Tree, object.TypeTree})
		for _, p := range c.Parents {
			out = append(out, typed{p, object.TypeCommit})
		}
	case object.TypeTree:
		tr, err := object.DecodeTree(body)
		if err != nil {
			return nil, err
		}
		for _, e := range tr.Entries {
			switch e.Kind {
			case object.KindDir:
				out = append(out, typed{e.ID, object.TypeTree})
			case object.KindSymlink:
				out = append(out, typed{e.ID, object.TypeChunk})
			default:
				out = append(out, typed{e.ID, object.TypeFile})
			}
		}
	case object.TypeFile:
		f, err := object.DecodeFile(body)
		if err != nil {
			return nil, err
		}
		for _, c := range f.Chunks {
			out = append(out, typed{c.ID, object.TypeChunk})
		}
	}
	return out, nil
}

// Copy brings into dst everything reachable from heads (commits) that dst
// lacks, and makes it durable. Anything dst already has is not descended
// into: the closure invariant makes "has C" mean "has everything under C".
// To keep that true even if Copy is killed, objects are written bottom-up
// (chunks first, then files, trees and commits after all they refer to).
// Every object is checked against its ID and its expected type; a source
// that sends anything else is refused and dst keeps nothing it would need
// to trust. Refs are the caller's to move, after Copy returns.
func Copy(ctx context.Context, src Source, dst *object.Store, heads []object.ID) (Stats, error) {
	var st Stats
	get := func(want typed) ([]byte, error) {
		t, body, err := src.Get(want.id)
		if err != nil {
			return nil, fmt.Errorf("fetch %s %s: %w", want.t, want.id.Short(), err)
		}
		if got := object.Hash(t, body); got != want.id {
			return nil, fmt.Errorf("fetch %s %s: the source sent an object hashing to %s: %w", want.t, want.id.Short(), got.Short(), object.ErrCorrupt)
		}
		if t != want.t {
			return nil, fmt.Errorf("fetch %s: the source sent a %s where a %s belongs: %w", want.id.Short(), t, want.t, object.ErrCorrupt)
		}
		return body, nil
	}

	// Pass 1: metadata, depth first, recorded in post-order.
	type meta struct {
		typed
		body []byte
	}
	var order []meta
	var chunks []typed
	seen := map[object.ID]bool{}
	type frame struct {
		m    meta
		kids []typed
		next int
	}
	var stack []*frame
	visit := func(x typed) error {
		if seen[x.id] {
			return nil
		}
		seen[x.id] = true
		if dst.Has(x.id) {
			st.Skipped++
			return nil
		}
		if x.t == object.TypeChunk {
			chunks = append(chunks, x)
			return nil
		}
		body, err := get(x)
		if err != nil {
			return err
		}
		kids, err := children(x.t, body)
		if err != nil {
			return fmt.Errorf("fetch %s %s: %w (%w)", x.t, x.id.Short(), err, object.ErrCorrupt)
		}
		stack = append(stack, &frame{m: meta{x, body}, kids: kids})
		return nil
	}
	for _, h := range heads {
		if err := visit(typed{h, object.TypeCommit}); err != nil {
			return st, err
		}
		for len(stack) > 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			f := stack[len(stack)-1]
			if f.next < len(f.kids) {
				k := f.kids[f.next]
				f.next++
				if err := visit(k); err != nil {
					return st, err
				}
				continue
			}
			order = append(order, f.m)
			stack = stack[:len(stack)-1]
		}
	}

	// Pass 2: chunks, then metadata children-first, in one batch whose
	// metadata pack is finished after its chunk packs.
	b := dst.NewBatch()
	defer b.Abort()
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		body, err := get(c)
		if err != nil {
			return st, err
		}
		if _, err := b.Put(c.t, body); err != nil {
			return st, err
		}
		st.Objects++
		st.Bytes += int64(len(body))
	}
	for _, m := range order {
		if _, err := b.Put(m.t, m.body); err != nil {
			return st, err
		}
		st.Objects++
		st.Bytes += int64(len(m.body))
	}
	return st, b.Finish()
}
