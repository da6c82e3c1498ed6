package presence

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/go-webauthn/webauthn/webauthn"
)

// fixture is a store with alice, whose laptop reported once, and the
// presence service on a clock the test moves.
type fixture struct {
	st     *store.Store
	svc    *Service
	rules  *detect.Live
	clock  time.Time
	device string
	agent  store.Agent
}

// monday10 is within alice's declared work hours (09:00-17:00 UTC).
var monday10 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newFixture(t testing.TB, dsn string, cfg Config) *fixture {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, dsn)
	engine, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, rules: detect.NewLive(engine, monday10), clock: monday10}
	if _, err := st.UpsertPerson(ctx, store.Person{Email: "alice@example.com", Name: "Alice Example", DeviceSerial: "SN-A",
		Timezone: "UTC", WorkHours: "09:00-17:00"}, "test"); err != nil {
		t.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := store.DeviceIdentity{SerialNumber: "SN-A", Hostname: "lat-alice", OSFamily: "linux", AgentVersion: "1.0.0"}
	if f.device, err = st.Enroll(ctx, store.Enrollment{AgentID: "agent-a", SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-a",
		Identity: id, CertSerial: "c1", CertNotAfter: monday10.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if f.agent, err = st.AgentByID(ctx, "agent-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ingest(ctx, store.IngestBatch{Agent: f.agent, IP: "198.51.100.1", ReceivedAt: monday10, ReportInterval: time.Hour,
		Reports: []store.IngestReport{{ReportID: "00000000-0000-4000-8000-000000000001", Sequence: 1, CreatedAt: monday10, Identity: id}}}, f.rules); err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://bonafide.example.com"
	}
	if f.svc, err = New(st, f.rules, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	f.svc.now = func() time.Time { return f.clock }
	return f
}

// enrol creates an enrolment link and registers a credential through it
// as the enrolment page would (the WebAuthn ceremony itself is the
// browser test's).
func (f *fixture) enrol(t testing.TB) {
	t.Helper()
	e, err := f.svc.CreateEnrolment(t.Context(), "alice@example.com", "", false, "token:test")
	if err != nil {
		t.Fatal(err)
	}
	if e.DeviceID != f.device || !strings.HasPrefix(e.Link, "https://bonafide.example.com/presence/enrol/") {
		t.Fatalf("enrolment %+v", e)
	}
	token := strings.TrimPrefix(e.Link, "https://bonafide.example.com/presence/enrol/")
	record, _ := json.Marshal(webauthn.Credential{ID: []byte("credential-1"), PublicKey: []byte{1, 2, 3}})
	c := presencestore.Credential{ID: "Y3JlZGVudGlhbC0x", Person: "alice@example.com", DeviceID: f.device, UserHandle: "aGFuZGxl",
		Record: record, Attestation: "none", CreatedBy: "token:test", CreatedAt: f.clock}
	if err := f.svc.checks.AddCredential(t.Context(), tokenHash(token), c); err != nil {
		t.Fatal(err)
	}
	// An enrolment link registers one credential.
	c.ID = "other"
	if err := f.svc.checks.AddCredential(t.Context(), tokenHash(token), c); !errors.Is(err, presencestore.ErrDone) {
		t.Fatalf("second credential through one link: %v", err)
	}
}

// TestRequestRefusals: a check is refused for an unknown person (not
// found), a person without a credential, outside the declared work hours
// and beyond the daily cap; without a public URL presence is disabled.
func TestRequestRefusals(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		f := newFixture(t, dsn, Config{DailyCap: 2})
		if _, err := f.svc.Request(ctx, "nobody@example.com", "", "", "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown person: %v", err)
		}
		if _, err := f.svc.Request(ctx, "alice@example.com", "", "", "a"); !errors.Is(err, ErrNotEnrolled) {
			t.Fatalf("not enrolled: %v", err)
		}
		f.enrol(t)
		if _, err := f.svc.Request(ctx, "alice@example.com", "dev_other", "", "a"); !errors.Is(err, ErrNotEnrolled) {
			t.Fatalf("a device without a credential: %v", err)
		}
		if _, err := f.svc.Request(ctx, "alice@example.com", "", strings.Repeat("x", maxNote+1), "a"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("long note: %v", err)
		}
		f.clock = monday10.Add(8 * time.Hour) // 18:00 UTC
		if _, err := f.svc.Request(ctx, "alice@example.com", "", "", "a"); !errors.Is(err, ErrOutsideWorkHours) {
			t.Fatalf("outside work hours: %v", err)
		}
		f.clock = monday10
		for i := range 2 {
			c, err := f.svc.Request(ctx, "alice@example.com", "", "", "a")
			if err != nil || c.State != presencestore.Pending || c.DeviceID != f.device || !c.ExpiresAt.Equal(monday10.Add(DefaultExpiry)) {
				t.Fatalf("check %d: %+v %v", i, c, err)
			}
		}
		if _, err := f.svc.Request(ctx, "alice@example.com", "", "", "a"); !errors.Is(err, presencestore.ErrCap) {
			t.Fatalf("third check in a day: %v", err)
		}
		f.clock = monday10.AddDate(0, 0, 1).Add(time.Minute)
		if _, err := f.svc.Request(ctx, "alice@example.com", "", "", "a"); err != nil {
			t.Fatalf("a day later: %v", err)
		}

		off, err := New(f.st, f.rules, Config{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := off.Request(ctx, "alice@example.com", "", "", "a"); !errors.Is(err, ErrDisabled) {
			t.Fatalf("without a public URL: %v", err)
		}
		// A UI reached by address (as single sign-on allows) starts, with
		// presence checks off: WebAuthn needs a domain name.
		byIP, err := New(f.st, f.rules, Config{PublicURL: "http://127.0.0.1:8080"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("a public URL with an IP address: %v", err)
		}
		if _, err := byIP.Request(ctx, "alice@example.com", "", "", "a"); !errors.Is(err, ErrDisabled) {
			t.Fatalf("with a public URL by IP address: %v", err)
		}
	})
}

func snapshot(remote bool, kvm bool) *agentv1.HostSnapshot {
	sn := &agentv1.HostSnapshot{
		RemoteAccess: &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "rustdesk", Category: "remote_desktop", ActiveSession: false}}},
		Sessions:     &agentv1.Sessions{Current: []*agentv1.LoginSession{{User: "alice", Type: agentv1.LoginSession_TYPE_CONSOLE}}},
	}
	if remote {
		sn.RemoteAccess.Tools = append(sn.RemoteAccess.Tools, &agentv1.RemoteTool{ToolId: "anydesk", Category: "remote_desktop", ActiveSession: true})
	}
	if kvm {
		sn.Peripherals = &agentv1.Peripherals{Findings: []*agentv1.PeripheralFinding{{Kind: "usb_identity", Family: "pikvm", Name: "PiKVM",
			Category: "ip_kvm", Source: "usb", Device: "1-2"}}}
	}
	return sn
}

