package ui

import (
	"bytes"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
)

// Conflict is an open conflict with both versions, as the conflicts page
// shows them side by side.
type Conflict struct {
	repo.OpenConflict
	Whose string `json:"whose"`
	// Mine and Theirs are the texts at Path and at Copy (empty, with
	// Binary set, when either is not text, or too large to show).
	Mine   string `json:"mine"`
	Theirs string `json:"theirs"`
	Binary bool   `json:"binary"`
}

// Conflicts is the conflicts page.
type Conflicts struct {
	Conflicts []Conflict `json:"conflicts"`
}

func (s *Server) conflicts(r *http.Request) (any, error) {
	open, err := s.repo.Conflicts()
	if err != nil {
		return nil, err
	}
	out := Conflicts{Conflicts: []Conflict{}}
	for _, c := range open {
		k := Conflict{OpenConflict: c, Whose: c.Whose()}
		mine, mok := s.text(r, c.Path)
		theirs, tok := "", true
		if c.Copy != "" {
			theirs, tok = s.text(r, c.Copy)
		}
		if k.Binary = !mok || !tok; !k.Binary {
			k.Mine, k.Theirs = mine, theirs
		}
		out.Conflicts = append(out.Conflicts, k)
	}
	return out, nil
}

// text is the file at HEAD:p as text, and whether it is one.
func (s *Server) text(r *http.Request, p string) (string, bool) {
	e, _, err := s.repo.ResolveEntry("HEAD:" + p)
	if err != nil || (e.Kind != object.KindFile && e.Kind != object.KindExec) || e.Size > maxShown {
		return "", err != nil // a side that is gone is empty text
	}
	var buf bytes.Buffer
	if _, err := s.repo.Store.WriteFileTo(r.Context(), &buf, e.ID); err != nil {
		return "", false
	}
	if merge.IsBinary(buf.Bytes()) || !utf8.Valid(buf.Bytes()) {
		return "", false
	}
	return buf.String(), true
}

// resolve ends the conflicts at a path: keep "both" (the copy stays
// beside the file), "mine" (the file as it is; copies removed), "theirs"
// (the copy's version becomes the file's), or "text" (the text sent).
func (s *Server) resolve(r *http.Request) (any, error) {
	p, err := requiredPath(r.PostFormValue("path"), "resolve which path?")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var res *repo.ResolveResult
	switch keep := r.PostFormValue("keep"); keep {
	case "both", "mine":
		res, err = s.repo.ResolveConflict(r.Context(), p, keep == "mine")
	case "theirs":
		var copyPath string
		open, cerr := s.repo.Conflicts()
		if cerr != nil {
			return nil, cerr
		}
		for _, c := range open {
			if c.Path == p && c.Copy != "" {
				copyPath = c.Copy
			}
		}
		if copyPath == "" {
			return nil, badRequest(errors.New(p + " has no other version kept beside it: keep mine, or send the merged text"))
		}
		e, _, lerr := s.repo.ResolveEntry("HEAD:" + copyPath)
		if lerr != nil {
			return nil, lerr
		}
		var buf bytes.Buffer
		if _, err := s.repo.Store.WriteFileTo(r.Context(), &buf, e.ID); err != nil {
			return nil, err
		}
		res, err = s.repo.ResolveKeeping(r.Context(), p, buf.Bytes())
	case "text":
		res, err = s.repo.ResolveKeeping(r.Context(), p, []byte(r.PostFormValue("text")))
	default:
		return nil, badRequest(errors.New(`keep is "both", "mine", "theirs" or "text"`))
	}
	if err != nil {
		switch {
		case errors.Is(err, repo.ErrNoConflict):
			return nil, httpError{http.StatusNotFound, err}
		case errors.Is(err, repo.ErrUncommitted):
			return nil, httpError{http.StatusConflict, err}
		}
		return nil, err
	}
	return res, nil
}

func (s *Server) resolvePage(w http.ResponseWriter, r *http.Request) {
	v, err := s.resolve(r)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.tmpl.ExecuteTemplate(w, "resolved", map[string]any{"CSRF": s.csrf, "Data": v})
}
