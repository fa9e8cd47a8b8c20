package cloud

import (
	"bytes"
	"context"
	"testing"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud/s3test"
)

// commitBig commits data as file "big", cut as a mesh cuts it.
func commitBig(t *testing.T, s *object.Store, data []byte, parent ...object.ID) object.ID {
	t.Helper()
	ch, err := object.NewChunker(object.DefaultChunking(), 2)
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	file, n, err := ch.WriteFile(context.Background(), b, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := (&object.Tree{Entries: []object.Entry{{Name: "big", Kind: object.KindFile, Size: n, ID: file}}}).Encode()
	tree, _ := b.Put(object.TypeTree, tb)
	c, _ := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Parents: parent, Time: int64(len(parent))}).Encode())
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return c
}

func bigOf(t *testing.T, s *object.Store, c object.ID) []byte {
	t.Helper()
	cm, err := s.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.ReadTree(cm.Tree)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := s.WriteFileTo(context.Background(), &out, tr.Entries[0].ID); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestPushDeltas: after a 64 KiB overwrite in a 24 MiB file, the push
// keeps the new chunks as deltas against the old ones, so about the
// edit moves; a device holding the old version reads the bases from its
// own store, a new one from the bucket, and both get the exact file; gc
// keeps the bases.
func TestPushDeltas(t *testing.T) {
	s := s3test.Start(t)
	url := s.Bucket(t, "deltas", "")
	m, _ := remote.NewMesh()
	a, b := newDevice(t), newDevice(t)
	ctx := testCtx(t)
	v1 := randomData(21, 24<<20)
	c1 := commitBig(t, a.st, v1)
	ab := a.open(t, url, m.Secret[:])
	first, err := ab.Push(ctx, a.st, a.id, "main", c1)
	if err != nil {
		t.Fatal(err)
	}
	bb := b.open(t, url, m.Secret[:])
	bb.Local = b.st
	if _, err := remote.Fetch(ctx, bb, b.st, []object.ID{c1}, nil); err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(v1)
	copy(v2[12<<20:], randomData(22, 64<<10))
	c2 := commitBig(t, a.st, v2, c1)
	second, err := ab.Push(ctx, a.st, a.id, "main", c2)
	if err != nil {
		t.Fatal(err)
	}
	if second.Bytes > 512<<10 || second.Bytes*20 > first.Bytes {
		t.Fatalf("a 64 KiB edit pushed %d bytes (the first push %d)", second.Bytes, first.Bytes)
	}
	read := bb.BytesRead()
	if _, err := remote.Fetch(ctx, bb, b.st, []object.ID{c2}, []object.ID{c1}); err != nil {
		t.Fatal(err)
	}
	if got := bb.BytesRead() - read; got > 512<<10 {
		t.Fatalf("B read %d bytes of the bucket for a 64 KiB edit", got)
	}
	if !bytes.Equal(bigOf(t, b.st, c2), v2) {
		t.Fatal("B's copy of the edited file differs")
	}
	c := newDevice(t)
	cb := c.open(t, url, m.Secret[:])
	cb.Local = c.st
	if _, err := remote.Fetch(ctx, cb, c.st, []object.ID{c2}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bigOf(t, c.st, c2), v2) {
		t.Fatal("a new device's copy of the edited file differs")
	}
	n := 0
	for _, l := range ab.objects {
		if l.e.Comp == compDelta {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no chunk was kept as a delta")
	}
	if rep, err := ab.Fsck(ctx, true); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck: %+v %v", rep, err)
	}
}
