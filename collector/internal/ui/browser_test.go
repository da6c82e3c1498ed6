package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser starts Debian's Chromium headless for a test, or skips when it
// is not installed (fails under BONAFIDE_REQUIRE_ALL=1). Each returned
// context is a separate browser profile (its own cookies).
func browser(t *testing.T) func() context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	}
	return func() context.Context {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
		actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		// A whole test's browsing; generous, for a 2-core machine under load.
		ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
		t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
		// Start the browser before anyone listens to its events.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("start chromium: %v", err)
		}
		return ctx
	}
}

// artifacts is where screenshots go: $BONAFIDE_ARTIFACTS/ui (CI keeps
// them), else a temporary directory named in the log.
func artifacts(t *testing.T) string {
	dir := os.Getenv("BONAFIDE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bonafide-artifacts")
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestBrowser drives the UI in a real Chromium: an analyst signs in,
// sees the attacker-named laptop as inert text, and triages its alert
// from open to resolved with a note; a viewer sees the alert without the
// triage form, and the server refuses the change the viewer forges. No
// script of the page's data ever runs (no dialog opens). Every page is
// saved as a screenshot.
func TestBrowser(t *testing.T) {
	newBrowser := browser(t)
	f := newFixture(t)
	dir := artifacts(t)
	id := strconv.FormatInt(f.alertID, 10)

	var mu sync.Mutex
	var dialogs []string
	watch := func(ctx context.Context) {
		go func() {
			for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
				if err != nil {
					return
				}
				mu.Lock()
				dialogs = append(dialogs, ev.Message)
				mu.Unlock()
				chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
			}
		}()
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(ctx context.Context, user string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(f.srv.URL+"/ui/alerts"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SetValue(chromedp.ID("username"), user),
			chromedp.SetValue(chromedp.ID("password"), "correct horse battery"),
			chromedp.Submit(chromedp.ID("password")),
			chromedp.WaitVisible(chromedp.CSS("table.queue")),
		); err != nil {
			t.Fatalf("sign in as %s: %v", user, err)
		}
	}

	ana := newBrowser()
	watch(ana)
	if err := chromedp.Do(ana, chromedp.Navigate(f.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	shot(ana, "login")
	signIn(ana, "ana")
	shot(ana, "alerts")

	// The laptop's name is shown as the text it is; no element came of it.
	host, err := chromedp.Run(ana, chromedp.Text(chromedp.CSS("table.queue td.host")))
	if err != nil || host != xssHost {
		t.Errorf("host cell %q (%v), want the literal %q", host, err, xssHost)
	}
	if n, err := chromedp.Run(ana, chromedp.Evaluate[int](`document.querySelectorAll("td.host img, td.host a *").length`)); err != nil || n != 0 {
		t.Errorf("the host cell holds %d elements (%v)", n, err)
	}

	// Triage: open → resolved, with a note.
	if err := chromedp.Do(ana,
		chromedp.Click(chromedp.CSS(`a[href="/ui/alerts/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("form.triage")),
	); err != nil {
		t.Fatal(err)
	}
	shot(ana, "alert")
	if err := chromedp.Do(ana,
		chromedp.SetValue(chromedp.ID("t-action"), "resolve"),
		chromedp.SetValue(chromedp.ID("t-note"), "Checked with IT: the KVM was returned."),
		chromedp.Click(chromedp.CSS("form.triage button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	); err != nil {
		t.Fatal(err)
	}
	shot(ana, "alert-resolved")
	a, _ := f.st.GetAlert(t.Context(), f.alertID)
	tl, _ := f.st.Audit(t.Context(), "alert", id)
	if a.Status != store.StatusResolved || len(tl) == 0 || tl[len(tl)-1].Detail["note"] != "Checked with IT: the KVM was returned." {
		t.Errorf("after triage in the browser: status %s, timeline %+v", a.Status, tl)
	}
	if txt, err := chromedp.Run(ana, chromedp.Text(chromedp.CSS("ol.timeline"))); err != nil || !contains(txt, "user:ana", "open → resolved", "the KVM was returned") {
		t.Errorf("timeline shows %q (%v)", txt, err)
	}
	if err := chromedp.Do(ana, chromedp.Navigate(f.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("ul.tiles"))); err != nil {
		t.Fatal(err)
	}
	shot(ana, "overview")

	// A viewer: no triage form, and a forged change is refused by the server.
	vic := newBrowser()
	watch(vic)
	signIn(vic, "vic")
	if err := chromedp.Do(vic, chromedp.Navigate(f.srv.URL+"/ui/alerts/"+id), chromedp.WaitVisible(chromedp.CSS("ol.timeline"))); err != nil {
		t.Fatal(err)
	}
	shot(vic, "alert-viewer")
	if n, err := chromedp.Run(vic, chromedp.Evaluate[int](`document.querySelectorAll("form.triage, form.suppress").length`)); err != nil || n != 0 {
		t.Errorf("the viewer sees %d triage forms (%v)", n, err)
	}
	status, err := chromedp.Run(vic, chromedp.Evaluate[int](`fetch("/ui/alerts/`+id+`", {method: "POST",
		body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, action: "reopen"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("the viewer's forged change got %d (%v), want 403", status, err)
	}
	if a, _ := f.st.GetAlert(t.Context(), f.alertID); a.Status != store.StatusResolved {
		t.Errorf("the viewer changed the alert to %s", a.Status)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("script from the data ran: dialogs %q", dialogs)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestBrowserTour visits every page of the UI in Chromium as an admin,
// over a fleet with a farm of laptops with hostile host names: each page
// renders, its form fields have labels, nothing from the data runs as
// script, and each is saved as a screenshot. The read-only pages are
// visited again with JavaScript disabled and show the same content.
func TestBrowserTour(t *testing.T) {
	newBrowser := browser(t)
	e := newPageEnv(t, Options{Collector: "collector.example.com:8443", Version: "1.2.3",
		CAFingerprint: "5f0e3c1b9a7d2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f"})
	farmID, ids := seedFarm(t, e)
	device := ids[hostileHosts[0]]
	e.report(t, hostileHosts[0], "198.51.100.9", "f4:92:bf:01:02:03", "KBD-1", fires{detect.Finding{RuleID: "kvm_usb_identity",
		Title: "IP-KVM by its USB identity", Severity: "high", Description: "A PiKVM is plugged in.",
		Evidence: map[string]any{"device": map[string]any{"vendor_id": "1d6b", "product_id": "0104", "product": `<img src=x onerror=alert("usb")>`},
			"logons": []any{map[string]any{"user": "ana", "from": "175.45.176.7", "type": "remote_desktop"}}}}})
	alerts, err := e.st.ListAlerts(t.Context(), store.AlertFilter{})
	if err != nil || len(alerts) == 0 {
		t.Fatalf("the farm raised no alerts: %v", err)
	}
	dir := artifacts(t)

	var mu sync.Mutex
	var dialogs []string
	ctx := newBrowser()
	go func() {
		for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/ui/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), "root"),
		chromedp.SetValue(chromedp.ID("password"), pagePassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	visit := func(name, path, want string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("%s (%s): %v", name, path, err)
		}
		check(t, ctx, dir, name, path, want, unlabelled)
	}
	pages := []struct{ name, path, want string }{
		{"overview", "/ui/", "Overview"},
		{"alerts", "/ui/alerts", alerts[0].Title},
		{"alerts-by-severity", "/ui/alerts?status=all&sort=severity", alerts[0].Title},
		{"alert", "/ui/alerts/" + itoa(alerts[0].ID), "Evidence"},
		{"devices", "/ui/devices", hostileHosts[1]},
		{"device", "/ui/devices/" + device, hostileHosts[0]},
		{"people", "/ui/people", "O'Brien"},
		{"person", "/ui/people/o'brien+farm@example.com", "O'Brien"},
		{"farms", "/ui/farms", farmID},
		{"farm", "/ui/farms/" + farmID, hostileHosts[1]},
		{"policies", "/ui/policies", "laptop_farm_suspected"},
		{"policy-source", "/ui/policies/source?file=rules%2Ffleet.yaml", "laptop_farm_suspected"},
		{"enrollment", "/ui/enrollment", "collector.example.com:8443"},
		{"idp", "/ui/idp", "Identity providers"},
	}
	for _, p := range pages {
		visit(p.name, p.path, p.want)
	}
	// The farm graph holds the hostile names as text only.
	visit("farm", "/ui/farms/"+farmID, "")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg text").length`)); err != nil || n < 3 {
		t.Errorf("the farm graph has %d labels (%v)", n, err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main svg svg, main img").length`)); err != nil || n != 0 {
		t.Errorf("the farm page holds %d elements made of data (%v)", n, err)
	}

	// Forms: a dry-run of a draft rule, and a new enrollment secret.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/ui/policies"),
		chromedp.WaitVisible(chromedp.ID("draft")),
		chromedp.SetValue(chromedp.ID("draft"), "rules:\n  - id: farm_hosts\n    title: Farm hosts\n    severity: low\n    description: Hosts named like the farm.\n    scope: device\n    condition: device.hostname.startsWith(\"farm-\")\n"+
			"    tests:\n      - name: a farm host\n        facts: {now: 2026-01-01T00:00:00Z, device: {id: d1, hostname: farm-9}}\n        fires: true\n"+
			"      - name: a desk\n        facts: {now: 2026-01-01T00:00:00Z, device: {id: d2, hostname: desk-1}}\n        fires: false\n"),
		chromedp.Submit(chromedp.ID("draft")),
		chromedp.WaitVisible(chromedp.ID("dry-run-result")),
	); err != nil {
		t.Fatal(err)
	}
	check(t, ctx, dir, "policies-dry-run", "/ui/policies/dry-run", "farm-3", unlabelled)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/ui/enrollment"),
		chromedp.WaitVisible(chromedp.ID("secret-name")),
		chromedp.SetValue(chromedp.ID("secret-name"), "new hires <b>2026</b>"),
		chromedp.Submit(chromedp.ID("secret-name")),
		chromedp.WaitVisible(chromedp.ID("secret-plain")),
	); err != nil {
		t.Fatal(err)
	}
	body := check(t, ctx, dir, "enrollment-new-secret", "/ui/enrollment", "msiexec /i bonafide-agent-1.2.3-x64.msi", unlabelled)
	if !contains(body, "new hires <b>2026</b>", "sudo apt-get install ./bonafide-agent_1.2.3_amd64.deb") {
		t.Errorf("the new secret's page lacks its name or the deb command:\n%s", body)
	}

	// Without JavaScript the read-only pages show the same content.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("%s without JavaScript: %v", p.name, err)
		}
		if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(txt, p.want) {
			t.Errorf("%s without JavaScript lacks %q (%v)", p.name, p.want, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/ui/devices/"+device), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		t.Fatal(err)
	}
	check(t, ctx, dir, "device-no-javascript", "/ui/devices/"+device, hostileHosts[0], unlabelled)

	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("script from the data ran: dialogs %q", dialogs)
	}
}

// unlabelled lists the visible form fields no label names.
const unlabelled = `Array.from(document.querySelectorAll("input, select, textarea"))
	.filter(el => el.type !== "hidden" && el.type !== "submit" && el.labels.length === 0 && !el.getAttribute("aria-label"))
	.map(el => el.name || el.id)`

// check asserts that the page in ctx shows want in its main part and has
// no unlabelled field, saves its screenshot as name, and returns the
// main part's text.
func check(t *testing.T, ctx context.Context, dir, name, path, want, unlabelled string) string {
	t.Helper()
	txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil || !strings.Contains(txt, want) {
		t.Errorf("%s (%s) lacks %q (%v):\n%s", name, path, want, err, txt[max(0, len(txt)-1500):])
	}
	if fields, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](unlabelled)); err != nil || len(fields) > 0 {
		t.Errorf("%s: fields without a label: %q (%v)", name, fields, err)
	}
	// Long outside values wrap: the page is no wider than the window.
	if over, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); err != nil || over > 0 {
		t.Errorf("%s: the page is %dpx wider than the window (%v)", name, over, err)
	}
	// Outside strings are bidi-isolated: a right-to-left override in a host
	// name ends with the element that holds it.
	if leaky, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("main td, main dd, main li, main h1, main h2, main a")]
		.filter(e => getComputedStyle(e).unicodeBidi !== "isolate").map(e => e.tagName)`)); err != nil || len(leaky) > 0 {
		t.Errorf("%s: elements not bidi-isolated: %v (%v)", name, leaky, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return txt
}

// TestBrowserDeviceMediaPosture opens in Chromium the device page of a
// laptop with a virtual camera, a voice changer, a travel router and
// several accounts, whose names carry markup: the media and posture
// sections show each value as the literal text it is, no element or
// script comes of them, and the page passes the tour's checks (labels,
// width, bidi isolation).
func TestBrowserDeviceMediaPosture(t *testing.T) {
	newBrowser := browser(t)
	e := newPageEnv(t, Options{})
	device := e.ingest(t, "lt-farm-1", "198.51.100.20", farmLaptop(), "media", nil, fires{})
	dir := artifacts(t)
	ctx := newBrowser()
	var mu sync.Mutex
	var dialogs []string
	go func() {
		for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/ui/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), "vic"),
		chromedp.SetValue(chromedp.ID("password"), pagePassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")),
		chromedp.Navigate(e.srv.URL+"/ui/devices/"+device),
		chromedp.WaitVisible(chromedp.CSS("table.media")),
	); err != nil {
		t.Fatal(err)
	}
	txt := check(t, ctx, dir, "device-media-posture", "/ui/devices/"+device, "Cameras and microphones", unlabelled)
	if !contains(txt, "Accounts and admin rights", "OBS Virtual Camera (virtual camera)", "Voicemod (voice changer) by "+xssCamera,
		"ana, "+xssAdmin, "GL.iNet travel router", "/var/log/apt/history.log") {
		t.Errorf("the page lacks media or posture facts:\n%s", txt)
	}
	// Each hostile value is one cell's whole text, and no element.
	for sel, want := range map[string]string{
		"table.media tbody tr:nth-child(3) td:nth-child(2)": xssCamera,
		"table.media tbody tr:nth-child(3) td:nth-child(4)": `</code><script>alert("loc")</script>`,
		"table.installs tbody td.host":                      xssUser,
	} {
		if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))); err != nil || got != want {
			t.Errorf("%s: %q (%v), want the literal %q", sel, got, err, want)
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img, main svg, main script, main b, table.media code script").length`)); err != nil || n != 0 {
		t.Errorf("the page holds %d elements made of data (%v)", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("script from the data ran: dialogs %q", dialogs)
	}
}
