package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/object"
	"github.com/zeebo/blake3"
)

// ErrUnauthorized is the kind of error for a peer that is not of our mesh
// (it cannot prove it holds the mesh secret) or is not the device we
// expected.
var ErrUnauthorized = errors.New("not authorized")

// SecretSize is the size of a mesh secret.
const SecretSize = 32

// Mesh is what makes devices one mesh: a shared secret. Whoever holds it
// is a member; its derived values name the mesh and key its gossip, and
// the secret itself never goes over the wire.
type Mesh struct {
	Secret [SecretSize]byte
}

// NewMesh makes a new mesh with a random secret.
func NewMesh() (Mesh, error) {
	var m Mesh
	_, err := rand.Read(m.Secret[:])
	return m, err
}

func (m Mesh) derive(context string, n int) []byte {
	out := make([]byte, n)
	blake3.DeriveKey(context, m.Secret[:], out)
	return out
}

// ID names the mesh publicly (it is safe to show and log).
func (m Mesh) ID() string { return hex.EncodeToString(m.derive("mesh 2026-11 mesh id", 16)) }

// GossipKey is the key for memberlist's keyring.
func (m Mesh) GossipKey() []byte { return m.derive("mesh 2026-11 gossip key", 32) }

// proof is a MAC, keyed by the mesh secret, over this TLS session's
// exported keying material, the role and the prover's device ID. It
// proves membership without revealing the secret, and cannot be replayed
// in another session or by another device.
func (m Mesh) proof(role string, ekm []byte, dev DeviceID) []byte {
	h, _ := blake3.NewKeyed(m.derive("mesh 2026-11 auth key", 32))
	h.WriteString("mesh-auth-v1\x00" + role + "\x00")
	h.Write(ekm)
	h.Write(dev[:])
	return h.Sum(nil)
}

// MarshalText writes the secret as hex, for the file that keeps it.
func (m Mesh) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(m.Secret[:])), nil }

// UnmarshalText reads what MarshalText wrote.
func (m *Mesh) UnmarshalText(b []byte) error {
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) != SecretSize {
		return fmt.Errorf("a mesh secret is %d hex-encoded bytes", SecretSize)
	}
	copy(m.Secret[:], s)
	return nil
}

// String never shows the secret, so that printing a Mesh by accident
// (a log line, an error) leaks nothing.
func (m Mesh) String() string { return "mesh " + m.ID() }

// Invite carries what a new device needs to join a mesh: the secret, the
// chunking every device must share, and optionally where to fetch the
// history from and which device to expect there.
type Invite struct {
	Mesh     Mesh
	Chunking object.Chunking
	Addr     string
	Device   string
	// Gossip is the inviting device's gossip address while a daemon runs
	// there: the new device's sync and daemon join the mesh through it.
	Gossip string
}

type inviteJSON struct {
	Secret   []byte          `json:"s"`
	Chunking object.Chunking `json:"c"`
	Addr     string          `json:"a,omitempty"`
	Device   string          `json:"d,omitempty"`
	Gossip   string          `json:"g,omitempty"`
}

const invitePrefix = "mesh1-"

// Token encodes the invite as one word to copy and paste. It holds the
// secret: treat it like a password.
func (i Invite) Token() string {
	b, _ := json.Marshal(inviteJSON{Secret: i.Mesh.Secret[:], Chunking: i.Chunking, Addr: i.Addr, Device: i.Device, Gossip: i.Gossip})
	return invitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadInvite is the kind of error for a token that does not parse.
var ErrBadInvite = errors.New("bad invite token")

// ParseInvite reads a token written by Token.
func ParseInvite(token string) (Invite, error) {
	var i Invite
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), invitePrefix)
	if !ok {
		return i, fmt.Errorf("an invite token starts with %q: %w", invitePrefix, ErrBadInvite)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return i, fmt.Errorf("the token is damaged (%v); copy it again: %w", err, ErrBadInvite)
	}
	var j inviteJSON
	if err := json.Unmarshal(b, &j); err != nil || len(j.Secret) != SecretSize {
		return i, fmt.Errorf("the token is damaged; copy it again: %w", ErrBadInvite)
	}
	if err := j.Chunking.Validate(); err != nil {
		return i, fmt.Errorf("the token's chunking: %v: %w", err, ErrBadInvite)
	}
	if j.Device != "" {
		if _, err := ParseDeviceID(j.Device); err != nil {
			return i, fmt.Errorf("the token's device: %v: %w", err, ErrBadInvite)
		}
	}
	copy(i.Mesh.Secret[:], j.Secret)
	i.Chunking, i.Addr, i.Device, i.Gossip = j.Chunking, j.Addr, j.Device, j.Gossip
	return i, nil
}

// Auth is what a device presents to its peers: its identity and its mesh.
type Auth struct {
	Identity *Identity
	Mesh     Mesh
}

// peerDevice checks the certificate a peer presented: one self-signed
// Ed25519 certificate, whose key gives the peer's device ID. Trust does
// not come from the certificate (anyone can make one) but from the
// membership proof that follows, bound to this session.
func peerDevice(rawCerts [][]byte) (DeviceID, error) {
	if len(rawCerts) != 1 {
		return DeviceID{}, fmt.Errorf("the peer presented %d certificates, want 1: %w", len(rawCerts), ErrUnauthorized)
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return DeviceID{}, fmt.Errorf("the peer's certificate: %v: %w", err, ErrUnauthorized)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return DeviceID{}, fmt.Errorf("the peer's certificate has no Ed25519 key: %w", ErrUnauthorized)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return DeviceID{}, fmt.Errorf("the peer's certificate is not self-signed by its key: %v: %w", err, ErrUnauthorized)
	}
	return DeviceIDOf(pub), nil
}

