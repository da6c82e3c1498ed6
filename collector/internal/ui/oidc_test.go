package ui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/oidctest"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
	"github.com/chromedp/chromedp"
)

// oidcEnv is the UI of newFixture with single sign-on through a real
// OpenID Connect provider on loopback. The provider is at "localhost" and
// the UI at 127.0.0.1, different sites, as a company's IdP and bonafide
// are: the browser treats the provider's redirects back as cross-site.
type oidcEnv struct {
	*fixture
	ui *httptest.Server
	op *oidctest.Provider
}

// The provider's users: an analyst, one in both the admin and the viewer
// groups, one in no mapped group (with a group name that is markup), and
// one without an e-mail address.
var oidcUsers = []oidctest.User{
	{Subject: "ana", Email: "Ana@Example.com", Name: "Ana", Claims: map[string]any{"groups": []string{"everyone", "soc-analysts"}}},
	{Subject: "ada", Email: "ada@example.com", Claims: map[string]any{"groups": []string{"staff", "soc-admins"}}},
	{Subject: "nob", Email: "nobody@example.com", Claims: map[string]any{"groups": []string{"everyone", "<script>alert(1)</script>"}}},
	{Subject: "svc-7f3a", Claims: map[string]any{"groups": "staff"}},
}

func newOIDCEnv(t *testing.T) *oidcEnv {
	t.Helper()
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(nil)
	redirect := "http://" + srv.Listener.Addr().String() + "/ui/oidc/callback"
	op := oidctest.Start(t, "localhost", []string{redirect}, oidcUsers...)
	h, err := New(f.st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{OIDC: &OIDC{
		Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret, RedirectURL: redirect, Name: "Test IdP",
		Roles: map[string]string{"staff": accounts.RoleViewer, "soc-analysts": accounts.RoleAnalyst, "soc-admins": accounts.RoleAdmin},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return &oidcEnv{fixture: f, ui: srv, op: op}
}

// jarClient is a browser-like HTTP client (its own cookies) that follows
// redirects only through follow.
func jarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// follow sends req and follows its redirects, passing each URL to edit
// (nil: none) before it is requested, and returns the last response with
// its body.
func follow(t *testing.T, c *http.Client, req *http.Request, edit func(*url.URL)) (*http.Response, string) {
	t.Helper()
	for range 10 {
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return resp, string(b)
		}
		if edit != nil {
			edit(loc)
		}
		req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, loc.String(), nil)
	}
	t.Fatal("too many redirects")
	return nil, ""
}

// signIn starts single sign-on at the UI, signs user in at the provider's
// login form, and returns the UI's answer to the provider's redirect back.
func (e *oidcEnv) signIn(t *testing.T, c *http.Client, user string, edit func(*url.URL)) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.ui.URL+"/ui/oidc/login?next=/ui/alerts", nil)
	resp, body := follow(t, c, req, edit)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), e.op.Issuer+"/login") {
		t.Fatalf("sign-in did not reach the provider's login form: %s %s\n%s", resp.Request.URL, resp.Status, body)
	}
	form := url.Values{"id": {resp.Request.URL.Query().Get("id")}, "username": {user}}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, e.op.Issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return follow(t, c, req, edit)
}

