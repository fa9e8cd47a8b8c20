package object

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// FormatVersion is the version byte that starts every file, tree and commit
// body. A decoder meeting another version refuses it rather than guessing.
const FormatVersion = 1

// maxChunkLen bounds a chunk length recorded in a file object, so a hostile
// object cannot make a reader allocate without limit.
const maxChunkLen = 1 << 30

// ErrMalformed is the kind of error a decoder returns for a body that is not
// the canonical encoding of any object.
var ErrMalformed = errors.New("malformed object")

// ChunkRef is one chunk of a file: its ID and its length in bytes.
type ChunkRef struct {
	ID   ID    `json:"id"`
	Size int64 `json:"size"`
}

// File is the ordered list of chunks whose concatenation is a file's content.
type File struct {
	Chunks []ChunkRef
}

// Size returns the file's length in bytes.
func (f *File) Size() int64 {
	var n int64
	for _, c := range f.Chunks {
		n += c.Size
	}
	return n
}

// Kind is what a tree entry is.
type Kind uint8

// Tree entry kinds; their numbers are part of the hashed format.
const (
	KindFile    Kind = 0
	KindExec    Kind = 1
	KindSymlink Kind = 2
	KindDir     Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindExec:
		return "exec"
	case KindSymlink:
		return "symlink"
	case KindDir:
		return "dir"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText makes kinds appear by name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind by its name, as MarshalText writes it.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{KindFile, KindExec, KindSymlink, KindDir} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q", b)
}

// Entry is one name in a tree. For files and executables ID names a file
// object and Size is the content length; for a symlink ID names a chunk holding
// the link target and Size is its length; for a directory ID names a tree and
// Size is 0.
type Entry struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	Size int64  `json:"size"`
	ID   ID     `json:"id"`
}

// Tree is a directory: entries sorted by name, bytewise, names unique.
type Tree struct {
	Entries []Entry
}

// EmptyTreeID is the ID of the tree with no entries.
var EmptyTreeID = Hash(TypeTree, []byte{FormatVersion, 0})

