package object

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleTree() *Tree {
	return &Tree{Entries: []Entry{
		{Name: "a.txt", Kind: KindFile, Size: 5, ID: Hash(TypeFile, []byte("a"))},
		{Name: "bin", Kind: KindExec, Size: 9, ID: Hash(TypeFile, []byte("b"))},
		{Name: "dir", Kind: KindDir, ID: Hash(TypeTree, []byte("d"))},
		{Name: "link", Kind: KindSymlink, Size: 5, ID: Hash(TypeChunk, []byte("a.txt"))},
	}}
}

func sampleCommit() *Commit {
	return &Commit{
		Tree:    Hash(TypeTree, []byte("t")),
		Parents: []ID{Hash(TypeCommit, []byte("p1")), Hash(TypeCommit, []byte("p2"))},
		Device:  "dev1", Author: "ann@host", Time: 1700000000, TZ: -300, Message: "merge\n\nbody",
		Conflicts: []Conflict{{Path: "x.txt", Copy: "x.conflict-dev2-abc.txt", Device: "dev2", Ours: Hash(TypeFile, []byte("o")), Theirs: Hash(TypeFile, []byte("t"))}},
	}
}

func TestRoundTrip(t *testing.T) {
	tb, err := sampleTree().Encode()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := DecodeTree(tb)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := tr.Encode(); !bytes.Equal(again, tb) {
		t.Fatal("tree does not re-encode to the same bytes")
	}
	cb := sampleCommit().Encode()
	c, err := DecodeCommit(cb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Encode(), cb) || c.TZ != -300 || c.Conflicts[0].Copy != "x.conflict-dev2-abc.txt" {
		t.Fatalf("commit round trip changed it: %+v", c)
	}
	f := &File{Chunks: []ChunkRef{{ID: Hash(TypeChunk, []byte("x")), Size: 1}, {ID: Hash(TypeChunk, []byte("yz")), Size: 2}}}
	fd, err := DecodeFile(f.Encode())
	if err != nil || fd.Size() != 3 || !bytes.Equal(fd.Encode(), f.Encode()) {
		t.Fatalf("file round trip: %v %+v", err, fd)
	}
}

