package upload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chain makes a CA and a server certificate it issued.
func chain(t *testing.T) (ca, leaf *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ca, _ = x509.ParseCertificate(der)
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ = x509.CreateCertificate(rand.Reader, lt, ca, lk.Public(), key)
	leaf, _ = x509.ParseCertificate(der)
	return ca, leaf
}

func fp(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func TestPinVerifier(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ca, leaf := chain(t)
	otherCA, otherLeaf := chain(t)

	v, _ := pinVerifier(Pin{Fingerprint: strings.ToUpper(fp(ca))}, log)
	if got, err := v([]*x509.Certificate{leaf, ca}); err != nil || got != ca {
		t.Fatalf("matching pin: %v", err)
	}
	if _, err := v([]*x509.Certificate{otherLeaf, otherCA}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("other collector accepted: %v", err)
	}
	// A server that presents the pinned CA but a leaf it did not issue.
	if _, err := v([]*x509.Certificate{otherLeaf, ca}); err == nil {
		t.Fatal("leaf from another CA accepted with the pinned CA appended")
	}

	file := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)
	v, _ = pinVerifier(Pin{CAFile: file}, log)
	if _, err := v([]*x509.Certificate{leaf}); err != nil {
		t.Fatalf("CA file: %v", err)
	}
	if _, err := v([]*x509.Certificate{otherLeaf, otherCA}); err == nil {
		t.Fatal("CA file: other collector accepted")
	}

	v, _ = pinVerifier(Pin{}, log) // trust on first use
	if got, err := v([]*x509.Certificate{leaf, ca}); err != nil || got != ca {
		t.Fatalf("first use: %v", err)
	}
	if _, err := pinVerifier(Pin{CAFile: filepath.Join(t.TempDir(), "missing.pem")}, log); err == nil {
		t.Fatal("missing CA file accepted")
	}
}
