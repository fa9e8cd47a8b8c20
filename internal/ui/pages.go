package ui

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
)

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/history", http.StatusSeeOther)
	})
	m.HandleFunc("GET /history", s.page("history", s.history))
	m.HandleFunc("GET /api/log", s.api(s.history))
	m.HandleFunc("GET /tree/{rev}/{path...}", s.page("tree", s.tree))
	m.HandleFunc("GET /api/tree/{rev}/{path...}", s.api(s.tree))
	m.HandleFunc("GET /raw/{rev}/{path...}", s.raw)
	m.HandleFunc("GET /switch", s.switchCommit)
	m.HandleFunc("GET /versions/{path...}", s.page("versions", s.versions))
	m.HandleFunc("GET /api/versions/{path...}", s.api(s.versions))
	m.HandleFunc("GET /diff", s.page("diff", s.diff))
	m.HandleFunc("GET /api/diff", s.api(s.diff))
	m.HandleFunc("POST /restore", s.restorePage)
	m.HandleFunc("POST /api/restore", s.api(s.restore))
	m.HandleFunc("GET /zip/{rev}/{path...}", s.zipFolder)
	m.HandleFunc("GET /restore-folder", s.page("folder", s.folderPreview))
	m.HandleFunc("GET /api/restore-folder", s.api(s.folderPreview))
	m.HandleFunc("POST /restore-folder", s.restoreFolderPage)
	m.HandleFunc("POST /api/restore-folder", s.api(s.restoreFolder))
	m.HandleFunc("GET /devices", s.page("devices", s.devices))
	m.HandleFunc("GET /api/devices", s.api(s.devices))
	m.HandleFunc("GET /conflicts", s.page("conflicts", s.conflicts))
	m.HandleFunc("GET /api/conflicts", s.api(s.conflicts))
	m.HandleFunc("POST /resolve", s.resolvePage)
	m.HandleFunc("POST /api/resolve", s.api(s.resolve))
	s.mux = m
}

// httpError is an error with the status it answers with.
type httpError struct {
	status int
	err    error
}

func (e httpError) Error() string { return e.err.Error() }
func (e httpError) Unwrap() error { return e.err }

func badRequest(err error) error { return httpError{http.StatusBadRequest, err} }

