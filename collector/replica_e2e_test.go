package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
)

// replica is a `bonafide-collector serve` process that can be killed and
// started again on the same addresses and data dir.
type replica struct {
	name      string
	collector string
	dataDir   string
	db        string
	env       []string // added to the environment
	args      []string // serve's flags after --data-dir

	grpc, http string // as the ready line says

	mu   sync.Mutex
	log  bytes.Buffer // every run's log, in order
	cmd  *exec.Cmd
	done chan struct{}
}

// newReplica starts a replica; args are serve's flags besides --data-dir.
func newReplica(t testing.TB, name, collector, dataDir, db string, env []string, args ...string) *replica {
	t.Helper()
	r := &replica{name: name, collector: collector, dataDir: dataDir, db: db, env: env, args: args}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

// start runs the process and waits for its ready line.
func (r *replica) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(r.collector, append([]string{"serve", "--data-dir", r.dataDir}, r.args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
		close(ready)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	select {
	case m, ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("%s exited before it was ready:\n%s", r.name, r.logs())
		}
		r.grpc, r.http = m[1], m[2]
	case <-time.After(90 * time.Second):
		t.Fatalf("%s not ready:\n%s", r.name, r.logs())
	}
}

// kill ends the process with SIGKILL: no shutdown, its connections cut.
func (r *replica) kill() { r.end(syscall.SIGKILL) }

func (r *replica) stop() { r.end(syscall.SIGTERM) }

func (r *replica) end(sig syscall.Signal) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	<-done
	cmd.Wait()
}

func (r *replica) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// count is how many log lines match re.
func (r *replica) count(re *regexp.Regexp) int { return len(re.FindAllString(r.logs(), -1)) }

// server is the replica as the other end-to-end tests' helpers take it.
func (r *replica) server() *server {
	return &server{grpc: r.grpc, http: r.http, dataDir: r.dataDir, db: r.db, collector: r.collector, log: &bytes.Buffer{}}
}

// leaseTaken matches the log line of a replica taking a job's lease.
func leaseTaken(job string) *regexp.Regexp {
	if strings.Contains(job, " ") {
		job = `"` + job + `"`
	}
	return regexp.MustCompile(`msg="job lease taken: this replica runs the job" job=` + regexp.QuoteMeta(job) + `\n`)
}

// waitFor polls cond every 100 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holders lists the replicas that took job's lease, with how often.
func holders(job string, rs ...*replica) string {
	var b strings.Builder
	for _, r := range rs {
		if n := r.count(leaseTaken(job)); n > 0 {
			fmt.Fprintf(&b, "%s×%d ", r.name, n)
		}
	}
	return strings.TrimSpace(b.String())
}

