package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
)

// xssHost is a host name an attacker chose for the laptop.
const xssHost = `<img src=x onerror=alert(1)>`

// fixture is a UI over a real SQLite store holding one device named
// xssHost with one open alert, and an analyst and a viewer.
type fixture struct {
	srv     *httptest.Server
	st      *store.Store
	alertID int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	for _, u := range [][2]string{{"ana", accounts.RoleAnalyst}, {"vic", accounts.RoleViewer}} {
		if _, err := accounts.New(st).CreateUser(ctx, u[0], u[1], "correct horse battery", "test"); err != nil {
			t.Fatal(err)
		}
	}
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := store.DeviceIdentity{SerialNumber: "SN1", Hostname: xssHost, OSFamily: "linux", AgentVersion: "1.0.0"}
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-1", SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-1",
		Identity: id, CertSerial: "c1", CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	a, err := st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	rules := fires{detect.Finding{RuleID: "kvm_usb_identity", Title: "IP-KVM by its USB identity", Severity: "high",
		Description: "A PiKVM", Evidence: map[string]any{"product": `<script>alert("usb")</script>`}}}
	if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: "198.51.100.1", ReceivedAt: time.Now(), ReportInterval: time.Minute,
		Reports: []store.IngestReport{{ReportID: "r1", Sequence: 1, CreatedAt: time.Now(), Identity: id}}}, rules); err != nil {
		t.Fatal(err)
	}
	alerts, err := st.ListAlerts(ctx, store.AlertFilter{})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %v %v", alerts, err)
	}
	h, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, st: st, alertID: alerts[0].ID}
}

// fires is an evaluator whose device rules always find the findings.
type fires []detect.Finding

func (f fires) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice {
		return f, nil
	}
	return nil, nil
}

func (fires) AutoResolve(detect.Scope) []string { return nil }