// TestCheckLifecycle follows checks from request to outcome: the agent is
// asked only once the assertion verified; its report decides; a failure
// raises presence_check_failed (category presence: a farm co-signal)
// and a retried report changes nothing; an unanswered check expires;
// every step is audited, and the request's audit entry (the outputs'
// notification) carries the link.
func TestCheckLifecycle(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		f := newFixture(t, dsn, Config{})
		f.enrol(t)
		ip := netip.MustParseAddr("198.51.100.7")
		assert := func(c Check, browser string) {
			t.Helper()
			if id, err := f.svc.AwaitingAgent(ctx, f.device); err != nil || id != "" {
				t.Fatalf("agent asked before the assertion: %q %v", id, err)
			}
			if err := f.svc.checks.AssertCheck(ctx, c.ID, "Y3JlZGVudGlhbC0x", []byte(`{}`), browser, f.clock, f.clock.Add(DefaultExpiry)); err != nil {
				t.Fatal(err)
			}
			if id, err := f.svc.AwaitingAgent(ctx, f.device); err != nil || id != c.ID {
				t.Fatalf("awaiting agent: %q %v", id, err)
			}
		}

		// Remote session and KVM at the moment of the check.
		bad, err := f.svc.Request(ctx, "alice@example.com", "", "note", "token:ana")
		if err != nil {
			t.Fatal(err)
		}
		assert(bad, "198.51.100.7")
		if err := f.svc.Corroborate(ctx, "dev_other", bad.ID, "r1", ip, snapshot(true, true)); err == nil {
			t.Fatal("another device's report corroborated the check")
		}
		if err := f.svc.Corroborate(ctx, f.device, bad.ID, "r1", ip, snapshot(true, true)); err != nil {
			t.Fatal(err)
		}
		c, err := f.svc.checks.GetCheck(ctx, bad.ID)
		if err != nil || c.Outcome != presencestore.Failed || !slices.Equal(c.Reasons, []string{ReasonRemoteSessionActive, ReasonKVMAttached}) ||
			c.AgentIP != "198.51.100.7" || c.AgentReport != "r1" || !strings.Contains(string(c.Observation), "anydesk") {
			t.Fatalf("failed check: %+v %v", c, err)
		}
		alerts, err := f.st.ListAlerts(ctx, store.AlertFilter{RuleID: RuleID})
		if err != nil || len(alerts) != 1 || alerts[0].Severity != "high" || alerts[0].Person != "alice@example.com" || alerts[0].Evidence["check_id"] != bad.ID {
			t.Fatalf("alerts %+v %v", alerts, err)
		}
		// A retried report finds the check judged.
		if err := f.svc.Corroborate(ctx, f.device, bad.ID, "r1", ip, snapshot(false, false)); err != nil {
			t.Fatal(err)
		}
		if c2, _ := f.svc.checks.GetCheck(ctx, bad.ID); c2.Outcome != presencestore.Failed {
			t.Fatalf("retried report changed the check: %+v", c2)
		}

		// From the browser's address, nothing remote: passed.
		f.clock = f.clock.Add(time.Minute)
		good, err := f.svc.Request(ctx, "alice@example.com", "", "", "token:ana")
		if err != nil {
			t.Fatal(err)
		}
		assert(good, "198.51.100.7")
		if err := f.svc.Corroborate(ctx, f.device, good.ID, "r2", ip, snapshot(false, false)); err != nil {
			t.Fatal(err)
		}
		if c, _ := f.svc.checks.GetCheck(ctx, good.ID); c.Outcome != presencestore.Passed || len(c.Reasons) != 0 {
			t.Fatalf("passing check: %+v", c)
		}
		var actions []string
		audit, _ := f.st.Audit(ctx, "presence_check", good.ID)
		for _, e := range audit {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, []string{"presence_check_requested", "presence_check_asserted", "presence_check_passed"}) ||
			!strings.HasPrefix(audit[0].Detail["link"].(string), "https://bonafide.example.com/presence/check/") {
			t.Fatalf("audit %+v", audit)
		}

		// Nobody answers: expired, once.
		f.clock = f.clock.Add(time.Minute)
		late, err := f.svc.Request(ctx, "alice@example.com", "", "", "token:ana")
		if err != nil {
			t.Fatal(err)
		}
		f.clock = f.clock.Add(DefaultExpiry)
		if n, err := f.svc.Expire(ctx); err != nil || n != 1 {
			t.Fatalf("expire: %d %v", n, err)
		}
		if n, err := f.svc.Expire(ctx); err != nil || n != 0 {
			t.Fatalf("expire again: %d %v", n, err)
		}
		if c, _ := f.svc.checks.GetCheck(ctx, late.ID); c.Outcome != presencestore.Failed || !slices.Equal(c.Reasons, []string{ReasonExpired}) {
			t.Fatalf("expired check: %+v", c)
		}
		if err := f.svc.checks.AssertCheck(ctx, late.ID, "x", []byte(`{}`), "198.51.100.7", f.clock, f.clock); !errors.Is(err, presencestore.ErrDone) {
			t.Fatalf("assertion on an expired check: %v", err)
		}
		checks, err := f.svc.checks.ListChecks(ctx, "alice@example.com", 10)
		if err != nil || len(checks) != 3 || checks[0].ID != late.ID {
			t.Fatalf("checks %+v %v", checks, err)
		}
	})
}

