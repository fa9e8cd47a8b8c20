//go:build linux || darwin || freebsd

package worktree

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// statOfUnix is what the stat cache keeps of an fstatat result.
func statOfUnix(st *unix.Stat_t) statInfo {
	return statInfo{
		size:  st.Size,
		mtime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec),
		ctime: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec),
		inode: uint64(st.Ino),
		mode:  modeOf(uint32(st.Mode)),
	}
}

func modeOf(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFREG:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// sameDevice reports whether two paths are on one filesystem (a rename
// between them can work).
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// statAt is name's entry in the directory dir open as fd, as fstatat
// without following a link sees it; ok is false for a name deleted since
// it was listed.
func statAt(fd int, dir, name string) (e dirEntry, ok bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return dirEntry{}, false, nil // deleted while we looked
	}
	if err != nil {
		return dirEntry{}, false, &fs.PathError{Op: "lstat", Path: dir + "/" + name, Err: err}
	}
	return dirEntry{name: name, st: statOfUnix(&st)}, true, nil
}
