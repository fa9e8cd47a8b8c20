package repo

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

var ctx = context.Background()

func newRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Init(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func write(t *testing.T, r *Repo, p, content string) {
	t.Helper()
	full := filepath.Join(r.Root, filepath.FromSlash(p))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, r *Repo, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func commit(t *testing.T, r *Repo, msg string) object.ID {
	t.Helper()
	res, err := r.Commit(ctx, CommitOptions{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created {
		t.Fatalf("commit %q created nothing", msg)
	}
	return res.ID
}

func TestCommitLogResolve(t *testing.T) {
	r := newRepo(t)
	if _, err := r.Resolve("HEAD"); !errors.Is(err, ErrNoCommits) {
		t.Fatalf("HEAD before any commit: %v", err)
	}
	write(t, r, "a", "1")
	c1 := commit(t, r, "one")
	write(t, r, "a", "2")
	c2 := commit(t, r, "two")
	write(t, r, "b", "3")
	c3 := commit(t, r, "three")
	if res, err := r.Commit(ctx, CommitOptions{Message: "noop"}); err != nil || res.Created || res.ID != c3 {
		t.Fatalf("commit of a clean tree: %v %+v", err, res)
	}
	for rev, want := range map[string]object.ID{
		"HEAD": c3, "main": c3, "HEAD~1": c2, "HEAD~2": c1, "HEAD^": c2, "main~1^": c1,
		c2.String()[:8]: c2, strings.ToUpper(c1.String()[:10]): c1, c3.String(): c3,
	} {
		got, err := r.Resolve(rev)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", rev, got.Short(), err, want.Short())
		}
	}
	for _, bad := range []string{"HEAD~3", "nope", "zzzz", "HEAD^2"} {
		if _, err := r.Resolve(bad); !errors.Is(err, ErrUnknownRev) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownRev", bad, err)
		}
	}
	log, err := r.Log(c3, 0)
	if err != nil || len(log) != 3 || log[0].ID != c3 || log[2].ID != c1 {
		t.Fatalf("log: %v %d", err, len(log))
	}
	if short, _ := r.Log(c3, 2); len(short) != 2 {
		t.Fatalf("log -n 2 gave %d", len(short))
	}
	e, _, err := r.ResolveEntry("HEAD~2:a")
	if err != nil || e.Size != 1 {
		t.Fatalf("HEAD~2:a: %v %+v", err, e)
	}
	if _, _, err := r.ResolveEntry("HEAD:missing"); !errors.Is(err, object.ErrPathNotFound) {
		t.Fatalf("missing path: %v", err)
	}
}

func TestStatusAndDiff(t *testing.T) {
	r := newRepo(t)
	write(t, r, "keep", "k")
	write(t, r, "mod", "line1\nline2\n")
	write(t, r, "del", "d")
	commit(t, r, "base")
	st, err := r.Status(ctx)
	if err != nil || !st.Clean() {
		t.Fatalf("status after commit: %v %+v", err, st)
	}
	write(t, r, "mod", "line1\nchanged\n")
	os.Remove(filepath.Join(r.Root, "del"))
	write(t, r, "new/file", "n")
	st, _ = r.Status(ctx)
	got := map[string]string{}
	for _, c := range st.Changes {
		got[c.Path] = c.Status
	}
	want := map[string]string{"mod": "modified", "del": "deleted", "new/file": "added"}
	if len(got) != len(want) {
		t.Fatalf("status %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("status %v, want %v", got, want)
		}
	}
	d, err := r.Diff(ctx, nil, []string{"mod"})
	if err != nil || len(d.Changes) != 1 {
		t.Fatalf("diff -- mod: %v %+v", err, d)
	}
	var sb strings.Builder
	if err := r.WritePatch(ctx, &sb, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "-line2\n+changed\n") {
		t.Fatalf("patch:\n%s", sb.String())
	}
}

func TestCheckoutAndRestoreNeverLoseWork(t *testing.T) {
	r := newRepo(t)
	write(t, r, "f", "v1")
	write(t, r, "other", "o1")
	c1 := commit(t, r, "v1")
	write(t, r, "f", "v2")
	write(t, r, "gone", "g")
	commit(t, r, "v2")

	// An uncommitted edit to a path the checkout changes blocks it.
	write(t, r, "f", "my edit")
	if _, err := r.Checkout(ctx, c1.String(), nil); !errors.Is(err, ErrUncommitted) {
		t.Fatalf("checkout over an edit: %v", err)
	}
	if read(t, r, "f") != "my edit" {
		t.Fatal("checkout touched the edit")
	}
	if _, err := r.Restore(ctx, RestoreOptions{Source: c1.String(), Paths: []string{"f"}}); !errors.Is(err, ErrUncommitted) {
		t.Fatalf("restore over an edit: %v", err)
	}
	// An edit elsewhere is carried along.
	write(t, r, "f", "v2")
	write(t, r, "other", "edited other")
	if _, err := r.Checkout(ctx, c1.String(), nil); !errors.Is(err, nil) {
		t.Fatalf("checkout: %v", err)
	}
	if read(t, r, "f") != "v1" || read(t, r, "other") != "edited other" {
		t.Fatal("checkout lost or missed a change")
	}
	if _, err := os.Stat(filepath.Join(r.Root, "gone")); !os.IsNotExist(err) {
		t.Fatal("file absent from target still there")
	}
	h, _ := r.Head()
	if h.Branch != "" || h.ID != c1 {
		t.Fatalf("HEAD after checkout of an ID: %+v", h)
	}
	write(t, r, "other", "o1")
	if res, err := r.Checkout(ctx, "main", nil); err != nil || res.Branch != "main" {
		t.Fatalf("checkout main: %v", err)
	}
	if read(t, r, "f") != "v2" || read(t, r, "gone") != "g" {
		t.Fatal("checkout main did not restore the files")
	}
	// An untracked file the target would create blocks the checkout.
	os.Remove(filepath.Join(r.Root, "gone"))
	commit(t, r, "rm gone")
	write(t, r, "gone", "untracked now")
	if _, err := r.Checkout(ctx, "HEAD~1", nil); !errors.Is(err, ErrUncommitted) {
		t.Fatalf("checkout over an untracked file: %v", err)
	}
	// Restore of a deleted file is always allowed; untracked files stay.
	os.Remove(filepath.Join(r.Root, "f"))
	res, err := r.Restore(ctx, RestoreOptions{})
	if err != nil || read(t, r, "f") != "v2" || read(t, r, "gone") != "untracked now" || res.Written != 1 {
		t.Fatalf("restore: %v %+v", err, res)
	}
	// Restore to another directory.
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := r.Restore(ctx, RestoreOptions{Source: c1.String(), To: dst}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "v1" {
		t.Fatal("restore --to wrote the wrong content")
	}
	if _, err := r.Restore(ctx, RestoreOptions{Paths: []string{"nope"}}); !errors.Is(err, object.ErrPathNotFound) {
		t.Fatalf("restore of a missing path: %v", err)
	}
}

// TestHostileTreeNeverTouchesDisk stores a tree with a ".." entry (as a
// hostile peer might send) and a commit on it: checkout and restore refuse
// it as corrupt and write nothing outside or inside.
func TestHostileTreeNeverTouchesDisk(t *testing.T) {
	r := newRepo(t)
	write(t, r, "f", "x")
	base := commit(t, r, "base")
	b := r.Store.NewBatch()
	chunk, _ := b.Put(object.TypeChunk, []byte("pwned"))
	file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: 5}}}).Encode())
	// Hand-encode what Tree.Encode refuses to produce.
	evil := []byte{object.FormatVersion, 1, 2, '.', '.', byte(object.KindFile), 5}
	evil = append(evil, file[:]...)
	tree, _ := b.Put(object.TypeTree, evil)
	c := &object.Commit{Tree: tree, Parents: []object.ID{base}, Message: "evil"}
	cid, _ := b.Put(object.TypeCommit, c.Encode())
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Checkout(ctx, cid.String(), nil); !errors.Is(err, object.ErrCorrupt) && !errors.Is(err, object.ErrMalformed) {
		t.Fatalf("checkout of a hostile tree: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "d", "out")
	if _, err := r.Restore(ctx, RestoreOptions{Source: cid.String(), To: dst}); err == nil {
		t.Fatal("restore of a hostile tree succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	for _, e := range entries {
		if e.Name() != "out" {
			t.Fatalf("hostile restore wrote %s beside the destination", e.Name())
		}
	}
	if h, _ := r.Head(); h.ID != base {
		t.Fatal("HEAD moved")
	}
}

// TestConcurrentCommits runs commits from several handles at once: each
// either lands on top of the previous one or waits; history stays linear
// and fsck clean.
func TestConcurrentCommits(t *testing.T) {
	r := newRepo(t)
	write(t, r, "seed", "0")
	commit(t, r, "seed")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := Open(r.Root)
			if err != nil {
				errs[i] = err
				return
			}
			defer h.Close()
			write(t, r, "file"+string(rune('a'+i)), strings.Repeat("x", i+1))
			_, errs[i] = h.Commit(ctx, CommitOptions{Message: "concurrent", AllowEmpty: true})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	head, _ := r.Resolve("HEAD")
	log, err := r.Log(head, 0)
	if err != nil || len(log) != 5 {
		t.Fatalf("history has %d commits, want 5: %v", len(log), err)
	}
	for _, e := range log {
		if len(e.Parents) > 1 {
			t.Fatal("unexpected merge")
		}
	}
	rep, err := object.Fsck(ctx, r.Store, r.Refs, true)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck: %v %+v", err, rep.Problems)
	}
	st, _ := r.Status(ctx)
	if !st.Clean() {
		t.Fatalf("files written before the last commit are missing from it: %+v", st.Changes)
	}
}

func TestNotARepository(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotRepo) {
		t.Fatalf("Open outside a repository: %v", err)
	}
	r := newRepo(t)
	if _, err := Init(r.Root, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	sub := filepath.Join(r.Root, "a", "b")
	os.MkdirAll(sub, 0o755)
	r2, err := Open(sub)
	if err != nil || r2.Root != r.Root {
		t.Fatalf("Open from a subdirectory: %v", err)
	}
	r2.Close()
}

// TestStatusThenCommit: status fills the stat cache with IDs it only
// hashed; a commit after it must still store those files.
func TestStatusThenCommit(t *testing.T) {
	r := newRepo(t)
	write(t, r, "a", "content a")
	write(t, r, "b", "content b")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(r.Root, "a"), old, old)
	os.Chtimes(filepath.Join(r.Root, "b"), old, old)
	if _, err := r.Status(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, r, "after status")
	rep, err := object.Fsck(ctx, r.Store, r.Refs, true)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck: %v %+v", err, rep.Problems)
	}
	dst := t.TempDir()
	if _, err := r.Restore(ctx, RestoreOptions{To: dst}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "content a" {
		t.Fatal("restored content differs")
	}
}

