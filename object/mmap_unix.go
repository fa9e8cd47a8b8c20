//go:build unix

package object

import (
	"fmt"
	"os"
	"syscall"
)

// Mapped is a read-only memory map of a whole file. mesh maps only files
// that are replaced by rename and never written in place (pack indexes, the
// stat cache), so the mapping stays valid while held.
type Mapped struct {
	Data []byte
}

// MapFile maps path read-only. Reading a large file through a map costs a
// few page-cache faults instead of faulting in a fresh heap copy, which on
// small VMs dominates opening a repository.
func MapFile(path string) (*Mapped, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return &Mapped{}, nil
	}
	if st.Size() > 1<<40 {
		return nil, fmt.Errorf("map %s: file too large", path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return &Mapped{Data: b}, nil
}

// Close unmaps the file; Data must not be used afterwards.
func (m *Mapped) Close() error {
	if m == nil || m.Data == nil {
		return nil
	}
	b := m.Data
	m.Data = nil
	return syscall.Munmap(b)
}

// mapPacks says whether small reads come from a map of the pack: on Unix
// a pack that a repack deletes stays readable while mapped.
const mapPacks = true
