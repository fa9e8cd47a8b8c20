//go:build unix

package object

import (
	"errors"
	"os"
	"syscall"
)

// errWouldBlock is what tryLockFile returns when another process holds
// the lock.
var errWouldBlock = syscall.EWOULDBLOCK

// tryLockFile takes an exclusive flock on f without waiting.
func tryLockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func unlockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
