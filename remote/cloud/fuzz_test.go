package cloud

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// FuzzDecodeIndex: any bytes decode without panic to entries in bounds,
// which encode back to the same bytes.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex(nil))
	f.Add(encodeIndex([]indexEntry{{ID: object.Hash(object.TypeChunk, []byte("a")), Type: object.TypeChunk, Size: 1, Off: 0, Len: 41}, {ID: object.Hash(object.TypeTree, nil), Type: object.TypeTree, Comp: 1, Size: 9, Off: 41, Len: 60}}))
	f.Add([]byte(indexHeader + "\xff\xff\xff\xff\xff\x01"))
	base := remote.DeltaBase{ID: object.Hash(object.TypeChunk, []byte("base")), Off: 10, N: 4096}
	f.Add(encodeIndex([]indexEntry{{ID: object.Hash(object.TypeChunk, []byte("d")), Type: object.TypeChunk, Comp: compDelta, Size: 8192, Len: 100, Bases: []remote.DeltaBase{base, base}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeIndex(b)
		if err != nil {
			return
		}
		for _, e := range es {
			if !e.Type.Valid() || e.Len < sealOverhead || e.Size > maxObject {
				t.Fatalf("entry out of bounds: %+v", e)
			}
		}
		if back := encodeIndex(es); !bytes.Equal(back, b) {
			// Uvarints have one shortest form; others are refused only
			// if they change the encoding, so compare what they mean.
			again, err := decodeIndex(back)
			if err != nil || len(again) != len(es) {
				t.Fatalf("entries do not survive a round trip: %v", err)
			}
		}
	})
}

// FuzzDecodeRef: any bytes decode without panic, and only a ref its
// device signed is taken.
func FuzzDecodeRef(f *testing.F) {
	id, _ := remote.NewIdentity(time.Now())
	r := &Ref{Device: id.ID.String(), Branch: "main", Commit: object.Hash(object.TypeCommit, []byte("c")), Seq: 3, Time: 1700000000}
	r.sign(id.Key)
	good, _ := json.Marshal(r)
	f.Add(good)
	f.Add([]byte(`{"device":"x","branch":"main"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeRef(b)
		if err != nil {
			return
		}
		if remote.DeviceIDOf(got.Key).String() != got.Device {
			t.Fatalf("took a ref whose key is not its device's: %+v", got)
		}
	})
}