// TestPagesRefuseJunk: malformed and unknown tokens get nothing; a body
// that is not a WebAuthn answer is refused and leaves the check open; the
// pages carry a CSP without inline script.
func TestPagesRefuseJunk(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "bonafide.db"), Config{})
	f.enrol(t)
	c, err := f.svc.Request(t.Context(), "alice@example.com", "", "", "a")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.svc.Handler())
	defer srv.Close()
	do := func(method, path, body string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	checkPath := strings.TrimPrefix(c.Link, "https://bonafide.example.com")
	status, body, h := do("GET", checkPath, "")
	if status != 200 || !strings.Contains(body, "Alice Example") || !strings.Contains(body, `data-state="pending"`) ||
		!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("check page: %d %v\n%s", status, h, body)
	}
	for _, p := range []string{"/presence/check/short", "/presence/check/" + strings.Repeat("A", 43), "/presence/enrol/" + strings.Repeat("A", 43)} {
		if status, _, _ := do("GET", p, ""); status != 404 {
			t.Errorf("GET %s: %d", p, status)
		}
		if status, _, _ := do("POST", p+"/begin", ""); status != 404 {
			t.Errorf("POST %s/begin: %d", p, status)
		}
	}
	if status, body, _ := do("POST", checkPath+"/begin", ""); status != 200 || !strings.Contains(body, `"challenge"`) {
		t.Fatalf("begin: %d %s", status, body)
	}
	for _, junk := range []string{"", "{}", "not json", `{"id":"x","rawId":"x","type":"public-key","response":{}}`} {
		if status, _, _ := do("POST", checkPath+"/finish", junk); status != 400 && status != 409 {
			t.Errorf("finish with %q: %d", junk, status)
		}
	}
	if c, _ := f.svc.checks.GetCheck(t.Context(), c.ID); c.State != presencestore.Pending {
		t.Fatalf("junk changed the check: %+v", c)
	}
}

