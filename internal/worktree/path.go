package worktree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mesh-sync/mesh/object"
)

// ErrUnsafePath is the kind of error for a tree path that must not touch the
// disk: it would escape the destination or write into .mesh.
var ErrUnsafePath = errors.New("unsafe path in tree")

// CheckPath validates a slash-separated path from a tree before it is used
// on disk. Tree decoding already rejects "/" and ".." in names; this is the
// second line, for paths assembled by callers.
func CheckPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || filepath.IsAbs(p) {
		return fmt.Errorf("%q: %w", p, ErrUnsafePath)
	}
	for _, c := range strings.Split(p, "/") {
		if !object.ValidName(c) || strings.EqualFold(c, ".mesh") || strings.Contains(c, "\\") {
			return fmt.Errorf("%q: component %q: %w", p, c, ErrUnsafePath)
		}
	}
	return nil
}

// safeJoin returns root/p after checking p and that no existing directory
// on the way is a symlink, so a write can never land outside root. known
// remembers directories already checked (or created) during one Apply,
// which spares an lstat per path component per file.
func safeJoin(root, p string, known *sync.Map) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	parts := strings.Split(p, "/")
	cur := root
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		if known != nil {
			if _, ok := known.Load(cur); ok {
				continue
			}
		}
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			break // created later by us, as a real directory
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%q: %s is a symlink, refusing to write through it: %w", p, cur, ErrUnsafePath)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%q: %s is not a directory: %w", p, cur, ErrUnsafePath)
		}
		if known != nil {
			known.Store(cur, true)
		}
	}
	return filepath.Join(root, filepath.FromSlash(p)), nil
}
