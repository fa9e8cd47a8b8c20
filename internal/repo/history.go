package repo

import (
	"container/heap"

	"github.com/mesh-sync/mesh/object"
)

// LogEntry is one commit in history.
type LogEntry struct {
	ID object.ID `json:"id"`
	*object.Commit
	// Path is the followed file's name at this commit (LogOptions.Follow).
	Path string `json:"path,omitempty"`
	// Entry is, for a log of one path, what the commit holds there (zero
	// where it deleted it).
	Entry object.Entry `json:"-"`
	// Graph are, for LogPaths, the commit's parents in the history shown,
	// as git log --parents gives them with paths: each parent, or the
	// commit the walk shows first below it; a parent from which the walk
	// shows nothing is left out, and one it did not reach (the walk
	// stopped at N) stays as it is.
	Graph []object.ID `json:"-"`
}

// Log returns up to n commits (all when n <= 0) reachable from start,
// newest first by commit time, each once, as git log orders them by default.
func (r *Repo) Log(start object.ID, n int) ([]LogEntry, error) {
	var out []LogEntry
	seen := map[object.ID]bool{start: true}
	q := &commitQueue{}
	c, err := r.Store.ReadCommit(start)
	if err != nil {
		return nil, err
	}
	heap.Push(q, LogEntry{ID: start, Commit: c})
	for q.Len() > 0 && (n <= 0 || len(out) < n) {
		e := heap.Pop(q).(LogEntry)
		out = append(out, e)
		for _, p := range e.Parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := r.Store.ReadCommit(p)
			if err != nil {
				return nil, err
			}
			heap.Push(q, LogEntry{ID: p, Commit: pc})
		}
	}
	return out, nil
}

// commitQueue orders commits newest first; ties by ID so the order is the
// same on every device.
type commitQueue []LogEntry

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	if q[i].Time != q[j].Time {
		return q[i].Time > q[j].Time
	}
	return q[i].ID.String() < q[j].ID.String()
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(LogEntry)) }
func (q *commitQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// DiffRoot is the diff of a root commit: everything it adds.
func (r *Repo) DiffRoot(id object.ID) (*DiffResult, error) {
	c, err := r.Store.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTrees(r.Store, object.ZeroID, c.Tree)
	if err != nil {
		return nil, err
	}
	return &DiffResult{From: Side{Label: "empty"}, To: Side{Label: id.Short(), Tree: c.Tree}, Changes: fileStatuses(changes), reader: r.Store}, nil
}

// ListItem is one entry of a listing, with its path from the listed root.
type ListItem struct {
	Path string `json:"path"`
	// PathBytes is Path's exact bytes when it is not UTF-8 (see RawName).
	PathBytes []byte      `json:"pathBytes,omitempty"`
	Kind      object.Kind `json:"kind"`
	Size      int64       `json:"size"`
	ID        object.ID   `json:"id"`
}

// List lists e (a directory: its entries; anything else: itself) with
// paths under base; recursive lists every file below, like git ls-tree -r.
func (r *Repo) List(e object.Entry, base string, recursive bool) ([]ListItem, error) {
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "/" + b
	}
	if e.Kind != object.KindDir {
		return []ListItem{{Path: base, PathBytes: RawName(base), Kind: e.Kind, Size: e.Size, ID: e.ID}}, nil
	}
	t, err := r.Store.ReadTree(e.ID)
	if err != nil {
		return nil, err
	}
	out := []ListItem{}
	for _, c := range t.Entries {
		p := join(base, c.Name)
		if recursive && c.Kind == object.KindDir {
			sub, err := r.List(c, p, true)
			if err != nil {
				return nil, err
			}
			if len(sub) > 0 {
				out = append(out, sub...)
				continue
			}
			// An empty directory is listed itself, or it would vanish.
		}
		out = append(out, ListItem{Path: p, PathBytes: RawName(p), Kind: c.Kind, Size: c.Size, ID: c.ID})
	}
	return out, nil
}
