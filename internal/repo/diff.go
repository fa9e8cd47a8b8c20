package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
)

// Side is one side of a diff: a commit's tree, or the working tree.
type Side struct {
	Label    string    // "a" side name in headers, e.g. a commit short ID or "worktree"
	Tree     object.ID // the tree
	Worktree bool      // contents are read from disk, not the store
}

// DiffResult is the changes between two sides.
type DiffResult struct {
	From    Side         `json:"-"`
	To      Side         `json:"-"`
	Changes []FileStatus `json:"changes"`
	reader  object.TreeReader
}

// DiffSpec names what to compare: no revisions, HEAD against the working
// tree; one, that commit against the working tree; two, one commit against
// another. Paths limit the result.
func (r *Repo) Diff(ctx context.Context, revs []string, paths []string) (*DiffResult, error) {
	var reader object.TreeReader = r.Store
	side := func(rev string) (Side, error) {
		id, err := r.Resolve(rev)
		if err != nil {
			return Side{}, err
		}
		c, err := r.Store.ReadCommit(id)
		if err != nil {
			return Side{}, err
		}
		return Side{Label: id.Short(), Tree: c.Tree}, nil
	}
	var from, to Side
	var err error
	switch len(revs) {
	case 0, 1:
		if len(revs) == 0 {
			h, tree, err := r.headTree()
			if err != nil {
				return nil, err
			}
			from = Side{Label: "HEAD", Tree: tree}
			if !h.ID.IsZero() {
				from.Label = h.ID.Short()
			}
		} else if from, err = side(revs[0]); err != nil {
			return nil, err
		}
		snap, err := r.scanHashOnly(ctx, false)
		if err != nil {
			return nil, err
		}
		to = Side{Label: "worktree", Tree: snap.Root, Worktree: true}
		reader = overlay{snap, r.Store}
	case 2:
		if from, err = side(revs[0]); err != nil {
			return nil, err
		}
		if to, err = side(revs[1]); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("diff takes at most two revisions, got %d", len(revs))
	}
	changes, err := object.DiffTrees(reader, from.Tree, to.Tree)
	if err != nil {
		return nil, err
	}
	var clean []string
	for _, p := range paths {
		clean = append(clean, strings.Trim(filepath.ToSlash(filepath.Clean(p)), "/"))
	}
	if len(clean) == 1 && (clean[0] == "." || clean[0] == "") {
		clean = nil
	}
	changes = filterPaths(changes, clean)
	return &DiffResult{From: from, To: to, Changes: fileStatuses(changes), reader: reader}, nil
}

// maxTextDiff is the largest file shown as a line diff; larger ones are
// summarised, as a diff that size is not something a person reads.
const maxTextDiff = 8 << 20

// WritePatch writes the result as a unified diff, git style.
func (r *Repo) WritePatch(ctx context.Context, w io.Writer, d *DiffResult) error {
	for _, c := range d.Changes {
		if err := r.writeFilePatch(ctx, w, d, c); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) content(ctx context.Context, e *object.Entry, path string, fromDisk bool) ([]byte, error) {
	if e == nil || e.Kind == object.KindDir {
		return nil, nil
	}
	if e.Kind == object.KindSymlink {
		if fromDisk {
			t, err := os.Readlink(filepath.Join(r.Root, filepath.FromSlash(path)))
			return []byte(t), err
		}
		return r.Store.ReadChunk(e.ID)
	}
	if e.Size > maxTextDiff {
		return nil, nil
	}
	if fromDisk {
		return os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(path)))
	}
	var buf bytes.Buffer
	_, err := r.Store.WriteFileTo(ctx, &buf, e.ID)
	return buf.Bytes(), err
}

func mode(e *object.Entry) string {
	switch e.Kind {
	case object.KindExec:
		return "100755"
	case object.KindSymlink:
		return "120000"
	case object.KindDir:
		return "040000"
	}
	return "100644"
}

