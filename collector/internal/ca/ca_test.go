package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadOrCreateKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	a, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	b, created, err := LoadOrCreate(dir)
	if err != nil || created || a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("second: created=%v err=%v fingerprints %s %s", created, err, a.Fingerprint(), b.Fingerprint())
	}
	if st, _ := os.Stat(filepath.Join(dir, "ca.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode %v", st.Mode().Perm())
	}
	if len(a.Fingerprint()) != 64 {
		t.Fatalf("fingerprint %q", a.Fingerprint())
	}
}

func TestServerCertificate(t *testing.T) {
	dir := t.TempDir()
	a, _, _ := LoadOrCreate(dir)
	c, err := a.ServerCertificate(dir, []string{"collector.example", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || Fingerprint(c.Certificate[1]) != a.Fingerprint() {
		t.Fatal("the chain does not carry the CA for pinning")
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	for _, name := range []string{"collector.example", "localhost", "192.0.2.7", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.Pool(), DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	again, _ := a.ServerCertificate(dir, []string{"collector.example"})
	if string(again.Certificate[0]) != string(c.Certificate[0]) {
		t.Error("a covering certificate was reissued")
	}
	other, _ := a.ServerCertificate(dir, []string{"new.example"})
	if string(other.Certificate[0]) == string(c.Certificate[0]) {
		t.Error("a certificate missing a name was not reissued")
	}
}

func TestSignAgent(t *testing.T) {
	a, _, _ := LoadOrCreate(t.TempDir())
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	now := time.Now()
	cert, err := a.SignAgent(csr, "3f0c1a4e-1111-4222-8333-944445555666", now)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := AgentID(cert); !ok || id != "3f0c1a4e-1111-4222-8333-944445555666" {
		t.Fatalf("agent id %q %v", id, ok)
	}
	if d := cert.NotAfter.Sub(now); d < ClientValidity-time.Minute || d > ClientValidity+time.Minute {
		t.Fatalf("validity %v", d)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}

	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rcsr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, rk)
	if _, err := a.SignAgent(rcsr, "x", now); err == nil {
		t.Error("RSA key accepted")
	}
	broken := append([]byte(nil), csr...)
	broken[len(broken)-5] ^= 0xff
	if _, err := a.SignAgent(broken, "x", now); err == nil {
		t.Error("CSR with a broken signature accepted")
	}
	if _, err := a.SignAgent([]byte("junk"), "x", now); err == nil {
		t.Error("junk accepted")
	}
}
