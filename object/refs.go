package object

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrRefMoved is returned by a compare-and-swap whose expected old value no
// longer holds: someone else moved the ref first.
var ErrRefMoved = errors.New("ref moved concurrently")

// Refs are named pointers to commits under a repository's metadata
// directory: refs/<name> holds a hex ID, logs/refs/<name> its reflog, and
// HEAD either "ref: <name>" or a detached commit ID.
type Refs struct {
	dir string
}

// OpenRefs returns the refs kept under dir (the .mesh directory).
func OpenRefs(dir string) *Refs { return &Refs{dir: dir} }

// BranchRef turns a branch name into its ref name.
func BranchRef(branch string) string { return "heads/" + branch }

// ValidRefName reports whether name can name a ref: slash-separated valid
// tree names, none starting with '.' or ending in ".lock".
func ValidRefName(name string) bool {
	if name == "" {
		return false
	}
	for _, p := range strings.Split(name, "/") {
		if !ValidName(p) || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".lock") || strings.ContainsAny(p, " ~^:?*[\\\n\t") {
			return false
		}
	}
	return true
}

func (r *Refs) path(name string) string {
	return filepath.Join(r.dir, "refs", filepath.FromSlash(name))
}
func (r *Refs) logPath(name string) string {
	return filepath.Join(r.dir, "logs", "refs", filepath.FromSlash(name))
}

// Get returns the commit a ref points at, or ZeroID and false if it does not exist.
func (r *Refs) Get(name string) (ID, bool, error) {
	if !ValidRefName(name) {
		return ZeroID, false, fmt.Errorf("invalid ref name %q", name)
	}
	b, err := os.ReadFile(r.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return ZeroID, false, nil
	}
	if err != nil {
		return ZeroID, false, fmt.Errorf("read ref %s: %w", name, err)
	}
	id, err := ParseID(strings.TrimSpace(string(b)))
	if err != nil {
		return ZeroID, false, fmt.Errorf("ref %s: %w; run mesh fsck", name, err)
	}
	return id, true, nil
}

