package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// DeviceID names a device: SHA-256 of its Ed25519 public key, written as
// Syncthing writes device IDs — base32, a Luhn check character after each
// 13 characters, in groups of 7 — so a person can read it out and a typo
// is caught.
type DeviceID [sha256.Size]byte

// ErrBadDeviceID is the kind of error for a device ID that does not parse
// or whose check characters do not match.
var ErrBadDeviceID = errors.New("bad device ID")

// DeviceIDOf derives the device ID of a public key.
func DeviceIDOf(pub ed25519.PublicKey) DeviceID { return sha256.Sum256(pub) }

const luhnAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// luhn32 is the Luhn mod N check character over base32 digits.
func luhn32(s string) byte {
	factor, sum, n := 1, 0, len(luhnAlphabet)
	for i := 0; i < len(s); i++ {
		code := strings.IndexByte(luhnAlphabet, s[i])
		addend := factor * code
		if factor == 2 {
			factor = 1
		} else {
			factor = 2
		}
		addend = addend/n + addend%n
		sum += addend
	}
	return luhnAlphabet[(n-sum%n)%n]
}

// String returns the grouped, checked form, e.g. ABCDEFG-HIJKLMN-….
func (d DeviceID) String() string {
	raw := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(d[:]) // 52 characters
	var checked strings.Builder
	for i := 0; i < 4; i++ {
		part := raw[i*13 : (i+1)*13]
		checked.WriteString(part)
		checked.WriteByte(luhn32(part))
	}
	c := checked.String() // 56 characters
	groups := make([]string, 8)
	for i := range groups {
		groups[i] = c[i*7 : (i+1)*7]
	}
	return strings.Join(groups, "-")
}

// Short returns the first group, enough to tell a person's devices apart
// (it names conflict copies).
func (d DeviceID) Short() string { return d.String()[:7] }

// ParseDeviceID parses the form String writes (case and dashes or spaces
// are forgiven) and checks every check character.
func ParseDeviceID(s string) (DeviceID, error) {
	var d DeviceID
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(s))
	if len(c) != 56 {
		return d, fmt.Errorf("%q has %d characters, a device ID has 56: %w", s, len(c), ErrBadDeviceID)
	}
	var raw strings.Builder
	for i := 0; i < 4; i++ {
		part, check := c[i*14:i*14+13], c[i*14+13]
		if strings.Trim(part, luhnAlphabet) != "" || luhn32(part) != check {
			return d, fmt.Errorf("%q: check character %d does not match (a typo?): %w", s, i+1, ErrBadDeviceID)
		}
		raw.WriteString(part)
	}
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(raw.String())
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("%q: %w", s, ErrBadDeviceID)
	}
	copy(d[:], b)
	return d, nil
}

// Identity is a device's key and self-signed certificate, with which it
// will authenticate to the other devices of its mesh over TLS.
type Identity struct {
	Key  ed25519.PrivateKey
	Cert *x509.Certificate
	DER  []byte
	ID   DeviceID
}

// NewIdentity makes a new key and a self-signed certificate for it.
func NewIdentity(now time.Time) (*Identity, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	id := DeviceIDOf(pub)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mesh " + id.String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(100, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Identity{Key: key, Cert: cert, DER: der, ID: id}, nil
}

const (
	keyFile  = "key.pem"
	certFile = "cert.pem"
)

// Save writes the identity into dir: the key readable by its owner only.
func (i *Identity) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		return err
	}
	if err := object.WriteFileAtomic(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600, true); err != nil {
		return err
	}
	return object.WriteFileAtomic(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.DER}), 0o644, true)
}

// LoadIdentity reads an identity saved in dir and checks that the
// certificate belongs to the key.
func LoadIdentity(dir string) (*Identity, error) {
	read := func(name, typ string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read identity: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != typ {
			return nil, fmt.Errorf("%s: not a PEM %s", filepath.Join(dir, name), typ)
		}
		return blk.Bytes, nil
	}
	kb, err := read(keyFile, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, keyFile), err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", filepath.Join(dir, keyFile))
	}
	der, err := read(certFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, certFile), err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%s does not belong to the key in %s", filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	}
	return &Identity{Key: key, Cert: cert, DER: der, ID: DeviceIDOf(pub)}, nil
}
