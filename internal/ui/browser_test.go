package ui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts a headless Chromium (Debian's chromium, which .ci/run
// installs) driving the fixture's server on a real loopback port, and
// returns its context. Each step's screenshot is kept in a folder named
// in the log when the test fails.
func browser(t *testing.T, f *fixture) (context.Context, string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser tests need Chromium: apt-get install -y chromium")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(f.r, Options{Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.s = s
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Headless, chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx, s.URL(ln.Addr().String())
}

// shots keeps a screenshot of each step; on failure they stay, named in
// the log.
type shots struct {
	t   *testing.T
	dir string
	n   int
}

func newShots(t *testing.T) *shots {
	dir, err := os.MkdirTemp("", "mesh-ui-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	sh := &shots{t: t, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots of each page: %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	return sh
}

func (sh *shots) take(ctx context.Context, name string) {
	if b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		sh.n++
		os.WriteFile(filepath.Join(sh.dir, fmt.Sprintf("%02d-%s.png", sh.n, name)), b, 0o644)
	}
}

// TestBrowserHistoryVersionsRestore drives a real browser: open the
// history, click into a commit's tree and a file, on to its versions, diff
// two, restore one; then an uncommitted edit makes the restore refuse.
// Each step is checked on the page and the files on disk.
func TestBrowserHistoryVersionsRestore(t *testing.T) {
	f := newFixture(t)
	ctx, u := browser(t, f)
	sh := newShots(t)
	// step runs actions, then reads the text of the element sel, or of
	// the error a page shows instead.
	step := func(name string, sel chromedp.CSS, actions ...chromedp.Action[chromedp.Void]) string {
		t.Helper()
		either := chromedp.CSS(string(sel) + ", #error")
		err := chromedp.Do(ctx, append(actions, chromedp.WaitVisible(either))...)
		var text string
		if err == nil {
			text, err = chromedp.Run(ctx, chromedp.Text(either))
		}
		sh.take(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return text
	}
	text := step("history", "#commits", chromedp.Navigate(u))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(text, "first") || !strings.Contains(text, "third") || strings.Contains(loc, "token=") {
		t.Fatalf("history page at %s (%v): %q", loc, err, text)
	}
	// The graph: a dot per commit, each row's drawing as tall as its
	// row, so the lines meet from row to row.
	graph, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#commits tr.commit')).map(r => {
		const svg = r.querySelector('svg'); return svg ? svg.querySelectorAll('circle').length + ':' + Math.round(svg.getBoundingClientRect().height) + ':' + Math.round(r.getBoundingClientRect().height) : 'none' }).join(' ')`))
	if err != nil || graph != "1:24:24 1:24:24 1:24:24" {
		t.Fatalf("history graph (dots:drawing height:row height per commit): %q %v", graph, err)
	}
	text = step("tree", "#entries", chromedp.Click(chromedp.CSS(`#commits tr.commit:last-child a`), chromedp.NodeVisible))
	if !strings.Contains(text, "notes.txt") || !strings.Contains(text, "docs/") {
		t.Fatalf("tree page: %q", text)
	}
	text = step("file", "#file", chromedp.Click(chromedp.CSS(`#entries a[href$="/notes.txt"]`), chromedp.NodeVisible))
	if !strings.Contains(text, "two") {
		t.Fatalf("file page (first commit): %q", text)
	}
	text = step("versions", "table#versions", chromedp.Click(chromedp.CSS("#versions"), chromedp.NodeVisible))
	if strings.Count(text, "notes.txt") != 2 || !strings.Contains(text, "second") {
		t.Fatalf("versions page: %q", text)
	}
	versions, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(versions, "/versions/notes.txt") {
		t.Fatalf("versions page at %q: %v", versions, err)
	}
	text = step("diff", "#patch", chromedp.Click(chromedp.CSS("#diff"), chromedp.NodeVisible))
	if !strings.Contains(text, "-two") || !strings.Contains(text, "+TWO") {
		t.Fatalf("diff page: %q", text)
	}
	// Restore the first version (the second row's button).
	text = step("restore", "#restored", chromedp.Navigate(versions), chromedp.WaitVisible(chromedp.CSS("table#versions")),
		chromedp.Click(chromedp.CSS(`button[form="restore-1"]`), chromedp.NodeVisible))
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "one\ntwo\n" || !strings.Contains(text, "notes.txt") {
		t.Fatalf("after restore: page %q, file %q", text, b)
	}
	// An edit nobody committed: the restore is refused, the edit stays.
	os.WriteFile(filepath.Join(f.r.Root, "notes.txt"), []byte("my edit\n"), 0o644)
	text = step("refused", "#error", chromedp.Navigate(versions), chromedp.WaitVisible(chromedp.CSS("table#versions")),
		chromedp.Click(chromedp.CSS(`button[form="restore-0"]`), chromedp.NodeVisible))
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "my edit\n" || !strings.Contains(text, "uncommitted") {
		t.Fatalf("restore over an edit: page %q, file %q", text, b)
	}
}

// TestBrowserResolveConflict: the conflicts page shows both versions side
// by side; keeping the other device's makes it the file, removes the
// copy and commits.
func TestBrowserResolveConflict(t *testing.T) {
	f := conflicted(t)
	ctx, u := browser(t, f)
	sh := newShots(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	base := strings.Split(u, "/?")[0]
	err := chromedp.Do(ctx, chromedp.Navigate(base+"/conflicts"), chromedp.WaitVisible(chromedp.CSS("section.conflict")))
	sh.take(ctx, "conflicts")
	if err != nil {
		t.Fatal(err)
	}
	mine, err1 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre.mine")))
	theirs, err2 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre.theirs")))
	if err1 != nil || err2 != nil || !strings.Contains(mine, "mine") || !strings.Contains(theirs, "theirs") {
		t.Fatalf("side by side: %q %q (%v %v)", mine, theirs, err1, err2)
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="theirs"]`), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.CSS("#resolved, #error")))
	sh.take(ctx, "resolved")
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#resolved, #error")))
	if err != nil || !strings.Contains(text, "resolved in commit") {
		t.Fatalf("after the click: %q %v", text, err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.r.Root, "notes.txt")); string(b) != "one\ntheirs\n" {
		t.Fatalf("notes.txt holds %q", b)
	}
	if open, _ := f.r.Conflicts(); len(open) != 0 {
		t.Fatalf("still open: %+v", open)
	}
}
