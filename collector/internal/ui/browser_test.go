package ui_test

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

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/chromedp/cdproto/page"
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
		ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
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
			for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
				if err != nil {
					return
				}
				mu.Lock()
				dialogs = append(dialogs, ev.Message)
				mu.Unlock()
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
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
	if n, err := chromedp.Run(ana, chromedp.Evaluate[int](`document.querySelectorAll("td.host img, td.host *").length`)); err != nil || n != 0 {
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