func (r *Repo) writeFilePatch(ctx context.Context, w io.Writer, d *DiffResult, c FileStatus) error {
	if (c.Old != nil && c.Old.Kind == object.KindDir) || (c.New != nil && c.New.Kind == object.KindDir) {
		if c.Old != nil && c.New != nil && c.Old.Kind != c.New.Kind {
			// A file replaced a directory or the reverse: show the file side.
		} else {
			return nil
		}
	}
	from := c.Path
	if c.From != "" {
		from = c.From
	}
	fmt.Fprintf(w, "diff --mesh %s %s\n", QuotePath("a/"+from), QuotePath("b/"+c.Path))
	switch {
	case c.Status == "renamed":
		fmt.Fprintf(w, "similarity index %d%%\nrename from %s\nrename to %s\n", c.Score, QuotePath(c.From), QuotePath(c.Path))
		if c.Old.Kind != c.New.Kind {
			fmt.Fprintf(w, "old mode %s\nnew mode %s\n", mode(c.Old), mode(c.New))
		}
	case c.Old == nil || c.Old.Kind == object.KindDir:
		fmt.Fprintf(w, "new file mode %s\n", mode(c.New))
	case c.New == nil || c.New.Kind == object.KindDir:
		fmt.Fprintf(w, "deleted file mode %s\n", mode(c.Old))
	case c.Old.Kind != c.New.Kind:
		fmt.Fprintf(w, "old mode %s\nnew mode %s\n", mode(c.Old), mode(c.New))
	}
	a, b, binary, same, err := r.sides(ctx, d, c)
	if err != nil || same {
		return err
	}
	oldE, newE := fileSide(c.Old), fileSide(c.New)
	if binary {
		fmt.Fprintf(w, "Binary files %s and %s differ\n", QuotePath("a/"+from), QuotePath("b/"+c.Path))
		return nil
	}
	an, bn := QuotePath("a/"+from), QuotePath("b/"+c.Path)
	if oldE == nil {
		an = "/dev/null"
	}
	if newE == nil {
		bn = "/dev/null"
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", an, bn)
	writeHunks(w, merge.Lines(a), merge.Lines(b), 3)
	return nil
}

// writeHunks writes unified diff hunks with ctx lines of context.
func writeHunks(w io.Writer, a, b [][]byte, ctx int) {
	ops := merge.Diff(a, b)
	// Group ops into hunks: changes closer than 2*ctx equal lines share one.
	type span struct{ start, end int } // indexes into ops
	var hunks []span
	for i, o := range ops {
		if o.Kind == merge.Equal {
			continue
		}
		if n := len(hunks); n > 0 {
			gap := 0
			for k := hunks[n-1].end + 1; k < i; k++ {
				gap += ops[k].A1 - ops[k].A0
			}
			if gap <= 2*ctx {
				hunks[n-1].end = i
				continue
			}
		}
		hunks = append(hunks, span{i, i})
	}
	line := func(prefix byte, l []byte) {
		w.Write([]byte{prefix})
		w.Write(l)
		if len(l) == 0 || l[len(l)-1] != '\n' {
			io.WriteString(w, "\n\\ No newline at end of file\n")
		}
	}
	for _, h := range hunks {
		first, last := ops[h.start], ops[h.end]
		a0 := max(first.A0-ctx, 0)
		b0 := max(first.B0-ctx, 0)
		a1 := min(last.A1+ctx, len(a))
		b1 := min(last.B1+ctx, len(b))
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(a0, a1), hunkRange(b0, b1))
		for k := a0; k < first.A0; k++ {
			line(' ', a[k])
		}
		for _, o := range ops[h.start : h.end+1] {
			switch o.Kind {
			case merge.Equal:
				for k := o.A0; k < o.A1; k++ {
					line(' ', a[k])
				}
			case merge.Delete:
				for k := o.A0; k < o.A1; k++ {
					line('-', a[k])
				}
			case merge.Insert:
				for k := o.B0; k < o.B1; k++ {
					line('+', b[k])
				}
			}
		}
		for k := last.A1; k < a1; k++ {
			line(' ', a[k])
		}
	}
}

func hunkRange(from, to int) string {
	n := to - from
	switch {
	case n == 0:
		return fmt.Sprintf("%d,0", from)
	case n == 1:
		return fmt.Sprintf("%d", from+1)
	}
	return fmt.Sprintf("%d,%d", from+1, n)
}