// Find returns the entry called name, or false.
func (t *Tree) Find(name string) (Entry, bool) {
	lo, hi := 0, len(t.Entries)
	for lo < hi {
		m := (lo + hi) / 2
		if t.Entries[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.Entries) && t.Entries[lo].Name == name {
		return t.Entries[lo], true
	}
	return Entry{}, false
}

// Conflict records, in a merge commit, a path where both sides changed the
// same thing: which version stayed at Path and where the other was kept.
// A merge commit lists every conflict open at it: the ones it made and the
// unresolved ones it carries forward from its parents.
type Conflict struct {
	Path   string `json:"path"`
	Copy   string `json:"copy"`
	Device string `json:"device"`
	Base   ID     `json:"base,omitzero"`
	Ours   ID     `json:"ours,omitzero"`
	Theirs ID     `json:"theirs,omitzero"`
	// Merge is the merge commit that made the conflict; zero in the commit
	// that made it (a commit cannot hold its own ID), so a reader sets it
	// to that commit's ID.
	Merge ID `json:"merge,omitzero"`
	// Commit is the commit whose version is kept beside the file (or, for
	// markers and modify/delete, the commit of the side named by Device),
	// and DeviceName the name that commit carries: a real device's, even
	// when the side merged was itself a merge.
	Commit     ID     `json:"commit,omitzero"`
	DeviceName string `json:"deviceName,omitempty"`
}

// hasOrigin says whether c carries the fields that came after the first
// six.
func (c *Conflict) hasOrigin() bool {
	return !c.Merge.IsZero() || !c.Commit.IsZero() || c.DeviceName != ""
}

// Commit is a snapshot of the whole folder with its history.
type Commit struct {
	Tree    ID
	Parents []ID
	Device  string
	Author  string
	// Time is seconds since the Unix epoch; TZ is the author's offset from
	// UTC in minutes, kept only for display.
	Time      int64
	TZ        int16
	Message   string
	Conflicts []Conflict
	// DeviceName is the name the device that made the commit goes by
	// (mesh config name), for people: conflict copies and messages use it.
	// It comes last and only when set, so a commit without one encodes as
	// it always has. Merge commits, which every device makes alike, have
	// none.
	DeviceName string
}

// MaxDeviceNameLen bounds a device name: it goes into file names.
const MaxDeviceNameLen = 40

// ValidDeviceName reports whether name may name a device: 1 to
// MaxDeviceNameLen letters, digits, '.', '_' or '-', not starting with
// '.' or '-', so that it can stand inside a file name on every file
// system.
func ValidDeviceName(name string) bool {
	if name == "" || len(name) > MaxDeviceNameLen || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidName reports whether name may stand in a tree: not empty, not "." or
// "..", no '/' and no NUL byte.
func ValidName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsAny(name, "/\x00")
}

type encoder struct{ bytes.Buffer }

func (e *encoder) uvarint(v uint64) {
	var b [binary.MaxVarintLen64]byte
	e.Write(b[:binary.PutUvarint(b[:], v)])
}

func (e *encoder) varint(v int64) {
	var b [binary.MaxVarintLen64]byte
	e.Write(b[:binary.PutVarint(b[:], v)])
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.WriteString(s)
}

func (e *encoder) id(id ID) { e.Write(id[:]) }

// Encode returns the canonical body of f.
func (f *File) Encode() []byte {
	var e encoder
	e.Grow(2 + len(f.Chunks)*(IDSize+4))
	e.WriteByte(FormatVersion)
	e.uvarint(uint64(len(f.Chunks)))
	for _, c := range f.Chunks {
		e.id(c.ID)
		e.uvarint(uint64(c.Size))
	}
	return e.Bytes()
}

// Encode returns the canonical body of t. It fails if the entries are not
// sorted and unique or a name or kind is invalid, since such a tree has no
// canonical form.
func (t *Tree) Encode() ([]byte, error) {
	var e encoder
	e.Grow(2 + len(t.Entries)*(IDSize+24))
	e.WriteByte(FormatVersion)
	e.uvarint(uint64(len(t.Entries)))
	for i, en := range t.Entries {
		if err := checkEntry(en); err != nil {
			return nil, err
		}
		if i > 0 && t.Entries[i-1].Name >= en.Name {
			return nil, fmt.Errorf("tree entries %q and %q are not sorted and unique: %w", t.Entries[i-1].Name, en.Name, ErrMalformed)
		}
		e.str(en.Name)
		e.WriteByte(byte(en.Kind))
		e.uvarint(uint64(en.Size))
		e.id(en.ID)
	}
	return e.Bytes(), nil
}

// ErrReservedName is the kind of error for a tree entry no working tree
// may hold: .mesh, in any case, is the name of a repository's own folder,
// so a tree holding one would write into a device's repository.
var ErrReservedName = errors.New("reserved name")

// Reserved reports whether name is one no tree may hold.
func Reserved(name string) bool { return strings.EqualFold(name, ".mesh") }

// CheckReserved refuses a tree that holds a reserved name.
func CheckReserved(t *Tree) error {
	for _, e := range t.Entries {
		if Reserved(e.Name) {
			return fmt.Errorf("tree entry %q: %w (mesh's own folder)", e.Name, ErrReservedName)
		}
	}
	return nil
}

func checkEntry(en Entry) error {
	if !ValidName(en.Name) {
		return fmt.Errorf("tree entry name %q: %w", en.Name, ErrMalformed)
	}
	if en.Kind > KindDir {
		return fmt.Errorf("tree entry %q has unknown kind %d: %w", en.Name, en.Kind, ErrMalformed)
	}
	if en.Size < 0 || (en.Kind == KindDir && en.Size != 0) {
		return fmt.Errorf("tree entry %q has size %d: %w", en.Name, en.Size, ErrMalformed)
	}
	return nil
}

// Encode returns the canonical body of c.
func (c *Commit) Encode() []byte {
	var e encoder
	e.WriteByte(FormatVersion)
	e.id(c.Tree)
	e.uvarint(uint64(len(c.Parents)))
	for _, p := range c.Parents {
		e.id(p)
	}
	e.str(c.Device)
	e.str(c.Author)
	e.varint(c.Time)
	e.varint(int64(c.TZ))
	e.str(c.Message)
	e.uvarint(uint64(len(c.Conflicts)))
	for _, k := range c.Conflicts {
		e.str(k.Path)
		e.str(k.Copy)
		e.str(k.Device)
		e.id(k.Base)
		e.id(k.Ours)
		e.id(k.Theirs)
	}
	origins := false
	for i := range c.Conflicts {
		origins = origins || c.Conflicts[i].hasOrigin()
	}
	if c.DeviceName != "" || origins {
		e.str(c.DeviceName)
	}
	if origins {
		// Where each conflict came from, one entry per conflict; written
		// only when one has it, so older commits keep their bytes.
		for _, k := range c.Conflicts {
			e.id(k.Merge)
			e.id(k.Commit)
			e.str(k.DeviceName)
		}
	}
	return e.Bytes()
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+": %w", append(args, ErrMalformed)...)
	}
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// uvarint reads a minimal-length unsigned varint: a longer encoding of the
// same value would give the same object a second ID.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	var tmp [binary.MaxVarintLen64]byte
	if binary.PutUvarint(tmp[:], v) != n {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	// zig-zag, as binary.PutVarint writes it
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// count reads a length that must fit in what is left, each element taking at
// least min bytes, so a hostile count cannot cause a huge allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) id() ID {
	var id ID
	if d.err != nil {
		return id
	}
	if len(d.b) < IDSize {
		d.fail("truncated ID")
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[IDSize:]
	return id
}

func (d *decoder) version() {
	if v := d.byte1(); d.err == nil && v != FormatVersion {
		d.fail("format version %d, this mesh reads version %d", v, FormatVersion)
	}
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// DecodeFile parses a file body, accepting only its canonical encoding.
func DecodeFile(body []byte) (*File, error) {
	d := decoder{b: body}
	d.version()
	n := d.count(IDSize + 1)
	f := &File{Chunks: make([]ChunkRef, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		id := d.id()
		size := d.uvarint()
		if d.err == nil && (size == 0 || size > maxChunkLen) {
			d.fail("chunk %d has length %d", i, size)
		}
		f.Chunks = append(f.Chunks, ChunkRef{ID: id, Size: int64(size)})
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("decode file: %w", err)
	}
	return f, nil
}

// DecodeTree parses a tree body, accepting only its canonical encoding:
// entries sorted and unique, names valid, kinds known.
func DecodeTree(body []byte) (*Tree, error) {
	d := decoder{b: body}
	d.version()
	n := d.count(1 + 1 + 1 + 1 + IDSize)
	t := &Tree{Entries: make([]Entry, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		var en Entry
		en.Name = d.str()
		en.Kind = Kind(d.byte1())
		size := d.uvarint()
		en.ID = d.id()
		if d.err != nil {
			break
		}
		if size > math.MaxInt64 {
			d.fail("entry %q has size %d", en.Name, size)
			break
		}
		en.Size = int64(size)
		if err := checkEntry(en); err != nil {
			d.err = err
			break
		}
		if i > 0 && t.Entries[i-1].Name >= en.Name {
			d.fail("entries %q and %q are not sorted and unique", t.Entries[i-1].Name, en.Name)
			break
		}
		t.Entries = append(t.Entries, en)
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	return t, nil
}

// FindEntry looks name up in the encoded tree body without decoding the
// other entries (a walk of history looks one path up in thousands of
// trees). It reads entries in order until it passes name; what it reads
// is checked as DecodeTree checks it, so a body that is not a tree's
// encoding is an error, though one whose flaw lies past name may go
// unnoticed (DecodeTree, and fsck, see all of it).
func FindEntry(body []byte, name string) (Entry, bool, error) {
	d := decoder{b: body}
	d.version()
	n := d.count(1 + 1 + 1 + 1 + IDSize)
	var prev []byte
	want := []byte(name)
	for i := 0; i < n && d.err == nil; i++ {
		l := d.count(1)
		if d.err != nil {
			break
		}
		nb := d.b[:l]
		d.b = d.b[l:]
		kind := Kind(d.byte1())
		size := d.uvarint()
		id := d.id()
		if d.err != nil {
			break
		}
		if i > 0 && bytes.Compare(prev, nb) >= 0 {
			d.fail("entries %q and %q are not sorted and unique", prev, nb)
			break
		}
		prev = nb
		switch c := bytes.Compare(nb, want); {
		case c < 0:
			continue
		case c > 0:
			return Entry{}, false, nil
		}
		if size > math.MaxInt64 {
			d.fail("entry %q has size %d", name, size)
			break
		}
		en := Entry{Name: name, Kind: kind, Size: int64(size), ID: id}
		if err := checkEntry(en); err != nil {
			return Entry{}, false, fmt.Errorf("decode tree: %w", err)
		}
		return en, true, nil
	}
	if d.err != nil {
		return Entry{}, false, fmt.Errorf("decode tree: %w", d.err)
	}
	return Entry{}, false, nil
}

// DecodeCommit parses a commit body, accepting only its canonical encoding.
func DecodeCommit(body []byte) (*Commit, error) {
	d := decoder{b: body}
	d.version()
	c := &Commit{}
	c.Tree = d.id()
	np := d.count(IDSize)
	for i := 0; i < np && d.err == nil; i++ {
		c.Parents = append(c.Parents, d.id())
	}
	if d.err == nil && len(c.Parents) > 1 {
		// Sorted copy, neighbours compared: O(n log n) however many
		// parents a hostile commit lists.
		sorted := slices.Clone(c.Parents)
		slices.SortFunc(sorted, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
		for i := 1; i < len(sorted); i++ {
			if sorted[i] == sorted[i-1] {
				d.fail("parent %s listed twice", sorted[i].Short())
				break
			}
		}
	}
	c.Device = d.str()
	c.Author = d.str()
	c.Time = d.varint()
	tz := d.varint()
	if d.err == nil && (tz < -24*60 || tz > 24*60) {
		d.fail("time zone offset %d minutes", tz)
	}
	c.TZ = int16(tz)
	c.Message = d.str()
	nc := d.count(3 + 3*IDSize)
	for i := 0; i < nc && d.err == nil; i++ {
		var k Conflict
		k.Path = d.str()
		k.Copy = d.str()
		k.Device = d.str()
		k.Base = d.id()
		k.Ours = d.id()
		k.Theirs = d.id()
		c.Conflicts = append(c.Conflicts, k)
	}
	if d.err == nil && len(d.b) > 0 {
		c.DeviceName = d.str()
		// Empty only when conflict origins follow.
		if d.err == nil && !ValidDeviceName(c.DeviceName) && (c.DeviceName != "" || len(d.b) == 0) {
			d.fail("device name %q", c.DeviceName)
		}
	}
	if d.err == nil && len(d.b) > 0 {
		if len(c.Conflicts) == 0 {
			d.fail("conflict origins without conflicts")
		}
		any := false
		for i := 0; i < len(c.Conflicts) && d.err == nil; i++ {
			k := &c.Conflicts[i]
			k.Merge = d.id()
			k.Commit = d.id()
			k.DeviceName = d.str()
			if d.err == nil && k.DeviceName != "" && !ValidDeviceName(k.DeviceName) {
				d.fail("conflict device name %q", k.DeviceName)
			}
			any = any || k.hasOrigin()
		}
		if d.err == nil && !any {
			d.fail("empty conflict origins")
		}
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("decode commit: %w", err)
	}
	return c, nil
}
