package repo

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/mesh-sync/mesh/internal/gitio"
	"github.com/mesh-sync/mesh/object"
)

// gitMapFile, in .mesh, pairs git commits with the mesh commits they
// became (import) or came from (export).
const gitMapFile = "git.map"

// ImportGitResult says what ImportGit did.
type ImportGitResult struct {
	gitio.ImportResult
	Ref        string       `json:"ref"`
	CheckedOut *MergeResult `json:"checkedOut,omitempty"`
}

// ImportGit recreates the history of a git repository's branch (empty:
// the one its HEAD names) as mesh commits, only those not imported
// before, and points ref git/<branch> at the result. On a repository with
// no commits yet, the current branch then takes that history and the
// working tree is checked out.
func (r *Repo) ImportGit(ctx context.Context, gitDir, branch string) (*ImportGitResult, error) {
	res, err := r.importGit(ctx, gitDir, branch)
	if err != nil {
		return nil, err
	}
	if h, err := r.Head(); err == nil && h.ID.IsZero() && h.Branch != "" {
		m, err := r.Merge(ctx, res.Ref, MergeOptions{})
		if err != nil {
			return res, err
		}
		res.CheckedOut = m
	}
	return res, nil
}

func (r *Repo) importGit(ctx context.Context, gitDir, branch string) (*ImportGitResult, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	g, err := gitio.Open(gitDir)
	if err != nil {
		return nil, err
	}
	m, err := gitio.LoadIDMap(filepath.Join(r.Meta, gitMapFile))
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(gitDir)
	im := &gitio.Importer{Git: g, Dir: abs, Store: r.Store, Chunker: r.chunker, Map: m, Device: "git"}
	ir, err := im.Import(ctx, branch)
	if err != nil {
		return nil, err
	}
	res := &ImportGitResult{ImportResult: *ir, Ref: "git/" + ir.Branch}
	old, _, err := r.Refs.Get(res.Ref)
	if err != nil {
		return nil, err
	}
	if old != ir.Head {
		if err := r.Refs.Update(ctx, res.Ref, old, ir.Head, "import-git: "+abs+" "+ir.Branch); err != nil {
			return nil, err
		}
	}
	// A history brought in at once is what log -- PATH walks next.
	if err := r.fillPathFilters(ir.Head); err != nil {
		return nil, err
	}
	return res, nil
}

// ExportGit writes rev (empty: HEAD) and its history into the git
// repository at gitDir (created if absent) as branch (empty: the current
// branch, or main), reusing what an earlier export or import put there.
func (r *Repo) ExportGit(ctx context.Context, gitDir, rev, branch string) (*gitio.ExportResult, error) {
	if rev == "" {
		rev = "HEAD"
	}
	id, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	if branch == "" {
		branch = "main"
		if h, err := r.Head(); err == nil && h.Branch != "" {
			branch = h.Branch
		}
	}
	if !object.ValidRefName(object.BranchRef(branch)) {
		return nil, fmt.Errorf("%q cannot name a branch", branch)
	}
	g, _, err := gitio.OpenOrInit(gitDir, branch)
	if err != nil {
		return nil, err
	}
	m, err := gitio.LoadIDMap(filepath.Join(r.Meta, gitMapFile))
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(gitDir)
	ex := &gitio.Exporter{Git: g, Dir: abs, Store: r.Store, Map: m}
	return ex.Export(ctx, id, branch)
}
