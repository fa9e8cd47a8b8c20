package worktree

import (
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// statOf is what the stat cache keeps of a file. Windows gives no ctime or
// inode through a listing; size and mtime (100 ns on NTFS) are what git
// for Windows trusts too.
func statOf(fi fs.FileInfo) statInfo {
	return statInfo{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
}

// readDir lists a directory sorted by name, every entry lstat'ed: on
// Windows, os's FindFirstFile listing already carries each entry's
// attributes, size and times.
func readDir(dir string) ([]dirEntry, error) { return readDirPortable(dir) }

// volumeRoot is the root of the volume holding path ("C:\", or a UNC
// share's root).
func volumeRoot(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	return filepath.VolumeName(abs) + `\`
}

// RacyWindow is how recent an mtime must be, relative to a scan, for the
// stat cache not to trust it on the filesystem holding root: 50 ms on
// NTFS and ReFS (100 ns timestamps), 2 s elsewhere (FAT's two seconds).
func RacyWindow(root string) int64 {
	vol, err := windows.UTF16PtrFromString(volumeRoot(root))
	if err != nil {
		return racyWindow
	}
	name := make([]uint16, windows.MAX_PATH+1)
	if windows.GetVolumeInformation(vol, nil, 0, nil, nil, nil, &name[0], uint32(len(name))) != nil {
		return racyWindow
	}
	switch strings.ToUpper(windows.UTF16ToString(name)) {
	case "NTFS", "REFS":
		return int64(50 * time.Millisecond)
	}
	return racyWindow
}

// sameDevice reports whether two paths are on one volume (a rename
// between them can work).
func sameDevice(a, b string) bool {
	va, vb := volumeRoot(a), volumeRoot(b)
	return va != `\` && strings.EqualFold(va, vb)
}
