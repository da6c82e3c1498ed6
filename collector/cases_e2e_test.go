package main

import (
	"archive/zip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Hostile strings in the farm: the host name a farm laptop's agent
// reports, and the name HR's export gives one of the farm's people.
const (
	caseHostileHost = `<img src=x onerror=window.pwned=1>`
	caseHostileName = `Eve <script>window.pwned=2</script>`
)

// TestCaseWorkflowBrowser drives the case workflow end to end in a real
// Chromium against the real collector: the demo fleet's world (fleetsim)
// with one more laptop on the farm's network whose agent reports a
// hostile host name (and whose clock moves to Pyongyang's time zone
// between two scans). The farm produces one case holding every alert of
// its laptops, and the queue's grouped view shows the case instead of
// them without losing any alert; the analyst assigns the case, ticks
// steps (revoking the laptops in one click) and exports the evidence
// package; the report renders with the hostile strings as inert text
// and names the laptop's time zone change on its timeline;
// the package verifies with `bonafide-collector case verify`, and once
// unpacked with sha256sum and openssl. Screenshots go to
// $BONAFIDE_ARTIFACTS/cases.
func TestCaseWorkflowBrowser(t *testing.T) {
	agent, collector := binaries(t)
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	}
	for _, tool := range []string{"sha256sum", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed; skipping", tool)
		}
	}
	sim := fleetsimBinary(t)
	world := t.TempDir()
	if out, err := exec.Command(sim, "world", "--out", world, "--seed", "42").CombinedOutput(); err != nil {
		t.Fatalf("fleetsim world: %v\n%s", err, out)
	}
	manifest := fleetReadManifest(t, filepath.Join(world, "devices.csv"))
	var farmEgress, farmEmail string
	farmHosts := []string{}
	for host, m := range manifest {
		if m.scenario == "farm" {
			farmEgress, farmEmail = m.egress, m.email
			farmHosts = append(farmHosts, host)
		}
	}
	slices.Sort(farmHosts)
	renamePerson(t, filepath.Join(world, "people.csv"), farmEmail, caseHostileName)

	pol := filepath.Join(world, "policies")
	s := startServerArgs(t, collector, t.TempDir(), "--policies", pol, "--geoip", filepath.Join(world, "city.mmdb"),
		"--geoip", filepath.Join(world, "asn.mmdb"))
	s.admin(t, "people", "import", filepath.Join(world, "people.csv"))
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	token := s.admin(t, "token", "create", "--role", "analyst")
	s.admin(t, "user", "create", "--username", "ana", "--role", "analyst", "--password", "correct horse battery")

	state := t.TempDir()
	for range 2 { // the second round sees the farm formed
		if out, err := exec.Command(sim, "run", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp,
			"--state", state, "--seed", "42", "--rounds", "1").CombinedOutput(); err != nil {
			t.Fatalf("fleetsim run: %v\n%s\ncollector log:\n%s", err, out, s.log)
		}
	}
	// One more laptop on the farm's network, named by an attacker.
	root := filepath.Join(t.TempDir(), "root")
	if err := os.CopyFS(root, os.DirFS("../agent/internal/scan/testdata/roots/home-desk")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte(caseHostileHost+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nsource_address: %s\n",
		s.grpc, secret, fp, t.TempDir(), farmEgress), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its clock moves to Pyongyang's time between two scans: the case's
	// timeline and report name that change of its snapshots.
	zone := filepath.Join(root, "etc", "timezone")
	for _, tz := range []string{"America/Boise", "Asia/Pyongyang"} {
		if err := os.WriteFile(zone, []byte(tz+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		runAgent(t, agent, "run", "--once", "--config", cfg, "--root", root)
	}

	// One farm case holding every alert of the farm's laptops.
	hosts := map[string]string{}
	for _, d := range fleetListAll(t, s, "/api/v1/devices", "devices", token) {
		hosts[d["id"].(string)], _ = d["hostname"].(string)
	}
	var farmCase float64
	for _, c := range s.api(t, "GET", "/api/v1/cases?kind=farm", token, "", 200)["cases"].([]any) {
		c := c.(map[string]any)
		if farmCase != 0 {
			t.Fatalf("a second farm case %v", c)
		}
		farmCase = c["id"].(float64)
	}
	if farmCase == 0 {
		t.Fatalf("no farm case; cases %v\ncollector log:\n%s", s.api(t, "GET", "/api/v1/cases?status=all", token, "", 200), s.log)
	}
	inCase := map[string]int{}
	openIDs := map[float64]bool{}
	for _, a := range caseListAll(t, s, "/api/v1/alerts?status=open", "alerts", token) {
		host := hosts[a["device_id"].(string)]
		openIDs[a["id"].(float64)] = true
		if slices.Contains(farmHosts, host) {
			if a["case_id"] != farmCase {
				t.Errorf("farm laptop %s: alert %s in case %v, want %v", host, a["rule_id"], a["case_id"], farmCase)
			}
			inCase[host]++
		}
	}
	for _, h := range farmHosts {
		if inCase[h] == 0 {
			t.Errorf("farm laptop %s has no alert in the case", h)
		}
	}
	// The grouped queue loses no alert: each open alert is either listed
	// one by one or in a listed case.
	grouped := s.api(t, "GET", "/api/v1/alerts?grouped=true&status=open&limit=1000", token, "", 200)
	seen := map[float64]bool{}
	for _, a := range grouped["alerts"].([]any) {
		a := a.(map[string]any)
		seen[a["id"].(float64)] = true
		if slices.Contains(farmHosts, hosts[a["device_id"].(string)]) {
			t.Errorf("the grouped queue lists farm alert %v on its own", a["rule_id"])
		}
	}
	for _, c := range grouped["cases"].([]any) {
		for _, a := range caseListAll(t, s, fmt.Sprintf("/api/v1/alerts?status=open&case_id=%v", c.(map[string]any)["id"]), "alerts", token) {
			seen[a["id"].(float64)] = true
		}
	}
	for id := range openIDs {
		if !seen[id] {
			t.Errorf("open alert %v is neither in the grouped queue nor in a listed case", id)
		}
	}
	t.Logf("%d open alerts: %d listed alone in the grouped queue, %d cases", len(openIDs), len(grouped["alerts"].([]any)), len(grouped["cases"].([]any)))

	// The browser.
	shots := os.Getenv("BONAFIDE_ARTIFACTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "bonafide-artifacts")
	}
	shots = filepath.Join(shots, "cases")
	downloads := t.TempDir()
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
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
	// shot saves the whole page; view (for the README) what the window
	// shows, or one element.
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	view := func(name string, sel string) {
		t.Helper()
		var png []byte
		var err error
		if sel == "" {
			png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		} else {
			png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + s.http
	casePath := fmt.Sprintf("/ui/cases/%d", int64(farmCase))
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/alerts"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), "ana"),
		chromedp.SetValue(chromedp.ID("password"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS("table.queue")),
	); err != nil {
		t.Fatalf("sign in: %v\n%s", err, s.log)
	}
	shot("queue")
	// The queue: the case row, no farm laptop's alert on its own.
	queueText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("queue-table")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(queueText, fmt.Sprintf("Case #%d", int64(farmCase))) {
		t.Errorf("the queue does not show the farm case:\n%s", queueText)
	}
	for _, h := range farmHosts {
		if strings.Contains(queueText, h) {
			t.Errorf("the grouped queue shows farm laptop %s's alert on its own", h)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="`+casePath+`"]`)),
		chromedp.WaitVisible(chromedp.ID("c-owner")),
		chromedp.SetValue(chromedp.ID("c-owner"), "ana"),
		chromedp.SetValue(chromedp.ID("c-status"), "investigating"),
		chromedp.Click(chromedp.ID("c-save")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	); err != nil {
		t.Fatalf("assign the case: %v", err)
	}
	owner, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("case-owner")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("tick-notify_hr_legal")),
		chromedp.WaitVisible(chromedp.CSS("#step-notify_hr_legal.done")),
		chromedp.SetValue(chromedp.ID("n-preserve_evidence"), "package exported for legal"),
		chromedp.Click(chromedp.ID("tick-preserve_evidence")),
		chromedp.WaitVisible(chromedp.CSS("#step-preserve_evidence.done")),
		chromedp.Click(chromedp.ID("tick-revoke_agents")),
		chromedp.WaitVisible(chromedp.CSS("#step-revoke_agents.done")),
	); err != nil {
		t.Fatalf("tick the steps: %v", err)
	}
	if owner != "ana" {
		t.Errorf("case owner %q, want ana", owner)
	}
	shot("case")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+casePath)); err != nil {
		t.Fatal(err)
	}
	view("case-top", "")
	for _, d := range fleetListAll(t, s, "/api/v1/devices", "devices", token) {
		if slices.Contains(farmHosts, hosts[d["id"].(string)]) && d["revoked_at"] == nil {
			t.Errorf("farm laptop %s not revoked by the checklist", hosts[d["id"].(string)])
		}
	}
	// The audit log names the analyst on each tick.
	var ticks []string
	for _, a := range s.api(t, "GET", fmt.Sprintf("/api/v1/cases/%d", int64(farmCase)), token, "", 200)["audit"].([]any) {
		if a := a.(map[string]any); a["action"] == "checklist" {
			ticks = append(ticks, a["actor"].(string)+" "+a["detail"].(map[string]any)["step"].(string))
		}
	}
	if want := []string{"user:ana notify_hr_legal", "user:ana preserve_evidence", "user:ana revoke_agents"}; !slices.Equal(ticks, want) {
		t.Errorf("checklist audit %q, want %q", ticks, want)
	}

	// Export: the browser downloads the package.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("export"))); err != nil {
		t.Fatal(err)
	}
	var pkg string
	for deadline := time.Now().Add(2 * time.Minute); pkg == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(downloads, "*.zip"))
		if len(m) == 1 {
			pkg = m[0]
		}
	}
	if pkg == "" {
		t.Fatal("no package downloaded")
	}
	// The documented commands: case verify against the collector's key,
	// and sha256sum and openssl on the unpacked package.
	keyFile := filepath.Join(t.TempDir(), "collector-signing-key.pem")
	if err := os.WriteFile(keyFile, []byte(s.admin(t, "case", "key")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) { // the download may still be closing
		out, err = exec.Command(collector, "case", "verify", pkg, "--key", keyFile).CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(string(out), "verified") {
		t.Fatalf("case verify: %v\n%s", err, out)
	}
	unpacked := t.TempDir()
	unzipTo(t, pkg, unpacked)
	for _, args := range [][]string{{"sha256sum", "-c", "MANIFEST.sha256"},
		{"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin", "-in", "MANIFEST.sha256", "-sigfile", "MANIFEST.sha256.sig"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = unpacked
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// The exported report, opened from the package as HR would: the
	// hostile strings are text, nothing ran.
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+filepath.Join(unpacked, "report.html")), chromedp.WaitVisible(chromedp.ID("story-h"))); err != nil {
		t.Fatal(err)
	}
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
	if err != nil {
		t.Fatal(err)
	}
	reportText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	shot("report")
	view("report-top", "")
	if pwned {
		t.Error("a hostile string ran as script in the report")
	}
	for _, want := range []string{caseHostileHost, caseHostileName, "What happened", "Where the laptops really were",
		"time zone changed: America/Boise → Asia/Pyongyang"} {
		if !strings.Contains(reportText, want) {
			t.Errorf("the report does not show %q as text", want)
		}
	}
	if imgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("img, script, iframe").length`)); err != nil || imgs != 0 {
		t.Errorf("the report holds %d img/script/iframe elements (%v)", imgs, err)
	}
	// And the case page in the UI, with the where view.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+casePath+"#where-h"), chromedp.WaitVisible(chromedp.CSS("svg.where"))); err != nil {
		t.Fatal(err)
	}
	if pwned, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`)); err != nil {
		t.Fatal(err)
	}
	if pwned {
		t.Error("a hostile string ran as script in the case page")
	}
	shot("case-where")
	view("where", "figure.where-view")
	view("checklist", "#checklist")
	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("dialogs opened: %q", dialogs)
	}
}

// renamePerson sets the name of one person in the HR export.
func renamePerson(t *testing.T, path, email, name string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r[0] == email {
			r[1] = name
		}
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	w.WriteAll(rows)
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func unzipTo(t *testing.T, path, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !fs.ValidPath(f.Name) || strings.Contains(f.Name, "/") {
			t.Fatalf("unexpected file %q in the package", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// caseListAll fetches every page of an API listing whose path has a query.
func caseListAll(t *testing.T, s *server, path, key, token string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		p := path + "&limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		resp := s.api(t, "GET", p, token, "", 200)
		for _, it := range resp[key].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := resp["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}
