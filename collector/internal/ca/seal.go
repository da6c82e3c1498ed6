package ca

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of the database key: AES-256.
const KeySize = 32

// sealVersion prefixes sealed data: AES-256-GCM with a random 12-byte
// nonce, the nonce following the version byte.
const sealVersion = 1

// ErrWrongKey is returned when sealed data does not open with the key: the
// wrong database key, or data that was altered.
var ErrWrongKey = errors.New("the database key does not open the sealed key material (a different --db-key-file or BONAFIDE_DB_KEY than the deployment's?)")

// Sealer encrypts key material at rest with the database key that every
// replica of a deployment is given (AES-256-GCM, from the standard
// library). The associated data binds a sealed value to its place (its
// row's name), so a value copied to another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer makes a Sealer of a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("database key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// ParseKey reads a database key as written by GenerateKey: 32 bytes in
// base64 (standard or URL alphabet, padded or not) or in hex. Surrounding
// white space (a file's final newline) is ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("database key: want %d random bytes in base64 or hex (`openssl rand -base64 32`)", KeySize)
}

// GenerateKey makes a new random database key, base64-encoded.
func GenerateKey() string {
	b := make([]byte, KeySize)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts plain for the place named by aad.
func (s *Sealer) Seal(plain []byte, aad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(aad))
}

// Open decrypts what Seal made for the place named by aad.
func (s *Sealer) Open(sealed []byte, aad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("sealed key material: unknown format")
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(aad))
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}
