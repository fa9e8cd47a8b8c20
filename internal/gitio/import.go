package gitio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	gitobj "github.com/go-git/go-git/v5/plumbing/object"
	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/object"
)

// ErrNotGit is the kind of error for a path that is not a usable git
// repository (missing, shallow, damaged).
var ErrNotGit = errors.New("not a usable git repository")

// Open opens the git repository at dir (a working tree or a bare one).
func Open(dir string) (*git.Repository, error) {
	r, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w (no .git there)", dir, ErrNotGit)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", dir, err, ErrNotGit)
	}
	return r, nil
}

// Importer converts git commits into mesh objects.
type Importer struct {
	Git     *git.Repository
	Dir     string // names the repository in errors
	Store   *object.Store
	Chunker *object.Chunker
	Map     *IDMap
	// Device and the commits' other fields come from git; Device names
	// the origin in mesh's log.
	Device string

	batch *object.Batch
	trees map[plumbing.Hash]object.ID
	blobs map[plumbing.Hash]fileRef
	// skips lists, per git tree, the submodules left out below it
	// ("path commit", the path relative to that tree), and skipped the
	// paths of every one this import left out.
	skips   map[plumbing.Hash][]string
	skipped map[string]bool
}

type fileRef struct {
	id   object.ID
	size int64
}

// ImportResult says what Import did.
type ImportResult struct {
	Branch   string    `json:"branch"`
	GitHead  string    `json:"gitHead"`
	Head     object.ID `json:"head,omitzero"`
	Imported int       `json:"imported"`
	Known    int       `json:"alreadyImported"`
	// Submodules lists the submodule paths left out of the imported
	// commits: mesh keeps no gitlinks, so each commit that had one says
	// so in a SubmoduleTrailer line of its message instead.
	Submodules []string `json:"submodules"`
}

// SubmoduleTrailer starts a line of an imported commit's message for each
// submodule its git tree had and the mesh tree leaves out: the path and
// the commit it was at.
const SubmoduleTrailer = "Mesh-Skipped-Submodule: "

// Import converts the history of branch (empty: the branch HEAD names)
// that the map does not hold yet, parents first, into the store, and
// records it in the map once it is durable.
func (im *Importer) Import(ctx context.Context, branch string) (*ImportResult, error) {
	shallow, err := im.Git.Storer.Shallow()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", im.Dir, err, ErrNotGit)
	}
	if len(shallow) > 0 {
		return nil, fmt.Errorf("%s is a shallow clone (%d commits lack their parents): %w; run git fetch --unshallow there first", im.Dir, len(shallow), ErrNotGit)
	}
	var ref *plumbing.Reference
	if branch == "" {
		ref, err = im.Git.Head()
		if err == nil && !ref.Name().IsBranch() {
			return nil, fmt.Errorf("%s: HEAD is detached; name a branch with --branch", im.Dir)
		}
	} else {
		ref, err = im.Git.Reference(plumbing.NewBranchReferenceName(branch), true)
	}
	if err != nil && branch == "" {
		target := ""
		if h, herr := im.Git.Storer.Reference(plumbing.HEAD); herr == nil && h.Type() == plumbing.SymbolicReference {
			target = h.Target().Short()
		}
		return nil, fmt.Errorf("%s: HEAD names branch %q, which has no commits (%v); name a branch with --branch", im.Dir, target, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: branch %q: %v; git branch --list there shows the branches", im.Dir, branch, err)
	}
	res := &ImportResult{Branch: ref.Name().Short(), GitHead: ref.Hash().String()}

	order, err := im.toImport(ctx, ref.Hash())
	if err != nil {
		return nil, err
	}
	im.batch = im.Store.NewBatch()
	defer im.batch.Abort()
	im.trees = map[plumbing.Hash]object.ID{}
	im.blobs = map[plumbing.Hash]fileRef{}
	im.skips = map[plumbing.Hash][]string{}
	im.skipped = map[string]bool{}
	pending := map[plumbing.Hash]object.ID{}
	meter := progress.From(ctx)
	meter.SetUnit("commits")
	meter.SetTotal(int64(len(order)), 0)
	for _, c := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, err := im.commit(ctx, c, pending)
		if err != nil {
			return nil, err
		}
		pending[c.Hash] = id
		meter.Add(1, 0)
	}
	if err := im.batch.Finish(); err != nil {
		return nil, err
	}
	for g, id := range pending {
		im.Map.add(g, id)
	}
	if err := im.Map.Save(); err != nil {
		return nil, err
	}
	res.Imported = len(order)
	for p := range im.skipped {
		res.Submodules = append(res.Submodules, p)
	}
	sort.Strings(res.Submodules)
	res.Head, _ = im.Map.Mesh(ref.Hash())
	// The history that was here already, counted on the mesh side (local
	// packs, not git's objects): all of head's commits but the new ones.
	total, err := meshHistory(im.Store, res.Head)
	if err != nil {
		return nil, err
	}
	res.Known = total - len(order)
	return res, nil
}

