package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// The lifecycle of credentials: API tokens are listed, expire and are
// revoked; users are disabled and enabled and have their role and password
// changed. Every change is audited with its actor.

// TokenInfo is an API token as listed (never its plaintext or hash).
type TokenInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// CreateTokenExpiring makes an API token that stops working at expires
// (zero: never) and audits it; it returns the plaintext.
func (s *Store) CreateTokenExpiring(ctx context.Context, name, role string, expires time.Time, actor string) (string, Token, error) {
	if !ValidRole(role) {
		return "", Token{}, fmt.Errorf("%w: unknown role %q (want admin, analyst or viewer)", store.ErrInvalid, role)
	}
	if !expires.IsZero() && !expires.After(time.Now()) {
		return "", Token{}, fmt.Errorf("%w: the token would expire at once", store.ErrInvalid)
	}
	plain := store.RandomToken("bft_", 24)
	t := Token{ID: store.RandomToken("", 4), Name: name, Role: role, CreatedAt: time.Now().UTC()}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
			t.ID, name, role, store.HashSecret(plain), store.Micros(t.CreatedAt), store.Micros(expires)); err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return s.db.AuditTx(ctx, tx, actor, "create", "token", t.ID, map[string]any{"name": name, "role": role, "expires_at": expires})
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, t, nil
}

// ListTokens lists every API token, newest first.
func (s *Store) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM api_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return store.ScanRows(rows, func(sc store.Scanner) (TokenInfo, error) {
		var t TokenInfo
		var c, e, r, u int64
		err := sc.Scan(&t.ID, &t.Name, &t.Role, &c, &e, &r, &u)
		t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = store.FromMicros(c), store.FromMicros(e), store.FromMicros(r), store.FromMicros(u)
		return t, err
	})
}

// RevokeToken stops an API token at once.
func (s *Store) RevokeToken(ctx context.Context, id, actor string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), store.Micros(time.Now()), id)
		if err := store.AffectedOne(res, err, "active token "+id); err != nil {
			return err
		}
		return s.db.AuditTx(ctx, tx, actor, "revoke", "token", id, nil)
	})
}

// tokenUseInterval is how often a token's last use is written (not at
// every request).
const tokenUseInterval = time.Hour

// touchToken records a token's use when the last one recorded is older
// than tokenUseInterval.
func (s *Store) touchToken(ctx context.Context, id string, lastUsed int64) {
	now := time.Now()
	if lastUsed > store.Micros(now.Add(-tokenUseInterval)) {
		return
	}
	s.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, store.Micros(now), id)
}

// UserChange is a change to a local user; nil fields are left as they are.
type UserChange struct {
	Role     *string
	Disabled *bool
	Password *string
}

// UpdateUser changes a user's role, password or disabled state and audits
// it (never the password). Disabling a user or changing their password or
// role ends their sessions. The last enabled admin cannot be disabled or
// lose the admin role.
func (s *Store) UpdateUser(ctx context.Context, username string, c UserChange, actor string) (User, error) {
	username = normalizeUsername(username)
	var hash []byte
	if c.Password != nil {
		if err := checkPassword(*c.Password); err != nil {
			return User{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(*c.Password), bcryptCost); err != nil {
			return User{}, err
		}
	}
	if c.Role != nil && !ValidRole(*c.Role) {
		return User{}, fmt.Errorf("%w: unknown role %q (want admin, analyst or viewer)", store.ErrInvalid, *c.Role)
	}
	var u User
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var created, disabled int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id, username, role, created_at, disabled_at FROM users WHERE username = ?`), username).
			Scan(&u.ID, &u.Username, &u.Role, &created, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %q: %w", username, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		u.CreatedAt, u.Disabled = store.FromMicros(created), disabled != 0
		detail := map[string]any{}
		losesAdmin := u.Role == RoleAdmin && disabled == 0 &&
			(c.Role != nil && *c.Role != RoleAdmin || c.Disabled != nil && *c.Disabled)
		if losesAdmin {
			var admins int
			if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM users WHERE role = ? AND disabled_at = 0`), RoleAdmin).Scan(&admins); err != nil {
				return err
			}
			if admins <= 1 {
				return fmt.Errorf("%w: %s is the last enabled admin", store.ErrInvalid, username)
			}
		}
		if c.Role != nil && *c.Role != u.Role {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE users SET role = ? WHERE id = ?`), *c.Role, u.ID); err != nil {
				return err
			}
			detail["role"] = map[string]string{"from": u.Role, "to": *c.Role}
			u.Role = *c.Role
		}
		if c.Disabled != nil && *c.Disabled != (disabled != 0) {
			at := int64(0)
			if *c.Disabled {
				at = store.Micros(time.Now())
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE users SET disabled_at = ? WHERE id = ?`), at, u.ID); err != nil {
				return err
			}
			detail["disabled"] = *c.Disabled
			u.Disabled = *c.Disabled
		}
		if hash != nil {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE users SET password_hash = ? WHERE id = ?`), string(hash), u.ID); err != nil {
				return err
			}
			detail["password"] = "changed"
		}
		if len(detail) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM ui_sessions WHERE user_id = ?`), u.ID); err != nil {
			return err
		}
		if err := s.db.AuditTx(ctx, tx, actor, "update", "user", u.Username, detail); err != nil {
			return err
		}
		_, err = s.retireFirstRunToken(ctx, tx, actor)
		return err
	})
	return u, err
}