// signedIn reports whether c's session can open the alert queue.
func (e *oidcEnv) signedIn(t *testing.T, c *http.Client) bool {
	t.Helper()
	resp, err := c.Get(e.ui.URL + "/ui/alerts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestOIDCSignIn signs users in through the provider: the authorization
// request carries a PKCE S256 challenge, a state and a nonce; the
// analyst's session can triage (same session and CSRF as local users) and
// the audit log names them oidc:EMAIL; a user in several mapped groups
// gets the highest role; one without an e-mail is named by subject; one in
// no mapped group gets a 403 page saying which claim was read (its values
// escaped) and that an administrator must add them; the sign-in page
// offers both single sign-on and local accounts.
func TestOIDCSignIn(t *testing.T) {
	e := newOIDCEnv(t)
	c := jarClient()
	var authorize url.Values
	resp, body := e.signIn(t, c, "ana", func(u *url.URL) {
		if u.Path == "/authorize" {
			authorize = u.Query()
		}
	})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Refresh") != "0; url=/ui/alerts" {
		t.Fatalf("callback: %s, Refresh %q\n%s", resp.Status, resp.Header.Get("Refresh"), body)
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(authorize.Get(k)) < 40 {
			t.Errorf("authorization request %s = %q", k, authorize.Get(k))
		}
	}
	if authorize.Get("code_challenge_method") != "S256" || authorize.Get("client_secret") != "" {
		t.Errorf("authorization request %v", authorize)
	}
	if !e.signedIn(t, c) {
		t.Fatal("the analyst is not signed in after the callback")
	}
	users, _ := accounts.New(e.st).ListUsers(t.Context())
	var ana accounts.User
	for _, u := range users {
		if u.Username == "oidc:ana@example.com" {
			ana = u
		}
	}
	if ana.Role != accounts.RoleAnalyst {
		t.Fatalf("users after sign-in: %+v", users)
	}
	log, _ := e.st.Audit(t.Context(), "user", strconv.FormatInt(ana.ID, 10))
	if len(log) != 1 || log[0].Actor != "oidc:ana@example.com" || log[0].Action != "sign-in" || log[0].Detail["issuer"] != e.op.Issuer ||
		log[0].Detail["subject"] != "ana" || log[0].Detail["role"] != accounts.RoleAnalyst {
		t.Errorf("audit log of the sign-in: %+v", log)
	}

	// Triage through the session's CSRF token, recorded as the OIDC user.
	resp, body = follow(t, c, mustGet(t, e.ui.URL+"/ui/alerts/"+itoa(e.alertID)), nil)
	csrf := pageCSRF.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || csrf == nil {
		t.Fatalf("alert page: %s", resp.Status)
	}
	resp, err := c.PostForm(e.ui.URL+"/ui/alerts/"+itoa(e.alertID), url.Values{"csrf": {csrf[1]}, "action": {"acknowledge"}, "note": {"looking"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %v %v", resp, err)
	}
	tl, _ := e.st.Audit(t.Context(), "alert", itoa(e.alertID))
	if a, _ := e.st.GetAlert(t.Context(), e.alertID); a.Status != store.StatusAcknowledged || tl[len(tl)-1].Actor != "oidc:ana@example.com" {
		t.Errorf("after triage: %s, timeline %+v", a.Status, tl)
	}

	// Several mapped groups: the highest role. No e-mail: the subject.
	for _, u := range []struct{ sub, username, role string }{{"ada", "oidc:ada@example.com", accounts.RoleAdmin}, {"svc-7f3a", "oidc:svc-7f3a", accounts.RoleViewer}} {
		c := jarClient()
		if resp, body := e.signIn(t, c, u.sub, nil); resp.StatusCode != http.StatusOK || !e.signedIn(t, c) {
			t.Fatalf("%s: %s\n%s", u.sub, resp.Status, body)
		}
		resp, body := follow(t, c, mustGet(t, e.ui.URL+"/ui/"), nil)
		if want := u.username + " (" + u.role + ")"; resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: the header lacks %q", u.sub, want)
		}
	}

	// No mapped group: refused, saying why and what to do.
	c = jarClient()
	resp, body = e.signIn(t, c, "nob", nil)
	for _, want := range []string{"nobody@example.com", "<code>groups</code>", "An administrator must add you",
		"<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>", "<code>everyone</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("refusal page lacks %q:\n%s", want, body)
		}
	}
	if resp.StatusCode != http.StatusForbidden || e.signedIn(t, c) {
		t.Errorf("the user in no mapped group: %s, signed in %v", resp.Status, e.signedIn(t, c))
	}

	_, body = follow(t, jarClient(), mustGet(t, e.ui.URL+"/ui/login"), nil)
	if !strings.Contains(body, `href="/ui/oidc/login?next=%2fui%2f">Sign in with Test IdP</a>`) || !strings.Contains(body, `id="password"`) {
		t.Errorf("sign-in page lacks single sign-on or the local form:\n%s", body)
	}
}

// TestOIDCCallbackRefusals: a callback with another state, an ID token
// with another nonce (the authorization request was altered on its way to
// the provider), an ID token for another audience, a replayed callback, a
// callback without the flow's cookie and a provider's error are all
// refused, and none signs anyone in.
func TestOIDCCallbackRefusals(t *testing.T) {
	e := newOIDCEnv(t)
	setQuery := func(path, key, value string) func(*url.URL) {
		return func(u *url.URL) {
			if u.Path == path {
				q := u.Query()
				q.Set(key, value)
				u.RawQuery = q.Encode()
			}
		}
	}
	check := func(name string, c *http.Client, resp *http.Response, body string, status int, want string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, want) || e.signedIn(t, c) {
			t.Errorf("%s: %s, signed in %v, want %d with %q:\n%s", name, resp.Status, e.signedIn(t, c), status, want, body)
		}
	}

	c := jarClient()
	resp, body := e.signIn(t, c, "ana", setQuery("/ui/oidc/callback", "state", "forged"))
	check("bad state", c, resp, body, http.StatusBadRequest, "state does not match")

	c = jarClient()
	resp, body = e.signIn(t, c, "ana", setQuery("/authorize", "nonce", "someone-elses-nonce-0123456789"))
	check("bad nonce", c, resp, body, http.StatusUnauthorized, "nonce does not match")

	e.op.SetAudience([]string{"another-app"})
	c = jarClient()
	resp, body = e.signIn(t, c, "ana", nil)
	check("wrong audience", c, resp, body, http.StatusUnauthorized, "could not be verified")
	e.op.SetAudience(nil)

	// A callback URL used twice: the flow's cookie went with the first.
	c = jarClient()
	var callback string
	resp, body = e.signIn(t, c, "ana", func(u *url.URL) {
		if u.Path == "/ui/oidc/callback" {
			callback = u.String()
		}
	})
	if resp.StatusCode != http.StatusOK || !e.signedIn(t, c) {
		t.Fatalf("sign-in: %s\n%s", resp.Status, body)
	}
	c2 := jarClient()
	resp, body = follow(t, c2, mustGet(t, callback), nil)
	check("replay in another browser", c2, resp, body, http.StatusBadRequest, "not started here")
	resp, body = follow(t, c, mustGet(t, callback), nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replay in the same browser: %s\n%s", resp.Status, body)
	}

	c = jarClient()
	follow(t, c, mustGet(t, e.ui.URL+"/ui/oidc/login"), nil)
	var flowState string
	u, _ := url.Parse(e.ui.URL + "/ui/oidc/callback")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == oidcCookie {
			var f flow
			b, _ := base64.RawURLEncoding.DecodeString(ck.Value)
			json.Unmarshal(b, &f)
			flowState = f.State
		}
	}
	resp, body = follow(t, c, mustGet(t, e.ui.URL+"/ui/oidc/callback?error=access_denied&error_description=%3Cb%3Enope%3C%2Fb%3E&state="+flowState), nil)
	check("provider error", c, resp, body, http.StatusUnauthorized, "did not sign you in: access_denied &lt;b&gt;nope&lt;/b&gt;")
}

