package accounts_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

const goodPassword = "correct horse battery"

// TestUsers: a created user signs in with their password (any username
// case), and only with it; bad usernames, roles and passwords and
// duplicates are refused as invalid; creation is audited.
func TestUsers(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		u, err := e.st.CreateUser(e.ctx, "Alice@Example.com", accounts.RoleAnalyst, goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || u.Username != "alice@example.com" || u.Role != accounts.RoleAnalyst || u.CreatedAt.IsZero() {
			t.Fatalf("created %+v", u)
		}
		got, err := e.st.Authenticate(e.ctx, "ALICE@example.com", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		if got != u {
			t.Errorf("authenticated %+v, want %+v", got, u)
		}
		hash, err := e.st.PasswordHash(e.ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$2a$12$") || strings.Contains(hash, goodPassword) {
			t.Errorf("stored password hash %q: want bcrypt cost 12", hash)
		}
		audit, err := e.db.Audit(e.ctx, "user", "1")
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Actor != "cli" || audit[0].Action != "create" || audit[0].Detail["username"] != "alice@example.com" {
			t.Errorf("audit = %+v", audit)
		}

		// Sign-in failures all look alike.
		_, err = e.st.Authenticate(e.ctx, "alice@example.com", "wrong password!")
		wantErr(t, err, accounts.ErrUnauthenticated, "wrong password")
		_, err = e.st.Authenticate(e.ctx, "alice@example.com", goodPassword+strings.Repeat("x", 60))
		wantErr(t, err, accounts.ErrUnauthenticated, "password over 72 bytes")
		_, err = e.st.Authenticate(e.ctx, "bob", goodPassword)
		wantErr(t, err, accounts.ErrUnauthenticated, "unknown user")
		_, err = e.st.Authenticate(e.ctx, "", "")
		wantErr(t, err, accounts.ErrUnauthenticated, "empty username")
		if _, err := e.st.CreateUser(e.ctx, "carol", accounts.RoleViewer, goodPassword, "cli:test"); err != nil {
			t.Fatal(err)
		}
		if err := e.st.DisableUser(e.ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		_, err = e.st.Authenticate(e.ctx, "carol", goodPassword)
		wantErr(t, err, accounts.ErrUnauthenticated, "disabled user")

		for _, c := range []struct{ what, username, role, password, msg string }{
			{"short password", "dave", accounts.RoleViewer, "elevenchars", "at least 12"},
			{"password over 72 bytes", "dave", accounts.RoleViewer, strings.Repeat("p", 73), "at most 72"},
			{"empty username", "", accounts.RoleViewer, goodPassword, "username"},
			{"username with a space", "da ve", accounts.RoleViewer, goodPassword, "username"},
			{"username with a slash", "da/ve", accounts.RoleViewer, goodPassword, "username"},
			{"long username", strings.Repeat("d", 65), accounts.RoleViewer, goodPassword, "username"},
			{"bad role", "dave", "root", goodPassword, "role"},
			{"empty role", "dave", "", goodPassword, "role"},
			{"duplicate", "ALICE@example.com", accounts.RoleAdmin, goodPassword, "already exists"},
		} {
			_, err := e.st.CreateUser(e.ctx, c.username, c.role, c.password, "")
			wantErr(t, err, store.ErrInvalid, c.what)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s: error %q does not say %q", c.what, err, c.msg)
			}
		}
		// Twelve characters are enough even when they are multi-byte, and
		// 64 characters of the allowed set make a username.
		if _, err := e.st.CreateUser(e.ctx, strings.Repeat("d", 64), accounts.RoleAdmin, "ééééééééééé1", ""); err != nil {
			t.Error(err)
		}
		if _, err := e.st.CreateUser(e.ctx, "e.v-e_1@x", accounts.RoleAdmin, strings.Repeat("p", 72), ""); err != nil {
			t.Error(err)
		}

		users, err := e.st.ListUsers(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range users {
			names = append(names, u.Username+"="+u.Role)
		}
		want := "alice@example.com=analyst carol=viewer " + strings.Repeat("d", 64) + "=admin e.v-e_1@x=admin"
		if strings.Join(names, " ") != want {
			t.Errorf("users = %v, want %s", names, want)
		}
	})
}

// TestSessions: a session is found by its cookie token until it expires,
// its user is disabled or it is deleted; only the token's SHA-256 is
// stored.
func TestSessions(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		u, err := e.st.CreateUser(e.ctx, "alice", accounts.RoleAdmin, goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		token, sess, err := e.st.CreateSession(e.ctx, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for what, v := range map[string]string{"token": token, "csrf": sess.CSRF} {
			if b, err := base64.RawURLEncoding.DecodeString(v); err != nil || len(b) != 32 {
				t.Errorf("%s %q: want 32 bytes base64url (%v)", what, v, err)
			}
		}
		if token == sess.CSRF {
			t.Error("the CSRF token is the session token")
		}
		if sess.User != u || sess.ExpiresAt.Before(before.Add(time.Hour-time.Second)) || sess.ExpiresAt.After(time.Now().Add(time.Hour)) {
			t.Errorf("session = %+v", sess)
		}
		got, err := e.st.SessionByToken(e.ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if got.User != u || got.CSRF != sess.CSRF || !got.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Errorf("looked up %+v, want %+v", got, sess)
		}

		// Only the hash is stored.
		hashes, err := e.st.SessionTokenHashes(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(token))
		if len(hashes) != 1 || hashes[0] != hex.EncodeToString(sum[:]) || hashes[0] == token {
			t.Errorf("stored token hashes %v, want the SHA-256 of the token", hashes)
		}

		_, err = e.st.SessionByToken(e.ctx, "")
		wantErr(t, err, store.ErrNotFound, "empty token")
		_, err = e.st.SessionByToken(e.ctx, hashes[0])
		wantErr(t, err, store.ErrNotFound, "the stored hash as a token")
		_, err = e.st.SessionByToken(e.ctx, token+"x")
		wantErr(t, err, store.ErrNotFound, "another token")
		_, _, err = e.st.CreateSession(e.ctx, u.ID+1000, time.Hour)
		wantErr(t, err, store.ErrNotFound, "session of an unknown user")

		// Expired sessions are not found, and the next CreateSession
		// deletes them.
		past, _, err := e.st.CreateSession(e.ctx, u.ID, -time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.st.SessionByToken(e.ctx, past)
		wantErr(t, err, store.ErrNotFound, "session expired a minute ago")
		tiny, _, err := e.st.CreateSession(e.ctx, u.ID, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		_, err = e.st.SessionByToken(e.ctx, tiny)
		wantErr(t, err, store.ErrNotFound, "session of a millisecond")
		other, _, err := e.st.CreateSession(e.ctx, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if hashes, err := e.st.SessionTokenHashes(e.ctx); err != nil || len(hashes) != 2 {
			t.Errorf("after expiry, stored sessions = %v (%v), want the 2 live ones", hashes, err)
		}

		// Sign-out ends one session; unknown tokens are no error.
		if err := e.st.DeleteSession(e.ctx, token); err != nil {
			t.Fatal(err)
		}
		_, err = e.st.SessionByToken(e.ctx, token)
		wantErr(t, err, store.ErrNotFound, "deleted session")
		if err := e.st.DeleteSession(e.ctx, token); err != nil {
			t.Errorf("deleting a deleted session: %v", err)
		}
		if err := e.st.DeleteSession(e.ctx, "nonsense"); err != nil {
			t.Errorf("deleting an unknown session: %v", err)
		}
		if _, err := e.st.SessionByToken(e.ctx, other); err != nil {
			t.Errorf("other session: %v", err)
		}

		// A disabled user's sessions stop working, and they get no new one.
		if err := e.st.DisableUser(e.ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		_, err = e.st.SessionByToken(e.ctx, other)
		wantErr(t, err, store.ErrNotFound, "session of a disabled user")
		_, _, err = e.st.CreateSession(e.ctx, u.ID, time.Hour)
		wantErr(t, err, store.ErrNotFound, "new session of a disabled user")
	})
}
