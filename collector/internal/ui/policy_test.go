package ui

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// policyRules are two device rules; the description holds markup, which
// the pages must show as text.
const policyRules = `rules:
  - id: lab_host
    title: Lab host
    severity: high
    description: A <b>lab</b> machine
    scope: device
    auto_resolve: true
    condition: device.hostname.startsWith("lab-")
    evidence: '{"host": device.hostname}'
  - id: quiet_rule
    title: Quiet
    severity: low
    description: never fires
    scope: device
    enabled: false
    condition: "false"
`

// policyEnv is a page environment whose live rules come from a policy
// directory on disk (rules/test.yaml), so that edits can be refused.
func policyEnv(t *testing.T) (*pageEnv, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "test.yaml"), []byte(policyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := detect.Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	return newPageEnv(t, Options{Live: detect.NewLive(rules, time.Now())}), dir
}

func TestPoliciesPageAndSource(t *testing.T) {
	e, dir := policyEnv(t)
	if err := e.st.RecordPolicyVersion(t.Context(), e.live.Engine().Digest(), []string{"lab_host", "quiet_rule"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	v := e.signIn(t, "vic")
	code, body := v.get("/ui/policies")
	if code != 200 {
		t.Fatalf("policies: %d", code)
	}
	for _, want := range []string{
		"<code>lab_host</code>", "Lab host", `<span class="sev sev-high">high</span>`,
		`href="/ui/policies/source?file=rules%2Ftest.yaml#L2"`, "<code>rules/test.yaml:2</code>",
		"<code>quiet_rule</code>", "disabled in its file", "policy-ok",
		"<code>" + e.live.Engine().Digest() + "</code>", // status and versions
	} {
		if !strings.Contains(body, want) {
			t.Errorf("policies page lacks %s", want)
		}
	}
	if strings.Contains(body, `action="/ui/policies/rules/`) || strings.Contains(body, `action="/ui/policies/dry-run`) {
		t.Error("the viewer is shown the disable or dry-run forms")
	}

	// A broken edit is refused: the page says so, prominently, with the
	// loader's error.
	broken := strings.Replace(policyRules, `startsWith("lab-")`, `startsWith(1)`, 1)
	if err := os.WriteFile(filepath.Join(dir, "rules", "test.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rerr := e.live.Reload(os.DirFS(dir), time.Now())
	if rerr == nil {
		t.Fatal("the broken edit loaded")
	}
	_, body = v.get("/ui/policies")
	refused := body[strings.Index(body, "<main>"):]
	if !strings.Contains(refused, `role="alert"`) || !strings.Contains(refused, "The last edit of the policies was refused") ||
		!strings.Contains(refused, "rules/test.yaml:8") {
		t.Errorf("the refused edit is not shown:\n%s", refused[:min(len(refused), 2000)])
	}
	if i, j := strings.Index(refused, "was refused"), strings.Index(refused, "<code>lab_host</code>"); i < 0 || j < 0 || i > j {
		t.Error("the refusal is not above the rules")
	}

	// The source page serves the active set's files, escaped, by line.
	code, src := v.get("/ui/policies/source?file=" + url.QueryEscape("rules/test.yaml"))
	if code != 200 || !strings.Contains(src, `<li id="L2"><code>  - id: lab_host</code></li>`) ||
		!strings.Contains(src, "A &lt;b&gt;lab&lt;/b&gt; machine") || strings.Contains(src, "<b>lab</b>") {
		t.Errorf("source page: %d\n%s", code, src)
	}
	if !strings.Contains(src, `startsWith(&#34;lab-&#34;)`) {
		t.Error("the source page shows the refused edit, not the active set")
	}
	for _, bad := range []string{"../../../../etc/passwd", "/etc/passwd", "rules/../rules/test.yaml", "rules/other.yaml", ""} {
		if code, _ := v.get("/ui/policies/source?file=" + url.QueryEscape(bad)); code != http.StatusNotFound {
			t.Errorf("source of %q: %d", bad, code)
		}
	}
}

func TestDisableRule(t *testing.T) {
	e, _ := policyEnv(t)
	dev := e.report(t, "lab-1", "203.0.113.4", "f4:92:bf:01:02:03", "", e.live)
	alerts := func() []store.Alert {
		list, err := e.st.ListAlerts(t.Context(), store.AlertFilter{DeviceID: dev})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	if a := alerts(); len(a) != 1 || a[0].RuleID != "lab_host" || a[0].Status != store.StatusOpen {
		t.Fatalf("alerts before: %+v", a)
	}
	overrides := func() []store.RuleOverride {
		list, err := e.st.RuleOverrides(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	form := func() url.Values { return url.Values{"action": {"disable"}, "reason": {"too noisy <b>"}} }

	// An analyst's or viewer's forged POST is refused; so is one without
	// the CSRF token.
	for _, user := range []string{"ana", "vic"} {
		if code, _, _ := e.signIn(t, user).post("/ui/policies/rules/lab_host", form()); code != http.StatusForbidden {
			t.Errorf("%s disabling: %d", user, code)
		}
	}
	root := e.signIn(t, "root")
	noCSRF := form()
	noCSRF.Set("csrf", "")
	if code, _, _ := root.post("/ui/policies/rules/lab_host", noCSRF); code != http.StatusForbidden {
		t.Errorf("without CSRF: %d", code)
	}
	if o := overrides(); len(o) != 0 || e.live.IsDisabled("lab_host") {
		t.Fatalf("a refused POST changed the rule: %+v", o)
	}
	if code, _, _ := root.post("/ui/policies/rules/no_such_rule", form()); code != http.StatusNotFound {
		t.Errorf("disabling an unknown rule: %d", code)
	}

	// The admin disables it: stored, audited, applied.
	code, _, loc := root.post("/ui/policies/rules/lab_host", form())
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/policies?") {
		t.Fatalf("disable: %d %q", code, loc)
	}
	if o := overrides(); len(o) != 1 || o[0].RuleID != "lab_host" || o[0].DisabledBy != "user:root" || o[0].Reason != "too noisy <b>" {
		t.Errorf("override: %+v", o)
	}
	audit, err := e.st.Audit(t.Context(), "rule", "lab_host")
	if err != nil || len(audit) != 1 || audit[0].Actor != "user:root" || audit[0].Action != "disable" {
		t.Errorf("audit: %+v %v", audit, err)
	}
	if !e.live.IsDisabled("lab_host") {
		t.Error("the live set still runs the rule")
	}
	facts := detect.Facts{Device: &detect.DeviceFacts{Hostname: "lab-2"}, Now: time.Now()}
	if f, err := e.live.Evaluate(t.Context(), detect.ScopeDevice, facts); err != nil || len(f) != 0 {
		t.Errorf("the disabled rule still fires: %+v %v", f, err)
	}
	// Its open alert stays as it is, even though the condition cleared.
	e.report(t, "lab-1", "203.0.113.4", "f4:92:bf:01:02:03", "", e.live)
	if a := alerts(); len(a) != 1 || a[0].Status != store.StatusOpen {
		t.Errorf("alerts after disabling: %+v", a)
	}
	_, body := root.get("/ui/policies")
	if !strings.Contains(body, "<strong>disabled</strong> by user:root") || !strings.Contains(body, "<q>too noisy &lt;b&gt;</q>") ||
		!strings.Contains(body, `<input type="hidden" name="action" value="enable">`) {
		t.Error("the page does not show the override")
	}
	// Enabled again.
	if code, _, _ := root.post("/ui/policies/rules/lab_host", url.Values{"action": {"enable"}}); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	if o := overrides(); len(o) != 0 || e.live.IsDisabled("lab_host") {
		t.Errorf("after enabling: %+v %v", o, e.live.Disabled())
	}
	if code, _, _ := root.post("/ui/policies/rules/lab_host", url.Values{"action": {"drop"}}); code != http.StatusBadRequest {
		t.Errorf("unknown action: %d", code)
	}
}

func TestPolicyDryRun(t *testing.T) {
	e, _ := policyEnv(t)
	e.report(t, "lab-1", "203.0.113.4", "f4:92:bf:01:02:03", "", e.live)
	e.report(t, `lab-<i>2</i>`, "203.0.113.5", "f4:92:bf:01:02:04", "", e.live)
	e.report(t, "office-1", "203.0.113.6", "f4:92:bf:01:02:05", "", e.live)
	draft := `rules:
  - id: draft_lab
    title: Draft
    severity: medium
    description: d
    scope: device
    condition: device.hostname.startsWith("lab-")
    evidence: '{"host": device.hostname}'
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: lab-9}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: x}}, fires: false}
`
	if code, _, _ := e.signIn(t, "vic").post("/ui/policies/dry-run", url.Values{"draft": {draft}}); code != http.StatusForbidden {
		t.Errorf("viewer dry-run: %d", code)
	}
	ana := e.signIn(t, "ana")
	code, body, _ := ana.post("/ui/policies/dry-run", url.Values{"draft": {draft}})
	if code != 200 {
		t.Fatalf("dry-run: %d", code)
	}
	res := body[strings.Index(body, `id="dry-run-result"`):]
	if !strings.Contains(res, "<strong>2</strong> findings on 3 devices evaluated") || strings.Count(res, "<code>draft_lab</code>") != 3 ||
		!strings.Contains(res, "lab-&lt;i&gt;2&lt;/i&gt;") || strings.Contains(res, "<i>2</i>") || strings.Contains(res, "office-1") {
		t.Errorf("dry-run result:\n%s", res)
	}
	if !strings.Contains(body, "startsWith(&#34;lab-&#34;)") {
		t.Error("the draft is not kept in the form")
	}
	alerts, err := e.st.ListAlerts(t.Context(), store.AlertFilter{RuleID: "draft_lab"})
	if err != nil || len(alerts) != 0 {
		t.Errorf("the dry-run raised alerts: %v %v", alerts, err)
	}

	// A draft that does not load, or fails its own tests, is shown as
	// the error, with file and line.
	for _, c := range []struct{ draft, want string }{
		{"rules:\n  - id: x\n    title: [unclosed\n", "rules/draft.yaml:3"},
		{strings.Replace(draft, "hostname: lab-9", "hostname: lab9", 1), "the draft&#39;s own tests fail"},
		{"   ", "paste a rule file"},
	} {
		code, body, _ := ana.post("/ui/policies/dry-run", url.Values{"draft": {c.draft}})
		if code != http.StatusBadRequest || !strings.Contains(body, "The draft does not load") || !strings.Contains(body, c.want) {
			t.Errorf("draft %q: %d, want %q in\n%s", c.draft, code, c.want, body[strings.Index(body, "<main>"):])
		}
	}
}
