//go:build darwin || freebsd

package worktree

import (
	"bytes"
	"io/fs"
	"os"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func statOf(fi fs.FileInfo) statInfo {
	s := statInfo{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctimespec.Sec*1e9 + int64(st.Ctimespec.Nsec)
		s.inode = uint64(st.Ino)
	}
	return s
}

// readDir lists a directory sorted by name, with every entry lstat'ed
// relative to the open directory (fstatat), which spares the kernel the
// path walk an lstat of the full path costs.
func readDir(dir string) ([]dirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: err}
	}
	sort.Strings(names)
	fd := int(f.Fd())
	out := make([]dirEntry, 0, len(names))
	for _, name := range names {
		e, ok, err := statAt(fd, dir, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// fineTimestamps are the filesystems (by statfs's type name) whose
// timestamps have nanoseconds from the kernel's clock; HFS+ has seconds,
// msdos (FAT) two seconds.
var fineTimestamps = map[string]bool{"apfs": true, "ufs": true, "zfs": true, "tmpfs": true}

// RacyWindow is how recent an mtime must be, relative to a scan, for the
// stat cache not to trust it on the filesystem holding root: 50 ms where
// timestamps are known to be fine, 2 s elsewhere.
func RacyWindow(root string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil {
		name := st.Fstypename[:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if fineTimestamps[string(name)] {
			return int64(50 * time.Millisecond)
		}
	}
	return racyWindow
}