// TestOIDCClaims: claims are read defensively (a string or a list of
// strings, overlong or non-string values dropped, at most maxClaimValues);
// the user is named by a verified e-mail, else by a printable subject.
func TestOIDCClaims(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	long := strings.Repeat("g", maxClaimValue+1)
	if got := claimValues(raw(`"soc"`)); len(got) != 1 || got[0] != "soc" {
		t.Errorf("string claim: %q", got)
	}
	if got := claimValues(raw(`["a", 7, {"x": 1}, "", "` + long + `", "b"]`)); strings.Join(got, ",") != "a,b" {
		t.Errorf("list claim: %q", got)
	}
	many, _ := json.Marshal(slices.Repeat([]string{"x"}, maxClaimValues+50))
	if got := claimValues(many); len(got) != maxClaimValues {
		t.Errorf("%d values kept, want %d", len(got), maxClaimValues)
	}
	if got := claimValues(nil); len(got) != 0 {
		t.Errorf("missing claim: %q", got)
	}
	overage := map[string]json.RawMessage{"_claim_names": raw(`{"groups": "src1"}`), "_claim_sources": raw(`{"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}`)}
	if !hasOverage(overage, "groups") || hasOverage(overage, "roles") || hasOverage(nil, "groups") {
		t.Error("Entra ID's groups overage is not recognised")
	}
	for _, c := range []struct {
		sub, claims, want string
		ok                bool
	}{
		{"s1", `{"email": "A@B.example", "email_verified": true}`, "a@b.example", true},
		{"s1", `{"email": "a@b.example"}`, "a@b.example", true},
		{"s1", `{"email": "a@b.example", "email_verified": false}`, "s1", true},
		{"s1", `{"email": "a b@c.example"}`, "s1", true},
		{"s1", `{"email": "` + strings.Repeat("a", maxEmail) + `@c"}`, "s1", true},
		{"bad\nsub", `{}`, "", false},
		{strings.Repeat("s", maxSubject+1), `{}`, "", false},
		{"", `{}`, "", false},
	} {
		var m map[string]json.RawMessage
		json.Unmarshal([]byte(c.claims), &m)
		if got, ok := oidcIdentity(c.sub, m); got != c.want || ok != c.ok {
			t.Errorf("oidcIdentity(%q, %s) = %q, %v; want %q, %v", c.sub, c.claims, got, ok, c.want, c.ok)
		}
	}
}

