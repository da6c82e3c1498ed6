package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
)

// hookReceiver is a webhook receiver that checks X-Bonafide-Signature
// against the raw body and records every request.
type hookReceiver struct {
	t        *testing.T
	secret   string
	mu       sync.Mutex
	requests []hookRequest
}

type hookRequest struct {
	delivery string
	body     map[string]any
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write(b)
	if got, want := r.Header.Get("X-Bonafide-Signature"), "sha256="+hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(got), []byte(want)) {
		h.t.Errorf("webhook signature %q, want %q", got, want)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		h.t.Errorf("webhook body %s: %v", b, err)
	}
	h.mu.Lock()
	h.requests = append(h.requests, hookRequest{r.Header.Get("X-Bonafide-Delivery"), body})
	h.mu.Unlock()
}

func (h *hookReceiver) got() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.requests...)
}

// startRsyslog runs Debian's rsyslogd in the foreground with imtcp on a
// free loopback port, writing "APP-NAME MSGID MSG" lines to a file. It
// returns the port's address and the file.
func startRsyslog(t *testing.T) (addr, file string) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil { // not on the PATH of a user without /usr/sbin
		rsyslogd, err = exec.LookPath("/usr/sbin/rsyslogd")
	}
	if err != nil {
		storetest.Missing(t, "rsyslogd (apt-get install -y rsyslog)")
	}
	dir := t.TempDir()
	file = filepath.Join(dir, "received.log")
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName=%q)
template(name="line" type="string" string="%%app-name%% %%msgid%% %%msg%%\n")
action(type="omfile" file=%q template="line")
`, dir, filepath.Join(dir, "port"), file)
	os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600)
	cmd := exec.Command(rsyslogd, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslogd.pid"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p, err := os.ReadFile(filepath.Join(dir, "port")); err == nil && len(strings.TrimSpace(string(p))) > 0 {
			return "127.0.0.1:" + strings.TrimSpace(string(p)), file
		}
	}
	t.Fatalf("rsyslogd did not listen: %s", out.String())
	return "", ""
}

// labRules is a policy file of rules lab_1 … lab_n, each firing on the
// fixture's host: rule k raises the k-th alert.
func labRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for k := 1; k <= n; k++ {
		fmt.Fprintf(&b, `  - id: lab_%d
    title: Lab alert %d | a=b
    severity: medium
    description: Lab rule %d fired.
    scope: device
    condition: device.hostname == "deb-laptop-042"
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: deb-laptop-042}}, fires: true}
`, k, k, k)
	}
	return b.String()
}

// TestOutputsEndToEnd: alerts raised by real agent reports reach a signed
// webhook, Debian's rsyslog over TCP (CEF, RFC 5424 octet counting) and an
// OCSF file. The webhook receiver is down while the three alerts are
// raised, with the collector restarted in between: once it is back, all
// three arrive in order, each once (a repeat only as a retry with the same
// X-Bonafide-Delivery).
func TestOutputsEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		sysAddr, sysFile := startRsyslog(t)
		hookAddr := freePort(t) // nothing listens there yet: the receiver is down
		rec := &hookReceiver{t: t, secret: "e2e-secret"}

		dir := t.TempDir()
		pol := filepath.Join(dir, "policies")
		if err := os.CopyFS(pol, policies.FS()); err != nil {
			t.Fatal(err)
		}
		lab := filepath.Join(pol, "rules", "lab.yaml")
		os.WriteFile(lab, []byte(labRules(1)), 0o644)
		os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("e2e-secret\n"), 0o600)
		ocsfFile := filepath.Join(dir, "findings.ocsf.jsonl")
		outputsFile := filepath.Join(dir, "outputs.yaml")
		os.WriteFile(outputsFile, []byte(fmt.Sprintf(`outputs:
  - {name: hook, type: webhook, url: "http://%s/bonafide", secret_file: hook.secret, rules: [lab_*], max_backoff: 1s}
  - {name: siem, type: syslog, address: %q, protocol: tcp, format: cef, rules: [lab_*]}
  - {name: lake, type: ocsf, path: %q, rules: [lab_*]}
