// Package ca is the collector's certificate authority: it creates the CA and
// the gRPC server certificate in the data directory on first start and signs
// the per-device client certificates agents get at enrollment.
//
// Client certificates carry the agent id in a URI SAN
// (urn:bonafide:agent:<id>) and are valid for ClientValidity; agents renew
// them at CheckIn once less than a third of that is left.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ClientValidity is how long an agent certificate is valid.
const ClientValidity = 30 * 24 * time.Hour

// AgentURIPrefix prefixes the agent id in a client certificate's URI SAN.
const AgentURIPrefix = "urn:bonafide:agent:"

// Authority holds the CA certificate and key.
type Authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// LoadOrCreate loads ca.crt and ca.key from dir, creating them on first use.
// created reports whether a new CA was made.
func LoadOrCreate(dir string) (a *Authority, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := os.Stat(certPath); err == nil {
		a, err := Load(certPath, keyPath)
		return a, false, err
	}
	if a, err = New(time.Now()); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	if err := writeKeyPair(certPath, keyPath, [][]byte{a.cert.Raw}, a.key); err != nil {
		return nil, false, err
	}
	return a, true, nil
}

// New makes a new CA (ECDSA P-256, valid for 20 years).
func New(now time.Time) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "bonafide collector CA", Organization: []string{"bonafide"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{cert: cert, key: key}, nil
}

// Parse makes an Authority of PEM data: the CA certificate and its
// private key (PKCS#8, SEC 1 or PKCS#1).
func Parse(certPEM, keyPEM []byte) (*Authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	return fromPair(pair)
}

// CertificatePEM parses a CA certificate alone (PEM), for commands that
// only show or pin it.
func CertificatePEM(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// Load reads an existing CA certificate and key (PEM).
func Load(certPath, keyPath string) (*Authority, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	a, err := fromPair(pair)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return a, nil
}

func fromPair(pair tls.Certificate) (*Authority, error) {
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("not a CA certificate")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	return &Authority{cert: cert, key: signer}, nil
}

// Certificate is the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// Fingerprint is the hex SHA-256 of the CA certificate (DER); agents pin it.
func (a *Authority) Fingerprint() string { return Fingerprint(a.cert.Raw) }

// Fingerprint is the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// PEM is the CA certificate in PEM form.
func (a *Authority) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// Pool is a pool holding only this CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

// ServerCertificate loads server.crt/server.key from dir, issuing a new one
// from the CA when missing, expiring within 30 days or not covering names.
// names are DNS names or IP addresses; localhost and the loopback addresses
// are always included.
func (a *Authority) ServerCertificate(dir string, names []string) (tls.Certificate, error) {
	names = ServerNames(names)
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && a.ServerUsable(pair, names, time.Now()) {
		return pair, nil
	}
	pair, err := a.IssueServer(names, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeKeyPair(certPath, keyPath, pair.Certificate, pair.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
		return tls.Certificate{}, err
	}
	return pair, nil
}

// ServerNames are the names a server certificate covers: localhost, the
// loopback addresses and this host's name, then extra.
func ServerNames(extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	for _, n := range extra {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// ServerUsable reports whether pair is a server certificate of this CA
// that covers names and is valid for more than 30 days after now.
func (a *Authority) ServerUsable(pair tls.Certificate, names []string, now time.Time) bool {
	if len(pair.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	return err == nil && leaf.NotAfter.Sub(now) > 30*24*time.Hour && covers(leaf, names) && leaf.CheckSignatureFrom(a.cert) == nil
}

// CoveredNames are the DNS names and IP addresses pair's leaf covers.
func CoveredNames(pair tls.Certificate) []string {
	if len(pair.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil
	}
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// IssueServer issues a server certificate (valid two years) for names with
// a new key. Its chain includes the CA so that agents can pin it by
// fingerprint.
func (a *Authority) IssueServer(names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "bonafide collector", Organization: []string{"bonafide"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// EncodePair is pair's certificate chain and private key (PKCS#8) in PEM.
func EncodePair(pair tls.Certificate) (chainPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	for _, der := range pair.Certificate {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return chainPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// EncodeCA is the CA's certificate and private key (PKCS#8) in PEM.
func (a *Authority) EncodeCA() (certPEM, keyPEM []byte, err error) {
	return EncodePair(tls.Certificate{Certificate: [][]byte{a.cert.Raw}, PrivateKey: a.key})
}

func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if n != "" && !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// SignAgent issues a client certificate for agentID over the public key in
// a DER PKCS#10 CSR. The CSR's names are ignored.
func (a *Authority) SignAgent(csrDER []byte, agentID string, now time.Time) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, errors.New("CSR key: want ECDSA P-256 or P-384")
		}
	default:
		return nil, fmt.Errorf("CSR key type %T not accepted (want ECDSA)", k)
	}
	u, err := url.Parse(AgentURIPrefix + agentID)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: agentID, Organization: []string{"bonafide agent"}},
		URIs:         []*url.URL{u},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(ClientValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, csr.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// AgentID extracts the agent id from a client certificate's URI SAN.
func AgentID(cert *x509.Certificate) (string, bool) {
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, AgentURIPrefix) {
			return strings.TrimPrefix(s, AgentURIPrefix), true
		}
	}
	return "", false
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func writeKeyPair(certPath, keyPath string, chain [][]byte, key crypto.Signer) error {
	certPEM, keyPEM, err := EncodePair(tls.Certificate{Certificate: chain, PrivateKey: key})
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	return nil
}
