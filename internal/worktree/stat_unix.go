//go:build unix

package worktree

import (
	"errors"
	"io/fs"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

func statOf(fi fs.FileInfo) statInfo {
	s := statInfo{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		s.inode = st.Ino
	}
	return s
}

type dirEntry struct {
	name string
	st   statInfo
}

// readDir lists a directory sorted by name, with every entry lstat'ed
// relative to the open directory (fstatat), which spares the kernel the
// path walk an lstat of the full path costs.
func readDir(dir string) ([]dirEntry, error) {
	// Raw open and getdents: os.Open would register the descriptor with
	// the poller, which costs more than the listing of a small directory.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	out := make([]dirEntry, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue // deleted while we looked
		}
		if err != nil {
			return nil, &fs.PathError{Op: "lstat", Path: dir + "/" + name, Err: err}
		}
		out = append(out, dirEntry{name: name, st: statInfo{
			size:  st.Size,
			mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
			ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec,
			inode: st.Ino,
			mode:  modeOf(st.Mode),
		}})
	}
	return out, nil
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
