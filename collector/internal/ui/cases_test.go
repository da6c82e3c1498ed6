package ui

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// farmRules stands in for the rules: a remote-access alert whose evidence
// an attacker chose on every laptop, and the fleet rule on every member
// of a cluster.
type farmRules struct{}

func (farmRules) Evaluate(_ context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	out := []detect.Finding{{RuleID: "remote_session_active", Title: "Remote session active", Severity: "high", Category: "remote_access",
		Evidence: map[string]any{"tool": `<img src=x onerror=alert("tool")>`}}}
	if f.Device.Cluster.ID != "" && f.Device.Cluster.Devices >= 3 {
		out = append(out, detect.Finding{RuleID: "laptop_farm_suspected", Title: "Laptops of several people share one home network",
			Severity: "critical", Category: "fleet", Evidence: map[string]any{"cluster": f.Device.Cluster.ID}})
	}
	return out, nil
}

func (farmRules) AutoResolve(detect.Scope) []string { return nil }

// TestCasePages: the farm's alerts make one case; the queue's default
// view shows the case and no farm alert (view=all shows them all, each
// naming its case); the case page shows hostile strings as text, and an
// analyst assigns the case, adds a note, ticks a step, exports a package
// that verifies and reads the report under its strict policy; a viewer
// cannot tick; ticked alerts open a case by hand.
func TestCasePages(t *testing.T) {
	e := newPageEnv(t, Options{})
	if _, err := e.st.UpsertPerson(t.Context(), store.Person{Email: "o'brien+farm@example.com", Name: `O'Brien <b>x</b>`,
		DeviceSerial: "SN-" + url.PathEscape(hostileHosts[0]), City: "Boise", Country: "US", Timezone: "America/Boise"}, "test"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, h := range hostileHosts {
			e.report(t, h, "198.51.100.9", "f4:92:bf:01:02:03", "KBD-1", farmRules{})
		}
	}
	e.report(t, "bystander", "192.0.2.77", "00:1a:2b:3c:4d:5e", "", farmRules{})
	cs, err := e.st.ListCases(t.Context(), store.CaseFilter{})
	if err != nil || len(cs) != 1 || cs[0].Kind != store.CaseFarm || cs[0].Alerts != 6 {
		t.Fatalf("cases %+v %v, want one farm case of 6 alerts", cs, err)
	}
	path := caseURL(cs[0].ID)
	ana := e.signIn(t, "ana")

	_, queue := ana.get("/ui/alerts")
	if !strings.Contains(queue, `href="`+path+`"`) || strings.Contains(queue, "&lt;script&gt;") || !strings.Contains(queue, "bystander") {
		t.Errorf("default queue: want the case, the bystander's alert and no farm alert:\n%s", queue)
	}
	_, all := ana.get("/ui/alerts?view=all")
	if n := strings.Count(all, `· <a href="`+path+`">case #`); n != 6 {
		t.Errorf("view=all: %d alerts naming the case, want 6", n)
	}

	code, page := ana.get(path)
	if code != 200 {
		t.Fatalf("case page: %d\n%s", code, page)
	}
	for _, bad := range []string{`<script>alert("farm")`, `<svg onload`, `<img src=x`, `<b>x</b>`} {
		if strings.Contains(page, bad) {
			t.Errorf("case page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"What happened", "Response checklist", `<svg xmlns="http://www.w3.org/2000/svg" class="where"`,
		`class="farm-graph"`, "Revoke the 3 laptops now", "&lt;script&gt;alert(&#34;farm&#34;)&lt;/script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("case page lacks %s", want)
		}
	}
	if strings.Contains(page, " style=") || strings.Contains(page, "<script>") {
		t.Error("inline style or script in the case page (the CSP forbids them)")
	}

	if code, _, loc := ana.post(path, url.Values{"action": {"update"}, "owner": {"ana"}, "status": {"investigating"}}); code != http.StatusSeeOther || !strings.HasPrefix(loc, path) {
		t.Errorf("assign: %d %s", code, loc)
	}
	if code, body, _ := ana.post(path, url.Values{"action": {"update"}, "status": {"closed"}}); code != http.StatusBadRequest || !strings.Contains(body, "needs an outcome") {
		t.Errorf("closing without an outcome: %d", code)
	}
	ana.post(path, url.Values{"action": {"note"}, "text": {`<script>alert("note")</script>`}})
	if code, _, _ := ana.post(path+"/steps/notify_hr_legal", url.Values{"done": {"1"}, "note": {"mailed HR"}}); code != http.StatusSeeOther {
		t.Errorf("tick: %d", code)
	}
	_, page = ana.get(path)
	for _, want := range []string{`<dd id="case-owner">ana</dd>`, "by user:ana: mailed HR", "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("after the changes the case page lacks %s", want)
		}
	}
	// The farm page has the where view too.
	if _, farm := ana.get("/ui/farms/" + url.PathEscape(cs[0].Subject)); !strings.Contains(farm, `<svg xmlns="http://www.w3.org/2000/svg" class="where"`) {
		t.Error("the farm page lacks the where view")
	}
	vic := e.signIn(t, "vic")
	if code, _, _ := vic.post(path+"/steps/report_ic3", url.Values{"done": {"1"}}); code != http.StatusForbidden {
		t.Errorf("a viewer ticked a step: %d", code)
	}
	if _, p := vic.get(path); strings.Contains(p, `id="tick-`) || strings.Contains(p, `id="export"`) {
		t.Error("the viewer is offered the checklist or the export")
	}

	// The package and the report.
	resp, err := ana.c.PostForm(e.srv.URL+path+"/package", url.Values{"csrf": {ana.csrf}})
	if err != nil {
		t.Fatal(err)
	}
	zip := make([]byte, 0, 1<<16)
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		zip = append(zip, buf[:n]...)
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	key, err := e.st.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cases.Verify(zip, key.Public().(ed25519.PublicKey)); err != nil || resp.Header.Get("Content-Type") != "application/zip" {
		t.Errorf("exported package: %s, %v", resp.Header.Get("Content-Type"), err)
	}
	resp, err = ana.c.Get(e.srv.URL + path + "/report")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("report: %s, CSP %q", resp.Status, csp)
	}

	// A case by hand from the queue.
	m := regexp.MustCompile(`name="id" value="(\d+)"`).FindStringSubmatch(queue)
	if m == nil {
		t.Fatal("no alert to tick in the queue")
	}
	code, _, loc := ana.post("/ui/alerts", url.Values{"action": {"case"}, "id": {m[1]}, "note": {"Bystander"}, "back": {"/ui/alerts"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/cases/") {
		t.Errorf("case from the queue: %d %s", code, loc)
	}
	_, list := ana.get("/ui/cases")
	if !strings.Contains(list, "Bystander") || !strings.Contains(list, "Suspected laptop farm") {
		t.Errorf("case list:\n%s", list)
	}
}

// TestCasePageChanges: a case of the device that gained AnyDesk and a
// PiKVM between its two snapshots names those items on its timeline,
// with their families, as the device page does, the agent's strings as
// text.
func TestCasePageChanges(t *testing.T) {
	p := newPages(t)
	alerts, err := p.st.ListAlerts(t.Context(), store.AlertFilter{DeviceID: p.device})
	if err != nil || len(alerts) == 0 {
		t.Fatalf("alerts %v %v", alerts, err)
	}
	c, err := p.st.CreateCase(t.Context(), "KVM laptop", []int64{alerts[0].ID}, "user:ana")
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := p.get(t, p.browse(t, "vic"), caseURL(c.ID))
	if code != http.StatusOK {
		t.Fatalf("case page: %d", code)
	}
	inert(t, "case page", body)
	wantIn(t, "case page", body,
		`<span class="tag">device</span> <span class="tag">remote access</span> <span class="host">&lt;img src=x onerror=alert(1)&gt;</span>: remote tool installed: AnyDesk (running)`,
		`<span class="tag">USB</span> <span class="host">&lt;img src=x onerror=alert(1)&gt;</span>: USB device appeared: 1d6b:0104 PiKVM &lt;script&gt;alert(&#34;usb&#34;)&lt;/script&gt; serial CAFEBABE`,
		"display connected: DEL DELL U2720Q serial ABC123", "Wi-Fi network changed: Home → Cafe", "time zone changed: Europe/Berlin → America/New_York",
		"(agent snapshot, report r1, compared with report r0)")
}