// toImport lists the commits under head the map lacks, parents before
// children (go-git's post-order iterator yields a commit before its
// parents, so the walk is ours).
func (im *Importer) toImport(ctx context.Context, head plumbing.Hash) ([]*gitobj.Commit, error) {
	var order []*gitobj.Commit
	state := map[plumbing.Hash]uint8{} // 1 on the stack, 2 done
	type frame struct {
		c    *gitobj.Commit
		next int
	}
	var stack []*frame
	visit := func(h plumbing.Hash) error {
		if state[h] != 0 {
			return nil
		}
		if _, ok := im.Map.Mesh(h); ok {
			state[h] = 2
			return nil
		}
		c, err := im.Git.CommitObject(h)
		if err != nil {
			return fmt.Errorf("%s: commit %s: %v: %w", im.Dir, h, err, ErrNotGit)
		}
		state[h] = 1
		stack = append(stack, &frame{c: c})
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
		if f.next < len(f.c.ParentHashes) {
			p := f.c.ParentHashes[f.next]
			f.next++
			if err := visit(p); err != nil {
				return nil, err
			}
			continue
		}
		state[f.c.Hash] = 2
		order = append(order, f.c)
		stack = stack[:len(stack)-1]
	}
	return order, nil
}

func (im *Importer) commit(ctx context.Context, c *gitobj.Commit, pending map[plumbing.Hash]object.ID) (object.ID, error) {
	tree, err := im.tree(ctx, c.TreeHash, "")
	if err != nil {
		return object.ZeroID, fmt.Errorf("%s: commit %s: %w", im.Dir, c.Hash.String()[:12], err)
	}
	msg := c.Message
	if skips := im.skips[c.TreeHash]; len(skips) > 0 {
		if !strings.HasSuffix(msg, "\n") {
			msg += "\n"
		}
		msg += "\n"
		for _, sk := range skips {
			msg += SubmoduleTrailer + sk + "\n"
			p, _, _ := strings.Cut(sk, " ")
			im.skipped[p] = true
		}
	}
	mc := &object.Commit{Tree: tree, Device: im.Device, Message: msg}
	mc.Author = c.Author.Name + " <" + c.Author.Email + ">"
	mc.Time = c.Author.When.Unix()
	_, off := c.Author.When.Zone()
	mc.TZ = int16(off / 60)
	seen := map[object.ID]bool{}
	for _, p := range c.ParentHashes {
		id, ok := pending[p]
		if !ok {
			id, ok = im.Map.Mesh(p)
		}
		if !ok {
			return object.ZeroID, fmt.Errorf("%s: commit %s: parent %s not converted", im.Dir, c.Hash, p)
		}
		if !seen[id] { // git allows a parent twice; mesh does not
			seen[id] = true
			mc.Parents = append(mc.Parents, id)
		}
	}
	return im.batch.Put(object.TypeCommit, mc.Encode())
}

