package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
)

// TestCredentialsLifecycle: API tokens are listed (never their secret),
// expire and are revoked; users are disabled, enabled, change role and
// password, from the CLI and the API; every change is in the audit log.
func TestCredentialsLifecycle(t *testing.T) {
	_, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		var extra []string
		if strings.HasPrefix(dsn, "postgres") {
			extra = []string{"--db", dsn}
		}
		s := startServerArgs(t, collector, t.TempDir(), extra...)
		admin := s.admin(t, "token", "create", "--role", "admin", "--name", "ops")
		viewer := s.admin(t, "token", "create", "--role", "viewer", "--name", "soon-revoked")
		s.api(t, "GET", "/api/v1/devices", viewer, "", 200)
		// Long enough to be used once even on a loaded machine (one CLI
		// run took over 3 s under stress-ng and six builds).
		short := s.admin(t, "token", "create", "--role", "viewer", "--name", "short", "--expires", "15s")
		s.api(t, "GET", "/api/v1/devices", short, "", 200)

		list := s.admin(t, "token", "list")
		for _, want := range []string{"ops", "short", "soon-revoked", "admin", "viewer"} {
			if !strings.Contains(list, want) {
				t.Errorf("token list lacks %q:\n%s", want, list)
			}
		}
		if strings.Contains(list, viewer) || strings.Contains(list, "bft_") {
			t.Errorf("token list shows a token's secret:\n%s", list)
		}
		var revokeID string
		for _, tok := range s.api(t, "GET", "/api/v1/tokens", admin, "", 200)["tokens"].([]any) {
			if tok.(map[string]any)["name"] == "soon-revoked" {
				revokeID = tok.(map[string]any)["id"].(string)
			}
		}
		s.api(t, "DELETE", "/api/v1/tokens/"+revokeID, viewer, "", 403)
		s.api(t, "DELETE", "/api/v1/tokens/"+revokeID, admin, "", 200)
		s.api(t, "GET", "/api/v1/devices", viewer, "", 401)
		// The short token expires (polled: the machine may be slow).
		deadline := time.Now().Add(2 * time.Minute)
		for {
			req, _ := http.NewRequest("GET", "http://"+s.http+"/api/v1/devices", nil)
			req.Header.Set("Authorization", "Bearer "+short)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a token created with --expires 15s still works: %s", resp.Status)
			}
			time.Sleep(500 * time.Millisecond)
		}
		made := s.api(t, "POST", "/api/v1/tokens", admin, `{"name":"api-made","role":"analyst","expires_in":"24h"}`, 200)
		if tok, _ := made["token"].(string); !strings.HasPrefix(tok, "bft_") {
			t.Fatalf("created token %v", made)
		}

		// Users: disable, enable, role, password.
		s.admin(t, "user", "create", "--username", "kim", "--role", "analyst", "--password", "first password 1")
		signIn := func(pw string) int {
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := uitest.PostLogin(c, "http://"+s.http, url.Values{"username": {"kim"}, "password": {pw}, "next": {"/ui/"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := signIn("first password 1"); got != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", got)
		}
		s.admin(t, "user", "disable", "kim")
		if got := signIn("first password 1"); got != http.StatusUnauthorized {
			t.Fatalf("sign-in of a disabled user: %d", got)
		}
		s.admin(t, "user", "enable", "kim")
		s.admin(t, "user", "role", "kim", "--role", "viewer")
		u := s.api(t, "PATCH", "/api/v1/users/kim", admin, `{"password":"second password 2"}`, 200)
		if u["role"] != "viewer" || u["disabled"] != false {
			t.Fatalf("user after the changes: %v", u)
		}
		s.api(t, "PATCH", "/api/v1/users/kim", admin, `{"password":"short"}`, 400)
		if got := signIn("first password 1"); got != http.StatusUnauthorized {
			t.Fatalf("sign-in with the old password: %d", got)
		}
		if got := signIn("second password 2"); got != http.StatusSeeOther {
			t.Fatalf("sign-in with the new password: %d", got)
		}

		audit := s.api(t, "GET", "/api/v1/audit?limit=1000", admin, "", 200)
		var actions []string
		for _, e := range audit["entries"].([]any) {
			e := e.(map[string]any)
			actions = append(actions, e["target_type"].(string)+":"+e["action"].(string))
		}
		got := strings.Join(actions, " ")
		for _, want := range []string{"token:create", "token:revoke", "user:update"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit lacks %s: %s", want, got)
			}
		}
		if strings.Contains(fmt.Sprint(audit), "second password") {
			t.Error("the audit log holds a password")
		}
	})
}

// TestFirstRunTokenRetired: the admin API token the collector writes to
// first-run-credentials.txt works until an enabled admin user exists;
// creating one (here with the CLI; promoting or enabling one, or an admin
// signing in by SSO, does the same) revokes it in the same transaction,
// audited, and a restart does not bring it back.
func TestFirstRunTokenRetired(t *testing.T) {
	_, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		var extra []string
		if strings.HasPrefix(dsn, "postgres") {
			extra = []string{"--db", dsn}
		}
		dir := t.TempDir()
		s := startServerArgs(t, collector, dir, extra...)
		b, err := os.ReadFile(filepath.Join(dir, "first-run-credentials.txt"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^admin_api_token=(\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no token in first-run-credentials.txt:\n%s", b)
		}
		first := string(m[1])
		s.api(t, "GET", "/api/v1/devices", first, "", 200)
		// An analyst is no admin: the token keeps working.
		s.admin(t, "user", "create", "--username", "ana", "--role", "analyst", "--password", "correct horse battery")
		s.api(t, "GET", "/api/v1/devices", first, "", 200)

		s.admin(t, "user", "create", "--username", "root", "--role", "admin", "--password", "correct horse battery")
		s.api(t, "GET", "/api/v1/devices", first, "", 401)
		ops := s.admin(t, "token", "create", "--role", "admin", "--name", "ops")
		var revoked bool
		for _, e := range s.api(t, "GET", "/api/v1/audit?limit=1000", ops, "", 200)["entries"].([]any) {
			e := e.(map[string]any)
			if e["action"] == "revoke" && e["target_type"] == "token" && strings.Contains(fmt.Sprint(e["detail"]), "an admin user exists") {
				revoked = true
				if !strings.HasPrefix(fmt.Sprint(e["actor"]), "cli:") {
					t.Errorf("revocation audited as %v, want the CLI user who created the admin", e["actor"])
				}
			}
		}
		if !revoked {
			t.Error("the first-run token's revocation is not in the audit log")
		}
		if list := s.admin(t, "token", "list"); !strings.Contains(list, "first-run admin") {
			t.Errorf("token list lacks the revoked first-run token:\n%s", list)
		}

		// A restart neither revives it nor makes another.
		s.stop()
		s = startServerArgs(t, collector, dir, extra...)
		s.api(t, "GET", "/api/v1/devices", first, "", 401)
		if b2, _ := os.ReadFile(filepath.Join(dir, "first-run-credentials.txt")); string(b2) != string(b) {
			t.Errorf("first-run-credentials.txt rewritten:\n%s", b2)
		}
	})
}