// client is a browser-like client: a cookie jar, no redirects followed.
func (f *fixture) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) signIn(t *testing.T, c *http.Client, user string) {
	t.Helper()
	resp, err := uitest.PostLogin(c, f.srv.URL, url.Values{"username": {user}, "password": {"correct horse battery"}, "next": {"/ui/alerts"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/alerts" {
		t.Fatalf("sign-in as %s: %s to %q", user, resp.Status, resp.Header.Get("Location"))
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestSignInTriageAndEscaping(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)

	// Signed out: pages redirect to the sign-in page, actions are refused.
	if code, _, h := get(t, c, f.srv.URL+"/ui/alerts"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login") {
		t.Fatalf("signed out: %d %v", code, h)
	}
	resp, _ := uitest.PostLogin(c, f.srv.URL, url.Values{"username": {"ana"}, "password": {"wrong password!!"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %s", resp.Status)
	}
	f.signIn(t, c, "ana")

	code, body, h := get(t, c, f.srv.URL+"/ui/alerts")
	if code != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("queue: %d %v", code, h)
	}
	// The attacker's host name is text, never markup.
	if strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("host name not escaped in the queue:\n%s", body)
	}
	_, detail, _ := get(t, c, f.srv.URL+"/ui/alerts/"+itoa(f.alertID))
	if strings.Contains(detail, "<script>alert") || !strings.Contains(detail, "&lt;script&gt;alert(&#34;usb&#34;)&lt;/script&gt;") {
		t.Errorf("evidence not escaped:\n%s", detail)
	}
	m := csrfRe.FindStringSubmatch(detail)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	csrf := m[1]

	// Without the CSRF token the change is refused.
	resp, _ = c.PostForm(f.srv.URL+"/ui/alerts/"+itoa(f.alertID), url.Values{"action": {"resolve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("triage without CSRF: %s", resp.Status)
	}
	resp, _ = c.PostForm(f.srv.URL+"/ui/alerts/"+itoa(f.alertID), url.Values{"csrf": {csrf}, "action": {"resolve"}, "note": {"checked with IT"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %s", resp.Status)
	}
	a, _ := f.st.GetAlert(t.Context(), f.alertID)
	tl, _ := f.st.Audit(t.Context(), "alert", itoa(f.alertID))
	if a.Status != store.StatusResolved || len(tl) == 0 || tl[len(tl)-1].Actor != "user:ana" || tl[len(tl)-1].Detail["note"] != "checked with IT" {
		t.Errorf("after triage: %+v, timeline %+v", a, tl)
	}

	// A viewer sees the page but the server refuses the change.
	v := f.client(t)
	f.signIn(t, v, "vic")
	_, vbody, _ := get(t, v, f.srv.URL+"/ui/alerts/"+itoa(f.alertID))
	if strings.Contains(vbody, `action="/ui/alerts/`+itoa(f.alertID)+`"`) {
		t.Error("the viewer is shown the triage form")
	}
	vcsrf := csrfRe.FindStringSubmatch(vbody)[1]
	resp, _ = v.PostForm(f.srv.URL+"/ui/alerts/"+itoa(f.alertID), url.Values{"csrf": {vcsrf}, "action": {"reopen"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer triage: %s", resp.Status)
	}
	if a, _ := f.st.GetAlert(t.Context(), f.alertID); a.Status != store.StatusResolved {
		t.Errorf("the viewer changed the alert: %s", a.Status)
	}

	// Signing out ends the session on the server.
	resp, _ = c.PostForm(f.srv.URL+"/ui/logout", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign out: %s", resp.Status)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/alerts"); code != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", code)
	}
}

func TestSafeRedirectAfterSignIn(t *testing.T) {
	f := newFixture(t)
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/ui/\\evil", "/api/v1/alerts"} {
		resp, err := uitest.PostLogin(f.client(t), f.srv.URL, url.Values{"username": {"ana"}, "password": {"correct horse battery"}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		if loc := resp.Header.Get("Location"); loc != "/ui/" {
			t.Errorf("next %q redirected to %q", next, loc)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSignInThrottled: after 10 failed sign-ins for one user name, even
// the right password is refused (429) until the window passes; another
// user from the same address still signs in; the failures are logged with
// the client address.
func TestSignInThrottled(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	h, err := New(f.st, slog.New(slog.NewTextHandler(&logs, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.srv = srv
	c := f.client(t)
	post := func(user, pw string) int {
		resp, err := uitest.PostLogin(c, srv.URL, url.Values{"username": {user}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range signInUserFailures {
		if code := post("ana", "wrong password!!"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := post("ana", "correct horse battery"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password after %d failures: %d, want 429", signInUserFailures, code)
	}
	if _, err := accounts.New(f.st).CreateUser(t.Context(), "bo", accounts.RoleViewer, "correct horse battery", "test"); err != nil {
		t.Fatal(err)
	}
	f.signIn(t, f.client(t), "bo")
	if !strings.Contains(logs.String(), "ui sign-in refused") || !strings.Contains(logs.String(), "ip=127.0.0.1") {
		t.Errorf("failed sign-ins not logged with the address:\n%s", logs.String())
	}
}

// TestSignInCSRF: the sign-in form carries a token that its cookie
// repeats (double submit). A sign-in posted from another site (login
// CSRF: the analyst would work signed in as the attacker) has no cookie,
// or a cookie its form cannot name, and is refused with no session and
// no failed sign-in counted; the form posted back as served signs in.
func TestSignInCSRF(t *testing.T) {
	f := newFixture(t)
	creds := url.Values{"username": {"ana"}, "password": {"correct horse battery"}, "next": {"/ui/alerts"}}
	post := func(c *http.Client, form url.Values, cookie string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/ui/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: loginCookie, Value: cookie})
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	refused := func(what string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", what, resp.Status)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == cookieName && ck.Value != "" {
				t.Errorf("%s: a session cookie was set", what)
			}
		}
	}
	// The attacker's page posts the form with no token at all …
	refused("no token", post(f.client(t), creds, ""))
	// … with a token fetched on their own visit (the victim's browser has
	// no cookie for it, or its own) …
	_, body, _ := get(t, f.client(t), f.srv.URL+"/ui/login")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the sign-in form:\n%s", body)
	}
	withToken := url.Values{"csrf": {m[1]}}
	for k, v := range creds {
		withToken[k] = v
	}
	refused("a token without its cookie", post(f.client(t), withToken, ""))
	refused("a token with another cookie", post(f.client(t), withToken, token()))
	// … or a cookie value planted by some other means, echoed.
	planted := url.Values{"csrf": {"x"}}
	for k, v := range creds {
		planted[k] = v
	}
	refused("a planted short token", post(f.client(t), planted, "x"))
	// None counts as a failed sign-in (more than the ten that throttle a
	// user name): the form as served signs ana in.
	for range 12 {
		refused("no token, again", post(f.client(t), url.Values{"username": {"ana"}, "password": {"wrong password!!"}}, ""))
	}
	f.signIn(t, f.client(t), "ana")
}
