package merge

import (
	"bytes"
	"context"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// TestCrissCrossOnARealStore: the virtual base of a criss-cross is a text
// merge written into a batch that is not finished yet; the merge must read
// it back from what it wrote, not from the store.
func TestCrissCrossOnARealStore(t *testing.T) {
	st, err := object.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, _ := object.NewChunker(object.Chunking{Algorithm: "fastcdc-v1.0.0", Min: 1 << 10, Normal: 4 << 10, Max: 16 << 10}, 1)
	commitOf := func(content string, msg string, tm int64, parents ...object.ID) object.ID {
		b := st.NewBatch()
		f, n, err := k.WriteFile(context.Background(), b, bytes.NewReader([]byte(content)), int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := (&object.Tree{Entries: []object.Entry{{Name: "t.txt", Kind: object.KindFile, Size: n, ID: f}}}).Encode()
		tree, _ := b.Put(object.TypeTree, tb)
		c, _ := b.Put(object.TypeCommit, (&object.Commit{Tree: tree, Parents: parents, Time: tm, Message: msg}).Encode())
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := commitOf("1\n2\n3\n4\n5\n", "base", 1)
	a := commitOf("one\n2\n3\n4\n5\n", "a", 2, base)
	b := commitOf("1\n2\n3\n4\nfive\n", "b", 3, base)
	// Two different commits on top of both a and b: a criss-cross.
	// Neither holds the merge of a and b as it is, so the virtual base is
	// content the store has never seen.
	m1 := commitOf("one\n2\n3\nFOUR\nfive\n", "m1", 4, a, b)
	m2 := commitOf("one\nTWO\n3\n4\nfive\n", "m2", 5, b, a)
	batch := st.NewBatch()
	res, err := Commits(context.Background(), st, batch, m1, m2, TreeOptions{Chunker: k})
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Finish(); err != nil {
		t.Fatal(err)
	}
	c, _ := st.ReadCommit(res.ID)
	tr, _ := st.ReadTree(c.Tree)
	var out bytes.Buffer
	if _, err := st.WriteFileTo(context.Background(), &out, tr.Entries[0].ID); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\nTWO\n3\nFOUR\nfive\n" || len(res.Conflicts) != 0 {
		t.Fatalf("criss-cross merge gave %q, conflicts %v", out.String(), res.Conflicts)
	}
}
