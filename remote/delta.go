package remote

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/mesh-sync/mesh/object"
)

// Deltas. After an edit, the chunks around it are new to the receiver,
// but most of their bytes are in the chunks they replaced, which it
// holds: a 1 MiB insertion into a large file makes a few new chunks of
// about 1 MiB each, of which only the inserted MiB is new. So a fetch
// that knows which bytes of the old version of a file a new chunk most
// likely repeats (deltaBases) names them as the chunk's bases (ranges of
// old chunks), and the sender may answer with the chunk compressed by
// zstd against the bases' bytes as a raw dictionary, when that is
// clearly smaller than the chunk as stored. The receiver expands it
// against its own copies of the bases and checks the result against the
// chunk's ID, as it checks everything: a wrong delta is a corrupt
// object, never a wrong file.
//
// A delta request is, per chunk, ID ‖ n (1 byte) ‖ n bases, each a chunk
// ID ‖ offset (4 bytes) ‖ length (4 bytes); the answer to each is an
// object frame, a missing frame or a delta frame: ID ‖ expanded size
// (4 bytes) ‖ zstd data. Peers that do not advertise featureDelta in
// their hello are never asked.

const featureDelta = "delta"

// features are what this device advertises in its hello.
var features = []string{featureDelta}

const (
	// maxDeltaBases bounds the bases of one chunk (ranges of as many
	// old chunks).
	maxDeltaBases = 16
	// deltaBaseSize is a base's size in a request.
	deltaBaseSize = object.IDSize + 8
	// maxDeltaRequest bounds one delta request frame's payload.
	maxDeltaRequest = maxControlFrame / 2
	// maxDeltaDict bounds the bytes of bases a delta is made against:
	// zstd's better level finds matches anywhere in a dictionary of up
	// to about this size (its fast levels only in the last few KiB).
	maxDeltaDict = 4 << 20
	// maxDeltaRead bounds the bytes of the chunks a sender reads to cut
	// one delta's bases from (two of the largest default chunks).
	maxDeltaRead = 16 << 20
	// minDeltaChunk and maxDeltaChunk bound the chunks sent as deltas:
	// smaller ones are not worth a second lookup; larger ones have
	// matches further back than the encoder's window reaches.
	minDeltaChunk = 4 << 10
	maxDeltaChunk = 8 << 20
	// deltaWindow holds a full dictionary and a chunk of up to 4 MiB
	// (the encoder's tables and window then take about 45 MiB; twice the
	// window, 80).
	deltaWindow = 8 << 20
	// deltaMissLimit: after this many deltas in a row that saved too
	// little (a file rewritten, not edited), a connection tries only
	// every deltaProbe-th chunk until one pays again, so a sender spends
	// little on deltas that do not pay and still finds the next edit.
	deltaMissLimit = 8
	deltaProbe     = 16
	deltaDictID    = 1
	// compDelta marks a Raw that is a delta, not a stored object; no
	// store ever holds it (Expand refuses it).
	compDelta = 0xff
)

// deltaBase is a range of a chunk the receiver holds.
type deltaBase struct {
	id     object.ID
	off, n uint32
}

// deltaQuery is one chunk of a delta request.
type deltaQuery struct {
	id    object.ID
	bases []deltaBase
}

// appendDeltaWant appends w's entry to a delta request.
func appendDeltaWant(b []byte, w want) []byte {
	b = append(b, w.id[:]...)
	b = append(b, byte(len(w.bases)))
	for _, base := range w.bases {
		b = append(b, base.id[:]...)
		b = binary.BigEndian.AppendUint32(b, base.off)
		b = binary.BigEndian.AppendUint32(b, base.n)
	}
	return b
}

// encodeDeltaRequests splits ws into delta requests within the frame
// limits.
func encodeDeltaRequests(ws []want) [][]byte {
	var out [][]byte
	var b []byte
	n := 0
	for _, w := range ws {
		if n == maxIDsPerRequest || len(b)+object.IDSize+1+len(w.bases)*deltaBaseSize > maxDeltaRequest {
			out, b, n = append(out, b), nil, 0
		}
		b = appendDeltaWant(b, w)
		n++
	}
	if n > 0 {
		out = append(out, b)
	}
	return out
}

