package object

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// AtomicFile is the one way mesh writes a file that must never be seen
// half-written: a temporary file in the target's directory, written, synced
// (when asked), closed and renamed over the target, then the directory synced.
// A crash at any point leaves either the old file or the new one, plus at most
// a stray ".tmp-" file that gc removes.
type AtomicFile struct {
	*os.File
	path string
	sync bool
	done bool
}

// TempPrefix starts the name of every temporary file mesh writes.
const TempPrefix = ".tmp-"

// CreateAtomic starts writing path. With sync, the data and the directory
// entry are made durable before Commit returns (store metadata, refs); without
// it the rename is still atomic but durability is left to the OS, as git and
// restic do for working-tree files.
func CreateAtomic(path string, perm os.FileMode, sync bool) (*AtomicFile, error) {
	return CreateAtomicIn("", path, perm, sync)
}

// CreateAtomicIn is CreateAtomic with the temporary file in tmpDir (""
// means path's directory), which must be on path's filesystem: a working
// tree's updates keep theirs in .mesh/tmp, where no scan sees a half-written
// file and the next command sweeps what a killed one left. Commit fails
// with an error IsCrossDevice recognises when tmpDir is on another
// filesystem.
func CreateAtomicIn(tmpDir, path string, perm os.FileMode, sync bool) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if tmpDir != "" {
		dir = tmpDir
	}
	// A raw exclusive open with the final permissions (the umask applies,
	// as for git's checkout): os.CreateTemp would add a chmod and poller
	// set-up per file, which shows when a checkout writes thousands.
	for try := 0; ; try++ {
		name := filepath.Join(dir, TempPrefix+base+"-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := createExcl(name, perm)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &AtomicFile{File: f, path: path, sync: sync}, nil
	}
}

// Commit makes the written content appear at the target path.
func (a *AtomicFile) Commit() error {
	if a.done {
		return fmt.Errorf("write %s: already finished", a.path)
	}
	a.done = true
	name := a.File.Name()
	if a.sync {
		if err := a.File.Sync(); err != nil {
			a.File.Close()
			os.Remove(name)
			return fmt.Errorf("write %s: %w", a.path, err)
		}
	}
	if err := a.File.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := renameOver(name, a.path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if a.sync {
		return SyncDir(filepath.Dir(a.path))
	}
	return nil
}

// Abort discards the temporary file; after Commit it does nothing, so it can
// be deferred.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.File.Close()
	os.Remove(a.File.Name())
}

// WriteFileAtomic writes data to path through an AtomicFile.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, sync bool) error {
	a, err := CreateAtomic(path, perm, sync)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer a.Abort()
	if _, err := a.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return a.Commit()
}

// SyncDir fsyncs a directory so that renames into it are durable. Where
// the OS has no such thing (Windows: a rename is durable once it returns on
// NTFS's journal) it does nothing.
func SyncDir(dir string) error {
	if !dirSyncs {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
