package main

// End-to-end tests: the real binaries, built by the test, talking over
// loopback; a real SQLite file and a real PostgreSQL server.

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bonafide-agent and bonafide-collector once per test run.
func binaries(t *testing.T) (agent, collector string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "bonafide-e2e-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"agent", "collector"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "bonafide-"+pkg), "github.com/bonafide-sec/bonafide/"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "bonafide-agent"), filepath.Join(binDir, "bonafide-collector")
}

func TestMain(m *testing.M) {
	// A copy of this binary started under a tool's name listens on an
	// address and waits: a real process that owns a real listening socket.
	if addr := os.Getenv("BONAFIDE_TEST_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		defer l.Close()
		time.Sleep(2 * time.Minute)
		os.Exit(0)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type server struct {
	cmd       *exec.Cmd
	grpc      string
	http      string
	dataDir   string
	db        string
	collector string
	log       *bytes.Buffer
}

var readyLine = regexp.MustCompile(`msg="collector ready" grpc=(\S+) http=http://(\S+)`)

// startServer runs `bonafide-collector serve`; grpcAddr may be
// 127.0.0.1:0 (the chosen port is read from the log).
func startServer(t *testing.T, collector, dataDir, db, grpcAddr string) *server {
	t.Helper()
	var extra []string
	if db != "" {
		extra = []string{"--db", db}
	}
	return startServerArgs(t, collector, dataDir, append(extra, "--grpc-listen", grpcAddr)...)
}

// startServerArgs runs `bonafide-collector serve` on loopback with extra flags.
func startServerArgs(t *testing.T, collector, dataDir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--sweep-interval", "1s"}, extra...)
	db := ""
	if i := slices.Index(extra, "--db"); i >= 0 {
		db = extra[i+1]
	}
	s := &server{cmd: exec.Command(collector, args...), dataDir: dataDir, db: db, collector: collector, log: &bytes.Buffer{}}
	stderr, _ := s.cmd.StderrPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.log.WriteString(sc.Text() + "\n")
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
		close(ready)
	}()
	select {
	case m, ok := <-ready:
		if !ok {
			t.Fatalf("collector exited before it was ready:\n%s", s.log)
		}
		s.grpc, s.http = m[1], m[2]
	case <-time.After(60 * time.Second):
		t.Fatalf("collector not ready:\n%s", s.log)
	}
	return s
}

func (s *server) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	}
}