func statusOf(err error) int {
	var h httpError
	switch {
	case errors.As(err, &h):
		return h.status
	case errors.Is(err, object.ErrPathNotFound), errors.Is(err, object.ErrNotFound), errors.Is(err, repo.ErrUnknownRev):
		return http.StatusNotFound
	case errors.Is(err, errBadPath), errors.Is(err, worktree.ErrUnsafePath):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// page renders what data returns with template name.
func (s *Server) page(name string, data func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := data(r)
		if err != nil {
			s.fail(w, r, statusOf(err), err)
			return
		}
		var buf bytes.Buffer
		if err := s.tmpl.ExecuteTemplate(&buf, name, map[string]any{"CSRF": s.csrf, "Data": v}); err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	}
}

// api answers what data returns as JSON.
func (s *Server) api(data func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := data(r)
		if err != nil {
			s.fail(w, r, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// Commit is a commit as the pages and the API show it.
type Commit struct {
	ID        object.ID   `json:"id"`
	Short     string      `json:"short"`
	Parents   []object.ID `json:"parents"`
	Device    string      `json:"device"`
	Name      string      `json:"deviceName,omitempty"`
	Author    string      `json:"author"`
	Time      time.Time   `json:"time"`
	Message   string      `json:"message"`
	Subject   string      `json:"-"`
	Merge     bool        `json:"merge"`
	Conflicts int         `json:"conflicts"`
	// Path is, on a file's versions, its name at this commit.
	Path string `json:"path,omitempty"`
	// Size and File are, on a file's versions, its size and file object.
	Size int64     `json:"size,omitempty"`
	File object.ID `json:"file,omitzero"`
	// Graph are, on the history, the parents in the history shown (as
	// git log --parents with paths): a parent the filters hide gives
	// way to the first commit shown below it.
	Graph []object.ID `json:"graphParents,omitempty"`
	// Row is its row of the history's drawn graph.
	Row GraphRow `json:"-"`
}

func toCommit(id object.ID, c *object.Commit) Commit {
	subject, _, _ := strings.Cut(c.Message, "\n")
	dev := c.DeviceName
	if dev == "" {
		dev, _, _ = strings.Cut(c.Device, "-")
	}
	return Commit{ID: id, Short: id.Short(), Parents: append([]object.ID{}, c.Parents...), Device: c.Device, Name: dev, Author: c.Author,
		Time: time.Unix(c.Time, 0).In(time.FixedZone("", int(c.TZ)*60)), Message: c.Message, Subject: subject,
		Merge: len(c.Parents) > 1, Conflicts: len(c.Conflicts)}
}

// History is the history page: commits newest first, filtered by path
// and device.
type History struct {
	Path    string   `json:"path,omitempty"`
	Device  string   `json:"device,omitempty"`
	Commits []Commit `json:"commits"`
	More    bool     `json:"more"`
}

// maxHistory is how many commits a history page shows unless told.
const maxHistory = 200

func (s *Server) history(r *http.Request) (any, error) {
	q := r.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		return nil, err
	}
	n := maxHistory
	if v := q.Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			return nil, badRequest(fmt.Errorf("n=%q: want a positive number", v))
		}
	}
	h := History{Path: p, Device: q.Get("device"), Commits: []Commit{}}
	head, err := s.repo.Resolve("HEAD")
	if err != nil {
		return h, nil // no commits yet
	}
	o := repo.LogOptions{}
	if p != "" {
		o.Paths = []string{p}
	}
	if h.Device == "" {
		o.N = n + 1
	}
	entries, err := s.repo.LogPaths(head, o)
	if err != nil {
		return nil, err
	}
	hidden := map[object.ID][]object.ID{} // by the device filter, with their parents
	for _, e := range entries {
		c := toCommit(e.ID, e.Commit)
		if h.Device != "" && c.Device != h.Device && c.Name != h.Device {
			hidden[e.ID] = e.Graph
			continue
		}
		if len(h.Commits) == n {
			h.More = true
			break
		}
		c.Graph = e.Graph
		h.Commits = append(h.Commits, c)
	}
	if len(hidden) > 0 {
		below := map[object.ID][]object.ID{}
		for i := range h.Commits {
			h.Commits[i].Graph = throughHidden(h.Commits[i].Graph, hidden, below)
		}
	}
	ids := make([]object.ID, len(h.Commits))
	parents := make([][]object.ID, len(h.Commits))
	for i, c := range h.Commits {
		ids[i], parents[i] = c.ID, c.Graph
	}
	for i, row := range layoutGraph(ids, parents) {
		h.Commits[i].Row = row
	}
	return h, nil
}

// throughHidden is parents with each hidden commit replaced by the
// commits shown below it (below remembers them for each hidden one).
func throughHidden(parents []object.ID, hidden, below map[object.ID][]object.ID) []object.ID {
	var out []object.ID
	for _, p := range parents {
		ps, ok := hidden[p]
		if !ok {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
			continue
		}
		to, ok := below[p]
		if !ok {
			below[p] = nil // a cycle cannot be, but a long chain recurses once
			to = throughHidden(ps, hidden, below)
			below[p] = to
		}
		for _, q := range to {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

// Entry is one name of a folder, or the file shown.
type Entry struct {
	Name string      `json:"name"`
	Path string      `json:"path"`
	Kind object.Kind `json:"kind"`
	Size int64       `json:"size"`
	ID   object.ID   `json:"id"`
}

// Tree is the tree page: a folder's entries, or one file's content.
type Tree struct {
	Commit Commit `json:"commit"`
	// Recent are the latest commits, to see the same folder at another.
	Recent  []Commit `json:"-"`
	Rev     string   `json:"rev"`
	Path    string   `json:"path"`
	Parents []Entry  `json:"-"` // the folders leading here, for the page
	Kind    object.Kind
	Entries []Entry `json:"entries,omitempty"`
	// A file: Text with its Lines when it is text, else Image or binary.
	Size   int64    `json:"size,omitempty"`
	Text   bool     `json:"text"`
	Lines  []string `json:"lines,omitempty"`
	Image  bool     `json:"image,omitempty"`
	Target string   `json:"target,omitempty"` // a symlink's
}

// maxShown is the largest file a page shows; larger ones are downloads.
const maxShown = 4 << 20

func (s *Server) tree(r *http.Request) (any, error) {
	rev := r.PathValue("rev")
	p, err := cleanPath(r.PathValue("path"))
	if err != nil {
		return nil, err
	}
	e, id, err := s.repo.ResolveEntry(rev + ":" + p)
	if err != nil {
		return nil, err
	}
	c, err := s.repo.Store.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	t := &Tree{Commit: toCommit(id, c), Rev: rev, Path: p, Kind: e.Kind, Size: e.Size}
	if head, err := s.repo.Resolve("HEAD"); err == nil {
		if recent, err := s.repo.Log(head, maxRecent); err == nil {
			for _, e := range recent {
				t.Recent = append(t.Recent, toCommit(e.ID, e.Commit))
			}
		}
	}
	parts := []string{}
	if p != "" {
		parts = strings.Split(p, "/")
	}
	for i := range parts {
		t.Parents = append(t.Parents, Entry{Name: parts[i], Path: strings.Join(parts[:i+1], "/")})
	}
	switch e.Kind {
	case object.KindDir:
		tr, err := s.repo.Store.ReadTree(e.ID)
		if err != nil {
			return nil, err
		}
		t.Entries = make([]Entry, len(tr.Entries))
		for i, en := range tr.Entries {
			t.Entries[i] = Entry{Name: en.Name, Path: path.Join(p, en.Name), Kind: en.Kind, Size: en.Size, ID: en.ID}
		}
	case object.KindSymlink:
		b, err := s.repo.Store.ReadChunk(e.ID)
		if err != nil {
			return nil, err
		}
		t.Target = string(b)
	default:
		t.Image = strings.HasPrefix(mime.TypeByExtension(path.Ext(p)), "image/") && path.Ext(p) != ".svg"
		if e.Size <= maxShown && !t.Image {
			var buf bytes.Buffer
			if _, err := s.repo.Store.WriteFileTo(r.Context(), &buf, e.ID); err != nil {
				return nil, err
			}
			if b := buf.Bytes(); !merge.IsBinary(b) && utf8.Valid(b) {
				t.Text = true
				sc := bufio.NewScanner(bytes.NewReader(b))
				sc.Buffer(make([]byte, 64<<10), maxShown)
				for sc.Scan() {
					t.Lines = append(t.Lines, sc.Text())
				}
			}
		}
	}
	return t, nil
}

// raw sends a file's content at a commit, as a download unless it is an
// image shown on the page.
func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	p, err := requiredPath(r.PathValue("path"), "raw takes a file's path")
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	e, _, err := s.repo.ResolveEntry(r.PathValue("rev") + ":" + p)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	if e.Kind != object.KindFile && e.Kind != object.KindExec {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s is a %s, not a file", p, e.Kind))
		return
	}
	ct := mime.TypeByExtension(path.Ext(p))
	if !strings.HasPrefix(ct, "image/") || path.Ext(p) == ".svg" {
		ct = "application/octet-stream"
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(p)}))
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(e.Size, 10))
	s.repo.Store.WriteFileTo(r.Context(), w, e.ID)
}

