// Package ui is mesh's history browser: a local web app, served by mesh ui
// from the binary, that shows a repository's history, the tree at any
// commit, every version of a file with diffs between them, and restores
// a version through the same safe code as mesh restore (an uncommitted
// edit is never overwritten). Pages are rendered on the server
// (html/template), so they work without JavaScript; the same data is
// served as JSON under /api/.
//
// Security: the server listens on loopback unless told otherwise, and
// every request needs the token it was started with: in the URL once
// (?token=…, which sets a cookie and redirects to the URL without it),
// then the cookie (HttpOnly, SameSite=Strict), or an Authorization:
// Bearer header for scripts. The Host header must name the listening
// address or localhost (no DNS rebinding). There are no CORS headers.
// Every change is a POST that carries a CSRF token derived from the
// token (a form field, or the X-Mesh-CSRF header) and, when the browser
// sends one, an Origin of the server itself.
package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mesh-sync/mesh/internal/repo"
)

// cookieName holds the token after the first visit.
const cookieName = "mesh_ui"

// Server serves one repository's history.
type Server struct {
	repo  *repo.Repo
	token string
	csrf  string
	// hosts are the Host header values accepted (the listening address
	// and its localhost names).
	hosts map[string]bool
	log   *slog.Logger
	mux   *http.ServeMux
	tmpl  *template.Template
	// mu serializes what changes the working tree.
	mu sync.Mutex
	// inDaemon: the server runs inside mesh daemon.
	inDaemon bool
}

// Options configure a Server.
type Options struct {
	// Token is what every request must carry; empty makes a random one.
	Token string
	// Addr is the address the server listens on (host:port), for the
	// Host check.
	Addr string
	Log  *slog.Logger
	// InDaemon says the server runs inside mesh daemon (the devices page
	// says so).
	InDaemon bool
	// Metrics, when set, serves /metrics: it writes them in Prometheus's
	// text format.
	Metrics func(io.Writer)
}

// New returns a server for r.
func New(r *repo.Repo, o Options) (*Server, error) {
	tok := o.Token
	if tok == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		tok = hex.EncodeToString(b)
	}
	mac := hmac.New(sha256.New, []byte(tok))
	mac.Write([]byte("mesh ui csrf"))
	s := &Server{repo: r, token: tok, csrf: hex.EncodeToString(mac.Sum(nil)), hosts: hostNames(o.Addr), log: o.Log, inDaemon: o.InDaemon}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s.tmpl = t
	s.routes()
	if o.Metrics != nil {
		s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			o.Metrics(w)
		})
	}
	return s, nil
}

// Token is what a request must carry.
func (s *Server) Token() string { return s.token }

// URL is where a browser opens the server at addr, token included.
func (s *Server) URL(addr string) string {
	return "http://" + addr + "/?token=" + url.QueryEscape(s.token)
}

// hostNames are the Host values a request to addr may carry.
func hostNames(addr string) map[string]bool {
	hosts := map[string]bool{}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hosts
	}
	hosts[addr] = true
	for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
		hosts[h+":"+port] = true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		hosts["*"] = true // listening everywhere: any name that reaches it
	}
	return hosts
}

// ServeHTTP checks the Host, the token and, for changes, the CSRF token,
// then serves the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on a form's POST, which the CSRF check refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	if !s.hosts["*"] && !s.hosts[r.Host] {
		http.Error(w, "mesh ui: unknown Host "+r.Host, http.StatusMisdirectedRequest)
		return
	}
	if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet {
		if !s.tokenOK(t) {
			http.Error(w, "mesh ui: wrong token; use the URL mesh ui printed", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q := r.URL.Query()
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return
	}
	bearer := false
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") && s.tokenOK(strings.TrimPrefix(a, "Bearer ")) {
		bearer = true
	} else if c, err := r.Cookie(cookieName); err != nil || !s.tokenOK(c.Value) {
		http.Error(w, "mesh ui: a token is needed; open the URL mesh ui printed", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Method != http.MethodPost {
			http.Error(w, "mesh ui: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !bearer && !s.csrfOK(r) {
			http.Error(w, "mesh ui: this change did not come from mesh ui's own page (CSRF check failed)", http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}

// csrfOK checks a cookie-authenticated POST: the CSRF token, and the
// Origin when the browser sends one.
func (s *Server) csrfOK(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (!s.hosts["*"] && !s.hosts[u.Host]) || u.Host != r.Host {
			return false
		}
	}
	t := r.Header.Get("X-Mesh-CSRF")
	if t == "" {
		t = r.PostFormValue("csrf")
	}
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.csrf)) == 1
}

// errBadPath is the kind of error for a URL path no tree may hold.
var errBadPath = errors.New("not a path of a tree")

// cleanPath checks a tree path taken from a URL: slash-separated names,
// none empty, "." or "..", no backslash or NUL; "" is the root.
func cleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "\\\x00") {
			return "", fmt.Errorf("%q: %w", p, errBadPath)
		}
	}
	return p, nil
}

// requiredPath is cleanPath of a path that must name something below the
// root; missing says, for people, what is missing.
func requiredPath(p, missing string) (string, error) {
	p, err := cleanPath(p)
	if err == nil && p == "" {
		err = badRequest(errors.New(missing))
	}
	return p, err
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// fail answers an error, as JSON under /api/ and as a page elsewhere.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	s.tmpl.ExecuteTemplate(w, "error", map[string]any{"Title": http.StatusText(status), "Error": err.Error()})
}
