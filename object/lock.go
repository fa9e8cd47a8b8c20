package object

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrLocked is returned when another process holds a lock mesh needs and did
// not release it in time.
var ErrLocked = errors.New("locked by another mesh process")

// Lock is an exclusive lock on a file: flock(2) on Unix, LockFileEx on
// Windows. The kernel releases it when the holder dies, so a killed mesh
// never leaves a stale lock behind. On Windows a lock is mandatory for the
// bytes it covers, so it covers one byte far past the end of the file, and
// the holder's pid at its start stays readable by whoever waits.
type Lock struct {
	f    *os.File
	path string
}

// AcquireLock takes the lock at path, waiting until ctx is done. The holder's
// pid is written into the file so that a waiting process can say who holds it.
func AcquireLock(ctx context.Context, path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	delay := time.Millisecond
	for {
		err := tryLockFile(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errWouldBlock) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			holder := readPid(f)
			f.Close()
			return nil, fmt.Errorf("%s is %w%s; wait for it to finish and try again", path, ErrLocked, holder)
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

func readPid(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid := strings.TrimSpace(string(b[:n]))
	if pid == "" {
		return ""
	}
	return " (pid " + pid + ")"
}

// Release drops the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// TryLock takes the lock at path only if it is free at once. When another
// process holds it, the error is ErrLocked and pid is what the holder
// wrote into the file ("" when it wrote nothing yet).
func TryLock(path string) (l *Lock, pid string, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	if err = tryLockFile(f); err != nil {
		defer f.Close()
		if errors.Is(err, errWouldBlock) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			return nil, strings.TrimSpace(string(b[:n])), ErrLocked
		}
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, "", nil
}
