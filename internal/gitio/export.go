package gitio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	gitobj "github.com/go-git/go-git/v5/plumbing/object"
	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/object"
)

// Trailer ends the message of every git commit Export writes.
const Trailer = "Mesh-Commit: "

// OpenOrInit opens the git repository at dir, creating it (with HEAD on
// branch) if dir holds none.
func OpenOrInit(dir, branch string) (*git.Repository, bool, error) {
	r, err := git.PlainOpen(dir)
	if err == nil {
		return r, false, nil
	}
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, false, fmt.Errorf("%s: %v: %w", dir, err, ErrNotGit)
	}
	r, err = git.PlainInit(dir, false)
	if err != nil {
		return nil, false, fmt.Errorf("create git repository %s: %w", dir, err)
	}
	head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(branch))
	if err := r.Storer.SetReference(head); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// Exporter writes mesh commits into a git repository.
type Exporter struct {
	Git   *git.Repository
	Dir   string
	Store *object.Store
	Map   *IDMap

	trees map[object.ID]plumbing.Hash
	blobs map[object.ID]plumbing.Hash
}

// ExportResult says what Export did.
type ExportResult struct {
	Branch   string    `json:"branch"`
	Head     object.ID `json:"head,omitzero"`
	GitHead  string    `json:"gitHead"`
	Exported int       `json:"exported"`
	Known    int       `json:"alreadyExported"`
}

// Export writes head and its history, parents first, as git commits (those
// the git repository already holds are reused), then points branch at
// head's git commit.
func (ex *Exporter) Export(ctx context.Context, head object.ID, branch string) (*ExportResult, error) {
	ex.trees = map[object.ID]plumbing.Hash{}
	ex.blobs = map[object.ID]plumbing.Hash{}
	res := &ExportResult{Branch: branch, Head: head}
	order, err := ex.toExport(ctx, head)
	if err != nil {
		return nil, err
	}
	// Known counts all of head's history that was there before, not
	// just where the walk stopped.
	total, err := meshHistory(ex.Store, head)
	if err != nil {
		return nil, err
	}
	res.Known = total - len(order)
	meter := progress.From(ctx)
	meter.SetUnit("commits")
	meter.SetTotal(int64(len(order)), 0)
	for _, id := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := ex.commit(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("export commit %s: %w", id.Short(), err)
		}
		ex.Map.add(h, id)
		res.Exported++
		meter.Add(1, 0)
	}
	gh, _ := ex.git(head)
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), gh)
	if err := ex.Git.Storer.SetReference(ref); err != nil {
		return nil, err
	}
	res.GitHead = gh.String()
	return res, ex.Map.Save()
}

// has reports whether the git repository holds the commit the map pairs
// with id.
func (ex *Exporter) has(id object.ID) bool {
	_, ok := ex.git(id)
	return ok
}

// git is the git commit of this repository that mesh commit id became:
// of the commits the map pairs with id, one this repository holds (the
// commit id was imported from may be in another).
func (ex *Exporter) git(id object.ID) (plumbing.Hash, bool) {
	return ex.Map.GitIn(id, func(g plumbing.Hash) bool { return ex.Git.Storer.HasEncodedObject(g) == nil })
}

func (ex *Exporter) toExport(ctx context.Context, head object.ID) ([]object.ID, error) {
	var order []object.ID
	state := map[object.ID]bool{}
	type frame struct {
		id      object.ID
		parents []object.ID
		next    int
	}
	var stack []*frame
	visit := func(id object.ID) error {
		if state[id] {
			return nil
		}
		state[id] = true
		if ex.has(id) {
			return nil
		}
		c, err := ex.Store.ReadCommit(id)
		if err != nil {
			return err
		}
		stack = append(stack, &frame{id: id, parents: c.Parents})
		return nil
	}
	if err := visit(head); err != nil {
		return nil, err
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := stack[len(stack)-1]
		if f.next < len(f.parents) {
			f.next++
			if err := visit(f.parents[f.next-1]); err != nil {
				return nil, err
			}
			continue
		}
		order = append(order, f.id)
		stack = stack[:len(stack)-1]
	}
	return order, nil
}