// TestBrowserOIDC signs in through the provider in Chromium: an analyst
// clicks "Sign in with Test IdP", signs in at the provider (another
// site), lands on the alert queue and resolves the alert, recorded as
// oidc:ana@example.com; a user in no mapped group sees the refusal page.
func TestBrowserOIDC(t *testing.T) {
	newBrowser := browser(t)
	e := newOIDCEnv(t)
	dir := artifacts(t)
	id := itoa(e.alertID)
	// viaProvider clicks single sign-on and signs user in at the provider.
	viaProvider := func(ctx context.Context, user string) error {
		return chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("sso")),
			chromedp.WaitVisible(chromedp.ID("signin")),
			chromedp.SetValue(chromedp.ID("username"), user),
			chromedp.Click(chromedp.ID("signin")),
		)
	}

	ana := newBrowser()
	if err := chromedp.Do(ana,
		chromedp.Navigate(e.ui.URL+"/ui/alerts"),
		chromedp.WaitVisible(chromedp.ID("sso")),
	); err != nil {
		t.Fatal(err)
	}
	check(t, ana, dir, "oidc-login", "/ui/login", "Local account", "[]")
	if err := viaProvider(ana, "ana"); err != nil {
		t.Fatalf("analyst at the provider: %v", err)
	}
	if err := chromedp.Do(ana,
		chromedp.WaitVisible(chromedp.CSS("table.queue")),
		chromedp.Click(chromedp.CSS(`a[href="/ui/alerts/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("form.triage")),
		chromedp.SetValue(chromedp.ID("t-action"), "resolve"),
		chromedp.SetValue(chromedp.ID("t-note"), "Signed in by SSO; resolved."),
		chromedp.Click(chromedp.CSS("form.triage button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	); err != nil {
		t.Fatalf("analyst by single sign-on: %v", err)
	}
	check(t, ana, dir, "oidc-alert-resolved", "/ui/alerts/"+id, "oidc:ana@example.com", "[]")
	a, _ := e.st.GetAlert(t.Context(), e.alertID)
	tl, _ := e.st.Audit(t.Context(), "alert", id)
	if a.Status != store.StatusResolved || tl[len(tl)-1].Actor != "oidc:ana@example.com" {
		t.Errorf("after triage: %s, timeline %+v", a.Status, tl)
	}

	nob := newBrowser()
	if err := chromedp.Do(nob, chromedp.Navigate(e.ui.URL+"/ui/login"), chromedp.WaitVisible(chromedp.ID("sso"))); err != nil {
		t.Fatal(err)
	}
	if err := viaProvider(nob, "nob"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(nob, chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		t.Fatalf("user in no mapped group: %v", err)
	}
	check(t, nob, dir, "oidc-refused", "/ui/oidc/callback", "An administrator must add you to one of the groups", "[]")
	if txt, _ := chromedp.Run(nob, chromedp.Text(chromedp.CSS("main"))); !contains(txt, "Not allowed", "groups", "<script>alert(1)</script>") {
		t.Errorf("refusal page: %s", txt)
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestOIDCProviderDown: with the provider unreachable the sign-in page
// still offers both ways, single sign-on answers with a 502 page pointing
// to local accounts, and a local user (break-glass) signs in.
func TestOIDCProviderDown(t *testing.T) {
	f := newFixture(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	h, err := New(f.st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{OIDC: &OIDC{
		Issuer: dead.URL, ClientID: "bonafide", ClientSecret: "s", RedirectURL: "http://127.0.0.1/ui/oidc/callback",
		Roles: map[string]string{"soc": accounts.RoleAnalyst},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := jarClient()
	if _, body := follow(t, c, mustGet(t, srv.URL+"/ui/login"), nil); !strings.Contains(body, `id="sso"`) || !strings.Contains(body, `id="password"`) {
		t.Fatalf("sign-in page:\n%s", body)
	}
	if resp, body := follow(t, c, mustGet(t, srv.URL+"/ui/oidc/login"), nil); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "sign in with a local account") {
		t.Errorf("single sign-on with the provider down: %s\n%s", resp.Status, body)
	}
	resp, err := uitest.PostLogin(c, srv.URL, url.Values{"username": {"ana"}, "password": {"correct horse battery"}, "next": {"/ui/alerts"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("local sign-in: %v %v", resp, err)
	}
	if resp, _ := follow(t, c, mustGet(t, srv.URL+"/ui/alerts"), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("local user after sign-in: %s", resp.Status)
	}
}