func (a *Auth) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{a.Identity.DER}, PrivateKey: a.Identity.Key, Leaf: a.Identity.Cert}},
		// Certificates are self-signed; VerifyPeerCertificate and the
		// membership proof do the checking.
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := peerDevice(raw)
			return err
		},
	}
}

// handshakeTimeout bounds the TLS handshake and the hello exchange.
var handshakeTimeout = 10 * time.Second

func exportedKey(c *tls.Conn) ([]byte, error) {
	cs := c.ConnectionState()
	return cs.ExportKeyingMaterial("EXPORTER-mesh-auth-v1", nil, 32)
}

// Conn is an authenticated connection to a device of our mesh.
type Conn struct {
	mu   sync.Mutex // one request at a time
	tls  *tls.Conn
	ic   *idleConn // under tls
	w    *wire
	Peer DeviceID
	Addr string
	// deltas: the peer sends chunks as deltas when asked (delta.go).
	deltas bool
}

// Close ends the connection.
func (c *Conn) Close() error { return c.tls.Close() }

// Dial connects to addr over TLS 1.3 and proves membership both ways. If
// want is non-zero, the peer must be that device.
func (a *Auth) Dial(ctx context.Context, addr string, want DeviceID) (*Conn, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c, err := a.clientHandshake(ctx, raw, addr, want)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return c, nil
}

func (a *Auth) clientHandshake(ctx context.Context, raw net.Conn, addr string, want DeviceID) (*Conn, error) {
	ic := &idleConn{Conn: raw, fixed: time.Now().Add(handshakeTimeout)}
	tc := tls.Client(ic, a.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	peer, err := peerDevice([][]byte{tc.ConnectionState().PeerCertificates[0].Raw})
	if err != nil {
		return nil, err
	}
	if want != (DeviceID{}) && peer != want {
		return nil, fmt.Errorf("the device there is %s, not the expected %s: %w", peer.Short(), want.Short(), ErrUnauthorized)
	}
	ekm, err := exportedKey(tc)
	if err != nil {
		return nil, err
	}
	w := newHelloWire(tc)
	if err := w.writeJSON(kindHello, helloMsg{Version: ProtocolVersion, Mesh: a.Mesh.ID(), Device: a.Identity.ID.String(), Proof: a.Mesh.proof("client", ekm, a.Identity.ID), Features: features}); err != nil {
		return nil, err
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	var wel helloMsg
	if err := w.readHelloJSON(kindWelcome, &wel); err != nil {
		var pe *PeerError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %w", pe, ErrUnauthorized)
		}
		return nil, err
	}
	if !hmac.Equal(wel.Proof, a.Mesh.proof("server", ekm, peer)) {
		return nil, fmt.Errorf("device %s cannot prove it is of this mesh: %w", peer.Short(), ErrUnauthorized)
	}
	ic.fixed = time.Time{}
	w.grow(tc)
	return &Conn{tls: tc, ic: ic, w: w, Peer: peer, Addr: addr, deltas: slices.Contains(wel.Features, featureDelta)}, nil
}

// accept runs the server side of the handshake: the client must prove
// membership before it is told anything, even whether it reached a mesh
// device.
func (a *Auth) accept(ctx context.Context, raw net.Conn) (*Conn, error) {
	ic := &idleConn{Conn: raw, fixed: time.Now().Add(AcceptTimeout)}
	tc := tls.Server(ic, a.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	peer, err := peerDevice([][]byte{tc.ConnectionState().PeerCertificates[0].Raw})
	if err != nil {
		return nil, err
	}
	ekm, err := exportedKey(tc)
	if err != nil {
		return nil, err
	}
	w := newHelloWire(tc)
	var hello helloMsg
	if err := w.readHelloJSON(kindHello, &hello); err != nil {
		return nil, fmt.Errorf("device %s: %w", peer.Short(), err)
	}
	if hello.Version != ProtocolVersion {
		w.sendError(fmt.Sprintf("this device speaks protocol %d, you %d; upgrade mesh", ProtocolVersion, hello.Version))
		return nil, fmt.Errorf("device %s speaks protocol %d, not %d: %w", peer.Short(), hello.Version, ProtocolVersion, ErrProtocol)
	}
	if !hmac.Equal(hello.Proof, a.Mesh.proof("client", ekm, peer)) {
		w.sendError("not authorized: you are not of this mesh")
		return nil, fmt.Errorf("device %s is not of this mesh: %w", peer.Short(), ErrUnauthorized)
	}
	if err := w.writeJSON(kindWelcome, helloMsg{Version: ProtocolVersion, Mesh: a.Mesh.ID(), Device: a.Identity.ID.String(), Proof: a.Mesh.proof("server", ekm, a.Identity.ID), Features: features}); err != nil {
		return nil, err
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	ic.fixed = time.Time{}
	w.grow(tc)
	return &Conn{tls: tc, ic: ic, w: w, Peer: peer, Addr: raw.RemoteAddr().String(), deltas: slices.Contains(hello.Features, featureDelta)}, nil
}

// LocalAddr is this end's address (host:port) of the connection.
func (c *Conn) LocalAddr() string { return c.tls.LocalAddr().String() }