`, hookAddr, sysAddr, ocsfFile)), 0o600)

		args := []string{"--grpc-listen", freePort(t), "--http-listen", freePort(t), "--policies", pol,
			"--policy-reload-interval", "100ms", "--outputs", outputsFile, "--public-url", "https://bonafide.test", "--metrics-listen", "127.0.0.1:0"}
		if strings.HasPrefix(dsn, "postgres") {
			args = append(args, "--db", dsn)
		}
		dataDir := t.TempDir()
		s := startServerArgs(t, collector, dataDir, args...)
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		admin := s.admin(t, "token", "create", "--role", "admin")
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		state, root := t.TempDir(), "../agent/internal/hostid/testdata/root-debian"
		runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state, "--root", root)

		// Alert 1, then a restart, then alerts 2 and 3: each rule added
		// (the first two before a start, the third by hot reload) fires
		// on the next report.
		runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)
		alertID := map[string]string{}
		raised := func(rule string) {
			t.Helper()
			a := s.api(t, "GET", "/api/v1/alerts?rule_id="+rule, viewer, "", 200)["alerts"].([]any)
			if len(a) != 1 {
				t.Fatalf("%s alerts: %v", rule, a)
			}
			alertID[rule] = fmt.Sprint(a[0].(map[string]any)["id"])
		}
		raised("lab_1")

		// rsyslog and the OCSF file have alert 1 while the webhook is down.
		cefLine := waitLine(t, sysFile, "|lab_1|")
		for _, want := range []string{"bonafide new CEF:0|Bonafide|bonafide-collector|", `|lab_1|Lab alert 1 \| a=b|5|`, "act=new",
			"externalId=" + alertID["lab_1"], "dhost=deb-laptop-042", "cs1Label=rule cs1=lab_1", "cs2Label=status cs2=open",
			"cs4Label=url cs4=https://bonafide.test/ui/alerts/" + alertID["lab_1"] + " ", "msg=Lab rule 1 fired."} {
			if !strings.Contains(cefLine, want) {
				t.Errorf("rsyslog line lacks %q: %s", want, cefLine)
			}
		}
		var finding struct {
			ClassUID   int `json:"class_uid"`
			ActivityID int `json:"activity_id"`
			TypeUID    int `json:"type_uid"`
			SeverityID int `json:"severity_id"`
			StatusID   int `json:"status_id"`
			Info       struct {
				UID      string
				SrcURL   string `json:"src_url"`
				Analytic struct{ UID string }
			} `json:"finding_info"`
			Device struct{ Hostname string }
		}
		if err := json.Unmarshal([]byte(waitLine(t, ocsfFile, `"lab_1"`)), &finding); err != nil {
			t.Fatal(err)
		}
		if finding.ClassUID != 2004 || finding.ActivityID != 1 || finding.TypeUID != 200401 || finding.SeverityID != 3 || finding.StatusID != 1 ||
			finding.Info.Analytic.UID != "lab_1" || finding.Info.UID != alertID["lab_1"] || finding.Device.Hostname != "deb-laptop-042" ||
			finding.Info.SrcURL != "https://bonafide.test/ui/alerts/"+alertID["lab_1"] {
			t.Errorf("OCSF finding %+v", finding)
		}

		s.stop()
		os.WriteFile(lab, []byte(labRules(2)), 0o644)
		s = startServerArgs(t, collector, dataDir, args...)
		runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)
		raised("lab_2")
		os.WriteFile(lab, []byte(labRules(3)), 0o644)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			p := s.api(t, "GET", "/api/v1/policies", viewer, "", 200)
			if b, _ := json.Marshal(p["rules"]); strings.Contains(string(b), `"lab_3"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lab_3 not loaded: %v", p["active"])
			}
		}
		runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)
		raised("lab_3")

		st := s.api(t, "GET", "/api/v1/outputs", viewer, "", 200)
		hook := st["outputs"].([]any)[0].(map[string]any)
		if hook["name"] != "hook" || hook["backlog"].(float64) < 3 || !strings.Contains(fmt.Sprint(hook["last_error"]), "connection refused") {
			t.Errorf("webhook state while down: %v", hook)
		}
		// The metrics count the failed attempts and the backlog.
		mu := metricsLine.FindStringSubmatch(s.log.String())
		if mu == nil {
			t.Fatalf("no metrics address in the log:\n%s", s.log)
		}
		for _, re := range []string{`(?m)^bonafide_output_delivery_failures_total\{output="hook"\} [1-9]`, `(?m)^bonafide_output_backlog\{output="hook"\} [1-9]`} {
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				resp, err := http.Get(mu[1])
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if regexp.MustCompile(re).Match(b) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("metrics lack %s:\n%s", re, b)
				}
			}
		}

		// The receiver comes back on its address.
		l, err := net.Listen("tcp", hookAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(rec)
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		defer srv.Close()
		deliveredAll := func() bool {
			o := s.api(t, "GET", "/api/v1/outputs", viewer, "", 200)["outputs"].([]any)
			for _, x := range o {
				if x.(map[string]any)["delivered"].(float64) < 3 {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(60 * time.Second); !deliveredAll(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not delivered: %v\nreceived %v", s.api(t, "GET", "/api/v1/outputs", viewer, "", 200), rec.got())
			}
		}
		time.Sleep(2 * time.Second) // anything more would arrive now
		var rules, deliveries []string
		for _, r := range rec.got() {
			if n := len(deliveries); n > 0 && deliveries[n-1] == r.delivery {
				continue // a retry of the same delivery
			}
			if r.body["event"] != "new" || r.body["collector"] != "https://bonafide.test" || r.body["hostname"] != "deb-laptop-042" ||
				r.body["url"] != "https://bonafide.test/ui/alerts/"+alertID[fmt.Sprint(r.body["rule_id"])] {
				t.Errorf("webhook body %v", r.body)
			}
			rules, deliveries = append(rules, fmt.Sprint(r.body["rule_id"])), append(deliveries, r.delivery)
		}
		if strings.Join(rules, ",") != "lab_1,lab_2,lab_3" {
			t.Fatalf("webhook received %v (deliveries %v), want lab_1, lab_2, lab_3 once each in order", rules, deliveries)
		}
		if lines := waitLines(t, sysFile, "|lab_", 3); !strings.Contains(lines[1], "|lab_2|") || !strings.Contains(lines[2], "|lab_3|") {
			t.Errorf("rsyslog lines %q", lines)
		}
		waitLines(t, ocsfFile, `"lab_`, 3)

		// The audit log: admin only, paged.
		s.api(t, "GET", "/api/v1/audit", viewer, "", 403)
		page := s.api(t, "GET", "/api/v1/audit?limit=2", admin, "", 200)
		if len(page["entries"].([]any)) != 2 || page["next_cursor"] == nil {
			t.Fatalf("audit page %v", page)
		}
		rest := s.api(t, "GET", "/api/v1/audit?cursor="+page["next_cursor"].(string), admin, "", 200)["entries"].([]any)
		var opened int
		for _, e := range append(page["entries"].([]any), rest...) {
			if e.(map[string]any)["action"] == "opened" {
				opened++
			}
		}
		if opened != 3 {
			t.Errorf("audit log: %v then %v", page["entries"], rest)
		}
		s.api(t, "GET", "/api/v1/audit?since=yesterday", admin, "", 400)

		// A test event, admin only.
		s.api(t, "POST", "/api/v1/outputs/hook/test", viewer, "", 403)
		if r := s.api(t, "POST", "/api/v1/outputs/hook/test", admin, "", 200); r["status"] != "delivered" {
			t.Fatalf("test event %v", r)
		}
		if got := rec.got(); got[len(got)-1].body["event"] != "test" {
			t.Fatalf("test event body %v", got[len(got)-1].body)
		}
		s.api(t, "POST", "/api/v1/outputs/nope/test", admin, "", 404)

		// A broken edit of the outputs file is refused and shown; the
		// outputs keep running; a good edit clears the error.
		good, _ := os.ReadFile(outputsFile)
		os.WriteFile(outputsFile, []byte(strings.Replace(string(good), "type: syslog", "type: syslogd", 1)), 0o600)
		var refused map[string]any
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if refused = s.api(t, "GET", "/api/v1/outputs", viewer, "", 200); strings.Contains(fmt.Sprint(refused["last_error"]), `type "syslogd"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broken edit not shown: %v", refused)
			}
		}
		if len(refused["outputs"].([]any)) != 3 {
			t.Fatalf("a broken edit changed the outputs: %v", refused)
		}
		os.WriteFile(outputsFile, good, 0o600)
		for deadline := time.Now().Add(30 * time.Second); s.api(t, "GET", "/api/v1/outputs", viewer, "", 200)["last_error"] != nil; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the error of a broken edit stayed after a good one")
			}
		}
	})
}

// waitLine waits for a line of file holding sub and returns it.
func waitLine(t *testing.T, file, sub string) string {
	t.Helper()
	return waitLines(t, file, sub, 1)[0]
}

// waitLines waits for n lines of file holding sub and returns them.
func waitLines(t *testing.T, file, sub string, n int) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines = nil
		if f, err := os.Open(file); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), sub) {
					lines = append(lines, sc.Text())
				}
			}
			f.Close()
		}
		if len(lines) >= n {
			return lines
		}
	}
	t.Fatalf("%s: %d lines with %q, want %d", file, len(lines), sub, n)
	return nil
}
