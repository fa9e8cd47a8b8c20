package object

import (
	"errors"
	"fmt"
)

// Children returns the IDs an object refers to: a commit's tree and parents,
// a tree's entries, a file's chunks. body must be the object's verified body.
func Children(t Type, body []byte) ([]ID, error) {
	switch t {
	case TypeCommit:
		c, err := DecodeCommit(body)
		if err != nil {
			return nil, err
		}
		return append([]ID{c.Tree}, c.Parents...), nil
	case TypeTree:
		tr, err := DecodeTree(body)
		if err != nil {
			return nil, err
		}
		out := make([]ID, len(tr.Entries))
		for i, e := range tr.Entries {
			out[i] = e.ID
		}
		return out, nil
	case TypeFile:
		f, err := DecodeFile(body)
		if err != nil {
			return nil, err
		}
		out := make([]ID, len(f.Chunks))
		for i, c := range f.Chunks {
			out[i] = c.ID
		}
		return out, nil
	}
	return nil, nil
}

// Reachable marks every object reachable from roots. Chunks are not read,
// only looked up. A missing object is an error naming it, unless tolerate is
// set (roots from packs still being written may refer to packs not yet
// finished).
func (s *Store) Reachable(roots []ID, tolerate bool) (map[ID]struct{}, error) {
	seen := make(map[ID]struct{})
	stack := append([]ID(nil), roots...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[id]; ok {
			continue
		}
		t, _, err := s.Stat(id)
		if err != nil {
			if tolerate && errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		seen[id] = struct{}{}
		if t == TypeChunk {
			continue
		}
		_, body, err := s.Get(id)
		if err != nil {
			return nil, err
		}
		kids, err := Children(t, body)
		if err != nil {
			return nil, fmt.Errorf("object %s: %w (%w)", id.Short(), err, ErrCorrupt)
		}
		for _, k := range kids {
			if _, ok := seen[k]; !ok {
				stack = append(stack, k)
			}
		}
	}
	return seen, nil
}
