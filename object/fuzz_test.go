package object

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

// Each decoder either rejects its input or accepts exactly what Encode
// produces: decoding then encoding must give the input back, or two byte
// strings would name one value and IDs would diverge between devices.

func FuzzDecodeTree(f *testing.F) {
	tb, _ := sampleTree().Encode()
	f.Add(tb)
	empty, _ := (&Tree{}).Encode()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			return
		}
		again, err := tr.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("tree round trip mismatch:\n in  %x\n out %x", b, again)
		}
	})
}

// FuzzFindEntry: on a body DecodeTree accepts, FindEntry finds exactly
// the entries it holds, and nothing else; on any body it never panics.
func FuzzFindEntry(f *testing.F) {
	tb, _ := sampleTree().Encode()
	f.Add(tb, "a")
	f.Add(tb, sampleTree().Entries[0].Name)
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		e, ok, err := FindEntry(b, name)
		tr, derr := DecodeTree(b)
		if derr != nil {
			return // FindEntry may or may not see the flaw
		}
		if err != nil {
			t.Fatalf("FindEntry refuses a tree DecodeTree accepts: %v", err)
		}
		want, wok := tr.Find(name)
		if ok != wok || e != want {
			t.Fatalf("FindEntry(%q) = %+v %v, Find %+v %v", name, e, ok, want, wok)
		}
		for _, en := range tr.Entries {
			if got, ok, _ := FindEntry(b, en.Name); !ok || got != en {
				t.Fatalf("FindEntry(%q) = %+v %v, want %+v", en.Name, got, ok, en)
			}
		}
	})
}

func FuzzDecodeFile(f *testing.F) {
	f.Add((&File{}).Encode())
	f.Add((&File{Chunks: []ChunkRef{{ID: Hash(TypeChunk, []byte("x")), Size: 1}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := DecodeFile(b)
		if err != nil {
			return
		}
		if again := fl.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("file round trip mismatch:\n in  %x\n out %x", b, again)
		}
	})
}

func FuzzDecodeCommit(f *testing.F) {
	f.Add(sampleCommit().Encode())
	f.Add((&Commit{}).Encode())
	named := sampleCommit()
	named.DeviceName = "laptop"
	f.Add(named.Encode())
	f.Add(withOrigins(false).Encode())
	f.Add(withOrigins(true).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err != nil {
			return
		}
		if again := c.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("commit round trip mismatch:\n in  %x\n out %x", b, again)
		}
	})
}

func FuzzOpenIndex(f *testing.F) {
	f.Add(encodeIndex([]idxEntry{{id: Hash(TypeChunk, []byte("a")), off: 12, stored: 1, raw: 1, typ: TypeChunk}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := openIndex("x", "x", b, 1<<20)
		if err != nil {
			return
		}
		// A structurally valid index either checks out or is reported,
		// and lookups never panic either way.
		p.check()
		for i := 0; i < p.n; i++ {
			e := p.entry(i)
			p.find(e.id)
		}
	})
}

// TestWriteFuzzSeeds (with -update) writes the seed corpus under
// testdata/fuzz from real encodings, so that plain go test runs every
// fuzz target over them too.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	tb, _ := sampleTree().Encode()
	seeds := map[string][]byte{
		"FuzzDecodeTree/sample":   tb,
		"FuzzDecodeFile/sample":   (&File{Chunks: []ChunkRef{{ID: Hash(TypeChunk, []byte("x")), Size: 7}}}).Encode(),
		"FuzzDecodeCommit/sample": sampleCommit().Encode(),
		"FuzzOpenIndex/sample":    encodeIndex([]idxEntry{{id: Hash(TypeChunk, []byte("a")), off: 12, stored: 1, raw: 1, typ: TypeChunk}}),
	}
	for name, b := range seeds {
		p := filepath.Join("testdata", "fuzz", filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzReflogLine: a reflog line parses (and then, written again, reads
// back the same) or is reported damaged; a line whose checksum does not
// match is never taken.
func FuzzReflogLine(f *testing.F) {
	a, b := Hash(TypeChunk, []byte("a")), Hash(TypeChunk, []byte("b"))
	good := strings.TrimSuffix(logLine(a, b, 1700000000, "commit: x"), "\n")
	f.Add(good)
	f.Add(good[:len(good)-1] + "0")
	f.Add(fmt.Sprintf("%s %s %d %s", a, b, 5, "an old line, no checksum"))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseLogLine(line)
		if !ok {
			return
		}
		again, ok := parseLogLine(strings.TrimSuffix(logLine(e.Old, e.New, e.Time, e.Message), "\n"))
		if !ok || again != e {
			t.Fatalf("%q parsed to %+v, written and read again %+v", line, e, again)
		}
	})
}

// FuzzRef: whatever a ref file holds, reading it gives an ID or an error
// that names the ref, never a panic.
func FuzzRef(f *testing.F) {
	dir := f.TempDir()
	r := OpenRefs(dir)
	os.MkdirAll(filepath.Join(dir, "refs", "heads"), 0o755)
	f.Add([]byte(Hash(TypeChunk, nil).String() + "\n"))
	f.Add([]byte("ref: heads/main\n"))
	f.Add([]byte{0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "refs", "heads", "main"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Get("heads/main"); err != nil && !strings.Contains(err.Error(), "heads/main") {
			t.Fatalf("the error does not name the ref: %v", err)
		}
		os.WriteFile(filepath.Join(dir, "HEAD"), b, 0o644)
		r.Head()
	})
}
