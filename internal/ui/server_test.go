package ui

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
)

const addr = "127.0.0.1:7480"

var ctx = context.Background()

// fixture is a repository with history and a server for it.
type fixture struct {
	t    *testing.T
	r    *repo.Repo
	s    *Server
	revs map[string]string // commit message → ID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	r, err := repo.Init(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	now := time.Unix(1700000000, 0)
	r.Now = func() time.Time { now = now.Add(time.Minute); return now }
	f := &fixture{t: t, r: r, revs: map[string]string{}}
	f.commit("first", map[string]string{"notes.txt": "one\ntwo\n", "docs/a.md": "# a\n", "img.png": "\x89PNG\r\n\x1a\nfake", "bin.dat": "\x00\x01\x02"})
	f.commit("second", map[string]string{"notes.txt": "one\nTWO\n"})
	f.commit("third", map[string]string{"docs/b.md": "# b\n"})
	s, err := New(r, Options{Addr: addr, Token: "secret-token"})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

func (f *fixture) commit(msg string, files map[string]string) {
	f.t.Helper()
	for p, c := range files {
		full := filepath.Join(f.r.Root, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	res, err := f.r.Commit(ctx, repo.CommitOptions{Message: msg})
	if err != nil {
		f.t.Fatal(err)
	}
	f.revs[msg] = res.ID.String()
}

// do sends a request as the browser would after its first visit (the
// cookie), or as given.
func (f *fixture) do(method, target string, form url.Values, mod func(*http.Request)) *httptest.ResponseRecorder {
	f.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, "http://"+addr+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, "http://"+addr+target, nil)
	}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: "secret-token"})
	if mod != nil {
		mod(req)
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, req)
	return w
}

func TestTokenIsRequired(t *testing.T) {
	f := newFixture(t)
	noCookie := func(r *http.Request) { r.Header.Del("Cookie") }
	if w := f.do("GET", "/history", nil, noCookie); w.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", w.Code)
	}
	if w := f.do("GET", "/api/log", nil, func(r *http.Request) { r.Header.Set("Cookie", cookieName+"=wrong") }); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong cookie: %d", w.Code)
	}
	if w := f.do("GET", "/history?token=wrong", nil, noCookie); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", w.Code)
	}
	w := f.do("GET", "/history?path=notes.txt&token=secret-token", nil, noCookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/history?path=notes.txt" {
		t.Fatalf("first visit: %d, to %q", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Value != "secret-token" || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", c)
	}
	if w := f.do("GET", "/api/log", nil, func(r *http.Request) { r.Header.Del("Cookie"); r.Header.Set("Authorization", "Bearer secret-token") }); w.Code != http.StatusOK {
		t.Fatalf("bearer: %d", w.Code)
	}
	if w := f.do("GET", "/history", nil, func(r *http.Request) { r.Host = "evil.example:7480" }); w.Code != http.StatusMisdirectedRequest {
		t.Fatalf("another Host (DNS rebinding): %d", w.Code)
	}
	if w := f.do("GET", "/history", nil, nil); w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("page: %d, headers %v", w.Code, w.Header())
	}
}

