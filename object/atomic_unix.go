//go:build unix

package object

import (
	"errors"
	"os"
	"syscall"
)

// dirSyncs says whether fsync of a directory makes renames in it durable.
const dirSyncs = true

// createExcl creates name, which must not exist, for writing with perm
// (less the umask, as for git's checkout). A raw open: os.OpenFile would
// add poller set-up per file, which shows when a checkout writes
// thousands.
func createExcl(name string, perm os.FileMode) (*os.File, error) {
	fd, err := syscall.Open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, uint32(perm))
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// renameOver renames old to new, replacing a file there. rename(2), not
// os.Rename: the latter lstats the target first, one more syscall per
// file, to refuse renaming over a directory, which rename(2) refuses by
// itself for a file.
func renameOver(old, new string) error {
	if err := syscall.Rename(old, new); err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// IsCrossDevice reports whether err is a rename's refusal to move a file
// to another filesystem.
func IsCrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }

// IsDirNotEmpty reports whether err is the refusal to remove a directory
// that still holds entries.
func IsDirNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// OpenNoFollow opens path for reading, refusing a symbolic link in its
// last element (O_NOFOLLOW), so a file swapped for a link after it was
// listed is never read through the link.
func OpenNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