// List returns every ref and the commit it points at.
func (r *Refs) List() (map[string]ID, error) {
	out := map[string]ID{}
	root := filepath.Join(r.dir, "refs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		id, ok, err := r.Get(name)
		if err != nil {
			return err
		}
		if ok {
			out[name] = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	return out, nil
}

func (r *Refs) lock(ctx context.Context) (*Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return AcquireLock(ctx, filepath.Join(r.dir, "refs.lock"))
}

// Update moves ref name from old to new (ZeroID old: the ref must not exist;
// ZeroID new: delete it) and appends the move to its reflog. The caller must
// have made new's whole closure durable first.
func (r *Refs) Update(ctx context.Context, name string, old, new ID, msg string) error {
	if !ValidRefName(name) {
		return fmt.Errorf("invalid ref name %q", name)
	}
	l, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Release()
	cur, _, err := r.Get(name)
	if err != nil {
		return err
	}
	if cur != old {
		return fmt.Errorf("update ref %s: expected %s, found %s: %w", name, old.Short(), cur.Short(), ErrRefMoved)
	}
	// The reflog first, as git does: whoever reads the ref without the
	// lock and sees the new value finds the move in the log too. A crash
	// in between leaves a logged move that did not happen, to a commit
	// whose closure is durable (the caller's duty), which gc keeps.
	if err := appendLog(r.logPath(name), old, new, msg); err != nil {
		return err
	}
	p := r.path(name)
	if new.IsZero() {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete ref %s: %w", name, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("update ref %s: %w", name, err)
	}
	if err := WriteFileAtomic(p, []byte(new.String()+"\n"), 0o644, true); err != nil {
		return fmt.Errorf("update ref %s: %w", name, err)
	}
	return nil
}

// RefLogEntry is one move of a ref.
type RefLogEntry struct {
	Old     ID     `json:"old"`
	New     ID     `json:"new"`
	Time    int64  `json:"time"`
	Message string `json:"message"`
}

func appendLog(path string, old, new ID, msg string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("reflog %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("reflog %s: %w", path, err)
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	line := logLine(old, new, time.Now().Unix(), msg)
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("reflog %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("reflog %s: %w", path, err)
	}
	return f.Close()
}

// Log returns the moves of ref name, oldest first. A line torn by a crash is
// skipped: the ref itself is the truth, the log is the history.
func (r *Refs) Log(name string) ([]RefLogEntry, error) {
	return readLog(r.logPath(name))
}

// HeadLog returns the moves of a detached HEAD.
func (r *Refs) HeadLog() ([]RefLogEntry, error) {
	return readLog(filepath.Join(r.dir, "logs", "HEAD"))
}

// logLine is one reflog line: "OLD NEW TIME MESSAGE #CRC", the CRC-32
// (IEEE, 8 hex digits) of what precedes " #", so that a damaged line is
// told from a good one. Lines written before the checksum have none and
// are read as they are.
func logLine(old, new ID, t int64, msg string) string {
	body := fmt.Sprintf("%s %s %d %s", old, new, t, msg)
	return fmt.Sprintf("%s #%08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// parseLogLine reads one reflog line; ok is false for a damaged one.
func parseLogLine(line string) (e RefLogEntry, ok bool) {
	if i := len(line) - 10; i >= 0 && line[i] == ' ' && line[i+1] == '#' {
		sum, err := strconv.ParseUint(line[i+2:], 16, 32)
		if err == nil && len(line[i+2:]) == 8 {
			if uint32(sum) != crc32.ChecksumIEEE([]byte(line[:i])) {
				return e, false
			}
			line = line[:i]
		}
	}
	parts := strings.SplitN(line, " ", 4)
	if len(parts) < 3 {
		return e, false
	}
	var err1, err2, err3 error
	e.Old, err1 = ParseID(parts[0])
	e.New, err2 = ParseID(parts[1])
	e.Time, err3 = strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return e, false
	}
	if len(parts) == 4 {
		e.Message = parts[3]
	}
	return e, true
}

// readLog reads a reflog, skipping a damaged line; a last line without
// its newline was torn by a crash while it was written, and is not taken
// for damage.
func readLog(path string) ([]RefLogEntry, error) {
	out, _, err := readLogChecked(path)
	return out, err
}

// readLogChecked is readLog that also returns the numbers (from 1) of
// the damaged lines.
func readLogChecked(path string) ([]RefLogEntry, []int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []RefLogEntry
	var damaged []int
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		last := i == len(lines)-1
		if last && l == "" {
			break
		}
		e, ok := parseLogLine(l)
		if !ok {
			if !last {
				damaged = append(damaged, i+1)
			}
			continue
		}
		out = append(out, e)
	}
	return out, damaged, nil
}

// DamagedLogs lists the damaged reflog lines ("logs/HEAD:3"). While any
// is, the commits such a line names may be kept by nothing else, so gc
// deletes nothing.
func (r *Refs) DamagedLogs() ([]string, error) {
	var out []string
	err := r.eachLog(func(p string) error {
		_, bad, err := readLogChecked(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.dir, p)
		for _, n := range bad {
			out = append(out, fmt.Sprintf("%s:%d", filepath.ToSlash(rel), n))
		}
		return nil
	})
	return out, err
}

// eachLog calls fn with the path of every reflog.
func (r *Refs) eachLog(fn func(path string) error) error {
	return filepath.WalkDir(filepath.Join(r.dir, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		return fn(p)
	})
}

// AllLogged returns every commit ID that any reflog mentions, so that gc
// keeps earlier heads recoverable.
func (r *Refs) AllLogged() ([]ID, error) {
	var out []ID
	err := r.eachLog(func(p string) error {
		entries, err := readLog(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			for _, id := range []ID{e.Old, e.New} {
				if !id.IsZero() {
					out = append(out, id)
				}
			}
		}
		return nil
	})
	return out, err
}

// Head is what HEAD says: a branch (Branch set, ID its commit or zero for an
// unborn branch) or a detached commit (Branch empty).
type Head struct {
	Branch string
	ID     ID
}

// Head reads HEAD.
func (r *Refs) Head() (Head, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, "HEAD"))
	if err != nil {
		return Head{}, fmt.Errorf("read HEAD: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if ref, ok := strings.CutPrefix(s, "ref: heads/"); ok {
		id, _, err := r.Get(BranchRef(ref))
		return Head{Branch: ref, ID: id}, err
	}
	id, err := ParseID(s)
	if err != nil {
		return Head{}, fmt.Errorf("HEAD: %w; run mesh fsck", err)
	}
	return Head{ID: id}, nil
}

// SetHead points HEAD at a branch (branch != "") or detaches it at id.
func (r *Refs) SetHead(ctx context.Context, branch string, id ID, msg string) error {
	l, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Release()
	content := "ref: heads/" + branch + "\n"
	if branch == "" {
		content = id.String() + "\n"
	} else if !ValidRefName(BranchRef(branch)) {
		return fmt.Errorf("invalid branch name %q", branch)
	}
	var old ID
	if b, err := os.ReadFile(filepath.Join(r.dir, "HEAD")); err == nil {
		old, _ = ParseID(strings.TrimSpace(string(b)))
	}
	if err := WriteFileAtomic(filepath.Join(r.dir, "HEAD"), []byte(content), 0o644, true); err != nil {
		return err
	}
	if branch == "" {
		return appendLog(filepath.Join(r.dir, "logs", "HEAD"), old, id, msg)
	}
	return nil
}

// SortedNames returns the names of refs in order.
func SortedNames(refs map[string]ID) []string {
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TrimLog rewrites ref name's reflog, keeping the entries keep accepts;
// keep gets each entry with its place counted from the newest (0). A kept
// entry's old side is cleared when no kept entry has it as its new side,
// so the log stops reaching what was dropped. It returns how many entries
// were dropped.
func (r *Refs) TrimLog(ctx context.Context, name string, keep func(newest int, e RefLogEntry) bool) (int, error) {
	l, err := r.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer l.Release()
	path := r.logPath(name)
	entries, bad, err := readLogChecked(path)
	if err != nil {
		return 0, err
	}
	if len(bad) > 0 {
		return 0, fmt.Errorf("reflog of %s has damaged lines %v; it is not trimmed: %w (see mesh fsck)", name, bad, ErrCorrupt)
	}
	var kept []RefLogEntry
	for i := len(entries) - 1; i >= 0; i-- {
		if keep(len(entries)-1-i, entries[i]) {
			kept = append(kept, entries[i])
		}
	}
	dropped := len(entries) - len(kept)
	if dropped == 0 {
		return 0, nil
	}
	has := map[ID]bool{}
	for _, e := range kept {
		has[e.New] = true
	}
	var b strings.Builder
	for i := len(kept) - 1; i >= 0; i-- {
		e := kept[i]
		if !has[e.Old] {
			e.Old = ZeroID
		}
		b.WriteString(logLine(e.Old, e.New, e.Time, e.Message))
	}
	if err := WriteFileAtomic(path, []byte(b.String()), 0o644, true); err != nil {
		return 0, fmt.Errorf("trim reflog of %s: %w", name, err)
	}
	return dropped, nil
}
