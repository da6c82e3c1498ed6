package ca

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealerRoundTrip(t *testing.T) {
	key, err := ParseKey(GenerateKey() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n")
	sealed := s.Seal(plain, "ca")
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("the sealed value carries the plain text")
	}
	if again := s.Seal(plain, "ca"); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	got, err := s.Open(sealed, "ca")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	// Another row's name, another key, a flipped bit: refused.
	if _, err := s.Open(sealed, "server"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("opened under another name: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{7}, KeySize))
	if _, err := other.Open(sealed, "ca"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("opened with another key: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := s.Open(bad, "ca"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("opened altered data: %v", err)
	}
	if _, err := s.Open(sealed[:10], "ca"); err == nil {
		t.Error("opened a truncated value")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	for _, s := range []string{hex.EncodeToString(raw), "  q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"} {
		if got, err := ParseKey(s); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(raw[:16]), strings.Repeat("z", 64), "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur"} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	if _, err := NewSealer(raw[:16]); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

// TestEncodeParse: a CA and a server certificate survive their PEM
// encoding, as they are kept in the database.
func TestEncodeParse(t *testing.T) {
	a, err := New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := a.EncodeCA()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(certPEM, keyPEM)
	if err != nil || b.Fingerprint() != a.Fingerprint() {
		t.Fatalf("parse: %v", err)
	}
	if c, err := CertificatePEM(certPEM); err != nil || Fingerprint(c.Raw) != a.Fingerprint() {
		t.Fatalf("CertificatePEM: %v", err)
	}
	names := ServerNames([]string{"collector.example", "192.0.2.9"})
	srv, err := b.IssueServer(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := EncodePair(srv)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(chain, key)
	if err != nil || !a.ServerUsable(pair, names, time.Now()) {
		t.Fatalf("server pair: %v", err)
	}
	if a.ServerUsable(pair, append(names, "other.example"), time.Now()) || a.ServerUsable(pair, names, time.Now().AddDate(1, 11, 15)) {
		t.Error("usable for a name it lacks, or weeks before it expires")
	}
	other, _ := New(time.Now())
	if other.ServerUsable(pair, names, time.Now()) {
		t.Error("usable under another CA")
	}
	if _, err := Parse(chain, key); err == nil {
		t.Error("a server certificate parsed as a CA")
	}
}

// FuzzOpen: sealed values read from the database are outside bytes.
func FuzzOpen(f *testing.F) {
	s, _ := NewSealer(bytes.Repeat([]byte{1}, KeySize))
	f.Add(s.Seal([]byte("key"), "ca"), "ca")
	f.Add([]byte{1, 2, 3}, "server")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, sealed []byte, aad string) {
		if plain, err := s.Open(sealed, aad); err == nil {
			if again, err := s.Open(s.Seal(plain, aad), aad); err != nil || !bytes.Equal(again, plain) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzParseKey: a key comes from a file or the environment.
func FuzzParseKey(f *testing.F) {
	f.Add(GenerateKey())
	f.Add(strings.Repeat("ab", KeySize))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParseKey(s); err == nil && len(k) != KeySize {
			t.Fatalf("ParseKey(%q): %d bytes", s, len(k))
		}
	})
}
