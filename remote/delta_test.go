package remote

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/mesh-sync/mesh/object"
)

// deltaChunking cuts chunks large enough to be sent as deltas.
var deltaChunking = object.Chunking{Algorithm: "fastcdc-v1.0.0", Min: 64 << 10, Normal: 256 << 10, Max: 1 << 20}

// commitFile commits data as the file "big" (cut with k), on parent.
func commitFile(t *testing.T, s *object.Store, k object.Chunking, data []byte, parent ...object.ID) object.ID {
	t.Helper()
	ch, err := object.NewChunker(k, 2)
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

// fileOf reads the file "big" of commit c from s.
func fileOf(t *testing.T, s *object.Store, c object.ID) []byte {
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

// newChunkBytes is what the chunks of commit c that its parent lacks
// weigh expanded.
func newChunkBytes(t *testing.T, s *object.Store, c, parent object.ID) int64 {
	t.Helper()
	chunks := func(c object.ID) []object.ChunkRef {
		cm, _ := s.ReadCommit(c)
		tr, _ := s.ReadTree(cm.Tree)
		f, err := s.ReadFile(tr.Entries[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return f.Chunks
	}
	old := map[object.ID]bool{}
	for _, ch := range chunks(parent) {
		old[ch.ID] = true
	}
	var n int64
	for _, ch := range chunks(c) {
		if !old[ch.ID] {
			n += ch.Size
			old[ch.ID] = true
		}
	}
	return n
}

// TestFetchSendsDeltas: after an insertion, an overwrite and an append,
// a fetch over a connection receives about the bytes that are new, not
// the whole chunks around them, and ends with the same file; a path
// peer (no deltas) moves the whole chunks.
func TestFetchSendsDeltas(t *testing.T) {
	data := randomBytes(11, 6<<20)
	edits := []struct {
		name string
		edit func([]byte) []byte
		new  int64 // bytes that are new
	}{
		{"insertion", func(d []byte) []byte {
			return slices.Concat(d[:3<<20], randomBytes(12, 64<<10), d[3<<20:])
		}, 64 << 10},
		{"overwrite", func(d []byte) []byte {
			d = slices.Clone(d)
			copy(d[1<<20:], randomBytes(13, 16<<10))
			return d
		}, 16 << 10},
		{"append", func(d []byte) []byte { return slices.Concat(d, randomBytes(14, 8<<10)) }, 8 << 10},
		{"deletion", func(d []byte) []byte { return slices.Concat(d[:2<<20], d[2<<20+100<<10:]) }, 0},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			src := local(t)
			first := commitFile(t, src.Objects, deltaChunking, data)
			edited := e.edit(data)
			second := commitFile(t, src.Objects, deltaChunking, edited, first)
			whole := newChunkBytes(t, src.Objects, second, first)
			// A peer that does not advertise deltas (an older mesh) is
			// asked for whole chunks.
			old := transport{"tls without deltas", func(t *testing.T, src *Local) Peer {
				c := transports()[1].connect(t, src).(*Conn)
				c.deltas = false
				return c
			}}
			for _, tr := range append(transports(), old) {
				dst := store(t)
				p := tr.connect(t, src)
				if _, err := Fetch(testCtx(t), p, dst, []object.ID{first}, nil); err != nil {
					t.Fatal(err)
				}
				st, err := Fetch(testCtx(t), p, dst, []object.ID{second}, []object.ID{first})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fileOf(t, dst, second), edited) {
					t.Fatalf("%s: the fetched file differs", tr.name)
				}
				fsckClean(t, dst)
				// The file object, tree and commit weigh a few hundred
				// bytes; a delta's framing a few dozen.
				const meta = 4 << 10
				if tr.name == "tls" && st.Bytes > e.new+meta {
					t.Fatalf("tls: %d new bytes (%d in new chunks) moved %d", e.new, whole, st.Bytes)
				}
				if tr.name != "tls" && st.Bytes < whole {
					t.Fatalf("path: moved %d bytes, less than the %d of the new chunks", st.Bytes, whole)
				}
			}
		})
	}
}

// TestRewrittenFileIsSentWhole: a file rewritten with new bytes at the
// same path gets bases that share nothing; it arrives whole and right.
func TestRewrittenFileIsSentWhole(t *testing.T) {
	src := local(t)
	first := commitFile(t, src.Objects, deltaChunking, randomBytes(21, 4<<20))
	data := randomBytes(22, 4<<20)
	second := commitFile(t, src.Objects, deltaChunking, data, first)
	p := transports()[1].connect(t, src)
	dst := store(t)
	if _, err := Fetch(testCtx(t), p, dst, []object.ID{first}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := Fetch(testCtx(t), p, dst, []object.ID{second}, []object.ID{first})
	if err != nil || st.Bytes < int64(len(data)) {
		t.Fatalf("fetch: %+v %v", st, err)
	}
	if !bytes.Equal(fileOf(t, dst, second), data) {
		t.Fatal("the fetched file differs")
	}
}

// TestPushSendsDeltas: the receiver of a push asks the pusher for deltas.
func TestPushSendsDeltas(t *testing.T) {
	m := testMesh(t)
	dst, src := local(t), local(t)
	data := randomBytes(31, 4<<20)
	first := commitFile(t, src.Objects, deltaChunking, data)
	edited := slices.Concat(data[:1<<20], randomBytes(32, 32<<10), data[1<<20:])
	second := commitFile(t, src.Objects, deltaChunking, edited, first)
	if _, err := Fetch(testCtx(t), src, dst.Objects, []object.ID{first}, nil); err != nil {
		t.Fatal(err)
	}
	if err := dst.Refs.Update(testCtx(t), "heads/main", object.ZeroID, first, "test"); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &Server{Auth: newAuth(t, m), Local: dst, Push: func(context.Context, DeviceID, string, object.ID, object.ID) error { return nil }})
	c, err := newAuth(t, m).Dial(testCtx(t), addr, DeviceID{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Push(testCtx(t), src, "main", first, second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes > 32<<10+4<<10 {
		t.Fatalf("a push of a 32 KiB insertion moved %d bytes", st.Bytes)
	}
	if !bytes.Equal(fileOf(t, dst.Objects, second), edited) {
		t.Fatal("the pushed file differs")
	}
}

// TestHostileDeltas: a delta that expands to other bytes, one that
// states a small size and expands to more, and a delta where a whole
// object was asked for are refused, and nothing is kept.
func TestHostileDeltas(t *testing.T) {
	m := testMesh(t)
	honest := local(t)
	data := randomBytes(41, 2<<20)
	first := commitFile(t, honest.Objects, deltaChunking, data)
	second := commitFile(t, honest.Objects, deltaChunking, slices.Concat(data[:1<<20], []byte("inserted"), data[1<<20:]), first)
	res := &responder{local: honest}
	enc, _ := zstd.NewWriter(nil)
	// deltas answers delta requests with what lie makes of each chunk.
	deltas := func(lie func(w *wire, id object.ID, body []byte)) func(w *wire, k frameKind, b []byte) bool {
		return func(w *wire, k frameKind, b []byte) bool {
			if k != kindGetDelta {
				return res.handle(context.Background(), w, k, b) == nil
			}
			qs, err := decodeDeltaRequest(b)
			if err != nil {
				return false
			}
			for _, q := range qs {
				_, body, _ := honest.Objects.Get(q.id)
				lie(w, q.id, body)
			}
			return true
		}
	}
	cases := []struct {
		name string
		act  func(w *wire, k frameKind, b []byte) bool
		want error
		// whole: the first fetch, into an empty store, which names no
		// bases and so asks for whole chunks.
		whole bool
	}{
		{"delta of other bytes", deltas(func(w *wire, id object.ID, body []byte) {
			body = slices.Clone(body)
			body[0]++
			w.writeDelta(id, len(body), enc.EncodeAll(body, nil))
		}), object.ErrCorrupt, false},
		{"delta bomb", deltas(func(w *wire, id object.ID, body []byte) {
			w.writeDelta(id, 10, enc.EncodeAll(make([]byte, 4<<20), nil))
		}), object.ErrCorrupt, false},
		{"delta of another chunk", deltas(func(w *wire, id object.ID, body []byte) {
			w.writeDelta(object.ID{1}, len(body), enc.EncodeAll(body, nil))
		}), ErrProtocol, false},
		{"object frame marked as a delta", deltas(func(w *wire, id object.ID, body []byte) {
			w.writeObject(id, object.Raw{Type: object.TypeChunk, Comp: compDelta, Size: len(body), Data: enc.EncodeAll(body, nil)})
		}), ErrProtocol, false},
		{"delta where a whole object was asked", func(w *wire, k frameKind, b []byte) bool {
			if k != kindGet {
				return res.handle(context.Background(), w, k, b) == nil
			}
			ids, _ := decodeIDs(b)
			for _, id := range ids {
				_, body, _ := honest.Objects.Get(id)
				w.writeDelta(id, len(body), enc.EncodeAll(body, nil))
			}
			return true
		}, ErrProtocol, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := store(t)
			want, haves := first, []object.ID(nil)
			if !tc.whole {
				if _, err := Fetch(testCtx(t), honest, dst, []object.ID{first}, nil); err != nil {
					t.Fatal(err)
				}
				want, haves = second, []object.ID{first}
			}
			fetchHostile(t, m, tc.act, dst, want, haves, tc.want)
		})
	}
}

func TestDeltaBases(t *testing.T) {
	c := func(name string, size int64) object.ChunkRef {
		return object.ChunkRef{ID: object.Hash(object.TypeChunk, []byte(name)), Size: size}
	}
	r := func(c object.ChunkRef, off, n uint32) deltaBase { return deltaBase{c.ID, off, n} }
	a, b, cc, d := c("a", 100), c("b", 100), c("c", 100), c("d", 100)
	b1, b2, b3 := c("b1", 60), c("b2", 100), c("b3", 80)
	const mib = 1 << 20
	big1, big2, big3 := c("big1", 3*mib), c("big2", 3*mib), c("big3", 3*mib)
	n1, n2 := c("n1", 3*mib+mib/2), c("n2", 3*mib+mib/2)
	cases := []struct {
		name    string
		nw, old []object.ChunkRef
		want    [][]deltaBase
	}{
		{"unchanged", []object.ChunkRef{a, b}, []object.ChunkRef{a, b}, [][]deltaBase{nil, nil}},
		// b (100 bytes) became b1 b2 b3 (240): 140 bytes inserted. b1's
		// 60 bytes are b's first 60 if before the insertion, nothing of
		// b if inside it: b[0:60]. b2 (60–160) is b[60:100] read from
		// the start, b[0:20] from the end: b[0:100]. b3 (160–240) is b's
		// last 80 read from the end.
		{"insertion into b", []object.ChunkRef{a, b1, b2, b3, cc}, []object.ChunkRef{a, b, cc},
			[][]deltaBase{nil, {r(b, 0, 60)}, {r(b, 0, 100)}, {r(b, 20, 80)}, nil}},
		// b cc (200 bytes) became b1 b2 b3 (240): 40 inserted.
		{"two chunks replaced by three", []object.ChunkRef{a, b1, b2, b3, d}, []object.ChunkRef{a, b, cc, d},
			[][]deltaBase{nil, {r(b, 0, 60)}, {r(b, 20, 80), r(cc, 0, 60)}, {r(cc, 20, 80)}, nil}},
		// b (100) became b3 (80): 20 deleted.
		{"deletion", []object.ChunkRef{a, b3, cc}, []object.ChunkRef{a, b, cc}, [][]deltaBase{nil, {r(b, 0, 100)}, nil}},
		{"first chunk edited", []object.ChunkRef{b2, b, cc}, []object.ChunkRef{a, b, cc}, [][]deltaBase{{r(a, 0, 100)}, nil, nil}},
		{"append", []object.ChunkRef{a, b, b2}, []object.ChunkRef{a, b, cc}, [][]deltaBase{nil, nil, {r(cc, 0, 100)}}},
		{"pure insertion between kept chunks", []object.ChunkRef{a, b1, b}, []object.ChunkRef{a, b}, [][]deltaBase{nil, nil, nil}},
		{"no old version", []object.ChunkRef{a}, nil, [][]deltaBase{nil}},
		{"reordered", []object.ChunkRef{b, b1, a}, []object.ChunkRef{a, b}, [][]deltaBase{nil, nil, nil}},
		// 9 MiB became 7 MiB: each new chunk's two readings are 2 MiB
		// apart, and with its 3.5 MiB over the dictionary: 2 MiB of each.
		{"readings too far apart", []object.ChunkRef{a, n1, n2, d}, []object.ChunkRef{a, big1, big2, big3, d},
			[][]deltaBase{nil, {r(big1, 0, 2*mib), r(big1, 2*mib, mib), r(big2, 0, mib)},
				{r(big2, mib/2, 2*mib), r(big2, 5*mib/2, mib/2), r(big3, 0, 3*mib/2)}, nil}},
	}
	for _, tc := range cases {
		got := deltaBases(tc.nw, tc.old)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d entries for %d chunks", tc.name, len(got), len(tc.nw))
		}
		for i := range got {
			if !slices.Equal(got[i], tc.want[i]) {
				t.Errorf("%s: chunk %d gets bases %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

// TestDeltaSenderBacksOff: deltas that do not pay (a file rewritten) are
// soon tried only now and then, and the next edit is found again.
func TestDeltaSenderBacksOff(t *testing.T) {
	src := local(t)
	b := src.Objects.NewBatch()
	put := func(body []byte) (object.ID, object.Raw) {
		id, err := b.Put(object.TypeChunk, body)
		if err != nil {
			t.Fatal(err)
		}
		return id, object.RawOf(object.TypeChunk, body)
	}
	baseBody := randomBytes(51, 64<<10)
	base, _ := put(baseBody)
	var rewrites []object.ID
	var raws []object.Raw
	for i := range 8 + 4*deltaProbe {
		id, r := put(randomBytes(uint64(100+i), 64<<10))
		rewrites, raws = append(rewrites, id), append(raws, r)
	}
	edit, editRaw := put(slices.Concat(baseBody[:32<<10], []byte("edit"), baseBody[32<<10:]))
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	d := (&responder{local: src}).deltas()
	w := newWire(rw{nil, io.Discard})
	for i, id := range rewrites {
		if sent, err := d.try(w, id, raws[i], []deltaBase{{base, 0, 64 << 10}}); sent || err != nil {
			t.Fatalf("a rewritten chunk sent as a delta: %v %v", sent, err)
		}
	}
	if d.misses != deltaMissLimit+4 {
		t.Fatalf("%d chunks tried, want %d then one in %d", d.misses, deltaMissLimit, deltaProbe)
	}
	// The edit comes after a probe's worth of skipped chunks.
	for range deltaProbe - 1 {
		d.try(w, rewrites[0], raws[0], []deltaBase{{base, 0, 64 << 10}})
	}
	if sent, err := d.try(w, edit, editRaw, []deltaBase{{base, 0, 64 << 10}}); !sent || err != nil {
		t.Fatalf("an edit after rewrites not sent as a delta: %v %v", sent, err)
	}
	if d.misses != 0 {
		t.Fatalf("misses %d after a delta that paid", d.misses)
	}
}

// TestDeltaSenderBoundsItsReads: bases that would make the sender read
// more than maxDeltaRead of chunks, or name what is not a chunk, get
// the chunk sent as stored.
func TestDeltaSenderBoundsItsReads(t *testing.T) {
	src := local(t)
	b := src.Objects.NewBatch()
	body := randomBytes(61, 64<<10)
	id, err := b.Put(object.TypeChunk, body)
	if err != nil {
		t.Fatal(err)
	}
	var big []object.ID
	for i := range 3 {
		bid, err := b.Put(object.TypeChunk, randomBytes(uint64(62+i), 6<<20))
		if err != nil {
			t.Fatal(err)
		}
		big = append(big, bid)
	}
	file, _ := b.Put(object.TypeFile, (&object.File{Chunks: []object.ChunkRef{{ID: id, Size: int64(len(body))}}}).Encode())
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	raw := object.RawOf(object.TypeChunk, body)
	w := newWire(rw{nil, io.Discard})
	for name, bases := range map[string][]deltaBase{
		"over 18 MiB of chunks to read": {{big[0], 0, 1}, {big[1], 0, 1}, {big[2], 0, 1}, {id, 0, 64 << 10}},
		"a file as a base":              {{file, 0, 10}},
		"a missing base":                {{object.ID{9}, 0, 10}},
		"a range past its chunk":        {{id, 60 << 10, 8 << 10}},
	} {
		d := (&responder{local: src}).deltas()
		if sent, err := d.try(w, id, raw, bases); sent || err != nil || d.misses != 1 {
			t.Errorf("%s: sent as a delta %v (%v), %d misses", name, sent, err, d.misses)
		}
	}
	// The same chunk against itself, within bounds, is sent as a delta.
	d := (&responder{local: src}).deltas()
	if sent, err := d.try(w, id, raw, []deltaBase{{big[0], 0, 1}, {big[1], 0, 1}, {id, 0, 64 << 10}}); !sent || err != nil {
		t.Fatalf("a delta within bounds not sent: %v %v", sent, err)
	}
}