// DetectRenames pairs the files d deletes with the files it adds, as
// git's -M does (merge.FindRenames): each pair becomes one "renamed"
// change at the new path, From naming the old one.
func (r *Repo) DetectRenames(ctx context.Context, d *DiffResult) error {
	var srcs, dsts []merge.RenameCandidate
	isFile := func(e *object.Entry) bool {
		return e != nil && (e.Kind == object.KindFile || e.Kind == object.KindExec)
	}
	for _, c := range d.Changes {
		switch {
		case c.Status == "deleted" && isFile(c.Old):
			srcs = append(srcs, merge.RenameCandidate{Path: c.Path, Entry: *c.Old})
		case c.Status == "added" && isFile(c.New):
			dsts = append(dsts, merge.RenameCandidate{Path: c.Path, Entry: *c.New})
		}
	}
	if len(srcs) == 0 || len(dsts) == 0 {
		return nil
	}
	read := func(e object.Entry) ([]byte, error) {
		if d.To.Worktree && !r.Store.Has(e.ID) {
			return nil, nil // a file of the working tree: only exact renames
		}
		return r.content(ctx, &e, "", false)
	}
	pairs, err := merge.FindRenames(srcs, dsts, read)
	if err != nil || len(pairs) == 0 {
		return err
	}
	from := map[string]merge.Rename{}
	gone := map[string]bool{}
	for _, p := range pairs {
		from[p.To] = p
		gone[p.From] = true
	}
	olds := map[string]*object.Entry{}
	for _, c := range d.Changes {
		if gone[c.Path] && c.Status == "deleted" {
			olds[c.Path] = c.Old
		}
	}
	out := d.Changes[:0]
	for _, c := range d.Changes {
		if gone[c.Path] && c.Status == "deleted" {
			continue
		}
		if p, ok := from[c.Path]; ok && c.Status == "added" {
			c.Status, c.From, c.Score, c.Old = "renamed", p.From, p.Score, olds[p.From]
		}
		out = append(out, c)
	}
	d.Changes = out
	return nil
}

// fileSide is e, or nil for a directory or no entry: the side of a
// change a line diff has.
func fileSide(e *object.Entry) *object.Entry {
	if e == nil || e.Kind == object.KindDir {
		return nil
	}
	return e
}

// sides reads the two contents of change c of d: binary when either has
// no lines to compare (too large or not text), same when both are one
// object.
func (r *Repo) sides(ctx context.Context, d *DiffResult, c FileStatus) (a, b []byte, binary, same bool, err error) {
	oldE, newE := fileSide(c.Old), fileSide(c.New)
	if oldE != nil && newE != nil && oldE.ID == newE.ID {
		return nil, nil, false, true, nil
	}
	from := c.Path
	if c.From != "" {
		from = c.From
	}
	if a, err = r.content(ctx, oldE, from, false); err != nil {
		return
	}
	if b, err = r.content(ctx, newE, c.Path, d.To.Worktree); err != nil {
		return
	}
	binary = (oldE != nil && oldE.Size > maxTextDiff) || (newE != nil && newE.Size > maxTextDiff) || merge.IsBinary(a) || merge.IsBinary(b)
	return a, b, binary, false, nil
}

// CountLines fills in each change's Added and Deleted lines (Binary for
// files without lines), as git's --stat counts them.
func (r *Repo) CountLines(ctx context.Context, d *DiffResult) error {
	for i := range d.Changes {
		c := &d.Changes[i]
		if fileSide(c.Old) == nil && fileSide(c.New) == nil {
			continue
		}
		a, b, binary, same, err := r.sides(ctx, d, *c)
		if err != nil {
			return err
		}
		if same {
			continue
		}
		if binary {
			c.Binary = true
			continue
		}
		for _, o := range merge.Diff(merge.Lines(a), merge.Lines(b)) {
			switch o.Kind {
			case merge.Delete:
				c.Deleted += o.A1 - o.A0
			case merge.Insert:
				c.Added += o.B1 - o.B0
			}
		}
	}
	return nil
}
