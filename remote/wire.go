package remote

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mesh-sync/mesh/object"
)

// The wire: after the TLS handshake, both sides exchange frames of
// kind (1 byte) ‖ length (4 bytes, big-endian) ‖ payload. Every length is
// checked against a limit before anything is allocated, so a peer cannot
// make us reserve more than one frame's worth of memory.

// ProtocolVersion is the version of the frames below; a peer speaking
// another is refused in the hello.
const ProtocolVersion = 1

const (
	// MaxObjectFrame bounds a frame carrying one object: the largest
	// object a store expands from a peer, and a header.
	MaxObjectFrame = object.MaxExpand + 64
	// maxControlFrame bounds every other frame (hello, refs, requests).
	maxControlFrame = 4 << 20
	// maxIDsPerRequest keeps a request of IDs within maxControlFrame.
	maxIDsPerRequest = 16 << 10
)

type frameKind uint8

const (
	kindHello      frameKind = iota + 1 // client → server: helloMsg
	kindWelcome                         // server → client: helloMsg
	kindError                           // either way: a message, then the connection ends
	kindRefsReq                         // → refs
	kindRefs                            // JSON map ref → ID
	kindCommits                         // n ‖ n wants ‖ haves → objects then kindEnd
	kindGet                             // IDs → one kindObject or kindMissing each
	kindObject                          // type ‖ ID ‖ body
	kindMissing                         // ID
	kindEnd                             // ends a stream of objects
	kindPush                            // pushMsg; the receiver then fetches from the sender
	kindPushDone                        // pushResult
	kindHoldersReq                      // holdersReq → kindHolders
	kindHolders                         // JSON []Holder
	kindHaveReq                         // IDs → kindHave
	kindHave                            // one bit per ID asked, in order
	kindGetDelta                        // delta request → one kindObject, kindDelta or kindMissing each
	kindDelta                           // ID ‖ size ‖ zstd against the bases asked for (delta.go)
)

func (k frameKind) String() string {
	names := [...]string{"", "hello", "welcome", "error", "refs request", "refs", "commits request", "get", "object", "missing", "end", "push", "push result", "holders request", "holders", "have request", "have", "delta request", "delta"}
	if int(k) < len(names) && k > 0 {
		return names[k]
	}
	return fmt.Sprintf("frame kind %d", uint8(k))
}

// ErrProtocol is the kind of error for a peer that breaks the protocol:
// garbage, a frame over its limit, a truncated stream, an unexpected
// frame. Such a peer is cut off.
var ErrProtocol = errors.New("protocol violation")

// errClosedByPeer: the peer closed the connection between frames.
var errClosedByPeer = errors.New("the connection closed")

// PeerError is an error message a peer sent us.
type PeerError struct{ Msg string }

func (e *PeerError) Error() string { return "the peer says: " + e.Msg }

type wire struct {
	r *bufio.Reader
	w *bufio.Writer
}

func newWire(rw io.ReadWriter) *wire {
	return &wire{r: bufio.NewReaderSize(rw, wireBuf), w: bufio.NewWriterSize(rw, wireBuf)}
}

// wireBuf is the buffer size of an authenticated connection's wire; one
// still proving membership gets helloBuf (strangers cost little).
const (
	wireBuf  = 256 << 10
	helloBuf = 4 << 10
	// maxHelloFrame bounds the hello and welcome frames (and an error
	// sent instead): all that is read before the membership proof.
	maxHelloFrame = 4 << 10
)

// newHelloWire is the wire of a connection before the membership proof.
func newHelloWire(rw io.ReadWriter) *wire {
	return &wire{r: bufio.NewReaderSize(rw, helloBuf), w: bufio.NewWriterSize(rw, helloBuf)}
}

// grow gives an authenticated connection's wire its full buffers.
func (w *wire) grow(rw io.ReadWriter) {
	if w.r.Buffered() == 0 {
		w.r = bufio.NewReaderSize(rw, wireBuf)
	} else {
		w.r = bufio.NewReaderSize(w.r, wireBuf) // keep what is buffered
	}
	if w.w.Buffered() == 0 {
		w.w = bufio.NewWriterSize(rw, wireBuf)
	}
}

// readHelloJSON reads the one frame of kind k allowed before the
// membership proof (or an error frame), refusing any other kind or a
// length over maxHelloFrame before it allocates anything.
func (w *wire) readHelloJSON(k frameKind, v any) error {
	var hdr [5]byte
	if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%w: %w", errClosedByPeer, io.ErrUnexpectedEOF)
		}
		return err
	}
	got, n := frameKind(hdr[0]), binary.BigEndian.Uint32(hdr[1:])
	if got != k && got != kindError {
		return fmt.Errorf("expected a %s frame, got a %s: %w", k, got, ErrProtocol)
	}
	if n > maxHelloFrame {
		return fmt.Errorf("a %s frame of %d bytes before the membership proof, over the limit of %d: %w", got, n, maxHelloFrame, ErrProtocol)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(w.r, b); err != nil {
		return fmt.Errorf("%s frame cut short: %w (%w)", got, io.ErrUnexpectedEOF, ErrProtocol)
	}
	if got == kindError {
		return &PeerError{Msg: string(b)}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s frame: %v: %w", k, err, ErrProtocol)
	}
	return nil
}

func limitOf(k frameKind) int {
	if k == kindObject || k == kindDelta {
		return MaxObjectFrame
	}
	return maxControlFrame
}

