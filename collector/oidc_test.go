package main

import (
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/ui/oidctest"
)

// TestOIDCFlags: serve's single sign-on flags make the UI's OIDC
// configuration: the redirect URL from --public-url, the secret from the
// file or else the environment, the groups to roles (a group named for
// two roles gets the higher); missing pieces and a plain-http issuer off
// loopback are refused with the flag to give.
func TestOIDCFlags(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("s3cret-from-file\n"), 0o600)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == oidcSecretEnv {
				return v
			}
			return ""
		}
	}
	parse := func(args ...string) *oidcFlags {
		var o oidcFlags
		fset := flag.NewFlagSet("serve", flag.ContinueOnError)
		o.register(fset)
		if err := fset.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &o
	}
	base := []string{"--oidc-issuer", "https://example.okta.com", "--oidc-client-id", "0oa1", "--oidc-analyst-group", "soc", "--oidc-viewer-group", "it", "--oidc-admin-group", "it"}

	if c, err := parse().config("", env("")); c != nil || err != nil {
		t.Errorf("without --oidc-issuer: %+v %v", c, err)
	}
	c, err := parse(append(base, "--oidc-client-secret-file", secretFile, "--oidc-scopes", "openid,email groups")...).config("https://bonafide.example.com/", env("from-env"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret != "s3cret-from-file" || c.RedirectURL != "https://bonafide.example.com/ui/oidc/callback" || c.Claim != "groups" ||
		strings.Join(c.Scopes, " ") != "openid email groups" || c.Roles["soc"] != "analyst" || c.Roles["it"] != "admin" || len(c.Roles) != 2 {
		t.Errorf("config %+v", c)
	}
	if c, err := parse(base...).config("https://bonafide.example.com", env("from-env")); err != nil || c.ClientSecret != "from-env" {
		t.Errorf("secret from the environment: %+v %v", c, err)
	}
	for _, bad := range []struct {
		args      []string
		publicURL string
		secret    string
		want      string
	}{
		{base, "https://b.example.com", "", "--oidc-client-secret-file FILE or $BONAFIDE_OIDC_CLIENT_SECRET"},
		{base, "", "x", "--public-url"},
		{[]string{"--oidc-issuer", "https://i.example.com", "--oidc-analyst-group", "soc"}, "https://b.example.com", "x", "--oidc-client-id"},
		{[]string{"--oidc-issuer", "https://i.example.com", "--oidc-client-id", "c"}, "https://b.example.com", "x", "--oidc-admin-group"},
		{append([]string{"--oidc-issuer", "http://idp.example.com"}, base[2:]...), "https://b.example.com", "x", "want an https:// URL"},
		{append(base, "--oidc-client-secret-file", "/nonexistent"), "https://b.example.com", "x", "--oidc-client-secret-file"},
	} {
		if _, err := parse(bad.args...).config(bad.publicURL, env(bad.secret)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %q: %v, want an error with %q", bad.args, bad.publicURL, err, bad.want)
		}
	}
	if _, err := parse(append([]string{"--oidc-issuer", "http://127.0.0.1:5556"}, base[2:]...)...).config("http://127.0.0.1:8080", env("x")); err != nil {
		t.Errorf("plain http on loopback: %v", err)
	}
}

// TestOIDCServeEndToEnd runs `bonafide-collector serve` with single
// sign-on against a real OpenID Connect provider on loopback (the client
// secret in a file): the sign-in page offers it, a user of the analyst
// group signs in and opens the alert queue, and `user list` shows them.
func TestOIDCServeEndToEnd(t *testing.T) {
	_, collector := binaries(t)
	addr := freePort(t)
	op := oidctest.Start(t, "localhost", []string{"http://" + addr + "/ui/oidc/callback"},
		oidctest.User{Subject: "ana", Email: "ana@example.com", Claims: map[string]any{"groups": []string{"soc"}}})
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerArgs(t, collector, t.TempDir(), "--http-listen", addr, "--public-url", "http://"+addr,
		"--oidc-issuer", op.Issuer, "--oidc-client-id", op.ClientID, "--oidc-client-secret-file", secretFile,
		"--oidc-analyst-group", "soc", "--oidc-name", "Test IdP")

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if _, body := get("http://" + s.http + "/ui/login"); !strings.Contains(body, "Sign in with Test IdP") {
		t.Fatalf("sign-in page:\n%s", body)
	}
	resp, _ := get("http://" + s.http + "/ui/oidc/login")
	if !strings.HasPrefix(resp.Request.URL.String(), op.Issuer+"/login") {
		t.Fatalf("single sign-on went to %s (%s)", resp.Request.URL, resp.Status)
	}
	resp, err := c.PostForm(op.Issuer+"/login", url.Values{"id": {resp.Request.URL.Query().Get("id")}, "username": {"ana"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/oidc/callback" {
		t.Fatalf("callback %s: %s\n%s", resp.Request.URL, resp.Status, s.log)
	}
	if resp, body := get("http://" + s.http + "/ui/alerts"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "oidc:ana@example.com (analyst)") {
		t.Fatalf("alert queue after single sign-on: %s\n%s", resp.Status, body)
	}
	if out := s.admin(t, "user", "list"); !strings.Contains(out, "oidc:ana@example.com\tanalyst") {
		t.Errorf("user list:\n%s", out)
	}
}
