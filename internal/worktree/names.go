package worktree

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mesh-sync/mesh/object"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Names across platforms. History keeps names byte-exact as committed. A
// folder may be unable to hold some of them: Windows refuses characters
// and device names that Linux allows, and case-insensitive or
// normalizing filesystems (NTFS, APFS, HFS+) see two names of one
// directory as one file. The functions here are the rules, as pure
// functions of a name and of what the folder can hold, so that they are
// tested on any OS.

// FolderRules is what a folder can hold, probed once per folder.
type FolderRules struct {
	// CaseInsensitive: A.txt and a.txt are one file (NTFS, APFS, HFS+ by
	// default).
	CaseInsensitive bool `json:"caseInsensitive"`
	// Normalizing: a name is stored or listed in another Unicode
	// normalization than it was written in (HFS+ lists NFD), or two
	// normalizations of one name are one file (APFS).
	Normalizing bool `json:"normalizing"`
	// WindowsNames: Windows's rules apply (WindowsInvalid).
	WindowsNames bool `json:"windowsNames"`
	// NoExecBits: files show no executable bit of their own (NTFS, FAT),
	// so history's kind is kept for them.
	NoExecBits bool `json:"noExecBits"`
	// NoSymlinks: a symbolic link cannot be made here (Windows without
	// the privilege, FAT), so checkout writes a link as a small file
	// holding its target, and a scan takes such a file, unchanged, as
	// the link history has (git's core.symlinks=false).
	NoSymlinks bool `json:"noSymlinks"`
}

// Any says whether any rule applies: a folder with none holds every name
// and kind history can.
func (r FolderRules) Any() bool {
	return r.CaseInsensitive || r.Normalizing || r.WindowsNames || r.NoExecBits || r.NoSymlinks
}

// names says whether a rule about names applies.
func (r FolderRules) names() bool { return r.CaseInsensitive || r.Normalizing || r.WindowsNames }

// windowsReserved are the device names Windows reserves with any
// extension (AUX, AUX.txt, aux.tar.gz), compared without case.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true,
	"COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true,
	"LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	// Superscript digits count as digits to Windows.
	"COM¹": true, "COM²": true, "COM³": true, "LPT¹": true, "LPT²": true, "LPT³": true,
}

// windowsBadChars are the characters no Windows name may hold, besides
// the control characters 1–31.
const windowsBadChars = `<>:"\|?*`