func decodeDeltaRequest(b []byte) ([]deltaQuery, error) {
	var qs []deltaQuery
	for len(b) > 0 {
		if len(b) < object.IDSize+1 {
			return nil, fmt.Errorf("a delta request cut short: %w", ErrProtocol)
		}
		var q deltaQuery
		copy(q.id[:], b)
		n := int(b[object.IDSize])
		b = b[object.IDSize+1:]
		if n > maxDeltaBases || len(b) < n*deltaBaseSize {
			return nil, fmt.Errorf("a delta request naming %d bases (at most %d) in %d bytes: %w", n, maxDeltaBases, len(b), ErrProtocol)
		}
		for i := 0; i < n; i++ {
			p := b[i*deltaBaseSize:]
			var base deltaBase
			copy(base.id[:], p)
			base.off = binary.BigEndian.Uint32(p[object.IDSize:])
			base.n = binary.BigEndian.Uint32(p[object.IDSize+4:])
			q.bases = append(q.bases, base)
		}
		b = b[n*deltaBaseSize:]
		qs = append(qs, q)
		if len(qs) > maxIDsPerRequest {
			return nil, fmt.Errorf("a delta request of over %d chunks: %w", maxIDsPerRequest, ErrProtocol)
		}
	}
	return qs, nil
}

func (w *wire) writeDelta(id object.ID, size int, data []byte) error {
	var hdr [object.IDSize + 4]byte
	copy(hdr[:], id[:])
	binary.BigEndian.PutUint32(hdr[object.IDSize:], uint32(size))
	return w.write(kindDelta, hdr[:], data)
}

// decodeDelta splits a delta frame into a Raw of Comp compDelta.
func decodeDelta(b []byte) (object.ID, object.Raw, error) {
	var id object.ID
	if len(b) < object.IDSize+4 {
		return id, object.Raw{}, fmt.Errorf("delta frame of %d bytes: %w", len(b), ErrProtocol)
	}
	copy(id[:], b)
	size := binary.BigEndian.Uint32(b[object.IDSize:])
	if size > maxDeltaChunk {
		return id, object.Raw{}, fmt.Errorf("a delta of %s expanding to %d bytes, over the limit of %d: %w", id.Short(), size, maxDeltaChunk, ErrProtocol)
	}
	return id, object.Raw{Type: object.TypeChunk, Comp: compDelta, Size: int(size), Data: b[object.IDSize+4:]}, nil
}

// deltaDict is the bytes of bases, in order, read from s: the
// dictionary a delta against them is made and expanded with.
func deltaDict(s *object.Store, bases []deltaBase) ([]byte, error) {
	var dict []byte
	var last object.ID
	var body []byte // of last: consecutive ranges are often of one chunk
	for _, b := range bases {
		if body == nil || b.id != last {
			t, got, err := s.Get(b.id)
			if err != nil {
				return nil, err
			}
			if t != object.TypeChunk {
				return nil, fmt.Errorf("base %s is a %s, not a chunk", b.id.Short(), t)
			}
			last, body = b.id, got
		}
		if uint64(b.off)+uint64(b.n) > uint64(len(body)) {
			return nil, fmt.Errorf("bytes %d+%d of base %s, which has %d", b.off, b.n, b.id.Short(), len(body))
		}
		if len(dict)+int(b.n) > maxDeltaDict {
			return nil, fmt.Errorf("bases of over %d bytes", maxDeltaDict)
		}
		dict = append(dict, body[b.off:b.off+b.n]...)
	}
	return dict, nil
}

// expandDelta is the chunk r (a delta) encodes against dict, checked to
// be exactly the size r states; the caller checks its hash.
func expandDelta(r object.Raw, dict []byte) ([]byte, error) {
	if r.Size < 0 || r.Size > maxDeltaChunk {
		return nil, fmt.Errorf("a delta of %d bytes: %w", r.Size, object.ErrMalformed)
	}
	// DecodeAll writes at most cap(dst), the stated size, whatever the
	// data expands to.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(deltaDictID, dict),
		zstd.WithDecoderMaxMemory(maxDeltaChunk+maxDeltaDict), zstd.WithDecoderMaxWindow(deltaWindow),
		zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(r.Data, make([]byte, 0, r.Size))
	if err != nil {
		return nil, fmt.Errorf("cannot expand the delta: %v: %w", err, object.ErrMalformed)
	}
	if len(out) != r.Size {
		return nil, fmt.Errorf("a delta of %d bytes where %d are stated: %w", len(out), r.Size, object.ErrMalformed)
	}
	return out, nil
}

// deltaEncoders lends the encoders deltas are made with, reused since
// making one costs more than a delta. Each holds some 45 MiB, so a
// device makes at most one per core, and at most 4, however many
// connections ask (deltaSlots); the pool lets them go once they sit idle.
var (
	deltaEncoders sync.Pool
	deltaSlots    = make(chan struct{}, min(runtime.GOMAXPROCS(0), 4))
)