// TestObserve reads what the check needs from a snapshot.
func TestObserve(t *testing.T) {
	sn := snapshot(true, true)
	sn.Sessions.Current = append(sn.Sessions.Current,
		&agentv1.LoginSession{User: "op", Type: agentv1.LoginSession_TYPE_REMOTE_DESKTOP, SourceAddress: "203.0.113.5"},
		&agentv1.LoginSession{User: "dev", Type: agentv1.LoginSession_TYPE_SSH, SourceAddress: "192.0.2.1"})
	sn.Peripherals.Findings = append(sn.Peripherals.Findings, &agentv1.PeripheralFinding{Kind: "usb_identity", Category: "jiggler", Name: "mouse jiggler"})
	o := Observe(sn)
	if !slices.Equal(o.RemoteSessions, []string{"anydesk", "login:op@203.0.113.5"}) || !slices.Equal(o.KVM, []string{"usb:1-2 (PiKVM)"}) ||
		!slices.Equal(o.Console, []string{"alice"}) || !slices.Equal(o.SSH, []string{"dev@192.0.2.1"}) {
		t.Fatalf("observation %+v", o)
	}
	if r := Judge(Observation{}, "198.51.100.1", "198.51.100.1"); len(r) != 0 {
		t.Fatalf("clean check: %v", r)
	}
	if r := Judge(Observation{}, "", ""); !slices.Equal(r, []string{ReasonEgressMismatch}) {
		t.Fatalf("no browser address: %v", r)
	}
	if r := Judge(o, "198.51.100.1", "203.0.113.9"); !slices.Equal(r, []string{ReasonRemoteSessionActive, ReasonKVMAttached, ReasonEgressMismatch}) {
		t.Fatalf("everything wrong: %v", r)
	}
}

