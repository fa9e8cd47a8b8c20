package cloud

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrSealed is the kind of error for an object that does not open with
// this mesh's key: damaged, changed, moved, or another mesh's.
var ErrSealed = errors.New("does not open with this mesh's key")

// Keys are what a mesh secret gives a bucket: a key to seal with and one
// to name with.
type Keys struct {
	aead  cipher.AEAD
	names []byte
}

// NewKeys derives the bucket keys from a mesh secret.
func NewKeys(secret []byte) (*Keys, error) {
	data, err := hkdf.Key(sha256.New, secret, []byte("mesh cloud v1"), "seal", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	names, err := hkdf.Key(sha256.New, secret, []byte("mesh cloud v1"), "names", 32)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(data)
	if err != nil {
		return nil, err
	}
	return &Keys{aead: aead, names: names}, nil
}

// sealOverhead is what sealing adds: the nonce and the tag.
const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// seal encrypts plain, bound to ad, appending nonce and ciphertext to dst.
func (k *Keys) seal(dst, ad, plain []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	if _, err := rand.Read(dst[n:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported systems
	}
	return k.aead.Seal(dst, dst[n:n+chacha20poly1305.NonceSizeX], plain, ad)
}

// open decrypts what seal made, checking that it was bound to ad.
func (k *Keys) open(dst, ad, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("%d bytes, shorter than a sealed object: %w", len(sealed), ErrSealed)
	}
	out, err := k.aead.Open(dst, sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, ErrSealed
	}
	return out, nil
}

// name is the keyed name of parts: the bucket's operator cannot tell
// what it names, nor compute it for a name it guesses.
func (k *Keys) name(kind string, parts ...string) string {
	m := hmac.New(sha256.New, k.names)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil)[:20])
}

// randomName is a new pack's name.
func randomName() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
