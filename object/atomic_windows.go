package object

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// dirSyncs says whether fsync of a directory makes renames in it durable:
// Windows has no directory fsync (FlushFileBuffers refuses a directory).
const dirSyncs = false

// createExcl creates name, which must not exist, for writing. Windows
// keeps only the read-only bit of perm; exec bits live in history (the
// tree), not in the file.
func createExcl(name string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// renameOver renames old to new, replacing a file there. os.Rename, for
// its handling of long paths (MoveFileEx with MOVEFILE_REPLACE_EXISTING).
func renameOver(old, new string) error { return os.Rename(old, new) }

// IsCrossDevice reports whether err is a rename's refusal to move a file
// to another volume.
func IsCrossDevice(err error) bool { return errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) }

// IsDirNotEmpty reports whether err is the refusal to remove a directory
// that still holds entries.
func IsDirNotEmpty(err error) bool { return errors.Is(err, windows.ERROR_DIR_NOT_EMPTY) }

// errIsLink is OpenNoFollow's refusal of a link.
var errIsLink = errors.New("is a symbolic link or junction, not a file")

// OpenNoFollow opens path for reading, refusing a symbolic link or
// junction in its last element: Windows has no O_NOFOLLOW, so what was
// opened must be the very file an lstat of path finds.
func OpenNoFollow(path string) (*os.File, error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if before.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
		return nil, &os.PathError{Op: "open", Path: path, Err: errIsLink}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if after, err := f.Stat(); err != nil || !os.SameFile(before, after) {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: errIsLink}
	}
	return f, nil
}