// TestWithinWorkHours honours the declared zone, night shifts, and no
// declaration.
func TestWithinWorkHours(t *testing.T) {
	at := time.Date(2026, 11, 2, 23, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		zone, hours string
		want        bool
	}{
		{"UTC", "09:00-17:00", false},
		{"Asia/Tokyo", "08:00-17:00", true}, // 08:30 in Tokyo
		{"UTC", "22:00-06:00", true},
		{"", "", true},
		{"UTC", "", true},
	} {
		if got := WithinWorkHours(store.Person{Timezone: c.zone, WorkHours: c.hours}, at); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.zone, c.hours, got, c.want)
		}
	}
}

// TestEnrolmentOptions: registration asks for the laptop's platform
// authenticator with user verification and direct attestation; a roaming
// link accepts a FIDO2 key instead, still with user verification.
func TestEnrolmentOptions(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "bonafide.db"), Config{})
	srv := httptest.NewServer(f.svc.Handler())
	defer srv.Close()
	for _, roaming := range []bool{false, true} {
		e, err := f.svc.CreateEnrolment(t.Context(), "alice@example.com", "", roaming, "token:test")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(srv.URL+strings.TrimPrefix(e.Link, "https://bonafide.example.com")+"/begin", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var opts struct {
			PublicKey struct {
				RP                     struct{ ID string }
				Attestation            string
				AuthenticatorSelection struct {
					AuthenticatorAttachment string
					UserVerification        string
				}
			}
		}
		json.NewDecoder(resp.Body).Decode(&opts)
		resp.Body.Close()
		sel := opts.PublicKey.AuthenticatorSelection
		wantAttachment := "platform"
		if roaming {
			wantAttachment = ""
		}
		if resp.StatusCode != 200 || opts.PublicKey.RP.ID != "bonafide.example.com" || opts.PublicKey.Attestation != "direct" ||
			sel.UserVerification != "required" || sel.AuthenticatorAttachment != wantAttachment {
			t.Errorf("roaming %v: %d %+v", roaming, resp.StatusCode, opts)
		}
	}
}

// TestAutoRequest: an alert of a configured rule opening on an enrolled
// person's laptop asks for one check, once; other rules and the presence
// rule itself ask for none.
func TestAutoRequest(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		f := newFixture(t, dsn, Config{AutoRules: []string{"remote_tool_*"}})
		f.enrol(t)
		if n, err := f.svc.AutoRequest(ctx); err != nil || n != 0 {
			t.Fatalf("nothing opened: %d %v", n, err)
		}
		sn := &agentv1.HostSnapshot{
			Identity: &agentv1.HostIdentity{AgentId: "agent-a", SerialNumber: "SN-A", Hostname: "lat-alice"},
			RemoteAccess: &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
				Processes: []*agentv1.ProcessEvidence{{Name: "AnyDesk", Pid: 4242}}}}},
		}
		data, digest, sections := ingest.Digest(sn)
		id := store.DeviceIdentity{SerialNumber: "SN-A", Hostname: "lat-alice", OSFamily: "linux", AgentVersion: "1.0.0"}
		f.clock = f.clock.Add(time.Minute)
		if _, err := f.st.Ingest(ctx, store.IngestBatch{Agent: f.agent, IP: "198.51.100.1", ReceivedAt: f.clock, ReportInterval: time.Hour,
			Reports: []store.IngestReport{{ReportID: "00000000-0000-4000-8000-000000000002", Sequence: 2, CreatedAt: f.clock, Identity: id,
				Snapshot: sn, Data: data, Digest: digest, Sections: sections}}}, f.rules); err != nil {
			t.Fatal(err)
		}
		if alerts, _ := f.st.ListAlerts(ctx, store.AlertFilter{RuleID: "remote_tool_running"}); len(alerts) != 1 {
			t.Fatalf("remote_tool_running alerts: %+v", alerts)
		}
		if n, err := f.svc.AutoRequest(ctx); err != nil || n != 1 {
			t.Fatalf("automatic check: %d %v", n, err)
		}
		if n, err := f.svc.AutoRequest(ctx); err != nil || n != 0 {
			t.Fatalf("asked twice for one opening: %d %v", n, err)
		}
		checks, err := f.svc.checks.ListChecks(ctx, "alice@example.com", 10)
		if err != nil || len(checks) != 1 || checks[0].RequestedBy != "rule:remote_tool_running" || !strings.HasPrefix(checks[0].Trigger, "alert:") {
			t.Fatalf("checks %+v %v", checks, err)
		}
	})
}