// Versions is a file's versions page: every commit that changed it,
// following renames, with what it held there.
type Versions struct {
	Path     string   `json:"path"`
	Versions []Commit `json:"versions"`
}

func (s *Server) versions(r *http.Request) (any, error) {
	p, err := requiredPath(r.PathValue("path"), "versions of which file?")
	if err != nil {
		return nil, err
	}
	head, err := s.repo.Resolve("HEAD")
	if err != nil {
		return nil, err
	}
	entries, err := s.repo.LogPaths(head, repo.LogOptions{Paths: []string{p}, Follow: true})
	if err != nil {
		return nil, err
	}
	v := Versions{Path: p, Versions: []Commit{}}
	for _, e := range entries {
		c := toCommit(e.ID, e.Commit)
		c.Path = e.Path
		if !e.Entry.ID.IsZero() && (e.Entry.Kind == object.KindFile || e.Entry.Kind == object.KindExec) {
			c.Size, c.File = e.Entry.Size, e.Entry.ID
		}
		v.Versions = append(v.Versions, c)
	}
	return v, nil
}

// Diff is the diff page: one file between two commits.
type Diff struct {
	Path  string     `json:"path"`
	A     string     `json:"a"`
	B     string     `json:"b"`
	Lines []DiffLine `json:"lines"`
	// Patch is the unified diff, git style.
	Patch string `json:"patch"`
}