// TestReplicasShareCA: a second replica started with --db postgres://… on
// an empty data dir, given only the database key, uses the first one's CA
// and server certificate (no file copied); it enrolls a new agent and
// serves an agent enrolled through the first. Without the key, or with
// another, it refuses to start and says why. A suppression made on one
// replica holds on the other, and lifting it too; a UI session opened on
// one works on the other, its CSRF token included, and a rule disabled
// there is disabled on the first within seconds. A revocation is refused
// by both at once. The periodic jobs run on the first replica only, and
// when it is killed (SIGKILL) the second takes each over. Replicas whose
// settings differ (here the heartbeat interval) warn about it.
func TestReplicasShareCA(t *testing.T) {
	agent, collector := binaries(t)
	dsn := storetest.PostgresDSN(t)
	flags := []string{"--db", dsn, "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--sweep-interval", "1s", "--fleet-recompute-interval", "2s", "--prune-interval", "2s"}
	a := newReplica(t, "A", collector, t.TempDir(), dsn, []string{dbKeyEnv + "="}, flags...)
	key, err := os.ReadFile(filepath.Join(a.dataDir, "db.key"))
	if err != nil {
		t.Fatalf("the first replica wrote no database key: %v", err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key"} {
		if _, err := os.Stat(filepath.Join(a.dataDir, f)); err == nil {
			t.Errorf("the first replica wrote %s: the CA belongs in the database", f)
		}
	}

	// Without the key, or with another, a second replica refuses to start.
	emptyDir := t.TempDir()
	for _, env := range []string{"", dbKeyEnv + "=" + strings.Repeat("ab", 32)} {
		cmd := exec.Command(collector, append([]string{"serve", "--data-dir", emptyDir}, flags...)...)
		cmd.Env = append(os.Environ(), dbKeyEnv+"=")
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		out, err := cmd.CombinedOutput()
		if want := map[bool]string{true: dbKeyEnv, false: "does not open"}[env == ""]; err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("second replica with %q: %v, want a refusal naming %q:\n%s", env, err, want, out)
		}
	}
	// It is started with another heartbeat interval, which both notice.
	b := newReplica(t, "B", collector, emptyDir, dsn, []string{dbKeyEnv + "=" + strings.TrimSpace(string(key))},
		slices.Concat(flags, []string{"--heartbeat-interval", "4m"})...)
	waitFor(t, 30*time.Second, "the replicas did not warn that their heartbeat intervals differ", func() bool {
		return strings.Contains(a.logs(), "heartbeat_interval=4m0s (here 5m0s)") && strings.Contains(b.logs(), "heartbeat_interval=5m0s (here 4m0s)")
	})
	if entries, _ := os.ReadDir(b.dataDir); len(entries) > 1 { // first-run-credentials.txt at most
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the second replica's data dir holds %v", names)
	}
	sa, sb := a.server(), b.server()
	fp := sa.admin(t, "ca", "fingerprint")
	if got := sb.admin(t, "ca", "fingerprint"); got != fp || len(fp) != 64 {
		t.Fatalf("CA fingerprints %q (first) and %q (second)", fp, got)
	}
	if la, lb := serverLeaf(t, a.grpc), serverLeaf(t, b.grpc); !bytes.Equal(la, lb) {
		t.Error("the replicas serve different server certificates")
	}

	secret := sa.admin(t, "secret", "create")
	analyst := sa.admin(t, "token", "create", "--role", "analyst")
	via := func(r *replica) string {
		cfg := filepath.Join(t.TempDir(), "agent.yaml")
		os.WriteFile(cfg, []byte("collector: "+r.grpc+"\n"), 0o600)
		return cfg
	}
	state1, state2 := t.TempDir(), t.TempDir()
	// Enrolled through the first, served by the second.
	runAgent(t, agent, "enroll", "--collector", a.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state1)
	runAgent(t, agent, "run", "--once", "--config", via(b), "--state-dir", state1)
	devices := sb.api(t, "GET", "/api/v1/devices", analyst, "", 200)["devices"].([]any)
	if len(devices) != 1 {
		t.Fatalf("devices: %v", devices)
	}
	device := devices[0].(map[string]any)["id"].(string)

	// A suppression made on the first holds on the second: a second agent
	// on this machine (a cloned identity), enrolled through the second,
	// gets a device of its own that claims this one's hardware (issue 22);
	// suppressed on the first, its report to the second raises no alert.
	runAgent(t, agent, "enroll", "--collector", b.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state2)
	claimant := ""
	for _, d := range sb.api(t, "GET", "/api/v1/devices", analyst, "", 200)["devices"].([]any) {
		if id := d.(map[string]any)["id"].(string); id != device {
			claimant = id
		}
	}
	if claimant == "" {
		t.Fatal("the second agent got no device of its own")
	}
	sup := sa.api(t, "POST", "/api/v1/suppressions", analyst, fmt.Sprintf(`{"rule_id":"duplicate_hardware_identity","device_id":%q,"reason":"lab clone","expires_at":%q}`,
		claimant, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 200)
	runAgent(t, agent, "run", "--once", "--config", via(b), "--state-dir", state2)
	dup := func(s *server) []any {
		return s.api(t, "GET", "/api/v1/alerts?rule_id=duplicate_hardware_identity", analyst, "", 200)["alerts"].([]any)
	}
	if got := dup(sb); len(got) != 0 {
		t.Fatalf("suppressed on the first replica, alerted by the second: %v", got)
	}
	// Lifted on the first, it no longer holds on the second.
	sa.api(t, "DELETE", fmt.Sprintf("/api/v1/suppressions/%v", sup["id"]), analyst, "", 200)
	runAgent(t, agent, "run", "--once", "--config", via(b), "--state-dir", state1)
	runAgent(t, agent, "run", "--once", "--config", via(a), "--state-dir", state2)
	if got := dup(sa); len(got) != 1 {
		t.Fatalf("after the suppression was lifted: alerts %v, want one", got)
	}

	// A UI session opened on the first works on the second, CSRF and all.
	sa.admin(t, "user", "create", "--username", "ana", "--role", "admin", "--password", "correct horse battery")
	cookie := uiSignIn(t, a.http, "ana", "correct horse battery")
	page := uiGet(t, b.http, "/ui/policies", cookie)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the second replica's policies page:\n%s", page)
	}
	if code := uiPost(t, b.http, "/ui/policies/rules/vpn_client_running", cookie, url.Values{"csrf": {m[1]}, "action": {"disable"}, "reason": {"lab"}}); code != http.StatusSeeOther {
		t.Fatalf("disable a rule on the second replica with the first's session: status %d", code)
	}
	if code := uiPost(t, b.http, "/ui/policies/rules/vpn_client_running", cookie, url.Values{"csrf": {"forged"}, "action": {"enable"}}); code != http.StatusForbidden {
		t.Fatalf("a forged CSRF token: status %d, want 403", code)
	}
	enabled := func(s *server, id string) bool {
		for _, r := range s.api(t, "GET", "/api/v1/policies", analyst, "", 200)["rules"].([]any) {
			if r := r.(map[string]any); r["id"] == id {
				return r["enabled"].(bool)
			}
		}
		t.Fatalf("no rule %s", id)
		return false
	}
	waitFor(t, 30*time.Second, "the rule disabled on the second replica is still enabled on the first", func() bool { return !enabled(sa, "vpn_client_running") })

	// Revoked through either, refused by both at once.
	sb.admin(t, "device", "revoke", device)
	for _, r := range []*replica{a, b} {
		cmd := exec.Command(agent, "run", "--once", "--config", via(r), "--state-dir", state1)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "revoked") {
			t.Fatalf("revoked agent at %s: err %v, output %s", r.name, err, out)
		}
	}

	// The jobs run on the first replica, which started first; killed, the
	// second takes each over within a few of its intervals.
	jobs := []string{"sweep", "fleet recompute", "prune"}
	waitFor(t, 30*time.Second, "the first replica holds every job's lease", func() bool {
		for _, j := range jobs {
			if a.count(leaseTaken(j)) != 1 {
				return false
			}
		}
		return true
	})
	for _, j := range jobs {
		if got := holders(j, a, b); got != "A×1" {
			t.Fatalf("%s: lease taken by %s, want the first replica only", j, got)
		}
	}
	a.kill()
	for _, j := range jobs {
		waitFor(t, 60*time.Second, j+": the second replica did not take the lease over", func() bool { return b.count(leaseTaken(j)) == 1 })
		if got := holders(j, a, b); got != "A×1 B×1" {
			t.Errorf("%s: lease taken by %s", j, got)
		}
	}
	if t.Failed() {
		t.Logf("first replica:\n%s\nsecond replica:\n%s", a.logs(), b.logs())
	}
}

// serverLeaf is the leaf certificate the gRPC server at addr presents.
func serverLeaf(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: time.Minute}

// uiSignIn signs in to the web UI at addr and returns the session cookie.
func uiSignIn(t *testing.T, addr, user, password string) *http.Cookie {
	t.Helper()
	resp, err := uitest.PostLogin(noRedirect, "http://"+addr, url.Values{"username": {user}, "password": {password}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "bonafide_session" {
			return c
		}
	}
	t.Fatalf("sign-in at %s: status %d, no session cookie", addr, resp.StatusCode)
	return nil
}

func uiGet(t *testing.T, addr, path string, cookie *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.AddCookie(cookie)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s at %s: status %d", path, addr, resp.StatusCode)
	}
	return string(b)
}

func uiPost(t *testing.T, addr, path string, cookie *http.Cookie, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