func (im *Importer) tree(ctx context.Context, h plumbing.Hash, path string) (object.ID, error) {
	if id, ok := im.trees[h]; ok {
		return id, nil
	}
	gt, err := im.Git.TreeObject(h)
	if err != nil {
		return object.ZeroID, fmt.Errorf("tree %s (%s/): %v: %w", h.String()[:12], path, err, ErrNotGit)
	}
	t := &object.Tree{}
	var skips []string
	for _, e := range gt.Entries {
		p := path + "/" + e.Name
		if !object.ValidName(e.Name) {
			return object.ZeroID, fmt.Errorf("%s: a name mesh cannot hold: %w", p, ErrNotGit)
		}
		en := object.Entry{Name: e.Name}
		switch e.Mode {
		case filemode.Dir:
			en.Kind = object.KindDir
			if en.ID, err = im.tree(ctx, e.Hash, p); err != nil {
				return object.ZeroID, err
			}
			for _, sk := range im.skips[e.Hash] {
				skips = append(skips, e.Name+"/"+sk)
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			en.Kind = object.KindFile
			if e.Mode == filemode.Executable {
				en.Kind = object.KindExec
			}
			f, err := im.blob(ctx, e.Hash, p)
			if err != nil {
				return object.ZeroID, err
			}
			en.ID, en.Size = f.id, f.size
		case filemode.Symlink:
			en.Kind = object.KindSymlink
			target, err := im.blobBytes(e.Hash, p)
			if err != nil {
				return object.ZeroID, err
			}
			if en.ID, err = im.batch.Put(object.TypeChunk, target); err != nil {
				return object.ZeroID, err
			}
			en.Size = int64(len(target))
		case filemode.Submodule:
			// A gitlink names a commit of another repository, which is
			// not here: left out, and said (see SubmoduleTrailer).
			skips = append(skips, e.Name+" "+e.Hash.String())
			continue
		default:
			return object.ZeroID, fmt.Errorf("%s has git mode %o, which mesh does not know", p, uint32(e.Mode))
		}
		t.Entries = append(t.Entries, en)
	}
	// git orders a directory as if its name ended in '/'; mesh by name.
	sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Name < t.Entries[j].Name })
	body, err := t.Encode()
	if err != nil {
		return object.ZeroID, fmt.Errorf("tree %s: %w", path+"/", err)
	}
	id, err := im.batch.Put(object.TypeTree, body)
	if err != nil {
		return object.ZeroID, err
	}
	im.trees[h] = id
	if len(skips) > 0 {
		im.skips[h] = skips // relative to this tree: it may be at several paths
	}
	return id, nil
}

func (im *Importer) blob(ctx context.Context, h plumbing.Hash, path string) (fileRef, error) {
	if f, ok := im.blobs[h]; ok {
		return f, nil
	}
	b, err := im.Git.BlobObject(h)
	if err != nil {
		return fileRef{}, fmt.Errorf("%s: blob %s: %v: %w", path, h.String()[:12], err, ErrNotGit)
	}
	r, err := b.Reader()
	if err != nil {
		return fileRef{}, fmt.Errorf("%s: blob %s: %v: %w", path, h.String()[:12], err, ErrNotGit)
	}
	defer r.Close()
	id, n, err := im.Chunker.WriteFile(ctx, im.batch, r, b.Size)
	if err != nil {
		return fileRef{}, fmt.Errorf("%s: blob %s: %v: %w", path, h.String()[:12], err, ErrNotGit)
	}
	if n != b.Size {
		return fileRef{}, fmt.Errorf("%s: blob %s holds %d bytes, its header says %d: %w", path, h.String()[:12], n, b.Size, ErrNotGit)
	}
	f := fileRef{id, n}
	im.blobs[h] = f
	return f, nil
}

func (im *Importer) blobBytes(h plumbing.Hash, path string) ([]byte, error) {
	b, err := im.Git.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %v: %w", path, h.String()[:12], err, ErrNotGit)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %v: %w", path, h.String()[:12], err, ErrNotGit)
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, 1<<20))
}
