//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// presenceBrowser starts Debian's Chromium headless with a DevTools
// virtual authenticator standing for the laptop's platform authenticator
// (CTAP2, internal transport, resident keys, user verification that
// succeeds), or skips when Chromium is not installed (fails under
// BONAFIDE_REQUIRE_ALL=1). localhost resolves to 127.0.0.1 only, so the
// browser's address is 127.0.0.1.
func presenceBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the presence browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("host-resolver-rules", "MAP localhost 127.0.0.1"), chromedp.WindowSize(1000, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return ctx
}

// presenceArtifacts is where the presence screenshots go:
// $BONAFIDE_ARTIFACTS/presence, else a temporary directory.
func presenceArtifacts(t *testing.T) string {
	dir := os.Getenv("BONAFIDE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bonafide-artifacts")
	}
	dir = filepath.Join(dir, "presence")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestPresenceCheckBrowser runs presence checks end to end: a real
// collector, a real agent run against a machine root, and Chromium with a
// virtual platform authenticator answering the pages. It enrols the
// hire's laptop, then checks that a check passes when the agent
// corroborates from the browser's address; fails with
// remote_session_active when the agent's scan at that moment finds a
// remote-desktop session process; fails with egress_mismatch when the
// agent reports from another address (127.0.0.2) than the browser
// (127.0.0.1); that a replayed assertion is refused (on the same check,
// and on a new check, which fails verification); and that an unanswered
// check expires. Failed checks raise presence_check_failed, shown with
// the checks on the person's record.
func TestPresenceCheckBrowser(t *testing.T) {
	agent, collector := binaries(t)
	ctx := presenceBrowser(t)
	shots := presenceArtifacts(t)
	// browse runs browser steps, each batch with a generous deadline so
	// that a page that never gets there fails the test instead of hanging.
	browse := func(steps ...chromedp.Action[chromedp.Void]) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return chromedp.Do(c, steps...)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The laptop: a machine root with the hire's serial number and only
	// the processes the test puts in it.
	idle := startAs(t, "/bin/sleep", t.TempDir(), "sleep", nil, nil, "600")
	root := processRoot(t, "lat-alice", idle.Process.Pid, idle.Process.Pid)
	os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755)
	os.WriteFile(filepath.Join(root, "sys/class/dmi/id/product_serial"), []byte("PRES-0001\n"), 0o644)

	httpAddr := freePort(t)
	_, port, _ := strings.Cut(httpAddr, ":")
	public := "http://localhost:" + port
	// The person is notified through the outputs: a webhook here (the
	// receiver would e-mail them).
	var hookMu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks = append(hooks, string(b))
		hookMu.Unlock()
	}))
	defer hook.Close()
	outputsFile := filepath.Join(t.TempDir(), "outputs.yaml")
	os.WriteFile(outputsFile, fmt.Appendf(nil, "outputs:\n  - name: notify\n    type: webhook\n    url: %s\n    secret: s3cret-s3cret\n    events: [audit]\n", hook.URL), 0o600)
	dataDir := t.TempDir()
	args := []string{"--http-listen", httpAddr, "--public-url", public, "--presence-daily-cap", "10", "--outputs", outputsFile, "--checkin-interval", "2s"}
	s := startServerArgs(t, collector, dataDir, append(args, "--presence-expiry", "5m")...)
	analyst := s.admin(t, "token", "create", "--role", "analyst")
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	csv := filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(csv, []byte("email,name,username,device_serial,country,region,city,timezone,work_hours\n"+
		"alice@example.com,Alice Example,,PRES-0001,US,,,UTC,00:00-24:00\n"), 0o644)
	s.admin(t, "people", "import", csv)

	state := t.TempDir()
	runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state, "--root", root)
	runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)
	// From 127.0.0.2: another egress address than the browser's.
	elsewhere := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(elsewhere, fmt.Appendf(nil, "state_dir: %s\nsource_address: 127.0.0.2\n", state), 0o600)

	// A check cannot be asked of someone who has not enrolled.
	e := s.api(t, "POST", "/api/v1/people/alice@example.com/presence-checks", analyst, "", 409)
	if msg := fmt.Sprint(e["error"]); !strings.Contains(msg, "no enrolled presence credential") {
		t.Fatalf("check before enrolment: %v", e)
	}
	s.api(t, "POST", "/api/v1/people/nobody@example.com/presence-checks", analyst, "", 404)

	// Enrolment, on the onboarding call.
	enrol := s.api(t, "POST", "/api/v1/people/alice@example.com/presence-enrolments", analyst, "", 200)
	link := enrol["link"].(string)
	if !strings.HasPrefix(link, public+"/presence/enrol/") {
		t.Fatalf("enrolment link %q", link)
	}
	if err := browse(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("go"))); err != nil {
		t.Fatal(err)
	}
	shot("enrol-page")
	if err := browse(chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.CSS(`body[data-state="enrolled"]`))); err != nil {
		t.Fatalf("enrolment: %v\n%s", err, s.log)
	}
	shot("enrol-done")
	pres := s.api(t, "GET", "/api/v1/people/alice@example.com/presence", analyst, "", 200)
	creds := pres["credentials"].([]any)
	if pres["enrolled"] != true || len(creds) != 1 || creds[0].(map[string]any)["attestation"] == "" {
		t.Fatalf("presence after enrolment: %v", pres)
	}
	// The link was for one credential.
	if err := browse(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(".problem"))); err != nil {
		t.Fatalf("used enrolment link: %v", err)
	}

	// Record what the browser posts to the check pages' finish endpoint.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var posted [][]byte
	go func() {
		for ev, err := range chromedp.Events(ctx, network.RequestWillBeSent) {
			if err != nil {
				return
			}
			if ev.Request.Method != "POST" || !strings.HasSuffix(ev.Request.URL, "/finish") {
				continue
			}
			var body []byte
			for _, p := range ev.Request.PostDataEntries {
				body = append(body, p.Bytes...)
			}
			mu.Lock()
			posted = append(posted, body)
			mu.Unlock()
		}
	}()

	// waitNotified waits until the running agent has notified the person
	// at the laptop of check id (its first Notify on the desktop's bus),
	// with link's origin but not link,
	// then a few of its check-ins more, and checks that the notification
	// came once, with the agent's text and not the link.
	var desktop *desktopBus
	waitNotified := func(id, link string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); len(desktop.notifications()) == 0; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the agent did not notify the person of check %s", id)
			}
		}
		time.Sleep(5 * time.Second) // the agent checks in every 2s: it must not notify again
		n := desktop.notifications()
		if len(n) != 1 || !strings.HasPrefix(n[0][0], "Presence check") ||
			!strings.Contains(n[0][1], "it starts with "+public+"/presence/check/)") || strings.Contains(n[0][1], link) {
			t.Fatalf("notifications %q", n)
		}
		t.Logf("notified: %q", n[0])
	}
	// check asks for a check, answers it in the browser, lets the agent
	// report (args: how it runs; none: the running agent reports by
	// itself) and returns the check as it ended.
	check := func(name string, viaCLI bool, agentArgs ...string) (id, link string, c map[string]any) {
		t.Helper()
		var req map[string]any
		if viaCLI {
			// An analyst in the terminal: the link alone on stdout.
			link = s.admin(t, "presence", "check", "alice@example.com", "--note", name, "--public-url", public, "--presence-daily-cap", "10")
			req = s.api(t, "GET", "/api/v1/people/alice@example.com/presence", analyst, "", 200)["checks"].([]any)[0].(map[string]any)
			if req["requested_by"] != "cli:"+currentUser() || req["note"] != name {
				t.Fatalf("check asked from the terminal: %v", req)
			}
		} else {
			req = s.api(t, "POST", "/api/v1/people/alice@example.com/presence-checks", analyst, `{"note":"`+name+`"}`, 200)
			link = req["link"].(string)
		}
		id = req["id"].(string)
		if req["state"] != "pending" || !strings.HasPrefix(link, public+"/presence/check/") {
			t.Fatalf("new check: %v %s", req, link)
		}
		if agentArgs == nil {
			waitNotified(id, link)
		}
		if err := browse(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("go"))); err != nil {
			t.Fatal(err)
		}
		shot(name + "-page")
		if err := browse(chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.CSS(`body[data-state="verifying"]`))); err != nil {
			t.Fatalf("%s: answer: %v\n%s", name, err, s.log)
		}
		if agentArgs != nil {
			runAgent(t, agent, append([]string{"run", "--once", "--root", root}, agentArgs...)...)
		}
		if err := browse(chromedp.WaitVisible(chromedp.CSS(`body[data-state="passed"], body[data-state="failed"]`))); err != nil {
			t.Fatalf("%s: outcome: %v\n%s", name, err, s.log)
		}
		shot(name + "-outcome")
		return id, link, s.api(t, "GET", "/api/v1/presence-checks/"+id, analyst, "", 200)
	}
	reasons := func(c map[string]any) []string {
		var out []string
		for _, r := range c["reasons"].([]any) {
			out = append(out, r.(string))
		}
		return out
	}

	// A person at the laptop's screen, to be notified over their session
	// bus.
	desktop = startDesktopBus(t, root)

	// A passing check: the agent, running as a service, learns of the
	// check at its next check-in, notifies the person at the laptop, scans
	// at once once they answered and reports from the browser's address
	// with no remote session and no KVM.
	daemonCfg := filepath.Join(t.TempDir(), "daemon.yaml")
	os.WriteFile(daemonCfg, fmt.Appendf(nil, "state_dir: %s\nstart_delay: 0s\n", state), 0o600)
	daemon := unitCapabilities(t, exec.Command(agent, "run", "--config", daemonCfg, "--root", root))
	var daemonLog strings.Builder
	daemon.Stdout, daemon.Stderr = &daemonLog, &daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	passID, passLink, c := check("check-pass", false)
	daemon.Process.Signal(syscall.SIGTERM)
	daemon.Wait()
	if !strings.Contains(daemonLog.String(), "presence check: scanning at once") {
		t.Errorf("the running agent did not answer the check itself:\n%s", daemonLog.String())
	}
	if c["outcome"] != "passed" || len(reasons(c)) != 0 || c["browser_ip"] != "127.0.0.1" || c["agent_ip"] != "127.0.0.1" || c["agent_report"] == "" {
		t.Fatalf("passing check: %v", c)
	}
	deadline := time.Now().Add(time.Minute)
	for notified := false; !notified; {
		hookMu.Lock()
		for _, h := range hooks {
			notified = notified || strings.Contains(h, `"presence_check_requested"`) && strings.Contains(h, passLink) && strings.Contains(h, "alice@example.com")
		}
		hookMu.Unlock()
		if !notified && time.Now().After(deadline) {
			t.Fatalf("no notification with the check's link reached the webhook: %q", hooks)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	if len(posted) != 1 || len(posted[0]) == 0 {
		t.Fatalf("recorded %d posts to finish", len(posted))
	}
	replay := posted[0]
	mu.Unlock()

	// A remote-desktop session process runs on the laptop at the moment
	// of the check: the agent's scan at once finds it.
	rd := startAs(t, "/bin/sleep", t.TempDir(), "Remotely_Desktop", nil, nil, "600")
	rdLink := filepath.Join(root, "proc", strconv.Itoa(rd.Process.Pid))
	if err := os.Symlink(fmt.Sprintf("/proc/%d", rd.Process.Pid), rdLink); err != nil {
		t.Fatal(err)
	}
	_, _, c = check("check-remote-session", true, "--state-dir", state)
	if c["outcome"] != "failed" || !slices.Equal(reasons(c), []string{"remote_session_active"}) ||
		!strings.Contains(fmt.Sprint(c["observation"]), "remotely") {
		t.Fatalf("check during a remote session: %v", c)
	}
	os.Remove(rdLink)

	// Answered from another address than the laptop's egress.
	_, _, c = check("check-egress", false, "--config", elsewhere)
	if c["outcome"] != "failed" || !slices.Equal(reasons(c), []string{"egress_mismatch"}) || c["agent_ip"] != "127.0.0.2" {
		t.Fatalf("check from another address: %v", c)
	}

	// The passing check's assertion, replayed. On its own check: refused,
	// the check stays passed.
	status, _ := postJSON(t, passLink+"/finish", replay)
	if status != http.StatusConflict {
		t.Fatalf("replay on the answered check: status %d", status)
	}
	if c := s.api(t, "GET", "/api/v1/presence-checks/"+passID, analyst, "", 200); c["outcome"] != "passed" {
		t.Fatalf("replayed check changed: %v", c)
	}
	// On a new check (its challenge begun): it does not verify.
	req := s.api(t, "POST", "/api/v1/people/alice@example.com/presence-checks", analyst, "", 200)
	if status, body := postJSON(t, req["link"].(string)+"/begin", nil); status != 200 {
		t.Fatalf("begin: %d %s", status, body)
	}
	if status, body := postJSON(t, req["link"].(string)+"/finish", replay); status != 200 || !strings.Contains(body, "verification_failed") {
		t.Fatalf("replay on a new check: %d %s", status, body)
	}
	c = s.api(t, "GET", "/api/v1/presence-checks/"+req["id"].(string), analyst, "", 200)
	if c["outcome"] != "failed" || !slices.Equal(reasons(c), []string{"verification_failed"}) {
		t.Fatalf("replayed assertion: %v", c)
	}

	// The failures raised presence_check_failed, a farm co-signal.
	alerts := s.api(t, "GET", "/api/v1/alerts?rule_id=presence_check_failed", analyst, "", 200)["alerts"].([]any)
	if len(alerts) != 1 || alerts[0].(map[string]any)["person"] != "alice@example.com" || alerts[0].(map[string]any)["severity"] != "high" {
		t.Fatalf("presence alerts: %v", alerts)
	}

	// An unanswered check expires: the collector again, with a short expiry.
	s.stop()
	s = startServerArgs(t, collector, dataDir, append(args, "--presence-expiry", "2s")...)
	req = s.api(t, "POST", "/api/v1/people/alice@example.com/presence-checks", analyst, "", 200)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		c = s.api(t, "GET", "/api/v1/presence-checks/"+req["id"].(string), analyst, "", 200)
		if c["outcome"] == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check never expired: %v\n%s", c, s.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !slices.Equal(reasons(c), []string{"expired"}) {
		t.Fatalf("expired check: %v", c)
	}
	if err := browse(chromedp.Navigate(req["link"].(string)), chromedp.WaitVisible(chromedp.CSS(`body[data-state="failed"]`))); err != nil {
		t.Fatal(err)
	}
	shot("check-expired")
	if status, _ := postJSON(t, req["link"].(string)+"/begin", nil); status != http.StatusConflict {
		t.Fatalf("begin on an expired check: %d", status)
	}

	// The person's record: enrolment and every check, newest first.
	pres = s.api(t, "GET", "/api/v1/people/alice@example.com/presence", analyst, "", 200)
	var outcomes []string
	for _, c := range pres["checks"].([]any) {
		m := c.(map[string]any)
		outcomes = append(outcomes, fmt.Sprint(m["outcome"], m["reasons"]))
	}
	want := []string{"failed[expired]", "failed[verification_failed]", "failed[egress_mismatch]", "failed[remote_session_active]", "passed[]"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("checks %v, want %v", outcomes, want)
	}

	// The person page shows the enrolment and the checks.
	s.admin(t, "user", "create", "--username", "ana", "--role", "analyst", "--password", "correct horse battery")
	if err := browse(
		chromedp.Navigate(public+"/ui/people/alice@example.com"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), "ana"),
		chromedp.SetValue(chromedp.ID("password"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS("table.presence-checks")),
	); err != nil {
		t.Fatalf("person page: %v", err)
	}
	section, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[aria-labelledby="presence"]`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Enrolled", "remote_session_active", "egress_mismatch", "verification_failed", "expired", "passed", "127.0.0.2"} {
		if !strings.Contains(section, w) {
			t.Errorf("person page's presence section lacks %q:\n%s", w, section)
		}
	}
	shot("person-page")
}

// postJSON posts body to url and returns the status and the answer.
func postJSON(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPresenceCLI: an analyst in the terminal creates an enrolment link
// (printed alone on stdout, opening the collector's enrolment page) and
// is refused a check, as by the API, before the person enrolled, for an
// unknown person and without --public-url. (A check asked from the
// terminal and answered is in TestPresenceCheckBrowser.)
func TestPresenceCLI(t *testing.T) {
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		db := []string{}
		if strings.HasPrefix(dsn, "postgres") {
			db = []string{"--db", dsn}
		}
		root := processRoot(t, "lat-bob", os.Getpid(), os.Getpid())
		os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755)
		os.WriteFile(filepath.Join(root, "sys/class/dmi/id/product_serial"), []byte("PRES-CLI-1\n"), 0o644)
		httpAddr := freePort(t)
		_, port, _ := strings.Cut(httpAddr, ":")
		public := "http://localhost:" + port
		s := startServerArgs(t, collector, t.TempDir(), append(db, "--http-listen", httpAddr, "--public-url", public)...)
		csv := filepath.Join(t.TempDir(), "people.csv")
		os.WriteFile(csv, []byte("email,name,username,device_serial,country,region,city,timezone,work_hours\n"+
			"bob@example.com,Bob Example,,PRES-CLI-1,US,,,UTC,00:00-24:00\n"), 0o644)
		s.admin(t, "people", "import", csv)
		state := t.TempDir()
		runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", s.admin(t, "secret", "create"), "--ca-fingerprint", s.admin(t, "ca", "fingerprint"),
			"--state-dir", state, "--root", root)
		runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)

		cli := func(args ...string) (string, string, error) {
			cmd := exec.Command(collector, append(append(args, "--data-dir", s.dataDir), db...)...)
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			return strings.TrimSpace(out.String()), errOut.String(), err
		}
		link, info, err := cli("presence", "enrol-link", "bob@example.com", "--public-url", public, "--roaming")
		if err != nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(public)+`/presence/enrol/[A-Za-z0-9_-]{43}$`).MatchString(link) ||
			!strings.Contains(info, "bob@example.com on device dev_") {
			t.Fatalf("enrol-link: %v %q %s", err, link, info)
		}
		resp, err := http.Get("http://" + httpAddr + strings.TrimPrefix(link, public))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), "Bob Example") {
			t.Fatalf("the enrolment page of the link: %d\n%s", resp.StatusCode, page)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"presence", "check", "bob@example.com", "--public-url", public}, "no enrolled presence credential"},
			{[]string{"presence", "check", "nobody@example.com", "--public-url", public, "--note", "x"}, "no such person"},
			{[]string{"presence", "enrol-link", "bob@example.com", "--device", "dev_other", "--public-url", public}, "name the device_id"},
			{[]string{"presence", "check", "bob@example.com"}, "--public-url is required"},
			{[]string{"presence", "check", "--public-url", public}, "needs the person's e-mail address"},
		} {
			out, errOut, err := cli(c.args...)
			if err == nil || out != "" || !strings.Contains(errOut, c.want) {
				t.Errorf("%v: %v, stdout %q, stderr %q; want a failure saying %q", c.args, err, out, errOut, c.want)
			}
		}
	})
}
