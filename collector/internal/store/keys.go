package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KeyMaterial is a certificate and its sealed private key kept in the
// database, so that every replica of a deployment uses the same CA (see
// migration 00018). The store keeps the sealed bytes; it never sees a key.
type KeyMaterial struct {
	Name      string
	CertPEM   []byte
	SealedKey []byte
	UpdatedAt time.Time
}

// maxKeyMaterial caps what is read back: a certificate chain and a sealed
// key are a few kilobytes.
const maxKeyMaterial = 64 << 10

// KeyMaterial reads the key material named name (ErrNotFound when none).
func (s *Store) KeyMaterial(ctx context.Context, name string) (KeyMaterial, error) {
	k := KeyMaterial{Name: name}
	var cert string
	var at int64
	err := s.w.QueryRowContext(ctx, s.q(`SELECT cert_pem, sealed_key, updated_at FROM key_material WHERE name = ?`), name).
		Scan(&cert, &k.SealedKey, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return KeyMaterial{}, ErrNotFound
	}
	if err != nil {
		return KeyMaterial{}, fmt.Errorf("load key material %s: %w", name, err)
	}
	if len(cert) > maxKeyMaterial || len(k.SealedKey) > maxKeyMaterial {
		return KeyMaterial{}, fmt.Errorf("key material %s: larger than %d bytes", name, maxKeyMaterial)
	}
	k.CertPEM, k.UpdatedAt = []byte(cert), fromMicros(at)
	return k, nil
}

// AddKeyMaterial stores k unless key material of that name exists, and
// returns what is stored: k, or what another replica stored first.
func (s *Store) AddKeyMaterial(ctx context.Context, k KeyMaterial) (KeyMaterial, error) {
	if len(k.CertPEM) > maxKeyMaterial || len(k.SealedKey) > maxKeyMaterial {
		return KeyMaterial{}, fmt.Errorf("key material %s: larger than %d bytes", k.Name, maxKeyMaterial)
	}
	if _, err := s.exec(ctx, `INSERT INTO key_material (name, cert_pem, sealed_key, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, k.Name, string(k.CertPEM), k.SealedKey, micros(time.Now())); err != nil {
		return KeyMaterial{}, fmt.Errorf("store key material %s: %w", k.Name, err)
	}
	return s.KeyMaterial(ctx, k.Name)
}

// ReplaceKeyMaterial replaces the key material named k.Name when its
// certificate is still prevCertPEM, and reports whether it did (false:
// another replica replaced it first).
func (s *Store) ReplaceKeyMaterial(ctx context.Context, k KeyMaterial, prevCertPEM []byte) (bool, error) {
	if len(k.CertPEM) > maxKeyMaterial || len(k.SealedKey) > maxKeyMaterial {
		return false, fmt.Errorf("key material %s: larger than %d bytes", k.Name, maxKeyMaterial)
	}
	res, err := s.exec(ctx, `UPDATE key_material SET cert_pem = ?, sealed_key = ?, updated_at = ? WHERE name = ? AND cert_pem = ?`,
		string(k.CertPEM), k.SealedKey, micros(time.Now()), k.Name, string(prevCertPEM))
	if err != nil {
		return false, fmt.Errorf("replace key material %s: %w", k.Name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