func TestHistoryAndAPI(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/history", nil, nil)
	for _, m := range []string{"first", "second", "third"} {
		if !strings.Contains(w.Body.String(), m) {
			t.Fatalf("history lacks %q:\n%s", m, w.Body)
		}
	}
	var h History
	w = f.do("GET", "/api/log?path=notes.txt", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil || len(h.Commits) != 2 || h.Commits[0].Subject != "" && h.Commits[0].Message != "second" {
		t.Fatalf("log of notes.txt: %s %v", w.Body, err)
	}
	if h.Commits[0].ID.String() != f.revs["second"] || h.Commits[1].ID.String() != f.revs["first"] {
		t.Fatalf("log of notes.txt: %+v", h.Commits)
	}
	if w := f.do("GET", "/api/log?n=x", nil, nil); w.Code != http.StatusBadRequest {
		t.Fatalf("bad n: %d", w.Code)
	}
}

func TestTreeAndFiles(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/tree/HEAD/docs", nil, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "a.md") || !strings.Contains(w.Body.String(), "b.md") {
		t.Fatalf("folder: %d\n%s", w.Code, w.Body)
	}
	// The links lead to the same commit's entries, and those pages exist.
	link := `href="/tree/` + f.revs["third"] + `/docs/a.md"`
	if !strings.Contains(w.Body.String(), link) {
		t.Fatalf("folder page lacks %s:\n%s", link, w.Body)
	}
	if w := f.do("GET", "/tree/"+f.revs["third"]+"/docs/a.md", nil, nil); w.Code != http.StatusOK {
		t.Fatalf("the linked page: %d", w.Code)
	}
	var tr Tree
	w = f.do("GET", "/api/tree/"+f.revs["first"]+"/notes.txt", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || !tr.Text || strings.Join(tr.Lines, ",") != "one,two" {
		t.Fatalf("file at first: %s %v", w.Body, err)
	}
	w = f.do("GET", "/tree/HEAD/notes.txt", nil, nil)
	if !strings.Contains(w.Body.String(), `<td class="ln">2</td>`) || !strings.Contains(w.Body.String(), "TWO") {
		t.Fatalf("file view without line numbers:\n%s", w.Body)
	}
	w = f.do("GET", "/tree/HEAD/img.png", nil, nil)
	if !strings.Contains(w.Body.String(), `<img alt="img.png" src="/raw/`) {
		t.Fatalf("image not shown:\n%s", w.Body)
	}
	w = f.do("GET", "/raw/HEAD/bin.dat", nil, nil)
	if w.Body.String() != "\x00\x01\x02" || !strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %q %v", w.Body, w.Header())
	}
	if w := f.do("GET", "/tree/HEAD/nothing.txt", nil, nil); w.Code != http.StatusNotFound {
		t.Fatalf("missing path: %d", w.Code)
	}
	if w := f.do("GET", "/tree/nosuchrev/", nil, nil); w.Code != http.StatusNotFound {
		t.Fatalf("unknown revision: %d", w.Code)
	}
}

// TestPathTraversalRefused: URL paths are paths of a tree, never of the
// disk: dot-dot, backslashes and NUL are refused however they are spelled.
func TestPathTraversalRefused(t *testing.T) {
	f := newFixture(t)
	for _, target := range []string{
		"/api/tree/HEAD/docs%2F..%2F..%2F..%2Fetc%2Fpasswd",
		"/raw/HEAD/..%2F..%2Fetc%2Fpasswd",
		"/api/versions/%2e%2e/%2e%2e/etc/passwd",
		"/api/tree/HEAD/docs%5C..%5Cnotes.txt",
		"/api/log?path=../../etc",
		"/api/diff?path=..%2Fx&a=HEAD&b=HEAD",
		"/api/tree/HEAD/a%00b",
	} {
		w := f.do("GET", target, nil, nil)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "root:") {
			t.Errorf("%s served a file of the disk", target)
		}
	}
	w := f.do("POST", "/api/restore", url.Values{"path": {"notes.txt"}, "rev": {"HEAD~1"}, "as": {"../outside.txt"}}, func(r *http.Request) {
		r.Header.Set("X-Mesh-CSRF", f.s.csrf)
	})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("restore as ../outside.txt: %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(f.r.Root), "outside.txt")); err == nil {
		t.Fatal("a restore wrote outside the folder")
	}
	w = f.do("POST", "/api/restore", url.Values{"path": {"notes.txt"}, "rev": {"HEAD~1"}, "as": {".mesh/config"}}, func(r *http.Request) {
		r.Header.Set("X-Mesh-CSRF", f.s.csrf)
	})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("restore into .mesh: %d %s", w.Code, w.Body)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"path": {"notes.txt"}, "rev": {f.revs["first"]}}
	if w := f.do("POST", "/restore", form, nil); w.Code != http.StatusForbidden {
		t.Fatalf("POST without the CSRF token: %d", w.Code)
	}
	withToken := url.Values{"path": {"notes.txt"}, "rev": {f.revs["first"]}, "csrf": {f.s.csrf}}
	if w := f.do("POST", "/restore", withToken, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }); w.Code != http.StatusForbidden {
		t.Fatalf("POST from another origin: %d", w.Code)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "one\nTWO\n" {
		t.Fatalf("a refused POST changed the file: %q", b)
	}
	if w := f.do("DELETE", "/restore", nil, nil); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", w.Code)
	}
	w := f.do("POST", "/restore", withToken, func(r *http.Request) { r.Header.Set("Origin", "http://"+addr) })
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Restored") {
		t.Fatalf("POST from the page: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "one\ntwo\n" {
		t.Fatalf("restore did not bring the first version back: %q", b)
	}
}