// encodeDelta compresses body against dict.
func encodeDelta(body, dict []byte) ([]byte, error) {
	deltaSlots <- struct{}{}
	defer func() { <-deltaSlots }()
	enc, _ := deltaEncoders.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(deltaWindow))
		if err != nil {
			return nil, err
		}
	}
	defer deltaEncoders.Put(enc)
	if err := enc.ResetWithOptions(nil, zstd.WithEncoderDictRaw(deltaDictID, dict)); err != nil {
		return nil, err
	}
	return enc.EncodeAll(body, nil), nil
}

// deltaSender makes the deltas of one connection's requests.
type deltaSender struct {
	store *object.Store
	// misses counts deltas in a row that did not pay; skipped, chunks
	// not tried since.
	misses, skipped int
}

// deltas is the responder's sender.
func (r *responder) deltas() *deltaSender {
	if r.delta == nil {
		r.delta = &deltaSender{store: r.local.Objects}
	}
	return r.delta
}

// try sends raw (the chunk id, as stored) as a delta against bases if it
// can and that is clearly smaller, and says whether it did. Anything in
// the way (a base this device lacks, an odd size) means sending it as
// stored, which is never wrong.
func (d *deltaSender) try(w *wire, id object.ID, raw object.Raw, bases []deltaBase) (bool, error) {
	if len(bases) == 0 || raw.Type != object.TypeChunk || raw.Size < minDeltaChunk || raw.Size > maxDeltaChunk {
		return false, nil
	}
	if d.misses >= deltaMissLimit {
		d.skipped++
		if d.skipped%deltaProbe != 0 {
			return false, nil
		}
	}
	// Whatever fails from here on counts as a miss, so that bases that
	// are no use (or not there) soon cost nothing.
	d.misses++
	body, err := d.store.Expand(raw)
	if err != nil {
		return false, nil // the receiver finds out, from the stored form
	}
	// What reading the bases costs is bounded too, whatever the request
	// names: the dictionary, and the chunks it is cut from.
	var total, read int64
	seen := map[object.ID]bool{}
	for _, b := range bases {
		total += int64(b.n)
		if !seen[b.id] {
			seen[b.id] = true
			t, size, err := d.store.Stat(b.id)
			if err != nil || t != object.TypeChunk {
				return false, nil
			}
			read += size
		}
	}
	if total > maxDeltaDict || read > maxDeltaRead {
		return false, nil
	}
	dict, err := deltaDict(d.store, bases)
	if err != nil {
		return false, nil
	}
	data, err := encodeDelta(body, dict)
	if err != nil || len(data) > len(raw.Data)-len(raw.Data)/8 {
		return false, nil
	}
	d.misses, d.skipped = 0, 0
	return true, w.writeDelta(id, len(body), data)
}

// chunkPeer is a Peer that may send chunks as deltas (a Conn).
type chunkPeer interface {
	getChunks(ctx context.Context, ws []want, fn ObjectFunc, missingOK bool) ([]object.ID, error)
}

// hasBases reports whether any of ws has bases to be sent as a delta against.
func hasBases(ws []want) bool {
	for _, w := range ws {
		if len(w.bases) > 0 {
			return true
		}
	}
	return false
}

// deltaBases names, for each chunk of a new version of a file (nw) that
// its old version (old) lacks, the bytes of old it most likely repeats.
// Each run of new chunks between two chunks both versions share (or the
// file's ends) replaced the old chunks between the same two, with some
// bytes inserted or deleted somewhere in the run: a new chunk's bytes
// before that point are at the same distance from the run's start in the
// old run, and those after it at the same distance from the run's end.
// So a new chunk gets the old bytes from the one position to the other,
// or, when that spans more than a dictionary holds, the bytes at each
// position. An insertion, deletion or overwrite then finds all the old
// bytes around it; chunks of new bytes find nothing, and the sender
// sends them as stored.
func deltaBases(nw, old []object.ChunkRef) [][]deltaBase {
	pos := make(map[object.ID]int, len(old))
	for i, c := range old {
		if _, ok := pos[c.ID]; !ok {
			pos[c.ID] = i
		}
	}
	out := make([][]deltaBase, len(nw))
	for i := 0; i < len(nw); {
		if _, ok := pos[nw[i].ID]; ok {
			i++
			continue
		}
		j := i
		for j < len(nw) {
			if _, ok := pos[nw[j].ID]; ok {
				break
			}
			j++
		}
		a, b := 0, len(old)
		if i > 0 {
			a = pos[nw[i-1].ID] + 1
		}
		if j < len(nw) {
			b = pos[nw[j].ID]
		}
		if a < b {
			alignBases(nw[i:j], old[a:b], out[i:j])
		}
		i = j
	}
	return out
}

