package object

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"testing"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
)

func testChunking() Chunking {
	return Chunking{Algorithm: "jc-v1.1.0", Min: 4 << 10, Normal: 16 << 10, Max: 64 << 10}
}

func chunkIDs(t *testing.T, k *Chunker, data []byte, size int64) (ID, *File) {
	t.Helper()
	s, _ := newStore(t)
	b := s.NewBatch()
	id, n, err := k.WriteFile(context.Background(), b, bytes.NewReader(data), size)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) {
		t.Fatalf("WriteFile counted %d bytes of %d", n, len(data))
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	f, err := s.ReadFile(id)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := s.WriteFileTo(context.Background(), &out, id); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("content does not read back: %v", err)
	}
	return id, f
}

func TestChunkerSerialParallelSmallAgree(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(3)).Read(data)
	serial, _ := NewChunker(testChunking(), 1)
	parallel, _ := NewChunker(testChunking(), 4)
	a, fa := chunkIDs(t, serial, data, int64(len(data)))
	b, _ := chunkIDs(t, parallel, data, int64(len(data)))
	c, _ := chunkIDs(t, parallel, data, -1)
	if a != b || a != c {
		t.Fatal("serial and parallel chunking disagree")
	}
	if len(fa.Chunks) < 10 {
		t.Fatalf("1 MiB cut into only %d chunks", len(fa.Chunks))
	}
	// The library's own cut points, for the same input, must be ours.
	ch, _ := chunkers.NewChunker("jc-v1.1.0", bytes.NewReader(data), testChunking().opts())
	i := 0
	for {
		d, err := ch.Next()
		if len(d) > 0 {
			if i >= len(fa.Chunks) || fa.Chunks[i].Size != int64(len(d)) || fa.Chunks[i].ID != Hash(TypeChunk, d) {
				t.Fatalf("chunk %d differs from the library's", i)
			}
			i++
		}
		if err == io.EOF {
			break
		}
	}
	if i != len(fa.Chunks) {
		t.Fatalf("library cut %d chunks, we %d", i, len(fa.Chunks))
	}
	// Small files take the read-whole path; it must match the chunker.
	for _, n := range []int{0, 1, 100, testChunking().Min} {
		small := data[:n]
		x, _ := chunkIDs(t, serial, small, int64(n))
		y, _ := chunkIDs(t, serial, small, -1)
		if x != y {
			t.Fatalf("small file of %d bytes: fast path disagrees with chunker", n)
		}
	}
	// A file that grew after stat is still stored whole.
	if _, f := chunkIDs(t, serial, data[:100000], 10); f.Size() != 100000 {
		t.Fatalf("grown file stored as %d bytes", f.Size())
	}
}

// TestChunkerResyncs checks the content-defined property dedup relies on:
// after an insertion in the middle, most chunks are shared.
func TestChunkerResyncs(t *testing.T) {
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(4)).Read(data)
	edited := append(append(append([]byte{}, data[:1<<20]...), []byte("inserted bytes")...), data[1<<20:]...)
	k, _ := NewChunker(testChunking(), 2)
	_, fa := chunkIDs(t, k, data, -1)
	_, fb := chunkIDs(t, k, edited, -1)
	have := map[ID]bool{}
	for _, c := range fa.Chunks {
		have[c.ID] = true
	}
	var shared int64
	for _, c := range fb.Chunks {
		if have[c.ID] {
			shared += c.Size
		}
	}
	if shared < int64(len(data))*9/10 {
		t.Fatalf("only %d of %d bytes shared after one insertion", shared, len(data))
	}
}

// TestDefaultChunkingResyncs holds the mesh's default chunking to what a
// sync needs: a 1 MiB insertion (random or repetitive bytes) anywhere in a
// large file costs a handful of new chunks. FastCDC typically makes 2–8
// MiB new here, with a rare tail to about 15; JC at these sizes made
// 27–86 MiB in half of the trials, which is what this guards against.
func TestDefaultChunkingResyncs(t *testing.T) {
	data := make([]byte, 48<<20)
	rand.New(rand.NewSource(7)).Read(data)
	k, err := NewChunker(DefaultChunking(), 2)
	if err != nil {
		t.Fatal(err)
	}
	_, fa := chunkIDs(t, k, data, int64(len(data)))
	have := map[ID]bool{}
	for _, c := range fa.Chunks {
		have[c.ID] = true
	}
	for trial := 0; trial < 4; trial++ {
		r := rand.New(rand.NewSource(int64(100 + trial)))
		ins := make([]byte, 1<<20)
		if trial%2 == 0 {
			r.Read(ins)
		} else {
			for i := range ins {
				ins[i] = byte(i*7 + i>>9 + trial)
			}
		}
		at := r.Intn(len(data))
		edited := append(append(append(make([]byte, 0, len(data)+len(ins)), data[:at]...), ins...), data[at:]...)
		_, fb := chunkIDs(t, k, edited, int64(len(edited)))
		var fresh int64
		for _, c := range fb.Chunks {
			if !have[c.ID] {
				fresh += c.Size
			}
		}
		if fresh > 24<<20 {
			t.Errorf("trial %d: a 1 MiB insertion at %d made %d KiB of new chunks", trial, at, fresh>>10)
		}
	}
}

func TestChunkingValidate(t *testing.T) {
	if err := DefaultChunking().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Chunking{
		{Algorithm: "jc", Min: 1024, Normal: 4096, Max: 8192},
		{Algorithm: "nope-v1.0.0", Min: 1024, Normal: 4096, Max: 8192},
		{Algorithm: "jc-v1.1.0", Min: 4096, Normal: 4096, Max: 8192},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func BenchmarkWriteFile(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.New(rand.NewSource(5)).Read(data)
	k, _ := NewChunker(DefaultChunking(), 2)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		s, err := OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		batch := s.NewBatch()
		if _, _, err := k.WriteFile(context.Background(), batch, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		if err := batch.Finish(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
