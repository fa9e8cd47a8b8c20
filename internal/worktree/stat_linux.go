//go:build linux

package worktree

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"sort"
	"sync"
	"syscall"
	"time"

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
	var types []byte
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
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
		names, types = parseDirents(buf[:n], names, types)
	}
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	out := make([]dirEntry, 0, len(names))
	for _, i := range order {
		name := names[i]
		// getdents says what most entries are; only files need a stat
		// (for the cache), which spares one syscall per directory.
		switch types[i] {
		case unix.DT_DIR:
			out = append(out, dirEntry{name: name, st: statInfo{mode: fs.ModeDir | 0o755}})
			continue
		}
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

// parseDirents decodes linux_dirent64 records (ino u64, off s64, reclen
// u16, type u8, name NUL-terminated), skipping "." and "..".
func parseDirents(b []byte, names []string, types []byte) ([]string, []byte) {
	for len(b) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		typ := b[18]
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		b = b[reclen:]
		if len(name) == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		names = append(names, string(name))
		types = append(types, typ)
	}
	return names, types
}

// direntBufs recycles getdents buffers: a fresh 32 KiB per directory was
// most of a status's allocation, and on small VMs page faults are costly.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Filesystems whose timestamps come from the kernel's clock at its tick
// (a few ms at most), whatever their on-disk precision.
var fineTimestamps = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:      true, // ext2/3/4
	unix.XFS_SUPER_MAGIC:       true,
	unix.BTRFS_SUPER_MAGIC:     true,
	unix.TMPFS_MAGIC:           true,
	unix.OVERLAYFS_SUPER_MAGIC: true,
	unix.F2FS_SUPER_MAGIC:      true,
	0x2fc12fc1:                 true, // zfs
}

// RacyWindow is how recent an mtime must be, relative to a scan, for the
// stat cache not to trust it on the filesystem holding root: 50 ms where
// timestamps are known to be as fine as the kernel's tick (git trusts
// anything older than the index file itself), 2 s elsewhere.
func RacyWindow(root string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil && fineTimestamps[int64(st.Type)] {
		return int64(50 * time.Millisecond)
	}
	return racyWindow
}
