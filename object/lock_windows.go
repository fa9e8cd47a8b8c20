package object

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// errWouldBlock is what tryLockFile returns when another process holds
// the lock.
var errWouldBlock = errors.New("lock held by another process")

// lockRange is the locked byte, at 2^62: far past any pid written at the
// start of the file, which a mandatory lock would otherwise make
// unreadable to the processes waiting for it.
func lockRange() *windows.Overlapped {
	return &windows.Overlapped{Offset: 0, OffsetHigh: 1 << 30}
}

// tryLockFile takes an exclusive lock on one byte of f without waiting.
func tryLockFile(f *os.File) error {
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, lockRange())
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return errWouldBlock
	}
	return err
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, lockRange())
}
