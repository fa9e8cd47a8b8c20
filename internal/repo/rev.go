package repo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mesh-sync/mesh/object"
)

// Resolve turns a revision into a commit ID. A revision is HEAD, a branch
// name, a full or unique abbreviated commit ID (at least 4 hex digits),
// followed by any number of ~N (N-th first-parent ancestor), ^ or ^N (N-th
// parent) suffixes.
func (r *Repo) Resolve(rev string) (object.ID, error) {
	base, suffix := rev, ""
	if i := strings.IndexAny(rev, "~^"); i >= 0 {
		base, suffix = rev[:i], rev[i:]
	}
	id, err := r.resolveBase(base, rev)
	if err != nil {
		return object.ZeroID, err
	}
	for suffix != "" {
		op := suffix[0]
		suffix = suffix[1:]
		j := 0
		for j < len(suffix) && suffix[j] >= '0' && suffix[j] <= '9' {
			j++
		}
		n := 1
		if j > 0 {
			n, err = strconv.Atoi(suffix[:j])
			if err != nil {
				return object.ZeroID, fmt.Errorf("%q: %w", rev, ErrUnknownRev)
			}
		}
		suffix = suffix[j:]
		if op == '~' {
			for k := 0; k < n; k++ {
				if id, err = r.parent(id, 1, rev); err != nil {
					return object.ZeroID, err
				}
			}
		} else if n > 0 {
			if id, err = r.parent(id, n, rev); err != nil {
				return object.ZeroID, err
			}
		}
	}
	return id, nil
}

func (r *Repo) parent(id object.ID, n int, rev string) (object.ID, error) {
	c, err := r.Store.ReadCommit(id)
	if err != nil {
		return object.ZeroID, err
	}
	if n > len(c.Parents) {
		return object.ZeroID, fmt.Errorf("%q: commit %s has %d parent(s): %w", rev, id.Short(), len(c.Parents), ErrUnknownRev)
	}
	return c.Parents[n-1], nil
}

func (r *Repo) resolveBase(base, rev string) (object.ID, error) {
	if base == "HEAD" || base == "" {
		h, err := r.Refs.Head()
		if err != nil {
			return object.ZeroID, err
		}
		if h.ID.IsZero() {
			return object.ZeroID, fmt.Errorf("HEAD (branch %s): %w; run mesh commit first", h.Branch, ErrNoCommits)
		}
		return h.ID, nil
	}
	for _, name := range []string{object.BranchRef(base), base} {
		if !object.ValidRefName(name) {
			continue
		}
		if id, ok, err := r.Refs.Get(name); err != nil {
			return object.ZeroID, err
		} else if ok {
			return id, nil
		}
	}
	if len(base) >= 4 && len(base) <= 2*object.IDSize && isHex(base) {
		var commits []object.ID
		for _, id := range r.Store.Resolve(strings.ToLower(base)) {
			if t, _, err := r.Store.Stat(id); err == nil && t == object.TypeCommit {
				commits = append(commits, id)
			}
		}
		switch len(commits) {
		case 1:
			return commits[0], nil
		case 0:
		default:
			var names []string
			for _, c := range commits {
				names = append(names, c.Short())
			}
			return object.ZeroID, fmt.Errorf("%q is ambiguous: %s: %w; give more digits", rev, strings.Join(names, ", "), ErrUnknownRev)
		}
	}
	return object.ZeroID, fmt.Errorf("%q: %w; give a branch, HEAD, or a commit ID (see mesh log)", rev, ErrUnknownRev)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// SplitSpec splits "REV:PATH" into its revision and path (cleaned, without
// leading or trailing slashes); a spec without ':' is a bare revision.
func SplitSpec(spec string) (rev, path string) {
	rev, path, _ = strings.Cut(spec, ":")
	return rev, strings.Trim(path, "/")
}

// ResolveEntry resolves "REV:PATH" to the entry at that path in that
// commit's tree (the root tree for an empty path) and the commit ID.
func (r *Repo) ResolveEntry(spec string) (object.Entry, object.ID, error) {
	rev, path := SplitSpec(spec)
	id, err := r.Resolve(rev)
	if err != nil {
		return object.Entry{}, object.ZeroID, err
	}
	c, err := r.Store.ReadCommit(id)
	if err != nil {
		return object.Entry{}, object.ZeroID, err
	}
	e, err := object.Lookup(r.Store, c.Tree, path)
	if err != nil {
		return object.Entry{}, object.ZeroID, fmt.Errorf("commit %s: %w", id.Short(), err)
	}
	return e, id, nil
}
