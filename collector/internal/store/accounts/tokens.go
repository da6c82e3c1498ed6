package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
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

// CreateFirstRunToken makes the first-run admin token, which
// first-run-credentials.txt holds until an enabled admin user exists
// (see retireFirstRunToken); it returns the plaintext.
func (s *Store) CreateFirstRunToken(ctx context.Context) (string, error) {
	plain, t, err := s.CreateTokenExpiring(ctx, "first-run admin", RoleAdmin, time.Time{}, "system")
	if err != nil {
		return "", err
	}
	if _, err := s.db.Exec(ctx, `UPDATE api_tokens SET first_run = 1 WHERE id = ?`, t.ID); err != nil {
		return "", fmt.Errorf("create first-run token: %w", err)
	}
	// An admin user created meanwhile (by another replica's CLI) retires it.
	if _, err := s.RetireFirstRunToken(ctx, "system"); err != nil {
		return "", err
	}
	return plain, nil
}

// RetireFirstRunToken revokes the first-run admin token when an enabled
// admin user exists, auditing it as actor's; it reports whether it did.
// Creating, enabling or promoting an admin user does it in the same
// transaction; serve calls this at start for users created before.
func (s *Store) RetireFirstRunToken(ctx context.Context, actor string) (bool, error) {
	var retired bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		retired, err = s.retireFirstRunToken(ctx, tx, actor)
		return err
	})
	return retired, err
}

// retireFirstRunToken is RetireFirstRunToken in tx.
func (s *Store) retireFirstRunToken(ctx context.Context, tx *sql.Tx, actor string) (bool, error) {
	var admins int
	if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM users WHERE role = ? AND disabled_at = 0`), RoleAdmin).Scan(&admins); err != nil {
		return false, fmt.Errorf("retire first-run token: %w", err)
	}
	if admins == 0 {
		return false, nil
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT id FROM api_tokens WHERE first_run = 1 AND revoked_at = 0`))
	if err != nil {
		return false, fmt.Errorf("retire first-run token: %w", err)
	}
	ids, err := store.ScanColumn[string](rows)
	if err != nil {
		return false, fmt.Errorf("retire first-run token: %w", err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), store.Micros(time.Now()), id); err != nil {
			return false, fmt.Errorf("retire first-run token: %w", err)
		}
		if err := s.db.AuditTx(ctx, tx, actor, "revoke", "token", id, map[string]any{"name": "first-run admin", "reason": "an admin user exists"}); err != nil {
			return false, err
		}
	}
	return len(ids) > 0, nil
}

// TokenByPlaintext finds the active token with this plaintext: not
// revoked, not expired.
func (s *Store) TokenByPlaintext(ctx context.Context, plain string) (Token, error) {
	var t Token
	var c, used int64
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT id, name, role, created_at, last_used_at FROM api_tokens
		WHERE hash = ? AND revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)`),
		store.HashSecret(plain), store.Micros(time.Now())).Scan(&t.ID, &t.Name, &t.Role, &c, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, store.ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	t.CreatedAt = store.FromMicros(c)
	s.touchToken(ctx, t.ID, used)
	return t, nil
}

// HasTokens reports whether any API token was ever created.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens`).Scan(&n)
	return n > 0, err
}
