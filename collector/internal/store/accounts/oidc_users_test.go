package accounts_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestSignInOIDC: the first sign-in by OIDC creates the user oidc:NAME,
// later ones keep it and take the role the provider's claims map to now;
// each is audited with the user as actor; the user has no password to
// sign in locally with; a disabled user is refused.
func TestSignInOIDC(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		u, err := e.st.SignInOIDC(e.ctx, "ana@example.com", accounts.RoleAnalyst, map[string]any{"subject": "00u1"})
		if err != nil || u.Username != "oidc:ana@example.com" || u.Role != accounts.RoleAnalyst || u.ID == 0 {
			t.Fatalf("first sign-in: %+v %v", u, err)
		}
		again, err := e.st.SignInOIDC(e.ctx, "ana@example.com", accounts.RoleAdmin, nil)
		if err != nil || again.ID != u.ID || again.Role != accounts.RoleAdmin || !again.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("second sign-in: %+v %v", again, err)
		}
		log, _ := e.db.Audit(e.ctx, "user", strconv.FormatInt(u.ID, 10))
		if len(log) != 2 || log[0].Actor != "oidc:ana@example.com" || log[0].Action != "sign-in" || log[0].Detail["subject"] != "00u1" ||
			log[0].Detail["role"] != accounts.RoleAnalyst || log[1].Detail["role"] != accounts.RoleAdmin {
			t.Errorf("audit log: %+v", log)
		}
		if _, err := e.st.Authenticate(e.ctx, "oidc:ana@example.com", ""); !errors.Is(err, accounts.ErrUnauthenticated) {
			t.Errorf("local sign-in of the OIDC user: %v", err)
		}
		if _, err := e.st.SignInOIDC(e.ctx, "ana@example.com", "root", nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown role: %v", err)
		}
		if err := e.st.DisableUser(e.ctx, "oidc:ana@example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.SignInOIDC(e.ctx, "ana@example.com", accounts.RoleAdmin, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("disabled user: %v", err)
		}
	})
}
