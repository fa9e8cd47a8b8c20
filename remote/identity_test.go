package remote

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDeviceIDRoundTripAndChecks(t *testing.T) {
	id, err := NewIdentity(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := id.ID.String()
	if len(s) != 63 || strings.Count(s, "-") != 7 {
		t.Fatalf("device ID %q is not 8 groups of 7", s)
	}
	for _, form := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", ""), strings.ReplaceAll(s, "-", " ")} {
		got, err := ParseDeviceID(form)
		if err != nil || got != id.ID {
			t.Fatalf("ParseDeviceID(%q) = %v, %v", form, got, err)
		}
	}
	// Every single-character substitution is caught by a check character.
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		for _, c := range []byte(luhnAlphabet) {
			if c == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := ParseDeviceID(typo); !errors.Is(err, ErrBadDeviceID) {
				t.Fatalf("typo %q at %d accepted", typo, i)
			}
		}
	}
	if _, err := ParseDeviceID("short"); !errors.Is(err, ErrBadDeviceID) {
		t.Fatal("short ID accepted")
	}
	if DeviceIDOf(id.Key.Public().(ed25519.PublicKey)) != id.ID {
		t.Fatal("ID is not derived from the public key")
	}
}

func TestIdentitySaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "identity")
	id, _ := NewIdentity(time.Now())
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, keyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o", fi.Mode().Perm())
	}
	got, err := LoadIdentity(dir)
	if err != nil || got.ID != id.ID || !got.Key.Equal(id.Key) {
		t.Fatalf("load: %v", err)
	}
	if err := got.Cert.CheckSignature(got.Cert.SignatureAlgorithm, got.Cert.RawTBSCertificate, got.Cert.Signature); err != nil {
		t.Fatalf("certificate is not self-signed by the key: %v", err)
	}
	// A certificate of another key is refused.
	other, _ := NewIdentity(time.Now())
	otherDir := filepath.Join(t.TempDir(), "other")
	other.Save(otherDir)
	b, _ := os.ReadFile(filepath.Join(otherDir, certFile))
	os.WriteFile(filepath.Join(dir, certFile), b, 0o644)
	if _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched certificate: %v", err)
	}
}