// TestIDsAreStable pins the hashed format: if this fails, every existing
// repository's IDs would change, which the canonical encoding forbids.
func TestIDsAreStable(t *testing.T) {
	tb, _ := sampleTree().Encode()
	got := map[string]string{
		"chunk":  Hash(TypeChunk, []byte("hello\n")).String(),
		"tree":   Hash(TypeTree, tb).String(),
		"commit": Hash(TypeCommit, sampleCommit().Encode()).String(),
	}
	if *update {
		var b strings.Builder
		for _, k := range []string{"chunk", "commit", "tree"} {
			b.WriteString(k + " " + got[k] + "\n")
		}
		if err := os.WriteFile(filepath.Join("testdata", "ids.golden"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t, "ids.golden")
	for k, v := range got {
		if golden[k] != v {
			t.Errorf("%s ID = %s, golden %s", k, v, golden[k])
		}
	}
}

func readGolden(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := readTestdata(name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		out[k] = v
	}
	return out
}

func TestDecodersRejectNonCanonical(t *testing.T) {
	tb, _ := sampleTree().Encode()
	fb := (&File{Chunks: []ChunkRef{{ID: Hash(TypeChunk, []byte("x")), Size: 1}}}).Encode()
	tree := func(name string, kind Kind, size uint64) []byte {
		var e encoder
		e.WriteByte(FormatVersion)
		e.uvarint(1)
		e.str(name)
		e.WriteByte(byte(kind))
		e.uvarint(size)
		e.id(ZeroID)
		return e.Bytes()
	}
	twoEntries := func(a, b string) []byte {
		var e encoder
		e.WriteByte(FormatVersion)
		e.uvarint(2)
		for _, n := range []string{a, b} {
			e.str(n)
			e.WriteByte(byte(KindFile))
			e.uvarint(0)
			e.id(ZeroID)
		}
		return e.Bytes()
	}
	cases := []struct {
		name string
		dec  func([]byte) error
		in   []byte
	}{
		{"tree trailing byte", decTree, append(append([]byte{}, tb...), 0)},
		{"tree wrong version", decTree, append([]byte{2}, tb[1:]...)},
		{"tree truncated", decTree, tb[:len(tb)-1]},
		{"tree dot-dot name", decTree, tree("..", KindFile, 0)},
		{"tree dot name", decTree, tree(".", KindFile, 0)},
		{"tree slash in name", decTree, tree("a/b", KindFile, 0)},
		{"tree NUL in name", decTree, tree("a\x00", KindFile, 0)},
		{"tree empty name", decTree, tree("", KindFile, 0)},
		{"tree unknown kind", decTree, tree("a", 9, 0)},
		{"tree dir with size", decTree, tree("a", KindDir, 3)},
		{"tree unsorted", decTree, twoEntries("b", "a")},
		{"tree duplicate", decTree, twoEntries("a", "a")},
		{"tree non-minimal varint", decTree, []byte{FormatVersion, 0x80, 0x00}},
		{"tree huge count", decTree, []byte{FormatVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"file zero-length chunk", decFile, append(append([]byte{FormatVersion, 1}, make([]byte, 32)...), 0)},
		{"file trailing", decFile, append(append([]byte{}, fb...), 1)},
		{"commit truncated", decCommit, sampleCommit().Encode()[:40]},
		{"empty", decTree, nil},
	}
	for _, c := range cases {
		if err := c.dec(c.in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", c.name, err)
		}
	}
}

func decTree(b []byte) error   { _, err := DecodeTree(b); return err }
func decFile(b []byte) error   { _, err := DecodeFile(b); return err }
func decCommit(b []byte) error { _, err := DecodeCommit(b); return err }

func TestEncodeRejectsBadTrees(t *testing.T) {
	for _, tr := range []*Tree{
		{Entries: []Entry{{Name: "b"}, {Name: "a"}}},
		{Entries: []Entry{{Name: ".."}}},
		{Entries: []Entry{{Name: "x/y"}}},
	} {
		if _, err := tr.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Encode(%+v) = %v, want ErrMalformed", tr.Entries, err)
		}
	}
}

func TestEmptyTreeID(t *testing.T) {
	b, err := (&Tree{}).Encode()
	if err != nil || Hash(TypeTree, b) != EmptyTreeID {
		t.Fatal("EmptyTreeID is not the ID of an encoded empty tree")
	}
}

// TestCommitDeviceName: a device name comes last and only when set, so a
// commit without one encodes (and hashes) as before the field existed; an
// empty or invalid name in the encoding is malformed.
// withOrigins is sampleCommit with the origin of its conflict recorded,
// with or without a device name of its own.
func withOrigins(named bool) *Commit {
	c := sampleCommit()
	c.Conflicts = append(c.Conflicts, Conflict{Path: "y.txt", Device: "dev3"})
	c.Conflicts[0].Merge = Hash(TypeCommit, []byte("m"))
	c.Conflicts[0].Commit = Hash(TypeCommit, []byte("c"))
	c.Conflicts[0].DeviceName = "phone"
	if named {
		c.DeviceName = "laptop"
	}
	return c
}

// TestConflictOrigins: the origins of conflicts round-trip, with and
// without a device name, and commits without them keep their bytes.
func TestConflictOrigins(t *testing.T) {
	plain := sampleCommit()
	plain.Conflicts = append(plain.Conflicts, Conflict{Path: "y.txt", Device: "dev3"})
	for _, named := range []bool{false, true} {
		c := withOrigins(named)
		b := c.Encode()
		if !bytes.HasPrefix(b, plain.Encode()) {
			t.Fatalf("origins are not a suffix of the encoding without them")
		}
		got, err := DecodeCommit(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.DeviceName != c.DeviceName || got.Conflicts[0] != c.Conflicts[0] || got.Conflicts[1] != c.Conflicts[1] {
			t.Fatalf("decoded %+v, want %+v", got, c)
		}
	}
	// An empty device name with nothing after it, or origins that are all
	// empty, are not canonical.
	for _, bad := range [][]byte{
		append(plain.Encode(), 0),
		append(append(plain.Encode(), 0), make([]byte, 2*(2*IDSize+1))...),
	} {
		if _, err := DecodeCommit(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x decoded: %v", bad, err)
		}
	}
}

func TestCommitDeviceName(t *testing.T) {
	plain := sampleCommit().Encode()
	named := sampleCommit()
	named.DeviceName = "laptop-2"
	b := named.Encode()
	if !bytes.HasPrefix(b, plain) || len(b) != len(plain)+1+len("laptop-2") {
		t.Fatalf("the name is not a suffix of the unnamed encoding:\n%x\n%x", plain, b)
	}
	c, err := DecodeCommit(b)
	if err != nil || c.DeviceName != "laptop-2" {
		t.Fatalf("decode: %v, %q", err, c.DeviceName)
	}
	if c, err := DecodeCommit(plain); err != nil || c.DeviceName != "" {
		t.Fatalf("decode unnamed: %v, %q", err, c.DeviceName)
	}
	for _, bad := range []string{"", "a/b", ".x", "-x", "a b", strings.Repeat("a", MaxDeviceNameLen+1)} {
		enc := append(append([]byte(nil), plain...), byte(len(bad)))
		enc = append(enc, bad...)
		if _, err := DecodeCommit(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("name %q decoded: %v", bad, err)
		}
	}
	for _, good := range []string{"laptop", "pi4", "Tess-MacBook.local", "a_b"} {
		if !ValidDeviceName(good) {
			t.Errorf("%q refused", good)
		}
	}
}
