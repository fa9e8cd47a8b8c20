package ui

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
)

// zipFolder sends a folder of a commit as a zip archive.
func (s *Server) zipFolder(w http.ResponseWriter, r *http.Request) {
	p, err := cleanPath(r.PathValue("path"))
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	e, id, err := s.repo.ResolveEntry(r.PathValue("rev") + ":" + p)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	if e.Kind != object.KindDir {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s is a %s: zip takes a folder (download a file with /raw/)", p, e.Kind))
		return
	}
	items, err := s.repo.List(e, "", true)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	name := path.Base(p)
	if p == "" {
		name = "mesh"
	}
	name += "-" + id.Short() + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	z := zip.NewWriter(w)
	for _, it := range items {
		switch it.Kind {
		case object.KindFile, object.KindExec:
			h := &zip.FileHeader{Name: it.Path, Method: zip.Deflate}
			h.SetMode(0o644)
			if it.Kind == object.KindExec {
				h.SetMode(0o755)
			}
			fw, err := z.CreateHeader(h)
			if err == nil {
				_, err = s.repo.Store.WriteFileTo(r.Context(), fw, it.ID)
			}
			if err != nil {
				s.log.Error("zip", "path", it.Path, "err", err)
				return // the client sees a truncated archive
			}
		case object.KindDir: // an empty folder
			if _, err := z.Create(it.Path + "/"); err != nil {
				return
			}
		case object.KindSymlink:
			target, err := s.repo.Store.ReadChunk(it.ID)
			if err != nil {
				return
			}
			h := &zip.FileHeader{Name: it.Path}
			h.SetMode(0o777 | 1<<27) // fs.ModeSymlink, as zip keeps it
			fw, err := z.CreateHeader(h)
			if err != nil {
				return
			}
			io.WriteString(fw, string(target))
		}
	}
	z.Close()
}

// FolderRestore is the preview of restoring a folder (or the whole tree)
// to a commit: what would change in the working tree.
type FolderRestore struct {
	Path    string            `json:"path"`
	Rev     string            `json:"rev"`
	Commit  Commit            `json:"commit"`
	Changes []repo.FileStatus `json:"changes"`
}

func (s *Server) folderPreview(r *http.Request) (any, error) {
	q := r.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		return nil, err
	}
	rev := q.Get("rev")
	if rev == "" {
		return nil, badRequest(errors.New("restore to which commit? rev=REV"))
	}
	id, err := s.repo.Resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := s.repo.Store.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	var paths []string
	if p != "" {
		paths = []string{p}
	}
	// The working tree against the commit: what a restore would undo.
	d, err := s.repo.Diff(r.Context(), []string{id.String()}, paths)
	if err != nil {
		return nil, err
	}
	out := FolderRestore{Path: p, Rev: id.String(), Commit: toCommit(id, c), Changes: []repo.FileStatus{}}
	for _, ch := range d.Changes {
		// Reverse it: the folder goes from what it is to what it was.
		ch.Old, ch.New = ch.New, ch.Old
		switch ch.Status {
		case "added":
			// In the folder, not in the commit: a restore removes it if
			// HEAD has it; a file never committed stays.
			if _, _, err := s.repo.ResolveEntry("HEAD:" + ch.Path); err != nil {
				continue
			}
			ch.Status = "deleted"
		case "deleted":
			ch.Status = "added"
		}
		if ch.Old != nil && ch.New != nil && ch.Old.Kind == object.KindDir && ch.New.Kind == object.KindDir {
			continue
		}
		out.Changes = append(out.Changes, ch)
	}
	return out, nil
}

// restoreFolder makes a folder (or the whole tree) match a commit, as
// mesh restore --source REV PATH does: an uncommitted change in the way
// refuses it, and files the commit lacks go.
func (s *Server) restoreFolder(r *http.Request) (any, error) {
	p, err := cleanPath(r.PostFormValue("path"))
	if err != nil {
		return nil, err
	}
	rev := r.PostFormValue("rev")
	if rev == "" {
		return nil, badRequest(errors.New("restore to which commit? rev=REV"))
	}
	var paths []string
	if p != "" {
		paths = []string{p}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.repo.Restore(r.Context(), repo.RestoreOptions{Source: rev, Paths: paths})
	if err != nil {
		return nil, restoreError(err)
	}
	return res, nil
}

func (s *Server) restoreFolderPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.restoreFolder(r)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	res := v.(*repo.RestoreResult)
	p, _ := cleanPath(r.PostFormValue("path"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.tmpl.ExecuteTemplate(w, "restored", map[string]any{"CSRF": s.csrf, "Data": Restored{Path: p, As: p, Source: res.Source}, "Folder": true})
}
