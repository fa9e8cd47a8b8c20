// Package ignore decides which paths of a working tree mesh leaves alone:
// .meshignore files in gitignore syntax, matched with go-git's
// plumbing/format/gitignore, and the .mesh directory, always.
//
// The walker that uses it must not descend into an ignored directory: that is
// git's rule ("logs/" then "!logs/sub/" still ignores logs/sub/y), and
// go-git's matcher agrees with git check-ignore only under it.
package ignore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// FileName is the name of an ignore file.
const FileName = ".meshignore"

// MetaDir is the repository's metadata directory, never part of a snapshot.
const MetaDir = ".mesh"

// Rules are the patterns in force in one directory: its parents' plus its own.
// Later patterns win, as in git.
type Rules struct {
	patterns []gitignore.Pattern
}

// Enter returns the rules for directory dir (path components from the
// root, nil for the root), reading the .meshignore in dirPath (where the
// folder keeps dir) when has says the directory holds one. The receiver is not changed, so siblings
// share their parent's rules.
func (r *Rules) Enter(dirPath string, dir []string, has bool) (*Rules, error) {
	if r == nil {
		r = &Rules{}
	}
	if !has {
		return r, nil
	}
	p := dirPath
	b, err := os.ReadFile(filepath.Join(p, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(p, FileName), err)
	}
	return r.With(b, dir), nil
}

// With returns r plus the patterns in content, anchored at dir.
func (r *Rules) With(content []byte, dir []string) *Rules {
	n := &Rules{}
	if r != nil {
		n.patterns = append(n.patterns[:0:0], r.patterns...)
	}
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n.patterns = append(n.patterns, gitignore.ParsePattern(line, append([]string(nil), dir...)))
	}
	return n
}

// Active reports whether any pattern is in force; without one only the
// root's .mesh is ignored.
func (r *Rules) Active() bool { return r != nil && len(r.patterns) > 0 }

// Ignored reports whether path (components from the root) is ignored.
// A .mesh entry is, at any depth and in any letter case: it is another
// repository's metadata (as git treats nested .git), and a tree may never
// hold one (checkout refuses such paths).
func (r *Rules) Ignored(path []string, isDir bool) bool {
	if len(path) > 0 && strings.EqualFold(path[len(path)-1], MetaDir) {
		return true
	}
	return r.ByPatterns(path, isDir)
}

// ByPatterns reports whether the patterns alone (not the rule for .mesh)
// exclude path.
func (r *Rules) ByPatterns(path []string, isDir bool) bool {
	if r == nil {
		return false
	}
	for i := len(r.patterns) - 1; i >= 0; i-- {
		switch r.patterns[i].Match(path, isDir) {
		case gitignore.Exclude:
			return true
		case gitignore.Include:
			return false
		}
	}
	return false
}
