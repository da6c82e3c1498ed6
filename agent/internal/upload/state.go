// Package upload talks to the collector: enrollment with a pinned CA, and
// check-in and report delivery over mutually-authenticated gRPC.
package upload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrNotEnrolled is returned when the state directory holds no certificate.
var ErrNotEnrolled = errors.New("agent is not enrolled")

// State is the agent's enrollment state in its state directory:
// agent.key (0600), agent.crt, ca.crt and enrollment.json; enroll.key
// (0600) while an enrollment is not finished.
type State struct {
	Dir string

	mu   sync.Mutex
	cert *tls.Certificate
}

// Enrollment is what enrollment.json records.
type Enrollment struct {
	AgentID    string    `json:"agent_id"`
	DeviceID   string    `json:"device_id"`
	Collector  string    `json:"collector"`
	EnrolledAt time.Time `json:"enrolled_at"`
}

func (s *State) path(name string) string { return filepath.Join(s.Dir, name) }

// Enrollment reads enrollment.json.
func (s *State) Enrollment() (Enrollment, error) {
	var e Enrollment
	b, err := os.ReadFile(s.path("enrollment.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return e, ErrNotEnrolled
	}
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("enrollment.json: %w", err)
	}
	return e, nil
}

// CAPool reads the pinned CA certificates.
func (s *State) CAPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(s.path("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("pinned CA: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, errors.New("pinned CA: no certificate in ca.crt")
	}
	return p, nil
}

// Certificate returns the current client certificate (cached).
func (s *State) Certificate() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil {
		return s.cert, nil
	}
	c, err := tls.LoadX509KeyPair(s.path("agent.crt"), s.path("agent.key"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	s.cert = &c
	return s.cert, nil
}

// NotAfter is the client certificate's expiry.
func (s *State) NotAfter() (time.Time, error) {
	c, err := s.Certificate()
	if err != nil {
		return time.Time{}, err
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return time.Time{}, err
	}
	return leaf.NotAfter, nil
}

// newKey makes a P-256 key and a CSR for it.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := newCSR(key)
	return key, csr, err
}

func newCSR(key *ecdsa.PrivateKey) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bonafide-agent"}}, key)
}

// enrollKeyFile holds the key of an enrollment not finished yet.
const enrollKeyFile = "enroll.key"

// enrollKey returns the key enrollment asks a certificate for, and a CSR
// for it: the key an earlier attempt left in enroll.key, else a new one,
// written there before it is used. So every attempt, even after a restart,
// presents the same key, and the collector, which enrolls a key once,
// answers a retry whose first answer was lost with the agent it already
// created instead of making a second one. Enroll removes the file once the
// certificate is stored.
func (s *State) enrollKey() (*ecdsa.PrivateKey, []byte, error) {
	b, err := os.ReadFile(s.path(enrollKeyFile))
	if err == nil {
		if blk, _ := pem.Decode(b); blk != nil {
			if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
				if key, ok := k.(*ecdsa.PrivateKey); ok {
					csr, err := newCSR(key)
					return key, csr, err
				}
			}
		}
		// Unreadable (a torn write cannot happen, see writeAtomic): start
		// with a new key.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("enrollment key: %w", err)
	}
	key, csr, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := mkdirPrivate(s.Dir); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(s.path(enrollKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}

// saveCertificate stores a key and its certificate, replacing the old pair
// atomically (rename) so that a crash leaves one consistent pair.
func (s *State) saveCertificate(key *ecdsa.PrivateKey, certDER []byte) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path("agent.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	if err := writeAtomic(s.path("agent.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), 0o644); err != nil {
		return err
	}
	s.mu.Lock()
	s.cert = nil
	s.mu.Unlock()
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
