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

// CreateToken makes an API token that does not expire and returns its
// plaintext (see CreateTokenExpiring).
func (s *Store) CreateToken(ctx context.Context, name, role string) (string, Token, error) {
	return s.CreateTokenExpiring(ctx, name, role, time.Time{}, "system")
}

// TokenByPlaintext finds the active token with this plaintext: not
// revoked, not expired.
func (s *Store) TokenByPlaintext(ctx context.Context, plain string) (Token, error) {
	var t Token
	var c, used int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, name, role, created_at, last_used_at FROM api_tokens
		WHERE hash = ? AND revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)`),
		hashSecret(plain), micros(time.Now())).Scan(&t.ID, &t.Name, &t.Role, &c, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	t.CreatedAt = fromMicros(c)
	s.touchToken(ctx, t.ID, used)
	return t, nil
}

// HasTokens reports whether any API token was ever created.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens`).Scan(&n)
	return n > 0, err
}