// read returns the next frame. The payload is newly allocated: callers
// may keep it.
func (w *wire) read() (frameKind, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
		if err == io.EOF {
			return 0, nil, fmt.Errorf("%w: %w", errClosedByPeer, io.ErrUnexpectedEOF)
		}
		return 0, nil, err
	}
	k, n := frameKind(hdr[0]), binary.BigEndian.Uint32(hdr[1:])
	if k < kindHello || k > kindDelta {
		return 0, nil, fmt.Errorf("unknown frame kind %d: %w", hdr[0], ErrProtocol)
	}
	if int64(n) > int64(limitOf(k)) {
		return 0, nil, fmt.Errorf("a %s frame of %d bytes is over the limit of %d: %w", k, n, limitOf(k), ErrProtocol)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(w.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%s frame cut short: %w (%w)", k, io.ErrUnexpectedEOF, ErrProtocol)
		}
		return 0, nil, err
	}
	if k == kindError {
		return k, nil, &PeerError{Msg: string(b)}
	}
	return k, b, nil
}

// expect reads a frame that must be of kind k.
func (w *wire) expect(k frameKind) ([]byte, error) {
	got, b, err := w.read()
	if err != nil {
		return nil, err
	}
	if got != k {
		return nil, fmt.Errorf("expected a %s frame, got a %s: %w", k, got, ErrProtocol)
	}
	return b, nil
}

// write queues a frame; flush sends what is queued.
func (w *wire) write(k frameKind, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > limitOf(k) {
		return fmt.Errorf("a %s frame of %d bytes is over the limit of %d", k, n, limitOf(k))
	}
	var hdr [5]byte
	hdr[0] = byte(k)
	binary.BigEndian.PutUint32(hdr[1:], uint32(n))
	if _, err := w.w.Write(hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func (w *wire) flush() error { return w.w.Flush() }

func (w *wire) writeJSON(k frameKind, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.write(k, b)
}

func (w *wire) readJSON(k frameKind, v any) error {
	b, err := w.expect(k)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s frame: %v: %w", k, err, ErrProtocol)
	}
	return nil
}

// sendError tells the peer why it is being cut off.
func (w *wire) sendError(msg string) {
	w.write(kindError, []byte(msg))
	w.flush()
}

func encodeIDs(ids []object.ID) []byte {
	b := make([]byte, 0, len(ids)*object.IDSize)
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

func decodeIDs(b []byte) ([]object.ID, error) {
	if len(b)%object.IDSize != 0 {
		return nil, fmt.Errorf("a list of IDs of %d bytes: %w", len(b), ErrProtocol)
	}
	ids := make([]object.ID, len(b)/object.IDSize)
	for i := range ids {
		copy(ids[i][:], b[i*object.IDSize:])
	}
	return ids, nil
}

// commitsRequest is n ‖ n wants ‖ haves.
func encodeCommitsRequest(wants, haves []object.ID) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(wants)))
	return append(append(b, encodeIDs(wants)...), encodeIDs(haves)...)
}

func decodeCommitsRequest(b []byte) (wants, haves []object.ID, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("commits request of %d bytes: %w", len(b), ErrProtocol)
	}
	n := int(binary.BigEndian.Uint32(b))
	ids, err := decodeIDs(b[4:])
	if err != nil {
		return nil, nil, err
	}
	if n > len(ids) {
		return nil, nil, fmt.Errorf("commits request names %d wants in %d IDs: %w", n, len(ids), ErrProtocol)
	}
	return ids[:n], ids[n:], nil
}

// An object frame is type ‖ ID ‖ compression ‖ expanded size (4 bytes) ‖
// the object as stored.
func (w *wire) writeObject(id object.ID, r object.Raw) error {
	var hdr [1 + object.IDSize + 1 + 4]byte
	hdr[0] = byte(r.Type)
	copy(hdr[1:], id[:])
	hdr[1+object.IDSize] = r.Comp
	binary.BigEndian.PutUint32(hdr[2+object.IDSize:], uint32(r.Size))
	return w.write(kindObject, hdr[:], r.Data)
}

// decodeObject splits an object frame. The caller expands it and verifies
// the hash.
func decodeObject(b []byte) (object.ID, object.Raw, error) {
	var id object.ID
	const hdr = 1 + object.IDSize + 1 + 4
	if len(b) < hdr {
		return id, object.Raw{}, fmt.Errorf("object frame of %d bytes: %w", len(b), ErrProtocol)
	}
	t := object.Type(b[0])
	if !t.Valid() {
		return id, object.Raw{}, fmt.Errorf("object frame of type %d: %w", b[0], ErrProtocol)
	}
	copy(id[:], b[1:])
	if b[1+object.IDSize] == compDelta {
		return id, object.Raw{}, fmt.Errorf("object %s in an object frame marked as a delta: %w", id.Short(), ErrProtocol)
	}
	size := binary.BigEndian.Uint32(b[2+object.IDSize:])
	if size > object.MaxExpand {
		return id, object.Raw{}, fmt.Errorf("object %s of %d bytes expanded is over the limit of %d: %w", id.Short(), size, MaxObjectFrame, ErrProtocol)
	}
	return id, object.Raw{Type: t, Comp: b[1+object.IDSize], Size: int(size), Data: b[hdr:]}, nil
}

// helloMsg is what each side says first: who it is and, proving that it
// holds the mesh secret, a MAC bound to this TLS session.
type helloMsg struct {
	Version int    `json:"version"`
	Mesh    string `json:"mesh"`
	Device  string `json:"device"`
	Proof   []byte `json:"proof"`
	// Features are what this side can do beyond the version's frames
	// (featureDelta); a peer that does not name one is not asked for it.
	Features []string `json:"features,omitempty"`
}

type pushMsg struct {
	Branch string    `json:"branch"`
	Old    object.ID `json:"old"`
	New    object.ID `json:"new"`
}

type pushResult struct {
	Error string `json:"error,omitempty"`
	Stats Stats  `json:"stats"`
}
