package worktree

import (
	"errors"
	"io/fs"
	"os"
	"sort"
)

// dirEntry is one name of a directory listing, with what lstat says of it
// (for a directory only its mode).
type dirEntry struct {
	name string
	st   statInfo
}

// readDirPortable lists a directory sorted by name with every entry
// lstat'ed, through os alone: the listing of every OS that has no fast
// path here (Windows), and the yardstick that benchmarks the fast paths
// against (BenchmarkScanPortable).
func readDirPortable(dir string) ([]dirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: err}
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].Name() < ents[b].Name() })
	out := make([]dirEntry, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, dirEntry{name: e.Name(), st: statInfo{mode: fs.ModeDir | 0o755}})
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we looked
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dirEntry{name: e.Name(), st: statOf(fi)})
	}
	return out, nil
}

// listDir is the listing a scan uses: this platform's readDir, or, in the
// benchmark that prices the portable path, readDirPortable.
var listDir = readDir
