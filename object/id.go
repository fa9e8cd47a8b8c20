package object

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// IDSize is the length of an object ID in bytes.
const IDSize = 32

// ID names an object: BLAKE3-256 of its type, its body length and its body.
type ID [IDSize]byte

// ZeroID is the ID that names nothing; it stands for "absent".
var ZeroID ID

// IsZero reports whether id is ZeroID.
func (id ID) IsZero() bool { return id == ZeroID }

// String returns the full lowercase hex form of id.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, enough to name an object in a message.
func (id ID) Short() string { return id.String()[:12] }

// MarshalText makes IDs appear as hex in JSON.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the hex form written by MarshalText.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses the full 64-digit hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("object ID %q: want %d hex digits, have %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("object ID %q: %w", s, err)
	}
	return id, nil
}

// Type is the kind of an object.
type Type uint8

// The object types. Their numbers are part of the on-disk and hashed format.
const (
	TypeChunk  Type = 1
	TypeFile   Type = 2
	TypeTree   Type = 3
	TypeCommit Type = 4
)

func (t Type) String() string {
	switch t {
	case TypeChunk:
		return "chunk"
	case TypeFile:
		return "file"
	case TypeTree:
		return "tree"
	case TypeCommit:
		return "commit"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is one of the known object types.
func (t Type) Valid() bool { return t >= TypeChunk && t <= TypeCommit }

// Hash returns the ID of an object of type t with the given body.
func Hash(t Type, body []byte) ID {
	h := blake3.New()
	var hdr [9]byte
	hdr[0] = byte(t)
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(body)))
	h.Write(hdr[:])
	h.Write(body)
	var id ID
	h.Sum(id[:0])
	return id
}