// DiffLine is a line of the patch, with what kind of line it is.
type DiffLine struct {
	Kind string `json:"kind"` // "add", "del", "hunk", "meta" or "ctx"
	Text string `json:"text"`
}

func (s *Server) diff(r *http.Request) (any, error) {
	q := r.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		return nil, err
	}
	a, b := q.Get("a"), q.Get("b")
	if a == "" || b == "" {
		return nil, badRequest(errors.New("diff takes two versions: a=REV&b=REV"))
	}
	var paths []string
	if p != "" {
		paths = []string{p}
	}
	d, err := s.repo.Diff(r.Context(), []string{a, b}, paths)
	if err != nil {
		return nil, err
	}
	if err := s.repo.DetectRenames(r.Context(), d); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := s.repo.WritePatch(r.Context(), &buf, d); err != nil {
		return nil, err
	}
	out := Diff{Path: p, A: a, B: b, Patch: buf.String(), Lines: []DiffLine{}}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		kind := "ctx"
		switch {
		case strings.HasPrefix(l, "+++ "), strings.HasPrefix(l, "--- "), strings.HasPrefix(l, "diff "):
			kind = "meta"
		case strings.HasPrefix(l, "@@"):
			kind = "hunk"
		case strings.HasPrefix(l, "+"):
			kind = "add"
		case strings.HasPrefix(l, "-"):
			kind = "del"
		case !strings.HasPrefix(l, " "):
			kind = "meta"
		}
		out.Lines = append(out.Lines, DiffLine{kind, l})
	}
	return out, nil
}

// Restored says what a restore wrote.
type Restored struct {
	Path   string    `json:"path"`
	As     string    `json:"as"`
	Source object.ID `json:"source"`
}

// restore brings a version of a file back: in place (mesh restore
// --source REV PATH, which refuses to overwrite an uncommitted edit), or
// under a new name that must not exist yet.
func (s *Server) restore(r *http.Request) (any, error) {
	p, err := requiredPath(r.PostFormValue("path"), "restore which file?")
	if err != nil {
		return nil, err
	}
	rev := r.PostFormValue("rev")
	if rev == "" {
		return nil, badRequest(errors.New("restore from which version? rev=REV"))
	}
	as, err := cleanPath(r.PostFormValue("as"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if as != "" && as != p {
		id, err := s.repo.RestoreAs(r.Context(), rev, p, as)
		if err != nil {
			return nil, restoreError(err)
		}
		return Restored{Path: p, As: as, Source: id}, nil
	}
	res, err := s.repo.Restore(r.Context(), repo.RestoreOptions{Source: rev, Paths: []string{p}})
	if err != nil {
		return nil, restoreError(err)
	}
	return Restored{Path: p, As: p, Source: res.Source}, nil
}

func restoreError(err error) error {
	if errors.Is(err, repo.ErrUncommitted) || errors.Is(err, repo.ErrPathExists) {
		return httpError{http.StatusConflict, err}
	}
	return err
}

func (s *Server) restorePage(w http.ResponseWriter, r *http.Request) {
	v, err := s.restore(r)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	res := v.(Restored)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.tmpl.ExecuteTemplate(w, "restored", map[string]any{"CSRF": s.csrf, "Data": res})
}

// maxRecent is how many commits the tree page offers to switch to.
const maxRecent = 50

// switchCommit shows the same path at another commit: the path itself
// where that commit has it, else its nearest folder that it has.
func (s *Server) switchCommit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	id, err := s.repo.Resolve(q.Get("rev"))
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	for {
		if _, _, err := s.repo.ResolveEntry(id.String() + ":" + p); err == nil || p == "" {
			break
		}
		if p = path.Dir(p); p == "." {
			p = ""
		}
	}
	http.Redirect(w, r, "/tree/"+id.String()+"/"+escapePath(p), http.StatusSeeOther)
}

// escapePath escapes each name of a slash-separated path for a URL.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, c := range parts {
		parts[i] = url.PathEscape(c)
	}
	return strings.Join(parts, "/")
}
