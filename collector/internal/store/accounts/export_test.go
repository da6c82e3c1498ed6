package accounts

import (
	"context"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// This file exports test helpers to the external test package
// accounts_test.

// SessionTokenHashes lists the token_hash column of every ui_sessions row.
func (s *Store) SessionTokenHashes(ctx context.Context) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT token_hash FROM ui_sessions ORDER BY token_hash`)
	if err != nil {
		return nil, err
	}
	return store.ScanColumn[string](rows)
}

// PasswordHash returns the stored password hash of a user.
func (s *Store) PasswordHash(ctx context.Context, username string) (string, error) {
	var h string
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT password_hash FROM users WHERE username = ?`), username).Scan(&h)
	return h, err
}

// DisableUser marks a user disabled without UpdateUser's checks (the last
// admin may be disabled) or audit entry.
func (s *Store) DisableUser(ctx context.Context, username string) error {
	_, err := s.db.Exec(ctx, `UPDATE users SET disabled_at = ? WHERE username = ?`, store.Micros(time.Now()), username)
	return err
}