// TestRestoreNeverOverwritesAnEdit: an uncommitted edit refuses a restore
// in place (409), and a restore under a name that exists is refused too;
// under a new name the version appears beside the edit.
func TestRestoreNeverOverwritesAnEdit(t *testing.T) {
	f := newFixture(t)
	notes := filepath.Join(f.r.Root, "notes.txt")
	os.WriteFile(notes, []byte("my uncommitted edit\n"), 0o644)
	api := func(form url.Values) *httptest.ResponseRecorder {
		return f.do("POST", "/api/restore", form, func(r *http.Request) {
			r.Header.Del("Cookie")
			r.Header.Set("Authorization", "Bearer secret-token")
		})
	}
	w := api(url.Values{"path": {"notes.txt"}, "rev": {f.revs["first"]}})
	if w.Code != http.StatusConflict {
		t.Fatalf("restore over an edit: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(notes); string(b) != "my uncommitted edit\n" {
		t.Fatalf("the edit was overwritten: %q", b)
	}
	if w := api(url.Values{"path": {"notes.txt"}, "rev": {f.revs["first"]}, "as": {"docs/a.md"}}); w.Code != http.StatusConflict {
		t.Fatalf("restore as an existing name: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "docs", "a.md")); string(b) != "# a\n" {
		t.Fatalf("docs/a.md was overwritten: %q", b)
	}
	w = api(url.Values{"path": {"notes.txt"}, "rev": {f.revs["first"]}, "as": {"notes.first.txt"}})
	var res Restored
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != http.StatusOK || res.As != "notes.first.txt" {
		t.Fatalf("restore as a new name: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.first.txt")); string(b) != "one\ntwo\n" {
		t.Fatalf("restored copy holds %q", b)
	}
	if b, _ := os.ReadFile(notes); string(b) != "my uncommitted edit\n" {
		t.Fatalf("the edit was touched: %q", b)
	}
}

func TestVersionsAndDiff(t *testing.T) {
	f := newFixture(t)
	// A move, then an edit: the versions follow the file.
	os.MkdirAll(filepath.Join(f.r.Root, "old"), 0o755)
	os.Rename(filepath.Join(f.r.Root, "notes.txt"), filepath.Join(f.r.Root, "old", "notes.txt"))
	f.commit("move", nil)
	f.commit("edit", map[string]string{"old/notes.txt": "one\nTWO\nthree\n"})
	var v Versions
	w := f.do("GET", "/api/versions/old/notes.txt", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || len(v.Versions) != 4 {
		t.Fatalf("versions: %s %v", w.Body, err)
	}
	want := []struct{ msg, path string }{{"edit", "old/notes.txt"}, {"move", "old/notes.txt"}, {"second", "notes.txt"}, {"first", "notes.txt"}}
	for i, w := range want {
		if got := v.Versions[i]; got.Message != w.msg || got.Path != w.path || got.Size == 0 {
			t.Fatalf("version %d: %+v, want %s at %s", i, got, w.msg, w.path)
		}
	}
	page := f.do("GET", "/versions/old/notes.txt", nil, nil).Body.String()
	if strings.Count(page, `class="version"`) != 4 || !strings.Contains(page, `name="csrf" value="`+f.s.csrf+`"`) {
		t.Fatalf("versions page:\n%s", page)
	}
	var d Diff
	w = f.do("GET", "/api/diff?"+url.Values{"path": {"old/notes.txt"}, "a": {f.revs["move"]}, "b": {f.revs["edit"]}}.Encode(), nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	adds := 0
	for _, l := range d.Lines {
		if l.Kind == "add" {
			adds++
			if l.Text != "+three" {
				t.Fatalf("added line %q", l.Text)
			}
		}
	}
	if adds != 1 || !strings.Contains(d.Patch, "@@") {
		t.Fatalf("diff: %+v", d)
	}
	page = f.do("GET", "/diff?"+url.Values{"path": {"old/notes.txt"}, "a": {f.revs["move"]}, "b": {f.revs["edit"]}}.Encode(), nil, nil).Body.String()
	if !strings.Contains(page, `<span class="add">&#43;three</span>`) {
		t.Fatalf("diff page:\n%s", page)
	}
}

// BenchmarkTreePage renders the tree page of a 2,000-entry folder and the
// versions page of a file with 200 versions: go test ./internal/ui -bench
// Page (goal: under 100 ms of server time each).
func BenchmarkTreePage(b *testing.B) {
	r, err := repo.Init(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for i := range 2000 {
		os.WriteFile(filepath.Join(r.Root, fmt.Sprintf("file-%04d.txt", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	if _, err := r.Commit(ctx, repo.CommitOptions{Message: "many"}); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		os.WriteFile(filepath.Join(r.Root, "file-0007.txt"), []byte(fmt.Sprint("version ", i)), 0o644)
		if _, err := r.Commit(ctx, repo.CommitOptions{Message: fmt.Sprint("v", i)}); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(r, Options{Addr: addr, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	for _, page := range []string{"/tree/HEAD/", "/versions/file-0007.txt"} {
		b.Run(strings.Trim(strings.SplitN(page, "/", 3)[1], "/"), func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://"+addr+page, nil)
				req.Header.Set("Authorization", "Bearer t")
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", page, w.Code)
				}
			}
		})
	}
}

// conflicted is a fixture whose HEAD merged two edits of notes.txt: the
// other version is kept beside it as a conflict copy.
func conflicted(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	if _, err := f.r.Checkout(ctx, f.revs["third"], nil); err != nil {
		t.Fatal(err)
	}
	f.commit("theirs", map[string]string{"notes.txt": "one\ntheirs\n"})
	if _, err := f.r.Checkout(ctx, "main", nil); err != nil {
		t.Fatal(err)
	}
	f.commit("mine", map[string]string{"notes.txt": "one\nmine\n"})
	m, err := f.r.Merge(ctx, f.revs["theirs"], repo.MergeOptions{})
	if err != nil || len(m.Conflicts) != 1 || m.Conflicts[0].Copy == "" {
		t.Fatalf("merge: %+v %v", m, err)
	}
	return f
}

func TestConflictsResolve(t *testing.T) {
	for _, c := range []struct {
		keep, text string
		want       string // notes.txt after
		copyStays  bool
	}{
		{"mine", "", "one\nmine\n", false},
		{"theirs", "", "one\ntheirs\n", false},
		{"both", "", "one\nmine\n", true},
		{"text", "one\nmerged by hand\n", "one\nmerged by hand\n", false},
	} {
		t.Run(c.keep, func(t *testing.T) {
			f := conflicted(t)
			var cs Conflicts
			w := f.do("GET", "/api/conflicts", nil, nil)
			if err := json.Unmarshal(w.Body.Bytes(), &cs); err != nil || len(cs.Conflicts) != 1 {
				t.Fatalf("conflicts: %s %v", w.Body, err)
			}
			k := cs.Conflicts[0]
			if k.Mine != "one\nmine\n" || k.Theirs != "one\ntheirs\n" || k.Binary {
				t.Fatalf("both versions: %+v", k)
			}
			page := f.do("GET", "/conflicts", nil, nil).Body.String()
			if !strings.Contains(page, `<pre class="theirs">one`) || !strings.Contains(page, `value="theirs"`) {
				t.Fatalf("conflicts page:\n%s", page)
			}
			form := url.Values{"path": {"notes.txt"}, "keep": {c.keep}, "text": {c.text}, "csrf": {f.s.csrf}}
			if w := f.do("POST", "/resolve", form, nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "resolved in commit") {
				t.Fatalf("resolve: %d %s", w.Code, w.Body)
			}
			if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != c.want {
				t.Fatalf("notes.txt holds %q, want %q", b, c.want)
			}
			if _, err := os.Stat(filepath.Join(f.r.Root, k.Copy)); (err == nil) != c.copyStays {
				t.Fatalf("copy %s there: %v, want %v", k.Copy, err == nil, c.copyStays)
			}
			if open, _ := f.r.Conflicts(); len(open) != 0 {
				t.Fatalf("still open: %+v", open)
			}
			if st, err := f.r.Status(ctx); err != nil || len(st.Changes) != 0 {
				t.Fatalf("the resolution was not committed: %+v %v", st, err)
			}
		})
	}
	// An edit nobody committed is never overwritten by a resolution.
	f := conflicted(t)
	os.WriteFile(filepath.Join(f.r.Root, "notes.txt"), []byte("my edit\n"), 0o644)
	form := url.Values{"path": {"notes.txt"}, "keep": {"theirs"}, "csrf": {f.s.csrf}}
	if w := f.do("POST", "/resolve", form, nil); w.Code != http.StatusConflict {
		t.Fatalf("resolve over an edit: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "my edit\n" {
		t.Fatalf("the edit was overwritten: %q", b)
	}
	if w := f.do("POST", "/resolve", url.Values{"path": {"docs/a.md"}, "keep": {"mine"}, "csrf": {f.s.csrf}}, nil); w.Code != http.StatusNotFound {
		t.Fatalf("resolve where there is no conflict: %d", w.Code)
	}
}

// TestFolderRestoreAndZip: the preview of restoring docs/ to the first
// commit lists what would change (b.md goes; an uncommitted file stays
// and is not listed); the restore does exactly that; a folder downloads
// as a zip of its files.
func TestFolderRestoreAndZip(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(filepath.Join(f.r.Root, "docs", "untracked.md"), []byte("mine\n"), 0o644)
	var prev FolderRestore
	w := f.do("GET", "/api/restore-folder?"+url.Values{"path": {"docs"}, "rev": {f.revs["first"]}}.Encode(), nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &prev); err != nil || len(prev.Changes) != 1 || prev.Changes[0].Path != "docs/b.md" || prev.Changes[0].Status != "deleted" {
		t.Fatalf("preview: %s %v", w.Body, err)
	}
	if page := f.do("GET", "/restore-folder?"+url.Values{"path": {"docs"}, "rev": {f.revs["first"]}}.Encode(), nil, nil).Body.String(); !strings.Contains(page, "docs/b.md") || !strings.Contains(page, `id="do-restore"`) {
		t.Fatalf("preview page:\n%s", page)
	}
	form := url.Values{"path": {"docs"}, "rev": {f.revs["first"]}, "csrf": {f.s.csrf}}
	if w := f.do("POST", "/restore-folder", form, nil); w.Code != http.StatusOK {
		t.Fatalf("restore folder: %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(filepath.Join(f.r.Root, "docs", "b.md")); err == nil {
		t.Fatal("docs/b.md is still there")
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "docs", "untracked.md")); string(b) != "mine\n" {
		t.Fatal("the uncommitted file went")
	}
	w = f.do("GET", "/zip/"+f.revs["third"]+"/docs", nil, nil)
	z, err := zip.NewReader(bytes.NewReader(w.Body.Bytes()), int64(w.Body.Len()))
	if err != nil {
		t.Fatalf("zip: %v (%d)", err, w.Code)
	}
	got := map[string]string{}
	for _, zf := range z.File {
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[zf.Name] = string(b)
	}
	if len(got) != 2 || got["a.md"] != "# a\n" || got["b.md"] != "# b\n" {
		t.Fatalf("zip holds %q", got)
	}
	if w := f.do("GET", "/zip/HEAD/notes.txt", nil, nil); w.Code != http.StatusBadRequest {
		t.Fatalf("zip of a file: %d", w.Code)
	}
}

// TestDevicesPage: the devices a round saw (peers.json), a refused head,
// and the artifact branches with their versions.
func TestDevicesPage(t *testing.T) {
	f := newFixture(t)
	peers := `[{"device":"DEV-B","gossipAddr":"127.0.0.1:7946","fetchAddr":"127.0.0.1:7420","alive":true,"lastContact":"2026-12-01T10:00:00Z","heads":[{"d":"DEV-B","b":"main","c":"` + f.revs["second"] + `","s":3}]}]`
	if err := os.WriteFile(filepath.Join(f.r.Meta, "peers.json"), []byte(peers), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Publish(ctx, repo.PublishOptions{Branch: "artifacts/build", Paths: []string{filepath.Join(f.r.Root, "docs")}}); err != nil {
		t.Fatal(err)
	}
	var d Devices
	w := f.do("GET", "/api/devices", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("%s: %v", w.Body, err)
	}
	if d.Me != f.r.Config.Device || len(d.Devices) != 1 || d.Devices[0].Device != "DEV-B" || !d.Devices[0].Alive || len(d.Devices[0].Heads) != 1 || d.Devices[0].Heads[0].Commit.String() != f.revs["second"] {
		t.Fatalf("devices: %+v", d)
	}
	if len(d.Artifacts) != 1 || d.Artifacts[0].Branch != "artifacts/build" || d.Artifacts[0].Versions != 1 {
		t.Fatalf("artifacts: %+v", d.Artifacts)
	}
	page := f.do("GET", "/devices", nil, nil).Body.String()
	if !strings.Contains(page, "DEV-B") || !strings.Contains(page, "online") || !strings.Contains(page, "artifacts/build") {
		t.Fatalf("devices page:\n%s", page)
	}
}

// TestSwitchKeepsTheFolder: switching commits on the tree page keeps the
// folder shown, or its nearest folder the other commit has.
func TestSwitchKeepsTheFolder(t *testing.T) {
	f := newFixture(t)
	page := f.do("GET", "/tree/HEAD/docs", nil, nil).Body.String()
	if !strings.Contains(page, `<form method="get" action="/switch" id="switch"><input type="hidden" name="path" value="docs">`) || strings.Count(page, "<option ") != 3 {
		t.Fatalf("tree page without the switch:\n%s", page)
	}
	for _, c := range []struct{ path, rev, to string }{
		{"docs", f.revs["first"], "/tree/" + f.revs["first"] + "/docs"},
		{"docs/b.md", f.revs["first"], "/tree/" + f.revs["first"] + "/docs"}, // b.md came later
		{"notes.txt", f.revs["second"], "/tree/" + f.revs["second"] + "/notes.txt"},
		{"gone/deep/x", f.revs["third"], "/tree/" + f.revs["third"] + "/"},
	} {
		w := f.do("GET", "/switch?"+url.Values{"path": {c.path}, "rev": {c.rev}}.Encode(), nil, nil)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != c.to {
			t.Errorf("switch %s to %s: %d to %q, want %q", c.path, c.rev[:12], w.Code, w.Header().Get("Location"), c.to)
		}
	}
	if w := f.do("GET", "/switch?path=../x&rev=HEAD", nil, nil); w.Code != http.StatusBadRequest {
		t.Errorf("switch with ../x: %d", w.Code)
	}
}