var authorRE = regexp.MustCompile(`^(.*?)\s*<([^<>]*)>$`)

func signature(author string, t int64, tz int16) gitobj.Signature {
	s := gitobj.Signature{Name: author, When: time.Unix(t, 0).In(time.FixedZone("", int(tz)*60))}
	if m := authorRE.FindStringSubmatch(author); m != nil {
		s.Name, s.Email = m[1], m[2]
	}
	return s
}

func (ex *Exporter) commit(ctx context.Context, id object.ID) (plumbing.Hash, error) {
	c, err := ex.Store.ReadCommit(id)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	tree, err := ex.tree(ctx, c.Tree)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := signature(c.Author, c.Time, c.TZ)
	msg := c.Message
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	msg += "\n" + Trailer + id.String() + "\n"
	gc := &gitobj.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: tree}
	for _, p := range c.Parents {
		g, ok := ex.git(p)
		if !ok {
			return plumbing.ZeroHash, fmt.Errorf("parent %s not exported", p.Short())
		}
		gc.ParentHashes = append(gc.ParentHashes, g)
	}
	obj := ex.Git.Storer.NewEncodedObject()
	if err := gc.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return ex.Git.Storer.SetEncodedObject(obj)
}

func (ex *Exporter) tree(ctx context.Context, id object.ID) (plumbing.Hash, error) {
	if h, ok := ex.trees[id]; ok {
		return h, nil
	}
	t, err := ex.Store.ReadTree(id)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	gt := &gitobj.Tree{}
	for _, e := range t.Entries {
		en := gitobj.TreeEntry{Name: e.Name}
		switch e.Kind {
		case object.KindDir:
			en.Mode = filemode.Dir
			en.Hash, err = ex.tree(ctx, e.ID)
		case object.KindSymlink:
			en.Mode = filemode.Symlink
			var target []byte
			if target, err = ex.Store.ReadChunk(e.ID); err == nil {
				en.Hash, err = ex.putBlob(int64(len(target)), func(w io.Writer) error { _, err := w.Write(target); return err })
			}
		default:
			en.Mode = filemode.Regular
			if e.Kind == object.KindExec {
				en.Mode = filemode.Executable
			}
			en.Hash, err = ex.blob(ctx, e.ID, e.Size)
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		gt.Entries = append(gt.Entries, en)
	}
	sort.Sort(gitobj.TreeEntrySorter(gt.Entries))
	obj := ex.Git.Storer.NewEncodedObject()
	if err := gt.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := ex.Git.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ex.trees[id] = h
	return h, nil
}

func (ex *Exporter) blob(ctx context.Context, id object.ID, size int64) (plumbing.Hash, error) {
	if h, ok := ex.blobs[id]; ok {
		return h, nil
	}
	h, err := ex.putBlob(size, func(w io.Writer) error {
		n, err := ex.Store.WriteFileTo(ctx, w, id)
		if err == nil && n != size {
			err = fmt.Errorf("file %s holds %d bytes, its tree says %d: %w", id.Short(), n, size, object.ErrCorrupt)
		}
		return err
	})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ex.blobs[id] = h
	return h, nil
}

func (ex *Exporter) putBlob(size int64, write func(io.Writer) error) (plumbing.Hash, error) {
	obj := ex.Git.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(size)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := write(w); err != nil {
		w.Close()
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return ex.Git.Storer.SetEncodedObject(obj)
}

// meshHistory counts head and its ancestors: what import and export report
// as the history that was there already, besides what they added.
func meshHistory(st *object.Store, head object.ID) (int, error) {
	seen := map[object.ID]bool{head: true}
	stack := []object.ID{head}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		c, err := st.ReadCommit(id)
		if err != nil {
			return 0, err
		}
		for _, p := range c.Parents {
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	return len(seen), nil
}
