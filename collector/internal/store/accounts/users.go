package accounts

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// ErrUnauthenticated is returned by Authenticate for any failed sign-in:
// unknown user, disabled user or wrong password alike.
var ErrUnauthenticated = errors.New("invalid username or password")

// User is a local user of the web UI.
type User struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Disabled  bool      `json:"disabled"`
}

// Session is a signed-in browser session of the web UI.
type Session struct {
	// User is the signed-in user.
	User User
	// CSRF is the token state-changing requests must echo (in a form
	// field or header) alongside the session cookie.
	CSRF string
	// ExpiresAt is when the session stops being valid.
	ExpiresAt time.Time
}

const (
	// bcryptCost is the work factor of stored password hashes.
	bcryptCost = 12
	// minPasswordChars is the shortest password CreateUser accepts, in
	// characters.
	minPasswordChars = 12
	// maxPasswordBytes is the longest password CreateUser accepts, in
	// bytes: bcrypt ignores what follows.
	maxPasswordBytes = 72
	// maxUsername is the longest username, in bytes.
	maxUsername = 64
)

// dummyHash is a bcrypt hash (cost 12) of a password nobody uses. Sign-ins
// of unknown users are compared against it, so that they take as long as
// those of known users and timing does not reveal which usernames exist.
var dummyHash = []byte("$2a$12$7oLmVG/1idcNOhkdwOInie.AxbIrZSUx6an3KolUzChCKkUDToIb.")

// normalizeUsername lower-cases and trims a username.
func normalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// validUsername reports whether u (normalized) is 1–64 of [a-z0-9._@-].
func validUsername(u string) bool {
	if len(u) == 0 || len(u) > maxUsername {
		return false
	}
	for _, c := range u {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("._@-", c)) {
			return false
		}
	}
	return true
}

// checkPassword enforces the password length limits.
func checkPassword(p string) error {
	if utf8.RuneCountInString(p) < minPasswordChars {
		return fmt.Errorf("password too short: at least %d characters", minPasswordChars)
	}
	if len(p) > maxPasswordBytes {
		return fmt.Errorf("password too long: at most %d bytes", maxPasswordBytes)
	}
	return nil
}

// CreateUser adds a local user and records it in the audit log (actor
// "cli" when actor is empty). The username is lower-cased and must be 1–64
// of [a-z0-9._@-]; role is admin, analyst or viewer; the password must be
// at least 12 characters and at most 72 bytes (bcrypt's limit) and is
// stored as a bcrypt hash (cost 12). Invalid input and an existing
// username give an error wrapping store.ErrInvalid.
func (s *Store) CreateUser(ctx context.Context, username, role, password, actor string) (User, error) {
	username = normalizeUsername(username)
	switch {
	case !validUsername(username):
		return User{}, fmt.Errorf("%w: username %q: 1 to %d of a-z, 0-9, '.', '_', '@', '-'", store.ErrInvalid, username, maxUsername)
	case !ValidRole(role):
		return User{}, fmt.Errorf("%w: unknown role %q (want admin, analyst or viewer)", store.ErrInvalid, role)
	}
	if err := checkPassword(password); err != nil {
		return User{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if actor == "" {
		actor = "cli"
	}
	// Hash before the transaction: bcrypt is deliberately slow.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	exists := fmt.Errorf("%w: user %q already exists", store.ErrInvalid, username)
	u := User{Username: username, Role: role, CreatedAt: store.FromMicros(store.Micros(time.Now()))}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM users WHERE username = ?`), username).Scan(&n); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if n > 0 {
			return exists
		}
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
			username, role, string(hash), store.Micros(u.CreatedAt)).Scan(&u.ID); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if err := s.db.AuditTx(ctx, tx, actor, "create", "user", fmt.Sprint(u.ID), map[string]any{"username": username, "role": role}); err != nil {
			return err
		}
		_, err := s.retireFirstRunToken(ctx, tx, actor)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrInvalid) {
		// A concurrent CreateUser of the same name (PostgreSQL) loses on
		// the unique constraint: report it as the duplicate it is.
		var n int
		if s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM users WHERE username = ?`), username).Scan(&n) == nil && n > 0 {
			return User{}, exists
		}
	}
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// Authenticate returns the user named username when password is theirs.
// Any sign-in failure (unknown or malformed username, disabled user, wrong
// password) returns ErrUnauthenticated after a bcrypt comparison of the
// same cost, so that timing does not reveal which usernames exist. Other
// errors are database failures.
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	username = normalizeUsername(username)
	var u User
	var hash string
	var created, disabled int64
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT id, username, role, password_hash, created_at, disabled_at FROM users WHERE username = ?`),
		username).Scan(&u.ID, &u.Username, &u.Role, &hash, &created, &disabled)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	h := dummyHash
	if known {
		h = []byte(hash)
	}
	// bcrypt ignores bytes past the 72nd: refuse longer passwords rather
	// than accept any with the right prefix (CreateUser refuses them too).
	match := bcrypt.CompareHashAndPassword(h, []byte(password)) == nil && len(password) <= maxPasswordBytes
	if !known || disabled != 0 || !match {
		return User{}, ErrUnauthenticated
	}
	u.CreatedAt = store.FromMicros(created)
	return u, nil
}

// randomB64 returns n random bytes, base64url-encoded without padding.
func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateSession signs user userID in for ttl. It returns the session token
// (32 random bytes, base64url, for the cookie; only its SHA-256 is stored)
// and the session, with a random 32-byte base64url CSRF token. It also
// deletes expired sessions. An unknown or disabled user gives store.ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, Session, error) {
	now := time.Now()
	token := randomB64(32)
	sess := Session{CSRF: randomB64(32), ExpiresAt: store.FromMicros(store.Micros(now.Add(ttl)))}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM ui_sessions WHERE expires_at <= ?`), store.Micros(now)); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		var created, disabled int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id, username, role, created_at, disabled_at FROM users WHERE id = ?`), userID).
			Scan(&sess.User.ID, &sess.User.Username, &sess.User.Role, &created, &disabled)
		if errors.Is(err, sql.ErrNoRows) || err == nil && disabled != 0 {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		sess.User.CreatedAt = store.FromMicros(created)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO ui_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			store.HashSecret(token), userID, sess.CSRF, store.Micros(now), store.Micros(sess.ExpiresAt)); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", Session{}, err
	}
	return token, sess, nil
}

// SessionByToken loads the live session whose cookie token is token: not
// expired, of a user not disabled. Otherwise it returns store.ErrNotFound.
func (s *Store) SessionByToken(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, store.ErrNotFound
	}
	var sess Session
	var created, expires int64
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT u.id, u.username, u.role, u.created_at, s.csrf, s.expires_at
		FROM ui_sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at = 0`), store.HashSecret(token), store.Micros(time.Now())).
		Scan(&sess.User.ID, &sess.User.Username, &sess.User.Role, &created, &sess.CSRF, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, store.ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	sess.User.CreatedAt, sess.ExpiresAt = store.FromMicros(created), store.FromMicros(expires)
	return sess, nil
}

