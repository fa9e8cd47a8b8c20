package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// TestFinishInterrupted: a checkout recorded in .mesh/op whose files were
// only partly written (one path at the new version, one still old, one
// removed in the window where a large file is replaced, and one edited
// after the kill) is finished by the next command that takes the lock:
// the tree ends at the target, HEAD moves, the later edit stays.
func TestFinishInterrupted(t *testing.T) {
	r := newRepo(t)
	write(t, r, "a.txt", "a1\n")
	write(t, r, "b.txt", "b1\n")
	write(t, r, "c.txt", "c1\n")
	write(t, r, "d.txt", "d1\n")
	write(t, r, "same.txt", "same\n")
	c1 := commit(t, r, "one")
	write(t, r, "a.txt", "a2\n")
	write(t, r, "b.txt", "b2\n")
	write(t, r, "c.txt", "c2\n")
	write(t, r, "d.txt", "d2\n")
	write(t, r, "new.txt", "new\n")
	c2 := commit(t, r, "two")
	t1, _ := r.Store.ReadCommit(c1)
	t2, _ := r.Store.ReadCommit(c2)

	// As a checkout from c2 to c1 killed midway leaves it: HEAD at c2,
	// a.txt written, b.txt not yet, c.txt removed, new.txt still there,
	// d.txt edited by the user after the kill.
	write(t, r, "a.txt", "a1\n")
	os.Remove(filepath.Join(r.Root, "c.txt"))
	write(t, r, "d.txt", "mine\n")
	os.WriteFile(filepath.Join(r.Meta, TmpDir, "stray"), []byte("half"), 0o644)
	h, _ := r.Head()
	in := intent{Op: "checkout", From: t2.Tree, To: t1.Tree, Head: &headMove{Attach: true, Old: h.ID, New: c1, Msg: "checkout"}}
	if err := r.writeIntent(in); err != nil {
		t.Fatal(err)
	}
	if got := r.Interrupted(); got != "checkout" {
		t.Fatalf("Interrupted() = %q", got)
	}
	l, err := r.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	for p, want := range map[string]string{"a.txt": "a1\n", "b.txt": "b1\n", "c.txt": "c1\n", "d.txt": "mine\n", "same.txt": "same\n"} {
		if b, err := os.ReadFile(filepath.Join(r.Root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", p, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.Root, "new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("new.txt, absent from the target, is still there")
	}
	if h, _ := r.Head(); h.ID != c1 || h.Branch != "" {
		t.Errorf("HEAD = %+v, want detached at %s", h, c1.Short())
	}
	if r.Interrupted() != "" {
		t.Error("the record is still there")
	}
	if ents, _ := os.ReadDir(filepath.Join(r.Meta, TmpDir)); len(ents) != 0 {
		t.Errorf(".mesh/tmp not swept: %v", ents)
	}
	st, err := r.Status(context.Background())
	if err != nil || len(st.Changes) != 1 || st.Changes[0].Path != "d.txt" {
		t.Fatalf("status after finishing: %+v %v", st, err)
	}
}

// FuzzIntent: whatever .mesh/op holds, reading it and finishing it end
// in a result or an error, never a panic, and a damaged record is an
// error that says so.
func FuzzIntent(f *testing.F) {
	good, _ := json.Marshal(intent{Op: "checkout", From: object.EmptyTreeID, To: object.EmptyTreeID, Head: &headMove{Attach: true, Branch: "main"}})
	f.Add(good)
	f.Add([]byte(`{"op":"restore","from":"00","to":"zz","paths":["../x"]}`))
	f.Add([]byte(`{"op":""}`))
	f.Add([]byte("\x00garbage"))
	r, err := Init(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(r.Meta, opFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := r.readIntent()
		if err != nil {
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("a damaged record is not ErrInterrupted: %v", err)
			}
			return
		}
		if in == nil || in.Op == "" {
			t.Fatalf("accepted %q as %+v", b, in)
		}
		r.finish(context.Background(), in)
		r.clearIntent()
	})
}

// FuzzConfig: whatever .mesh/config holds, opening the repository gives
// a repository or an error that names the file, never a panic.
func FuzzConfig(f *testing.F) {
	r, err := Init(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	p := filepath.Join(r.Meta, "config")
	good, _ := os.ReadFile(p)
	r.Close()
	f.Add(good)
	f.Add([]byte(`{"version":1,"chunking":{"algorithm":"x","min":0,"normal":0,"max":0}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		o, err := Open(r.Root)
		if err != nil {
			if !strings.Contains(err.Error(), "config") {
				t.Fatalf("the error does not name the config: %v", err)
			}
			return
		}
		o.Close()
	})
}
