package object

import (
	"fmt"
	"os"
)

// Mapped is a whole file's content, read into memory. Windows cannot
// rename over a file that is mapped, and mesh replaces the files it would
// map (pack indexes, the stat cache) by rename, so there they are read.
type Mapped struct {
	Data []byte
}

// MapFile reads path whole.
func MapFile(path string) (*Mapped, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > 1<<40 {
		return nil, fmt.Errorf("map %s: file too large", path)
	}
	return &Mapped{Data: b}, nil
}

// Close drops the content; Data must not be used afterwards.
func (m *Mapped) Close() error {
	if m != nil {
		m.Data = nil
	}
	return nil
}

// mapPacks says whether small reads come from a map of the pack: not on
// Windows, where MapFile reads the whole file and a mapped file cannot be
// deleted.
const mapPacks = false
