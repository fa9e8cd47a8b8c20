package worktree

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// FuzzIndex: a stat cache file decodes into entries that look up without
// panicking, or is refused (a damaged cache is only re-read, never
// trusted).
func FuzzIndex(f *testing.F) {
	dir := f.TempDir()
	ix := &Index{}
	ix.Set("a/b.txt", IndexEntry{Kind: object.KindFile, Size: 3, Mtime: 1, Ctime: 2, Inode: 3, ID: object.EmptyTreeID})
	ix.Set("c", IndexEntry{Kind: object.KindExec, Size: 9})
	p := filepath.Join(dir, "index")
	if err := ix.Save(p); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(p)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := decodeIndex(b)
		if err != nil {
			return
		}
		ix.mapped = &object.Mapped{Data: b} // as LoadIndex does
		for _, e := range ix.entries() {
			if _, ok := ix.get([]byte(e.path)); !ok {
				t.Fatalf("entry %q does not look up", e.path)
			}
		}
	})
}
