package remote

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

func store(t *testing.T) *object.Store {
	s, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func history(t *testing.T, s *object.Store, n int) []object.ID {
	var ids []object.ID
	var parent []object.ID
	for i := 0; i < n; i++ {
		b := s.NewBatch()
		chunk, _ := b.Put(object.TypeChunk, []byte(fmt.Sprintf("content %d", i%3)))
		file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: chunk, Size: int64(len(fmt.Sprintf("content %d", i%3)))}}}).Encode())
		tb, _ := (&object.Tree{Entries: []object.Entry{{Name: "f", Kind: object.KindFile, Size: 9, ID: file}}}).Encode()
		tree, _ := b.Put(object.TypeTree, tb)
		c, _ := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Parents: parent, Time: int64(i)}).Encode())
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		parent = []object.ID{c}
		ids = append(ids, c)
	}
	return ids
}

func TestCopyOnlyWhatIsMissing(t *testing.T) {
	src, dst := store(t), store(t)
	ids := history(t, src, 5)
	st, err := Copy(context.Background(), src, dst, ids[2:3])
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 3*3+3 { // 3 commits, 3 trees, 3 files, 3 chunks
		t.Fatalf("first fetch moved %d objects", st.Objects)
	}
	st, err = Copy(context.Background(), src, dst, ids[4:])
	if err != nil {
		t.Fatal(err)
	}
	// Commits 3 and 4 have the same trees as 0 and 1 (contents repeat
	// every three commits): only the two commits are new.
	if st.Objects != 2 {
		t.Fatalf("second fetch moved %d objects, want 2", st.Objects)
	}
	rep, err := object.Fsck(context.Background(), dst, object.OpenRefs(t.TempDir()), true)
	if err != nil || len(rep.Problems) != 0 || rep.Objects != 14 {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}

// lying sends a different object for one ID.
type lying struct {
	Source
	victim object.ID
	t      object.Type
	body   []byte
}

func (l lying) Get(id object.ID) (object.Type, []byte, error) {
	if id == l.victim {
		return l.t, l.body, nil
	}
	return l.Source.Get(id)
}

func TestCopyRefusesWrongBytes(t *testing.T) {
	src := store(t)
	ids := history(t, src, 2)
	c, _ := src.ReadCommit(ids[1])
	for _, liar := range []lying{
		{Source: src, victim: c.Tree, t: object.TypeTree, body: []byte("garbage")},
		{Source: src, victim: ids[0], t: object.TypeChunk, body: []byte("x")},
	} {
		dst := store(t)
		_, err := Copy(context.Background(), liar, dst, ids[1:])
		if !errors.Is(err, object.ErrCorrupt) {
			t.Fatalf("lying source: %v", err)
		}
		if dst.Has(ids[1]) || len(dst.IDs()) != 0 {
			t.Fatalf("objects from a lying source were kept: %d", len(dst.IDs()))
		}
	}
	// An object of the wrong type under its true ID is refused too.
	dst := store(t)
	chunkID := object.Hash(object.TypeChunk, []byte("x"))
	if _, err := Copy(context.Background(), lying{Source: src, victim: chunkID, t: object.TypeChunk, body: []byte("x")}, dst, []object.ID{chunkID}); !errors.Is(err, object.ErrCorrupt) {
		t.Fatalf("chunk offered as a commit: %v", err)
	}
}