// WindowsInvalid says why Windows cannot hold name ("" when it can).
func WindowsInvalid(name string) string {
	if !utf8.ValidString(name) {
		return "not valid UTF-8" // Windows names are UTF-16
	}
	for _, r := range name {
		if r < 32 {
			return fmt.Sprintf("control character %U", r)
		}
		if strings.ContainsRune(windowsBadChars, r) {
			return fmt.Sprintf("character %q", r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "ends in a dot or a space"
	}
	stem, _, _ := strings.Cut(name, ".")
	if windowsReserved[strings.ToUpper(strings.TrimRight(stem, " "))] {
		return "a reserved device name"
	}
	return ""
}

// escapeBase is where escaped characters go: ASCII character c is written
// as escapeBase+c, in Unicode's private use area, as Cygwin, MSYS and WSL
// write the names Windows refuses, so such a file shows there under its
// own name; a byte b that is not UTF-8 is written as escapeBase+b
// (0x80–0xFF).
const escapeBase = 0xF000

// EscapeName is name with everything Windows refuses written as
// escapeBase+c: the forbidden characters, bytes that are not UTF-8, a
// trailing dot or space, and one character of a reserved device name's
// stem (AUX.txt becomes AU\uF058.txt). UnescapeName reverses it; a name
// Windows can hold is returned as it is.
func EscapeName(name string) string {
	if WindowsInvalid(name) == "" {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(escapeBase + rune(name[i]))
		case r < 32 || strings.ContainsRune(windowsBadChars, r):
			b.WriteRune(escapeBase + r)
		default:
			b.WriteString(name[i : i+size])
		}
		i += size
	}
	s := b.String()
	// Trailing dots and spaces, all of them: "a. ." keeps none.
	trail := len(s)
	for trail > 0 && (s[trail-1] == '.' || s[trail-1] == ' ') {
		trail--
	}
	if trail < len(s) {
		var t strings.Builder
		t.WriteString(s[:trail])
		for _, c := range s[trail:] {
			t.WriteRune(escapeBase + c)
		}
		s = t.String()
	}
	stem, rest, dot := strings.Cut(s, ".")
	if windowsReserved[strings.ToUpper(strings.TrimRight(stem, " "))] {
		// The stem's last character, or its first where the last is not
		// ASCII (COM¹): reserved names all start with a letter.
		if last, size := utf8.DecodeLastRuneInString(stem); last < utf8.RuneSelf {
			stem = stem[:len(stem)-size] + string(escapeBase+last)
		} else {
			stem = string(escapeBase+rune(stem[0])) + stem[1:]
		}
		s = stem
		if dot {
			s += "." + rest
		}
	}
	return s
}

// UnescapeName reverses EscapeName: every escapeBase+c (c 1–255) becomes
// the character or byte c again. Only a name mesh wrote escaped (and
// recorded) is unescaped: a name that held such characters in history is
// left alone by the record.
func UnescapeName(name string) string {
	if !strings.ContainsFunc(name, isEscaped) {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if isEscaped(r) {
			b.WriteByte(byte(r - escapeBase)) // an ASCII character, or a byte that was not UTF-8
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isEscaped(r rune) bool { return r > escapeBase && r <= escapeBase+0xFF }

// folders are case folders: a cases.Caser keeps state while it works, so
// each goroutine takes its own.
var folders = sync.Pool{New: func() any { c := cases.Fold(); return &c }}

// fold is Unicode's full case folding of s.
func fold(s string) string {
	c := folders.Get().(*cases.Caser)
	defer folders.Put(c)
	return c.String(s)
}

// FoldKey is the name a folder with rules r sees name as: two names with
// one key are one file there. Normalization is NFC, case folding
// Unicode's full folding (as close to NTFS's and APFS's tables as a
// portable rule gets).
func FoldKey(name string, r FolderRules) string {
	if isASCII(name) {
		// Most names: NFC changes nothing and folding is lower case.
		if r.CaseInsensitive {
			return asciiLower(name)
		}
		return name
	}
	if r.Normalizing || r.CaseInsensitive {
		name = norm.NFC.String(name)
	}
	if r.CaseInsensitive {
		name = fold(name)
	}
	return name
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiLower is strings.ToLower of an ASCII string, allocating only when
// it has an upper-case letter.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// SameName reports whether a folder with rules r sees a and b as one name.
func SameName(a, b string, r FolderRules) bool { return a == b || FoldKey(a, r) == FoldKey(b, r) }

// clashName is the name the n-th extra name of a case or normalization
// clash is kept under: name.name-clash-N.ext, like a conflict copy.
func clashName(name string, n int) string {
	ext := path.Ext(name)
	if ext == name {
		ext = "" // ".bashrc" has no extension
	}
	return fmt.Sprintf("%s.name-clash-%d%s", strings.TrimSuffix(name, ext), n, ext)
}

// PlanNames says, for the names of one directory in history, the name
// each is kept under in a folder with rules r: itself where the folder
// can hold it, else an escaped name (EscapeName) or, for the second and
// later of names the folder sees as one (A.txt, a.txt), a clash name
// (a.name-clash-1.txt). Names are taken in bytewise order, so the plan is
// the same on every device; no two planned names are one to the folder,
// and none is one with a name of history it does not replace. Only names
// that change are in the result.
func PlanNames(names []string, r FolderRules) map[string]string {
	if !r.names() {
		return nil
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	taken := make(map[string]bool, len(sorted))
	for _, n := range sorted {
		if !r.WindowsNames || WindowsInvalid(n) == "" {
			// A name the folder can hold is reserved for itself first, so
			// an escaped or clash name never takes it.
			if k := FoldKey(n, r); !taken[k] {
				taken[k] = true
				continue
			}
		}
	}
	plan := map[string]string{}
	kept := make(map[string]bool, len(sorted))
	for _, n := range sorted {
		k := FoldKey(n, r)
		if (!r.WindowsNames || WindowsInvalid(n) == "") && !kept[k] {
			kept[k] = true
			continue
		}
		base := n
		if r.WindowsNames {
			base = EscapeName(n)
		}
		if bk := FoldKey(base, r); base != n && !taken[bk] {
			taken[bk] = true
			plan[n] = base
			continue
		}
		for i := 1; ; i++ {
			c := clashName(base, i)
			if r.WindowsNames {
				c = EscapeName(c)
			}
			if ck := FoldKey(c, r); !taken[ck] {
				taken[ck] = true
				plan[n] = c
				break
			}
		}
	}
	return plan
}

// Names maps a working tree's paths between history and its folder, for
// a folder with Rules: where PlanNames keeps each name of a tree. Plans
// are pure functions of a directory's names, so they are kept by tree ID.
// A nil *Names, or one with no rules, maps every path to itself.
type Names struct {
	Rules FolderRules
	Trees object.TreeReader

	mu    sync.Mutex
	plans map[object.ID]map[string]string
}

// Active reports whether n maps any name at all.
func (n *Names) Active() bool { return n != nil && n.Rules.Any() }

// Plan is PlanNames of tree t (ID id): history name → folder name, for
// the names that change.
func (n *Names) Plan(id object.ID, t *object.Tree) map[string]string {
	n.mu.Lock()
	p, ok := n.plans[id]
	n.mu.Unlock()
	if ok {
		return p
	}
	names := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		names[i] = e.Name
	}
	p = PlanNames(names, n.Rules)
	n.mu.Lock()
	if n.plans == nil {
		n.plans = map[object.ID]map[string]string{}
	}
	n.plans[id] = p
	n.mu.Unlock()
	return p
}

// tree reads the directory at history path dir of root ("" is root
// itself), or nil when root has no directory there.
func (n *Names) tree(root object.ID, dir string) (object.ID, *object.Tree, error) {
	id := root
	t, err := n.Trees.ReadTree(root)
	if err != nil {
		return id, nil, err
	}
	for dir != "" {
		var name string
		name, dir, _ = strings.Cut(dir, "/")
		e, ok := t.Find(name)
		if !ok || e.Kind != object.KindDir {
			return id, nil, nil
		}
		id = e.ID
		if t, err = n.Trees.ReadTree(id); err != nil {
			return id, nil, err
		}
	}
	return id, t, nil
}

// DiskPath is where history path p of the tree root is kept in the
// folder (slash-separated, relative). Past the last directory root has,
// names are kept as they are.
func (n *Names) DiskPath(root object.ID, p string) (string, error) {
	if !n.Active() || root.IsZero() {
		return p, nil
	}
	t, err := n.Trees.ReadTree(root)
	if err != nil {
		return "", err
	}
	id := root
	var out strings.Builder
	rest := p
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		disk := name
		if t != nil {
			if d, ok := n.Plan(id, t)[name]; ok {
				disk = d
			}
			if e, ok := t.Find(name); ok && e.Kind == object.KindDir && rest != "" {
				id = e.ID
				if t, err = n.Trees.ReadTree(id); err != nil {
					return "", err
				}
			} else {
				t = nil
			}
		}
		if out.Len() > 0 {
			out.WriteByte('/')
		}
		out.WriteString(disk)
	}
	return out.String(), nil
}

// historyNames maps a directory's listing (disk names, sorted) to the
// names history knows them by, given the directory's tree at HEAD (id,
// t; t nil where HEAD has none): a name the plan put there is its
// history name; a name the folder sees as one of HEAD's names kept as
// themselves (listed in another normalization or case) is that name;
// any other is new: unescaped where Windows's rules apply, and NFC where
// the folder normalizes. Two disk names that would map to one history
// name keep the second as it is on disk. It returns, per listed name,
// the history name.
func (n *Names) historyNames(id object.ID, t *object.Tree, disk []string) []string {
	out := make([]string, len(disk))
	back := map[string]string{} // fold key of a disk name → history name
	if t != nil {
		plan := n.Plan(id, t)
		for _, e := range t.Entries {
			place := e.Name
			if p, ok := plan[e.Name]; ok {
				place = p
			}
			back[FoldKey(place, n.Rules)] = e.Name
		}
	}
	used := make(map[string]bool, len(disk))
	for i, d := range disk {
		h, ok := back[FoldKey(d, n.Rules)]
		if !ok {
			h = d
			if n.Rules.WindowsNames {
				h = UnescapeName(h)
			}
			if n.Rules.Normalizing {
				h = norm.NFC.String(h)
			}
		}
		if used[h] || !object.ValidName(h) {
			h = d
		}
		used[h] = true
		out[i] = h
	}
	return out
}

// HistoryPath is the path of history that the folder path disk (relative,
// slash-separated) stands for in the tree root: what a user names from
// the folder (an escaped name, a clash name, a name typed or completed in
// another normalization or case) is HEAD's path. Past the last directory
// root has, names are taken as new ones (unescaped, NFC) are.
func (n *Names) HistoryPath(root object.ID, disk string) (string, error) {
	if !n.Active() || disk == "" {
		return disk, nil
	}
	id := root
	var t *object.Tree
	if !root.IsZero() {
		var err error
		if t, err = n.Trees.ReadTree(root); err != nil {
			return "", err
		}
	}
	var out strings.Builder
	for rest := disk; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		h := n.historyNames(id, t, []string{name})[0]
		if out.Len() > 0 {
			out.WriteByte('/')
		}
		out.WriteString(h)
		if t == nil {
			continue
		}
		e, ok := t.Find(h)
		if !ok || e.Kind != object.KindDir {
			t = nil
			continue
		}
		id = e.ID
		var err error
		if t, err = n.Trees.ReadTree(id); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}