// DeleteSession ends the session whose cookie token is token (sign-out).
// An unknown token is not an error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM ui_sessions WHERE token_hash = ?`, store.HashSecret(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// ListUsers lists the local users by username, disabled ones included.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, username, role, created_at, disabled_at FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return store.ScanRows(rows, func(sc store.Scanner) (User, error) {
		var u User
		var c, d int64
		err := sc.Scan(&u.ID, &u.Username, &u.Role, &c, &d)
		u.CreatedAt, u.Disabled = store.FromMicros(c), d != 0
		return u, err
	})
}

// OIDCPrefix starts the usernames of users signed in by OpenID Connect,
// which local usernames (no ':') cannot collide with; the username is
// also the user's actor in the audit log.
const OIDCPrefix = "oidc:"

// SignInOIDC records a sign-in by OpenID Connect of the user the
// provider names name (an e-mail address or subject) with role, the role
// the provider's claims map to now: it creates the user "oidc:NAME" on
// first sign-in (with no password, so it cannot sign in locally) and
// updates the role on later ones, and writes a sign-in entry with detail
// to the audit log. A disabled user gives store.ErrNotFound.
func (s *Store) SignInOIDC(ctx context.Context, name, role string, detail map[string]any) (User, error) {
	if !ValidRole(role) {
		return User{}, fmt.Errorf("%w: unknown role %q", store.ErrInvalid, role)
	}
	u := User{Username: OIDCPrefix + name, Role: role}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var created, disabled int64
		var was string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id, role, created_at, disabled_at FROM users WHERE username = ?`), u.Username).
			Scan(&u.ID, &was, &created, &disabled)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			u.CreatedAt = store.FromMicros(store.Micros(time.Now()))
			if err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, '', ?) RETURNING id`),
				u.Username, role, store.Micros(u.CreatedAt)).Scan(&u.ID); err != nil {
				return fmt.Errorf("create user: %w", err)
			}
		case err != nil:
			return fmt.Errorf("sign in: %w", err)
		case disabled != 0:
			return store.ErrNotFound
		default:
			u.CreatedAt = store.FromMicros(created)
			if was != role {
				if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE users SET role = ? WHERE id = ?`), role, u.ID); err != nil {
					return fmt.Errorf("sign in: %w", err)
				}
			}
		}
		d := map[string]any{"role": role}
		for k, v := range detail {
			d[k] = v
		}
		if err := s.db.AuditTx(ctx, tx, u.Username, "sign-in", "user", fmt.Sprint(u.ID), d); err != nil {
			return err
		}
		_, err = s.retireFirstRunToken(ctx, tx, u.Username)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}