// alignBases fills out for the run nw, which replaced the chunks old.
func alignBases(nw, old []object.ChunkRef, out [][]deltaBase) {
	var runLen, oldLen int64
	for _, c := range nw {
		runLen += c.Size
	}
	for _, c := range old {
		oldLen += c.Size
	}
	shift := runLen - oldLen // bytes inserted (deleted, if negative)
	clip := func(lo, hi int64) (int64, int64) { return max(lo, 0), min(hi, oldLen) }
	var start int64
	for k, c := range nw {
		// The chunk's bytes read from the run's start, and from its end.
		slo, shi := clip(start, start+c.Size)
		elo, ehi := clip(start-shift, start+c.Size-shift)
		var ranges [][2]int64
		switch {
		case slo >= shi && elo >= ehi:
		case slo >= shi:
			ranges = [][2]int64{{elo, ehi}}
		case elo >= ehi:
			ranges = [][2]int64{{slo, shi}}
		case max(shi, ehi)-min(slo, elo) <= maxDeltaDict:
			ranges = [][2]int64{{min(slo, elo), max(shi, ehi)}}
		default:
			half := int64(maxDeltaDict / 2)
			ranges = [][2]int64{{slo, min(shi, slo+half)}, {elo, min(ehi, elo+half)}}
		}
		for _, r := range ranges {
			out[k] = appendRange(out[k], old, r[0], r[1])
		}
		start += c.Size
	}
}

// appendRange appends to bases the slices of the chunks old that hold
// bytes [lo, hi) of them, as far as maxDeltaBases and maxDeltaDict allow.
func appendRange(bases []deltaBase, old []object.ChunkRef, lo, hi int64) []deltaBase {
	var total int64
	for _, b := range bases {
		total += int64(b.n)
	}
	var at int64
	for _, c := range old {
		if at >= hi || len(bases) == maxDeltaBases {
			break
		}
		from, to := max(lo, at), min(hi, at+c.Size)
		if from < to {
			n := min(to-from, maxDeltaDict-total)
			if n <= 0 {
				break
			}
			bases = append(bases, deltaBase{id: c.ID, off: uint32(from - at), n: uint32(n)})
			total += n
		}
		at += c.Size
	}
	return bases
}

// DeltaBase is a range of a chunk a delta is made against: for stores
// that keep deltas themselves (a cloud peer's packs).
type DeltaBase struct {
	ID     object.ID
	Off, N uint32
}

// DeltaBases gives, for each chunk of a new version nw of a file whose
// old version is old, the ranges of old chunks its bytes most likely
// repeat (none for a chunk old holds, or one of wholly new bytes).
func DeltaBases(nw, old []object.ChunkRef) [][]DeltaBase {
	in := deltaBases(nw, old)
	out := make([][]DeltaBase, len(in))
	for i, bs := range in {
		for _, b := range bs {
			out[i] = append(out[i], DeltaBase{ID: b.id, Off: b.off, N: b.n})
		}
	}
	return out
}

// DeltaDict is the bytes of bases, in order, each chunk's body from get:
// the dictionary a delta is made and expanded with.
func DeltaDict(bases []DeltaBase, get func(object.ID) ([]byte, error)) ([]byte, error) {
	var dict []byte
	var last object.ID
	var body []byte
	for _, b := range bases {
		if body == nil || b.ID != last {
			got, err := get(b.ID)
			if err != nil {
				return nil, err
			}
			last, body = b.ID, got
		}
		if uint64(b.Off)+uint64(b.N) > uint64(len(body)) {
			return nil, fmt.Errorf("bytes %d+%d of base %s, which has %d: %w", b.Off, b.N, b.ID.Short(), len(body), object.ErrMalformed)
		}
		if len(dict)+int(b.N) > maxDeltaDict {
			return nil, fmt.Errorf("bases of over %d bytes: %w", maxDeltaDict, object.ErrMalformed)
		}
		dict = append(dict, body[b.Off:b.Off+b.N]...)
	}
	return dict, nil
}

// EncodeDelta compresses a chunk's body against dict; ExpandDelta
// undoes it, to exactly size bytes (the caller checks the hash).
func EncodeDelta(body, dict []byte) ([]byte, error) { return encodeDelta(body, dict) }

// ExpandDelta is EncodeDelta undone.
func ExpandDelta(data []byte, size int, dict []byte) ([]byte, error) {
	return expandDelta(object.Raw{Type: object.TypeChunk, Comp: compDelta, Size: size, Data: data}, dict)
}

// MaxDeltaBases bounds the bases of one delta.
const MaxDeltaBases = maxDeltaBases