// admin runs an admin subcommand against the server's data and returns stdout.
func (s *server) admin(t *testing.T, args ...string) string {
	t.Helper()
	args = append(args, "--data-dir", s.dataDir)
	if s.db != "" {
		args = append(args, "--db", s.db)
	}
	out, err := exec.Command(s.collector, args...).Output()
	if err != nil {
		t.Fatalf("bonafide-collector %v: %v %s", args, err, exitStderr(err))
	}
	return strings.TrimSpace(string(out))
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// api calls the HTTP API and decodes the JSON answer.
func (s *server) api(t *testing.T, method, path, token, body string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.http+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return out
}

func runAgent(t *testing.T, agent string, args ...string) string {
	t.Helper()
	out, err := exec.Command(agent, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bonafide-agent %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		db := ""
		if strings.HasPrefix(dsn, "postgres") {
			db = dsn
		}
		s := startServer(t, collector, t.TempDir(), db, "127.0.0.1:0")
		secret := s.admin(t, "secret", "create", "--name", "e2e")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		analyst := s.admin(t, "token", "create", "--role", "analyst")
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) || !strings.HasPrefix(secret, "bfe_") || !strings.HasPrefix(viewer, "bft_") {
			t.Fatalf("admin output: fingerprint %q secret %q token %q", fp, secret, viewer)
		}

		// A wrong pin: the agent refuses the collector before sending the secret.
		state1, state2 := t.TempDir(), t.TempDir()
		bad := exec.Command(agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", strings.Repeat("ab", 32), "--state-dir", state1)
		if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "does not match the pinned fingerprint") {
			t.Fatalf("enroll with a wrong pin: %v %s", err, out)
		}
		if list := s.admin(t, "secret", "list"); !regexp.MustCompile(`e2e\s+\S+\s+0\s+-\s+never\s+active`).MatchString(list) {
			t.Fatalf("the secret was used despite the wrong pin:\n%s", list)
		}

		// Two agent installations on this one machine: the second looks
		// like a cloned disk (same hardware identity, both reporting). The
		// hardware identity is a claim, not a key: the second gets a device
		// of its own, which records the device whose hardware it claimed.
		out := runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state1)
		if !strings.Contains(out, "enrolled: agent ") {
			t.Fatalf("enroll output: %s", out)
		}
		runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state2)
		runAgent(t, agent, "run", "--once", "--state-dir", state1)
		runAgent(t, agent, "run", "--once", "--state-dir", state2)

		devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
		if len(devices) != 2 {
			t.Fatalf("devices: %v", devices)
		}
		id, claimant := "", ""
		for _, d := range devices {
			if c, _ := d.(map[string]any)["claims_device"].(string); c != "" {
				claimant = d.(map[string]any)["id"].(string)
			} else {
				id = d.(map[string]any)["id"].(string)
			}
		}
		if cd := s.api(t, "GET", "/api/v1/devices/"+claimant, viewer, "", 200); id == "" || cd["claims_device"] != id {
			t.Fatalf("devices %v: want the second installation to claim the first's device %s", devices, id)
		}
		dev := s.api(t, "GET", "/api/v1/devices/"+id, viewer, "", 200)
		host, _ := os.Hostname()
		snap := dev["snapshot"].(map[string]any)
		if got := snap["identity"].(map[string]any)["hostname"]; got != host || dev["hostname"] != host {
			t.Fatalf("snapshot hostname %v, device hostname %v, want %q", got, dev["hostname"], host)
		}
		if n := dev["report_count"].(float64); n != 1 {
			t.Fatalf("report_count %v, want 1", n)
		}
		if agents := dev["agents"].([]any); len(agents) != 1 {
			t.Fatalf("agents %v", agents)
		}

		alerts := s.api(t, "GET", "/api/v1/alerts?rule_id=duplicate_hardware_identity", viewer, "", 200)["alerts"].([]any)
		if len(alerts) != 1 {
			t.Fatalf("alerts: %v", alerts)
		}
		alert := alerts[0].(map[string]any)
		if alert["device_id"] != claimant {
			t.Fatalf("duplicate_hardware_identity on %v, want the claimant %s", alert["device_id"], claimant)
		}
		for _, k := range []string{"id", "rule_id", "title", "severity", "status", "device_id", "hostname", "person", "first_seen", "last_seen", "evidence"} {
			if _, ok := alert[k]; !ok {
				t.Errorf("alert lacks %q: %v", k, alert)
			}
		}
		path := fmt.Sprintf("/api/v1/alerts/%v", alert["id"])
		// Roles are enforced: a viewer cannot change an alert.
		e := s.api(t, "PATCH", path, viewer, `{"status":"resolved"}`, 403)
		if e["error"].(map[string]any)["code"] != "forbidden" {
			t.Fatalf("error %v", e)
		}
		s.api(t, "GET", "/api/v1/alerts", "bft_nonsense", "", 401)
		s.api(t, "PATCH", path, analyst, `{"status":"bogus"}`, 400)
		got := s.api(t, "PATCH", path, analyst, `{"status":"acknowledged","assignee":"sam","note":"looking"}`, 200)
		// The timeline: the rule opened the alert, then the analyst's change.
		if tl := got["timeline"].([]any); got["status"] != "acknowledged" || got["assignee"] != "sam" || len(tl) != 2 ||
			tl[0].(map[string]any)["action"] != "opened" || tl[1].(map[string]any)["action"] != "update" {
			t.Fatalf("patched alert %v", got)
		}
		if open := s.api(t, "GET", "/api/v1/alerts?status=open&rule_id=duplicate_hardware_identity", viewer, "", 200)["alerts"].([]any); len(open) != 0 {
			t.Fatalf("still open: %v", open)
		}

		// A revoked device is cut off: run --once fails and keeps its report queued.
		s.admin(t, "device", "revoke", id)
		cmd := exec.Command(agent, "run", "--once", "--state-dir", state1)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "revoked") {
			t.Fatalf("revoked agent: err %v, output %s", err, out)
		}
	})
}

// freePort finds a loopback port for a server that must come back on the
// same address.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestQueueSurvivesOutageAndKill stops the collector while the agent runs,
// then kills the agent with SIGKILL in the middle of delivering its queue,
// and checks that every queued report arrives exactly once.
func TestQueueSurvivesOutageAndKill(t *testing.T) {
	agent, collector := binaries(t)
	dataDir, state := t.TempDir(), t.TempDir()
	grpcAddr := freePort(t)
	s := startServer(t, collector, dataDir, "", grpcAddr)
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nscan_interval: 10ms\nheartbeat_interval: 10ms\nstart_delay: 0s\n",
		grpcAddr, secret, fp, state), 0o600)
	runAgent(t, agent, "run", "--once", "--config", cfg) // enrolls and delivers report 1
	s.stop()

	// Collector down: the running agent queues heartbeats on disk.
	a := exec.Command(agent, "run", "--config", cfg)
	var alog bytes.Buffer
	a.Stdout, a.Stderr = &alog, &alog
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Process.Kill(); a.Wait() })
	// Let it queue reports: a few hundred on an idle machine, a few dozen
	// on a loaded one (each loop scans the machine).
	time.Sleep(5 * time.Second)
	if !strings.Contains(alog.String(), "collector unreachable") {
		t.Fatalf("agent did not notice the outage:\n%s", alog.String())
	}

	// Collector back: kill the agent as soon as delivery has begun.
	startServer(t, collector, dataDir, "", grpcAddr)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "bonafide.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func() (n int) {
		db.QueryRow(`SELECT COUNT(*) FROM reports`).Scan(&n)
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for count() <= 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	a.Process.Signal(syscall.SIGKILL)
	a.Wait()
	killedAt := count()
	t.Logf("agent killed with %d reports stored", killedAt)

	// Restarted, the agent delivers the rest; --once exits 0 only when the
	// queue is empty.
	runAgent(t, agent, "run", "--once", "--config", cfg)
	rows, err := db.Query(`SELECT sequence FROM reports ORDER BY sequence`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var q int64
		rows.Scan(&q)
		seqs = append(seqs, q)
	}
	// One report before the outage and at least two queued during it: on
	// a loaded machine an agent queued only eight in five seconds.
	if len(seqs) < 3 || len(seqs) <= killedAt {
		t.Fatalf("only %d reports stored (%d when killed)", len(seqs), killedAt)
	}
	for i, q := range seqs { // every sequence number exactly once: nothing lost, nothing twice
		if q != int64(i+1) {
			t.Fatalf("sequence %d at position %d: reports lost or duplicated (%v…)", q, i, seqs[:min(len(seqs), i+3)])
		}
	}
	t.Logf("%d reports delivered exactly once", len(seqs))
}

