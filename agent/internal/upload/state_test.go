package upload

import (
	"crypto/x509"
	"os"
	"runtime"
	"testing"
)

// TestEnrollKeyKept: until an enrollment finishes, every attempt, even of
// a restarted agent (a new State on the same directory), asks for a
// certificate for the same key, kept readable by the owner only.
func TestEnrollKeyKept(t *testing.T) {
	dir := t.TempDir() + "/state"
	k1, csr1, err := (&State{Dir: dir}).enrollKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, csr2, err := (&State{Dir: dir}).enrollKey()
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("a second attempt made a new key")
	}
	for _, der := range [][]byte{csr1, csr2} {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil || csr.CheckSignature() != nil || !k1.PublicKey.Equal(csr.PublicKey) {
			t.Fatalf("CSR not for the kept key: %v", err)
		}
	}
	fi, err := os.Stat(dir + "/" + enrollKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("enroll.key mode %v", fi.Mode().Perm())
	}
	// A damaged file is replaced by a new key.
	if err := os.WriteFile(dir+"/"+enrollKeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	k3, _, err := (&State{Dir: dir}).enrollKey()
	if err != nil || k3.Equal(k1) {
		t.Fatalf("damaged key file: %v", err)
	}
	if k4, _, err := (&State{Dir: dir}).enrollKey(); err != nil || !k4.Equal(k3) {
		t.Fatalf("the replacement key was not kept: %v", err)
	}
}
