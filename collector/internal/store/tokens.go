package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Roles, from least to most privileged.
const (
	RoleViewer  = "viewer"
	RoleAnalyst = "analyst"
	RoleAdmin   = "admin"
)

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return r == RoleViewer || r == RoleAnalyst || r == RoleAdmin }

// Token is an API bearer token. Only its SHA-256 is stored.
type Token struct {
	ID        string
	Name      string
	Role      string
	CreatedAt time.Time
}

// CreateToken makes an API token and returns its plaintext.
func (s *Store) CreateToken(ctx context.Context, name, role string) (string, Token, error) {
	if !ValidRole(role) {
		return "", Token{}, fmt.Errorf("unknown role %q (want admin, analyst or viewer)", role)
	}
	plain := randomToken("bft_", 24)
	t := Token{ID: randomToken("", 4), Name: name, Role: role, CreatedAt: time.Now().UTC()}
	if _, err := s.exec(ctx, `INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, name, role, hashSecret(plain), micros(t.CreatedAt)); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return plain, t, nil
}

// TokenByPlaintext finds the active token with this plaintext.
func (s *Store) TokenByPlaintext(ctx context.Context, plain string) (Token, error) {
	var t Token
	var c int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, name, role, created_at FROM api_tokens WHERE hash = ? AND revoked_at = 0`),
		hashSecret(plain)).Scan(&t.ID, &t.Name, &t.Role, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	t.CreatedAt = fromMicros(c)
	return t, err
}

// HasTokens reports whether any API token was ever created.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens`).Scan(&n)
	return n > 0, err
}