func TestBrokenPolicyRefusedAndPolicyCommands(t *testing.T) {
	_, collector := binaries(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules", "bad.yaml"), []byte(`rules:
  - id: typo_rule
    title: Typo
    severity: low
    description: refers to a field that does not exist
    scope: device
    condition: device.last_sen > now
`), 0o644)
	for _, args := range [][]string{
		{"serve", "--data-dir", t.TempDir(), "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--policies", dir},
		{"policy", "check", dir},
	} {
		out, err := exec.Command(collector, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "rules/bad.yaml:7:") || !strings.Contains(string(out), "last_sen") {
			t.Fatalf("%v with a broken rule: err %v\n%s", args, err, out)
		}
	}
	good := "../policies"
	out, err := exec.Command(collector, "policy", "check", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rules OK") {
		t.Fatalf("policy check: %v %s", err, out)
	}
	out, err = exec.Command(collector, "policy", "test", good).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\d+ passed, 0 failed$`).Match(out) {
		t.Fatalf("policy test: %v %s", err, out)
	}
}

// TestPeopleEndToEnd imports the HR export, binds a device to its person by
// serial, and shows the person on the device and on its alerts.
func TestPeopleEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	s := startServer(t, collector, t.TempDir(), "", "127.0.0.1:0")
	csvPath := filepath.Join(t.TempDir(), "hr.csv")
	os.WriteFile(csvPath, []byte("email,name,username,device_serial,country,region,city,timezone,work_hours\n"+
		"ana@example.com,Ana Lima,alima,7XK2LM3,US,NY,New York,America/New_York,09:00-17:00\n"+
		"broken,No Email,x,,US,,,America/New_York,09:00-17:00\n"), 0o644)
	cmd := exec.Command(collector, "people", "import", csvPath, "--data-dir", s.dataDir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "hr.csv:3: email") || !strings.Contains(string(out), "imported 1 people, 1 rows refused") {
		t.Fatalf("people import: %v\n%s", err, out)
	}
	admin := s.admin(t, "token", "create", "--role", "admin")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	s.api(t, "POST", "/api/v1/people", viewer, `{"email":"x@example.com"}`, 403)
	s.api(t, "POST", "/api/v1/people", admin, `{"email":"bo@example.com","timezone":"Europe/Paris","work_hours":"08:00-16:00"}`, 200)
	s.api(t, "POST", "/api/v1/people", admin, `{"email":"bo@example.com","timezone":"Nowhere/City"}`, 400)
	if people := s.api(t, "GET", "/api/v1/people", viewer, "", 200)["people"].([]any); len(people) != 2 {
		t.Fatalf("people %v", people)
	}

	// The fixture root's DMI serial is 7XK2LM3: two agents for it. The
	// second claims the first's hardware and gets a device of its own, not
	// bound to Ana (its serial is a claim); the alert fires on it.
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	root := "../agent/internal/hostid/testdata/root-debian"
	st1, st2 := t.TempDir(), t.TempDir()
	for _, st := range []string{st1, st2} {
		runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", st, "--root", root)
	}
	for _, st := range []string{st1, st2} {
		runAgent(t, agent, "run", "--once", "--state-dir", st, "--root", root)
	}
	devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
	var anas, claimant string
	for _, d := range devices {
		d := d.(map[string]any)
		switch {
		case d["claims_device"] != nil && d["person"] == "":
			claimant = d["id"].(string)
		case d["person"] == "ana@example.com" && d["person_binding"] == "device_serial":
			anas = d["id"].(string)
		}
	}
	if len(devices) != 2 || anas == "" || claimant == "" {
		t.Fatalf("devices %v", devices)
	}
	alerts := s.api(t, "GET", "/api/v1/alerts?rule_id=duplicate_hardware_identity", viewer, "", 200)["alerts"].([]any)
	if len(alerts) != 1 || alerts[0].(map[string]any)["device_id"] != claimant ||
		alerts[0].(map[string]any)["evidence"].(map[string]any)["claims_device"] != anas {
		t.Fatalf("alerts %v", alerts)
	}
}
