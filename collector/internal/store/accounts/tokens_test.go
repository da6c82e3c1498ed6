package accounts_test

import (
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestTokens: API tokens take a known role only, and are found by their
// plaintext (bft_…) and nothing else.
func TestTokens(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) { testTokens(newEnv(t, dsn)) })
}

func testTokens(e *env) {
	if has, err := e.st.HasTokens(e.ctx); err != nil || has {
		e.Fatalf("HasTokens on an empty database = %v, %v", has, err)
	}
	if _, _, err := e.st.CreateToken(e.ctx, "x", "root"); err == nil {
		e.Fatal("role root accepted")
	}
	if _, _, err := e.st.CreateToken(e.ctx, "x", ""); err == nil {
		e.Fatal("empty role accepted")
	}
	if has, err := e.st.HasTokens(e.ctx); err != nil || has {
		e.Fatalf("a refused token was stored: HasTokens = %v, %v", has, err)
	}
	for _, role := range []string{accounts.RoleViewer, accounts.RoleAnalyst, accounts.RoleAdmin} {
		plain, tok, err := e.st.CreateToken(e.ctx, "ci-"+role, role)
		if err != nil {
			e.Fatalf("create %s token: %v", role, err)
		}
		if !strings.HasPrefix(plain, "bft_") || tok.Role != role {
			e.Fatalf("CreateToken(%s) = %q, %+v", role, plain, tok)
		}
		got, err := e.st.TokenByPlaintext(e.ctx, plain)
		if err != nil || got.ID != tok.ID || got.Role != role || got.Name != "ci-"+role || got.CreatedAt.IsZero() {
			e.Fatalf("TokenByPlaintext(%s) = %+v, %v; want %+v", role, got, err, tok)
		}
		_, err = e.st.TokenByPlaintext(e.ctx, plain+"0")
		wantErr(e.T, err, store.ErrNotFound, "TokenByPlaintext of a wrong token")
	}
	_, err := e.st.TokenByPlaintext(e.ctx, "")
	wantErr(e.T, err, store.ErrNotFound, "TokenByPlaintext of the empty string")
	if has, err := e.st.HasTokens(e.ctx); err != nil || !has {
		e.Fatalf("HasTokens = %v, %v; want true", has, err)
	}
}