// TestConflictsCache: the open conflicts are kept for the head they were
// found at, and found again once HEAD moves or the cache is damaged.
func TestConflictsCache(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, err := r.Commit(ctx, CommitOptions{Message: "one", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	first, err := r.Conflicts()
	if err != nil || len(first) != 0 {
		t.Fatalf("conflicts: %v %v", first, err)
	}
	h, _ := r.Head()
	// A cache that claims a conflict at this head is believed...
	var buf bytes.Buffer
	fake := []OpenConflict{{Conflict: object.Conflict{Path: "bad\xffname"}}}
	gob.NewEncoder(&buf).Encode(cachedConflicts{Version: conflictsCacheVersion, Head: h.ID, Conflicts: fake})
	os.WriteFile(filepath.Join(r.Meta, conflictsCache), buf.Bytes(), 0o644)
	if got, _ := r.Conflicts(); len(got) != 1 || got[0].Path != "bad\xffname" {
		t.Fatalf("cache not used, or name not kept exactly: %+v", got)
	}
	// ...until HEAD moves,
	if _, err := r.Commit(ctx, CommitOptions{Message: "two", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Conflicts(); len(got) != 0 {
		t.Fatalf("a stale cache was used: %+v", got)
	}
	// one of an older version is not read,
	buf.Reset()
	h, _ = r.Head()
	gob.NewEncoder(&buf).Encode(cachedConflicts{Version: conflictsCacheVersion - 1, Head: h.ID, Conflicts: fake})
	os.WriteFile(filepath.Join(r.Meta, conflictsCache), buf.Bytes(), 0o644)
	if got, _ := r.Conflicts(); len(got) != 0 {
		t.Fatalf("a cache of another version was used: %+v", got)
	}
	// and a damaged one is found again.
	os.WriteFile(filepath.Join(r.Meta, conflictsCache), []byte("garbage"), 0o644)
	if got, err := r.Conflicts(); err != nil || len(got) != 0 {
		t.Fatalf("damaged cache: %+v %v", got, err)
	}
}
