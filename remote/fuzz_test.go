package remote

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/mesh-sync/mesh/object"
)

// frame is a frame's bytes, for seeds.
func frame(k frameKind, payload []byte) []byte {
	b := []byte{byte(k), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

type rw struct {
	io.Reader
	io.Writer
}

// FuzzWireFrames: any byte stream read as frames ends in frames within
// their limits or an error, never a panic or an allocation past a frame's
// limit.
func FuzzWireFrames(f *testing.F) {
	f.Add(frame(kindRefs, []byte(`{"heads/main":"`+object.EmptyTreeID.String()+`"}`)))
	f.Add(append(frame(kindGet, make([]byte, 64)), frame(kindEnd, nil)...))
	f.Add([]byte{byte(kindObject), 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newWire(rw{bytes.NewReader(b), io.Discard})
		for range 64 {
			k, p, err := w.read()
			if err != nil {
				return
			}
			if len(p) > limitOf(k) {
				t.Fatalf("a %s frame of %d bytes passed its limit", k, len(p))
			}
		}
	})
}

// FuzzHello: what is read before the membership proof is one small hello
// or an error.
func FuzzHello(f *testing.F) {
	f.Add(frame(kindHello, []byte(`{"version":1,"mesh":"m","device":"d","proof":"AAAA"}`)))
	f.Add(frame(kindObject, make([]byte, 10)))
	f.Add([]byte{byte(kindHello), 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newHelloWire(rw{bytes.NewReader(b), io.Discard})
		var h helloMsg
		if err := w.readHelloJSON(kindHello, &h); err == nil {
			if frameKind(b[0]) != kindHello || binary.BigEndian.Uint32(b[1:5]) > maxHelloFrame {
				t.Fatalf("read a %s frame of %d bytes as the hello", frameKind(b[0]), binary.BigEndian.Uint32(b[1:5]))
			}
		}
	})
}

// FuzzObjectFrame: an object frame either splits into a Raw whose stated
// size is within the limits, which then expands to exactly that size or
// fails, or is refused.
func FuzzObjectFrame(f *testing.F) {
	s, err := object.OpenStore(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	var hdr [1 + object.IDSize + 1 + 4]byte
	hdr[0] = byte(object.TypeChunk)
	binary.BigEndian.PutUint32(hdr[2+object.IDSize:], 5)
	f.Add(append(hdr[:], "hello"...))
	hdr[1+object.IDSize] = 1 // zstd
	f.Add(append(hdr[:], 0x28, 0xb5, 0x2f, 0xfd))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, r, err := decodeObject(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("refused without ErrProtocol: %v", err)
			}
			return
		}
		body, err := s.Expand(r)
		if err == nil && len(body) != r.Size {
			t.Fatalf("object %s expanded to %d bytes, stated %d", id.Short(), len(body), r.Size)
		}
	})
}

// FuzzCommitsRequest: a commits request decodes into wants and haves that
// account for every byte, or is refused.
func FuzzCommitsRequest(f *testing.F) {
	id := object.EmptyTreeID
	f.Add(encodeCommitsRequest([]object.ID{id}, []object.ID{id, id}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		wants, haves, err := decodeCommitsRequest(b)
		if err != nil {
			return
		}
		if 4+(len(wants)+len(haves))*object.IDSize != len(b) {
			t.Fatalf("%d bytes decoded to %d wants and %d haves", len(b), len(wants), len(haves))
		}
	})
}

// FuzzInvite: a token parses into an invite that encodes back to a token
// that parses the same, or is refused as a bad token.
func FuzzInvite(f *testing.F) {
	m, _ := NewMesh()
	f.Add(Invite{Mesh: m, Chunking: object.DefaultChunking(), Addr: "127.0.0.1:7420"}.Token())
	f.Add("mesh1-")
	f.Add("mesh1-eyJzIjoiIn0")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err != nil {
			if !errors.Is(err, ErrBadInvite) {
				t.Fatalf("refused without ErrBadInvite: %v", err)
			}
			return
		}
		again, err := ParseInvite(inv.Token())
		if err != nil || again != inv {
			t.Fatalf("round trip: %+v → %+v (%v)", inv, again, err)
		}
	})
}

// FuzzDeviceID: a device ID parses into one that prints back the same
// way (with its check characters), or is refused.
func FuzzDeviceID(f *testing.F) {
	ident, err := NewIdentity(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ident.ID.String())
	f.Add("3O7GVL3-RVVMXDX-3T6TPJT-LGLJGSM-ASTJ5YU-UHEPW7B-YX2VJTS-VQGJIAS")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeviceID(s)
		if err != nil {
			return
		}
		again, err := ParseDeviceID(d.String())
		if err != nil || again != d {
			t.Fatalf("%q → %s → %v %v", s, d, again, err)
		}
	})
}

// FuzzDeltaRequest: a delta request decodes into chunks of at most
// maxDeltaBases bases that encode back to the same bytes, or is refused.
func FuzzDeltaRequest(f *testing.F) {
	id := object.EmptyTreeID
	f.Add(encodeDeltaRequests([]want{{id: id}, {id: id, bases: []deltaBase{{id, 0, 10}, {id, 7, 1 << 20}}}})[0])
	f.Add(append(id[:], 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		qs, err := decodeDeltaRequest(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("refused without ErrProtocol: %v", err)
			}
			return
		}
		var again []byte
		for _, q := range qs {
			if len(q.bases) > maxDeltaBases {
				t.Fatalf("%d bases", len(q.bases))
			}
			again = appendDeltaWant(again, want{id: q.id, bases: q.bases})
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %d chunks that encode otherwise", b, len(qs))
		}
	})
}

// FuzzDelta: a delta frame is refused, or expands against a dictionary
// to exactly the size it states, or fails as malformed; never a panic or
// more than the stated size.
func FuzzDelta(f *testing.F) {
	dict := randomBytes(3, 64<<10)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(deltaDictID, dict))
	if err != nil {
		f.Fatal(err)
	}
	body := append(slices.Clone(dict[:30<<10]), "new"...)
	var w bytes.Buffer
	wr := newWire(rw{nil, &w})
	wr.writeDelta(object.Hash(object.TypeChunk, body), len(body), enc.EncodeAll(body, nil))
	wr.flush()
	f.Add(w.Bytes()[5:])
	f.Add(make([]byte, object.IDSize+4))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, err := decodeDelta(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("refused without ErrProtocol: %v", err)
			}
			return
		}
		out, err := expandDelta(r, dict)
		if err != nil {
			if !errors.Is(err, object.ErrMalformed) {
				t.Fatalf("failed without ErrMalformed: %v", err)
			}
			return
		}
		if len(out) != r.Size {
			t.Fatalf("expanded to %d bytes, stated %d", len(out), r.Size)
		}
	})
}