// TestNotice: the agent is told of a check while it waits for the
// person (to notify them on the laptop), with the pages' origin and never
// the link; no longer once the person answered, and not for another
// device or an expired check.
func TestNotice(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		f := newFixture(t, dsn, Config{})
		f.enrol(t)
		if n, err := f.svc.Notice(ctx, f.device); err != nil || n != nil {
			t.Fatalf("notice without a check: %v %v", n, err)
		}
		c, err := f.svc.Request(ctx, "alice@example.com", "", "", "token:ana")
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.svc.Notice(ctx, f.device)
		if err != nil || n == nil {
			t.Fatalf("notice: %v %v", n, err)
		}
		if n.GetCheckId() != c.ID || !n.GetExpiresAt().AsTime().Equal(c.ExpiresAt) || n.GetOrigin() != "https://bonafide.example.com" {
			t.Fatalf("notice %v for check %s expiring %v", n, c.ID, c.ExpiresAt)
		}
		if token := c.Link[strings.LastIndex(c.Link, "/")+1:]; strings.Contains(n.String(), token) {
			t.Fatal("the notice carries the link's token")
		}
		if n, err := f.svc.Notice(ctx, "dev_other"); err != nil || n != nil {
			t.Fatalf("another device's notice: %v %v", n, err)
		}
		f.clock = f.clock.Add(DefaultExpiry)
		if n, err := f.svc.Notice(ctx, f.device); err != nil || n != nil {
			t.Fatalf("notice of an expired check: %v %v", n, err)
		}
		f.clock = f.clock.Add(-time.Minute)
		if err := f.svc.checks.AssertCheck(ctx, c.ID, "Y3JlZGVudGlhbC0x", []byte(`{}`), "198.51.100.7", f.clock, f.clock.Add(DefaultExpiry)); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.Notice(ctx, f.device); err != nil || n != nil {
			t.Fatalf("notice of an answered check: %v %v", n, err)
		}
	})
}

// BenchmarkCheckInPresence is what presence adds to every agent check-in:
// the check awaiting the agent and the notice of one awaiting the person
// (here one pending check among the device's), on SQLite.
func BenchmarkCheckInPresence(b *testing.B) {
	f := newFixture(b, filepath.Join(b.TempDir(), "bench.db"), Config{DailyCap: 0})
	f.enrol(b)
	if _, err := f.svc.Request(b.Context(), "alice@example.com", "", "", "token:ana"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if id, err := f.svc.AwaitingAgent(b.Context(), f.device); err != nil || id != "" {
			b.Fatal(id, err)
		}
		if n, err := f.svc.Notice(b.Context(), f.device); err != nil || n == nil {
			b.Fatal(n, err)
		}
	}
}
