package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// t0 is the receive time the ingest tests start from. Enroll stamps its rows
// with the wall clock; where a rule compares report times with enrollment
// times (live agents), the test derives its times from the stored
// enrollment times instead.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const interval = 5 * time.Minute

// TestStore runs the whole store suite on SQLite and on PostgreSQL. Every
// subtest but the migration check gets a database of its own.
func TestStore(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		t.Run("migrations", func(t *testing.T) { testMigrations(t, dsn) })
		for _, c := range []struct {
			name string
			fn   func(*env)
		}{
			{"secrets", testSecrets},
			{"enroll", testEnroll},
			{"revoke device", testRevokeDevice},
			{"ingest", testIngest},
			{"failed batch stores nothing", testFailedBatch},
			{"failed batch in a group", testFailedBatchInGroup},
			{"rule error keeps report", testRuleErrorKeepsReport},
			{"alert dedup", testAlertDedup},
			{"list alerts", testListAlerts},
			{"list alerts limit", testListAlertsLimit},
			{"update alert", testUpdateAlert},
			{"duplicate hardware identity", testDuplicateHardwareIdentity},
			{"re-enrolled agent replaces predecessor", testReEnrolled},
			{"sweep", testSweep},
			{"sweep never reported", testSweepNeverReported},
			{"sweep leaves a waiting report", testSweepWaitingReport},
		} {
			t.Run(c.name, func(t *testing.T) { c.fn(newEnv(t, freshDSN(t, dsn))) })
		}
		t.Run("trylock", func(t *testing.T) { testTryLock(t, freshDSN(t, dsn)) })
	})
}

// freshDSN is an empty database on the engine of dsn.
func freshDSN(t *testing.T, dsn string) string {
	if store.IsPostgres(dsn) {
		return storetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "bonafide.db")
}

type env struct {
	*testing.T
	ctx      context.Context
	st       *store.Store
	secretID string
	seq      uint64
}

func newEnv(t *testing.T, dsn string) *env {
	st := storetest.Open(t, dsn)
	_, sec, err := st.CreateSecret(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &env{T: t, ctx: t.Context(), st: st, secretID: sec.ID}
}

var certNotAfter = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

func identity(host string) store.DeviceIdentity {
	return store.DeviceIdentity{HardwareUUID: "4c4c4544-0042-3510-8052-b7c04f4e3132", SerialNumber: "SN-" + host,
		Hostname: host, OSFamily: "linux", OSName: "Debian GNU/Linux", OSVersion: "12", AgentVersion: "1.0.0"}
}

// enroll enrolls agentID for the hardware key key and returns the device id.
func (e *env) enroll(agentID, key, host string) string {
	e.Helper()
	id, err := e.st.Enroll(e.ctx, store.Enrollment{AgentID: agentID, SecretID: e.secretID, IP: "198.51.100.1",
		HardwareKey: key, Identity: identity(host), CertSerial: "c-" + agentID, CertNotAfter: certNotAfter})
	if err != nil {
		e.Fatalf("enroll %s: %v", agentID, err)
	}
	return id
}

// enrollApproved enrolls agentID claiming the hardware of an active
// device, which gives it a device of its own, and merges that into the
// claimed device as an admin approving the claim does; it returns the
// device the agent ends on.
func (e *env) enrollApproved(agentID, key, host string) string {
	e.Helper()
	claimant := e.enroll(agentID, key, host)
	if err := e.st.ApproveClaim(e.ctx, claimant, "admin:test"); err != nil {
		e.Fatalf("approve the claim of %s: %v", claimant, err)
	}
	return e.agent(agentID).DeviceID
}

func (e *env) agent(id string) store.Agent {
	e.Helper()
	a, err := e.st.AgentByID(e.ctx, id)
	if err != nil {
		e.Fatalf("agent %s: %v", id, err)
	}
	return a
}

func (e *env) device(id string) store.Device {
	e.Helper()
	d, err := e.st.GetDevice(e.ctx, id)
	if err != nil {
		e.Fatalf("device %s: %v", id, err)
	}
	return d
}

func (e *env) reportCount(deviceID string) int64 {
	e.Helper()
	n, err := e.st.ReportCount(e.ctx, deviceID)
	if err != nil {
		e.Fatal(err)
	}
	return n
}

func (e *env) history(deviceID string) []store.HistoryEntry {
	e.Helper()
	h, err := e.st.SnapshotHistory(e.ctx, deviceID)
	if err != nil {
		e.Fatal(err)
	}
	return h
}

func (e *env) alerts(f store.AlertFilter) []store.Alert {
	e.Helper()
	a, err := e.st.ListAlerts(e.ctx, f)
	if err != nil {
		e.Fatalf("list alerts %+v: %v", f, err)
	}
	return a
}

func (e *env) audit(targetType, id string) []store.AuditEntry {
	e.Helper()
	a, err := e.st.Audit(e.ctx, targetType, id)
	if err != nil {
		e.Fatal(err)
	}
	return a
}

// ingest stores reports of agentID received at at and fails the test on error.
func (e *env) ingest(agentID string, at time.Time, ev store.Evaluator, reports ...store.IngestReport) []string {
	e.Helper()
	acked, err := e.st.Ingest(e.ctx, e.batch(agentID, at, reports...), ev)
	if err != nil {
		e.Fatalf("ingest: %v", err)
	}
	return acked
}

func (e *env) batch(agentID string, at time.Time, reports ...store.IngestReport) store.IngestBatch {
	return store.IngestBatch{Agent: e.agent(agentID), IP: "203.0.113.7", ReceivedAt: at, ReportInterval: interval, Reports: reports}
}

func (e *env) heartbeat(reportID, host string, at time.Time) store.IngestReport {
	e.seq++
	return store.IngestReport{ReportID: reportID, Sequence: e.seq, CreatedAt: at.Add(-2 * time.Second), Identity: identity(host)}
}

// snapshot builds a snapshot report whose section digests are sections.
// The digest depends on the sections only; the encoded data also holds the
// scan time, as with the real digest, which leaves scan times out.
func (e *env) snapshot(reportID, host string, at time.Time, sections map[string]string) store.IngestReport {
	e.seq++
	sn := &agentv1.HostSnapshot{
		Identity:      &agentv1.HostIdentity{Hostname: host},
		ScanStartedAt: timestamppb.New(at.Add(-3 * time.Second)),
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(sections)) {
		sn.Signals = append(sn.Signals, &agentv1.SignalStatus{Name: k, State: agentv1.SignalStatus_STATE_OK, Message: sections[k]})
		fmt.Fprintf(h, "%s=%s\n", k, sections[k])
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(sn)
	if err != nil {
		e.Fatal(err)
	}
	return store.IngestReport{ReportID: reportID, Sequence: e.seq, CreatedAt: at.Add(-2 * time.Second), Identity: identity(host),
		Snapshot: sn, Data: data, Digest: hex.EncodeToString(h.Sum(nil)), Sections: maps.Clone(sections)}
}

// evaluator adapts a function to store.Evaluator.
type evaluator func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error)

func (fn evaluator) Evaluate(_ context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	return fn(scope, f)
}

// AutoResolve: test evaluators have no auto-resolving rules.
func (evaluator) AutoResolve(detect.Scope) []string { return nil }

var noRules = evaluator(func(detect.Scope, detect.Facts) ([]detect.Finding, error) { return nil, nil })

// deviceFindings fires the given findings on every device-scope evaluation.
func deviceFindings(fs ...detect.Finding) evaluator {
	return func(scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
		if scope != detect.ScopeDevice {
			return nil, nil
		}
		return fs, nil
	}
}

func finding(rule, severity string) detect.Finding {
	return detect.Finding{RuleID: rule, Title: "title of " + rule, Severity: severity, Description: "about " + rule,
		Tags: []string{"T0001"}, Evidence: map[string]any{"rule": rule}}
}

// recorder records the live agents of every device evaluation and passes
// the facts on to the real rules.
type recorder struct {
	rules store.Evaluator
	mu    sync.Mutex
	live  [][]string
}

func (*recorder) AutoResolve(detect.Scope) []string { return nil }

func (r *recorder) Evaluate(ctx context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice {
		r.mu.Lock()
		r.live = append(r.live, slices.Clone(f.Device.LiveAgentIDs))
		r.mu.Unlock()
	}
	return r.rules.Evaluate(ctx, scope, f)
}

func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[len(r.live)-1]
}

func defaultRules(t *testing.T) *detect.Engine {
	t.Helper()
	rules, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatalf("load default rules: %v", err)
	}
	return rules
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// logRecorder keeps the messages logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func testMigrations(t *testing.T, dsn string) {
	ctx := t.Context()
	open := func() (*store.Store, *logRecorder) {
		t.Helper()
		h := &logRecorder{}
		st, err := store.Open(ctx, dsn, slog.New(h))
		if err != nil {
			t.Fatalf("open %s: %v", dsn, err)
		}
		return st, h
	}
	st, logs := open()
	files, err := os.ReadDir(filepath.Join("migrations", string(st.Dialect())))
	if err != nil {
		t.Fatal(err)
	}
	if got := logs.count("applied migration"); got == 0 || got != len(files) {
		t.Fatalf("fresh database: %d migrations applied, want all %d", got, len(files))
	}
	wantDialect := store.SQLite
	if store.IsPostgres(dsn) {
		wantDialect = store.Postgres
	}
	if st.Dialect() != wantDialect {
		t.Fatalf("dialect %s, want %s", st.Dialect(), wantDialect)
	}
	_, sec, err := st.CreateSecret(ctx, "before restart")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, logs = open()
	defer st.Close()
	if got := logs.count("applied migration"); got != 0 {
		t.Fatalf("re-open applied %d migrations, want none", got)
	}
	secrets, err := st.ListSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 1 || secrets[0].ID != sec.ID || secrets[0].Name != "before restart" {
		t.Fatalf("after re-open: secrets %+v, want the one created before", secrets)
	}
}

func testSecrets(e *env) {
	plain, sec, err := e.st.CreateSecret(e.ctx, "laptops")
	if err != nil {
		e.Fatal(err)
	}
	if !strings.HasPrefix(plain, "bfe_") || sec.ID == "" || sec.Name != "laptops" || sec.CreatedAt.IsZero() {
		e.Fatalf("CreateSecret = %q, %+v", plain, sec)
	}
	plain2, sec2, err := e.st.CreateSecret(e.ctx, "contractors")
	if err != nil {
		e.Fatal(err)
	}
	if plain2 == plain || sec2.ID == sec.ID {
		e.Fatal("two secrets are the same")
	}
	for _, c := range []struct {
		plain string
		want  store.Secret
	}{{plain, sec}, {plain2, sec2}} {
		got, err := e.st.MatchSecret(e.ctx, c.plain)
		if err != nil || got.ID != c.want.ID || got.Name != c.want.Name {
			e.Fatalf("MatchSecret(%q) = %+v, %v; want %s", c.plain, got, err, c.want.ID)
		}
	}
	for _, wrong := range []string{plain + "x", plain[:len(plain)-1], "", strings.ToUpper(plain), sec.ID} {
		_, err := e.st.MatchSecret(e.ctx, wrong)
		wantErr(e.T, err, store.ErrNotFound, fmt.Sprintf("MatchSecret(%q)", wrong))
	}

	// Uses are counted per secret.
	for i, key := range []string{"hw:a/1", "hw:b/2"} {
		if _, err := e.st.Enroll(e.ctx, store.Enrollment{AgentID: fmt.Sprint("agent-", i), SecretID: sec.ID, HardwareKey: key,
			Identity: identity("h")}); err != nil {
			e.Fatal(err)
		}
	}
	if err := e.st.RevokeSecret(e.ctx, sec.ID); err != nil {
		e.Fatal(err)
	}
	_, err = e.st.MatchSecret(e.ctx, plain)
	wantErr(e.T, err, store.ErrNotFound, "MatchSecret of a revoked secret")
	if got, err := e.st.MatchSecret(e.ctx, plain2); err != nil || got.ID != sec2.ID {
		e.Fatalf("revoking one secret broke another: %+v, %v", got, err)
	}
	wantErr(e.T, e.st.RevokeSecret(e.ctx, sec.ID), store.ErrNotFound, "revoking twice")
	wantErr(e.T, e.st.RevokeSecret(e.ctx, "nope"), store.ErrNotFound, "revoking an unknown secret")

	list, err := e.st.ListSecrets(e.ctx)
	if err != nil {
		e.Fatal(err)
	}
	byID := map[string]store.Secret{}
	for _, s := range list {
		byID[s.ID] = s
	}
	if len(list) != 3 { // with the one newEnv made
		e.Fatalf("ListSecrets: %d secrets, want 3: %+v", len(list), list)
	}
	if s := byID[sec.ID]; s.Uses != 2 || s.RevokedAt.IsZero() || s.Name != "laptops" {
		e.Errorf("revoked secret listed as %+v, want 2 uses and a revocation time", s)
	}
	if s := byID[sec2.ID]; s.Uses != 0 || !s.RevokedAt.IsZero() || s.Name != "contractors" {
		e.Errorf("unused secret listed as %+v", s)
	}
	for i := 1; i < len(list); i++ {
		if list[i].CreatedAt.After(list[i-1].CreatedAt) {
			e.Errorf("ListSecrets not newest first: %+v", list)
		}
	}
}

func testEnroll(e *env) {
	d1 := e.enroll("a1", "hw:uuid-1/SN1", "laptop-1")
	// Hardware identity is a claim: enrolling the hardware of an active
	// device makes a device of its own, flagged with the claim, until an
	// admin approves it; then the agent continues the device's history.
	claimant := e.enroll("a2", "hw:uuid-1/SN1", "laptop-1-reinstalled")
	if claimant == d1 || claimant == "" {
		e.Fatalf("enrollment claiming the hardware of %s got device %q, want its own", d1, claimant)
	}
	if c := e.device(claimant); c.ClaimsDevice != d1 {
		e.Fatalf("claimant %+v, want it to claim %q", c, d1)
	}
	if err := e.st.ApproveClaim(e.ctx, claimant, "admin:alice"); err != nil {
		e.Fatal(err)
	}
	wantErr(e.T, e.st.ApproveClaim(e.ctx, claimant, "admin:alice"), store.ErrNotFound, "approving a claim twice")
	wantErr(e.T, e.st.ApproveClaim(e.ctx, d1, "admin:alice"), store.ErrNotFound, "approving a device without a claim")
	d1again := e.agent("a2").DeviceID
	d2 := e.enroll("a3", "hw:uuid-2/SN2", "laptop-2")
	if d1 == "" || d1again != d1 {
		e.Fatalf("approved claim: agent a2 on device %q, want %q", d1again, d1)
	}
	if d2 == d1 {
		e.Fatal("different hardware got the same device")
	}

	agents, err := e.st.DeviceAgents(e.ctx, d1)
	if err != nil {
		e.Fatal(err)
	}
	if len(agents) != 2 || agents[0].ID != "a2" || agents[1].ID != "a1" {
		e.Fatalf("DeviceAgents(%s) = %+v, want a2 then a1", d1, agents)
	}
	for _, a := range agents {
		if a.EnrolledIP != "198.51.100.1" || a.EnrolledAt.IsZero() || !a.LastSeen.IsZero() || !a.RevokedAt.IsZero() {
			e.Errorf("agent %+v", a)
		}
		wantTime(e.T, a.ID+" cert not after", a.CertNotAfter, certNotAfter)
	}
	if agents, err := e.st.DeviceAgents(e.ctx, d2); err != nil || len(agents) != 1 || agents[0].ID != "a3" {
		e.Fatalf("DeviceAgents(%s) = %+v, %v", d2, agents, err)
	}
	if agents, err := e.st.DeviceAgents(e.ctx, "dev_unknown"); err != nil || len(agents) != 0 {
		e.Fatalf("DeviceAgents of an unknown device = %+v, %v", agents, err)
	}

	// The device keeps the identity of its first enrollment.
	d := e.device(d1)
	want := identity("laptop-1")
	if d.Hostname != want.Hostname || d.HardwareUUID != want.HardwareUUID || d.SerialNumber != want.SerialNumber ||
		d.OSName != want.OSName || d.AgentID != "a1" || d.FirstSeen.IsZero() || !d.LastSeen.IsZero() || !d.RevokedAt.IsZero() {
		e.Fatalf("device %+v", d)
	}
	// The merged claimant stays listed, revoked, with what it stored.
	devices, err := e.st.ListDevices(e.ctx, store.DeviceFilter{})
	if err != nil || len(devices) != 3 {
		e.Fatalf("ListDevices = %+v, %v; want 3", devices, err)
	}
	if c := e.device(claimant); c.RevokedAt.IsZero() || c.ClaimsDevice != "" {
		e.Fatalf("merged claimant %+v, want revoked without a claim", c)
	}

	a := e.agent("a1")
	if a.ID != "a1" || a.DeviceID != d1 || a.Revoked || a.DeviceRevoked || a.EnrolledAt.IsZero() || !a.LastSeen.IsZero() {
		e.Fatalf("AgentByID(a1) = %+v", a)
	}
	wantTime(e.T, "AgentByID(a1).CertNotAfter", a.CertNotAfter, certNotAfter)
	_, err = e.st.AgentByID(e.ctx, "nope")
	wantErr(e.T, err, store.ErrNotFound, "AgentByID of an unknown agent")

	// An enrollment that fails stores nothing of itself: not the device,
	// not the secret's use.
	before := e.secretUses()
	if _, err := e.st.Enroll(e.ctx, store.Enrollment{AgentID: "a1", SecretID: e.secretID, HardwareKey: "hw:uuid-9/SN9",
		Identity: identity("dup")}); err == nil {
		e.Fatal("enrolling an existing agent id again succeeded")
	}
	if got := e.secretUses(); got != before || before != 3 {
		e.Fatalf("secret uses %d after a failed enrollment, want %d (3)", got, before)
	}
	if devices, _ := e.st.ListDevices(e.ctx, store.DeviceFilter{}); len(devices) != 3 {
		e.Fatalf("a failed enrollment left a device: %+v", devices)
	}

	log := append(e.audit("device", d1), e.audit("device", claimant)...)
	if len(log) != 3 {
		e.Fatalf("audit of %s and %s: %+v, want two enrollments and the approval", d1, claimant, log)
	}
	for i, agent := range []string{"a1", "", "a2"} {
		l := log[i]
		if agent == "" {
			if l.Action != "approve_claim" || l.Actor != "admin:alice" || l.Detail["merged_device"] != claimant {
				e.Errorf("audit entry %d: %+v, want the approval", i, l)
			}
			continue
		}
		if l.Action != "enroll" || l.Actor != "agent:"+agent || l.Detail["agent_id"] != agent ||
			l.Detail["secret_id"] != e.secretID || l.Detail["ip"] != "198.51.100.1" {
			e.Errorf("audit entry %d: %+v", i, l)
		}
	}
	if l := log[2]; l.Detail["claims_device"] != d1 {
		e.Errorf("the claimant's enrollment audit does not name the device it claimed: %+v", l)
	}
}

func (e *env) secretUses() int64 {
	e.Helper()
	list, err := e.st.ListSecrets(e.ctx)
	if err != nil {
		e.Fatal(err)
	}
	for _, s := range list {
		if s.ID == e.secretID {
			return s.Uses
		}
	}
	e.Fatalf("secret %s not listed", e.secretID)
	return 0
}

func testRevokeDevice(e *env) {
	d := e.enroll("a1", "hw:u/1", "victim")
	e.enrollApproved("a2", "hw:u/1", "victim")
	other := e.enroll("b1", "hw:u/2", "bystander")

	if err := e.st.RevokeDevice(e.ctx, d, "admin:alice"); err != nil {
		e.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if a := e.agent(id); !a.Revoked || !a.DeviceRevoked || a.DeviceID != d {
			e.Errorf("after RevokeDevice: agent %+v, want revoked with its device", a)
		}
	}
	agents, err := e.st.DeviceAgents(e.ctx, d)
	if err != nil {
		e.Fatal(err)
	}
	for _, a := range agents {
		if a.RevokedAt.IsZero() {
			e.Errorf("agent %s has no revocation time", a.ID)
		}
	}
	if a := e.agent("b1"); a.Revoked || a.DeviceRevoked || a.DeviceID != other {
		e.Errorf("another device's agent is revoked: %+v", a)
	}
	if dev := e.device(d); dev.RevokedAt.IsZero() {
		e.Error("device has no revocation time")
	}
	// Revoked hardware cannot enroll again: no agent is made.
	r, err := e.st.EnrollAgent(e.ctx, store.Enrollment{AgentID: "a3", SecretID: e.secretID, IP: "198.51.100.1",
		HardwareKey: "hw:u/1", Identity: identity("victim"), CertSerial: "c-a3", CertNotAfter: certNotAfter})
	if err != nil || !r.Revoked || r.DeviceID != "" || r.AgentID != "" {
		e.Fatalf("enrollment of revoked hardware: %+v, %v; want refused as revoked, naming nothing", r, err)
	}
	if _, err := e.st.AgentByID(e.ctx, "a3"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("agent of a refused enrollment stored: %v", err)
	}
	wantErr(e.T, e.st.RevokeDevice(e.ctx, d, "admin:alice"), store.ErrNotFound, "revoking a revoked device")
	wantErr(e.T, e.st.RevokeDevice(e.ctx, "dev_unknown", "admin:alice"), store.ErrNotFound, "revoking an unknown device")

	log := e.audit("device", d)
	if len(log) != 4 { // enrollment of a1, the approved claim of a2, the revocation, the refused a3; the refused revocations leave nothing
		e.Fatalf("audit of %s: %+v", d, log)
	}
	if l := log[2]; l.Action != "revoke" || l.Actor != "admin:alice" || l.TargetID != d || l.At.IsZero() {
		e.Fatalf("revocation audit entry %+v", l)
	}
	if log := e.audit("device", "dev_unknown"); len(log) != 0 {
		e.Fatalf("refused revocation audited: %+v", log)
	}
}

func testIngest(e *env) {
	dev := e.enroll("a1", "hw:u/1", "enrolled-name")
	v1 := map[string]string{"identity": "i1", "usb": "u1", "locale": "l1"}
	r1 := e.snapshot("r1", "laptop-1", t0, v1)

	acked := e.ingest("a1", t0, noRules, r1)
	if !slices.Equal(acked, []string{"r1"}) {
		e.Fatalf("acked %v", acked)
	}
	sn, err := e.st.LatestSnapshot(e.ctx, dev)
	if err != nil {
		e.Fatal(err)
	}
	if sn.ReportID != "r1" || string(sn.Data) != string(r1.Data) || sn.Digest != r1.Digest {
		e.Fatalf("LatestSnapshot = %+v, want the bytes of r1", sn)
	}
	wantTime(e.T, "snapshot received", sn.ReceivedAt, t0)
	wantTime(e.T, "snapshot created", sn.CreatedAt, r1.CreatedAt)
	var decoded agentv1.HostSnapshot
	if err := proto.Unmarshal(sn.Data, &decoded); err != nil || !proto.Equal(&decoded, r1.Snapshot) {
		e.Fatalf("stored snapshot does not decode to the one sent: %v", err)
	}
	if n := e.reportCount(dev); n != 1 {
		e.Fatalf("ReportCount = %d, want 1", n)
	}
	d := e.device(dev)
	if d.Hostname != "laptop-1" || d.LastIP != "203.0.113.7" || d.AgentID != "a1" || d.ReportInterval != interval {
		e.Fatalf("device after a snapshot: %+v", d)
	}
	wantTime(e.T, "device last_seen", d.LastSeen, t0)
	wantTime(e.T, "device snapshot_at", d.SnapshotAt, t0)
	wantTime(e.T, "agent last_seen", e.agent("a1").LastSeen, t0)
	if h := e.history(dev); len(h) != 1 || h[0].ReportID != "r1" || h[0].Changed != "identity,locale,usb" || h[0].Digest != r1.Digest {
		e.Fatalf("history after the first snapshot: %+v", h)
	}

	// The same report again, retried later from another address: acked,
	// stored once, nothing updated.
	b := e.batch("a1", t0.Add(time.Minute), r1)
	b.IP = "192.0.2.99"
	if acked, err := e.st.Ingest(e.ctx, b, noRules); err != nil || !slices.Equal(acked, []string{"r1"}) {
		e.Fatalf("retry: acked %v, %v", acked, err)
	}
	if n := e.reportCount(dev); n != 1 {
		e.Fatalf("a retried report was stored again: ReportCount = %d", n)
	}
	if d := e.device(dev); !d.LastSeen.Equal(t0) || d.LastIP != "203.0.113.7" {
		e.Fatalf("a retried report updated the device: %+v", d)
	}
	wantTime(e.T, "agent last_seen after a retried report", e.agent("a1").LastSeen, t0)
	if h := e.history(dev); len(h) != 1 {
		e.Fatalf("a retried report added history: %+v", h)
	}

	// A heartbeat: contact and identity move, the snapshot stays.
	t2 := t0.Add(2 * time.Minute)
	b = e.batch("a1", t2, e.heartbeat("r2", "laptop-1", t2))
	b.IP = "192.0.2.10"
	if acked, err := e.st.Ingest(e.ctx, b, noRules); err != nil || !slices.Equal(acked, []string{"r2"}) {
		e.Fatalf("heartbeat: acked %v, %v", acked, err)
	}
	d = e.device(dev)
	wantTime(e.T, "last_seen after heartbeat", d.LastSeen, t2)
	wantTime(e.T, "snapshot_at after heartbeat", d.SnapshotAt, t0)
	wantTime(e.T, "agent last_seen after heartbeat", e.agent("a1").LastSeen, t2)
	if d.LastIP != "192.0.2.10" {
		e.Errorf("last_ip after heartbeat %q", d.LastIP)
	}
	if sn, _ := e.st.LatestSnapshot(e.ctx, dev); sn.ReportID != "r1" {
		e.Errorf("a heartbeat replaced the snapshot: %+v", sn)
	}
	if n := e.reportCount(dev); n != 2 {
		e.Errorf("ReportCount after heartbeat = %d, want 2", n)
	}
	if h := e.history(dev); len(h) != 1 {
		e.Errorf("a heartbeat added history: %+v", h)
	}

	// A changed snapshot: usb changed, network appeared, locale vanished.
	t3 := t0.Add(3 * time.Minute)
	v3 := map[string]string{"identity": "i1", "usb": "u2", "network": "n1"}
	r3 := e.snapshot("r3", "laptop-1", t3, v3)
	e.ingest("a1", t3, noRules, r3)
	h := e.history(dev)
	if len(h) != 2 || h[1].ReportID != "r3" || h[1].Changed != "locale,network,usb" || h[1].Digest != r3.Digest {
		e.Fatalf("history after a changed snapshot: %+v", h)
	}
	if sn, _ := e.st.LatestSnapshot(e.ctx, dev); sn.ReportID != "r3" || string(sn.Data) != string(r3.Data) {
		e.Fatalf("latest snapshot %+v, want r3", sn)
	}
	wantTime(e.T, "snapshot_at after a change", e.device(dev).SnapshotAt, t3)

	// The same content from a later scan: the data differ (scan time), the
	// digest does not. The report counts, the snapshot and history stay.
	t4 := t0.Add(4 * time.Minute)
	r4 := e.snapshot("r4", "laptop-1", t4, v3)
	if string(r4.Data) == string(r3.Data) || r4.Digest != r3.Digest {
		e.Fatal("test setup: r4 should differ from r3 in data only")
	}
	e.ingest("a1", t4, noRules, r4)
	if h := e.history(dev); len(h) != 2 {
		e.Fatalf("an unchanged digest added history: %+v", h)
	}
	if sn, _ := e.st.LatestSnapshot(e.ctx, dev); sn.ReportID != "r3" {
		e.Fatalf("an unchanged digest replaced the snapshot: %+v", sn)
	}
	d = e.device(dev)
	wantTime(e.T, "snapshot_at after an unchanged digest", d.SnapshotAt, t3)
	wantTime(e.T, "last_seen after an unchanged digest", d.LastSeen, t4)
	if n := e.reportCount(dev); n != 4 {
		e.Fatalf("ReportCount = %d, want 4", n)
	}

	// A batch of several reports, one of them already stored.
	t5 := t0.Add(5 * time.Minute)
	acked = e.ingest("a1", t5, noRules, r4, e.heartbeat("r5", "laptop-1", t5), e.snapshot("r6", "laptop-1", t5, map[string]string{"usb": "u3"}))
	if !slices.Equal(acked, []string{"r4", "r5", "r6"}) {
		e.Fatalf("batch acked %v", acked)
	}
	if n := e.reportCount(dev); n != 6 {
		e.Fatalf("ReportCount = %d, want 6", n)
	}
	if h := e.history(dev); len(h) != 3 || h[2].Changed != "identity,network,usb" {
		e.Fatalf("history %+v", h)
	}
	if _, err := e.st.LatestSnapshot(e.ctx, "dev_unknown"); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("LatestSnapshot of an unknown device: %v", err)
	}
}

// testFailedBatchInGroup: a group commit runs its batches without
// savepoints; when one fails, the group runs again with a savepoint per
// batch, so that the failing batch alone is rolled back and the others
// are stored once.
func testFailedBatchInGroup(e *env) {
	devs := []string{e.enroll("a1", "hw:g/1", "laptop-1"), e.enroll("a2", "hw:g/2", "laptop-2"), e.enroll("a3", "hw:g/3", "laptop-3")}
	// a2 may store one report a day and sends two: its batch fails after
	// its first report was written.
	over := e.batch("a2", t0, e.heartbeat("g2", "laptop-2", t0), e.heartbeat("g3", "laptop-2", t0))
	over.Quota = store.Quota{Reports: 1}
	acked, errs := e.st.IngestGroup(e.ctx, noRules,
		e.batch("a1", t0, e.heartbeat("g1", "laptop-1", t0)), over,
		e.batch("a3", t0, e.snapshot("g4", "laptop-3", t0, map[string]string{"usb": "u1"})))
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], store.ErrOverQuota) {
		e.Fatalf("group errors %v, want only a2's over its quota", errs)
	}
	if !slices.Equal(acked[0], []string{"g1"}) || acked[1] != nil || !slices.Equal(acked[2], []string{"g4"}) {
		e.Fatalf("acked %v", acked)
	}
	for i, want := range []int64{1, 0, 1} {
		if n := e.reportCount(devs[i]); n != want {
			e.Errorf("device %d: %d reports stored, want %d", i+1, n, want)
		}
	}
	if a := e.agent("a2"); !a.LastSeen.IsZero() {
		e.Errorf("the failed batch updated its agent: %+v", a)
	}
	if h := e.history(devs[2]); len(h) != 1 {
		e.Errorf("snapshot history of the stored batch: %+v", h)
	}
	// Its quota was not charged by the rolled-back attempt: one report of
	// a2 is still allowed today.
	one := e.batch("a2", t0, e.heartbeat("g5", "laptop-2", t0))
	one.Quota = store.Quota{Reports: 1}
	if _, errs := e.st.IngestGroup(e.ctx, noRules, one, e.batch("a1", t0, e.heartbeat("g1", "laptop-1", t0))); errs[0] != nil || errs[1] != nil {
		e.Fatalf("second group: %v", errs)
	}
	if n := e.reportCount(devs[1]); n != 1 {
		e.Errorf("a2: %d reports stored, want 1", n)
	}
	if n := e.reportCount(devs[0]); n != 1 {
		e.Errorf("a1's retried report stored %d times", n)
	}
}

func testFailedBatch(e *env) {
	dev := e.enroll("a1", "hw:u/1", "laptop-1")
	// The second report's evidence cannot be encoded, which fails the
	// whole batch after the first report was written in its transaction.
	poison := evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
		if f.Snapshot != nil && f.Snapshot.GetIdentity().GetHostname() == "poison" {
			return []detect.Finding{{RuleID: "poison", Title: "t", Severity: "low", Evidence: map[string]any{"ch": make(chan int)}}}, nil
		}
		return []detect.Finding{finding("fine", "low")}, nil
	})
	good := e.snapshot("r1", "laptop-1", t0, map[string]string{"usb": "u1"})
	bad := e.snapshot("r2", "poison", t0, map[string]string{"usb": "u2"})
	acked, err := e.st.Ingest(e.ctx, e.batch("a1", t0, good, bad), poison)
	if err == nil || acked != nil {
		e.Fatalf("Ingest = %v, %v; want an error and nothing acked", acked, err)
	}
	if !strings.Contains(err.Error(), "r2") {
		e.Errorf("error %q does not name the failed report", err)
	}
	if n := e.reportCount(dev); n != 0 {
		e.Errorf("failed batch stored %d reports", n)
	}
	if _, err := e.st.LatestSnapshot(e.ctx, dev); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("failed batch stored a snapshot: %v", err)
	}
	if h := e.history(dev); len(h) != 0 {
		e.Errorf("failed batch stored history: %+v", h)
	}
	if d := e.device(dev); !d.LastSeen.IsZero() || d.Hostname != "laptop-1" || !d.SnapshotAt.IsZero() {
		e.Errorf("failed batch updated the device: %+v", d)
	}
	if a := e.agent("a1"); !a.LastSeen.IsZero() {
		e.Errorf("failed batch updated the agent: %+v", a)
	}
	if a := e.alerts(store.AlertFilter{}); len(a) != 0 {
		e.Errorf("failed batch raised alerts: %+v", a)
	}

	// The agent retries the same reports; now they are stored.
	acked = e.ingest("a1", t0, noRules, good, bad)
	if !slices.Equal(acked, []string{"r1", "r2"}) || e.reportCount(dev) != 2 {
		e.Fatalf("retry acked %v, stored %d", acked, e.reportCount(dev))
	}
}

func testRuleErrorKeepsReport(e *env) {
	dev := e.enroll("a1", "hw:u/1", "laptop-1")
	broken := evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
		if scope == detect.ScopeDevice {
			return []detect.Finding{finding("still_fires", "medium")}, errors.New("rule other: no such key")
		}
		return nil, errors.New("rule snap: cost limit exceeded")
	})
	acked := e.ingest("a1", t0, broken, e.snapshot("r1", "laptop-1", t0, map[string]string{"usb": "u1"}))
	if !slices.Equal(acked, []string{"r1"}) || e.reportCount(dev) != 1 {
		e.Fatalf("a failing rule lost the report: acked %v", acked)
	}
	if a := e.alerts(store.AlertFilter{DeviceID: dev}); len(a) != 1 || a[0].RuleID != "still_fires" {
		e.Fatalf("the findings of the working rules were lost: %+v", a)
	}
}

func testAlertDedup(e *env) {
	dev := e.enroll("a1", "hw:u/1", "laptop-1")
	f := finding("remote_tool", "high")
	f.Evidence = map[string]any{"tool": "anydesk", "n": 1}
	e.ingest("a1", t0, deviceFindings(f), e.heartbeat("r1", "laptop-1", t0))
	got := e.alerts(store.AlertFilter{DeviceID: dev})
	if len(got) != 1 {
		e.Fatalf("alerts %+v, want one", got)
	}
	a := got[0]
	if a.RuleID != "remote_tool" || a.Title != f.Title || a.Severity != "high" || a.Description != f.Description ||
		a.Status != store.StatusOpen || a.Assignee != "" || a.DeviceID != dev || a.Hostname != "laptop-1" || a.Count != 1 ||
		!slices.Equal(a.Tags, []string{"T0001"}) || a.Evidence["tool"] != "anydesk" || a.Evidence["n"] != float64(1) {
		e.Fatalf("alert %+v", a)
	}
	wantTime(e.T, "first_seen", a.FirstSeen, t0)
	wantTime(e.T, "last_seen", a.LastSeen, t0)
	if byID, err := e.st.GetAlert(e.ctx, a.ID); err != nil || !reflect.DeepEqual(byID, a) {
		e.Fatalf("GetAlert = %+v, %v; want %+v", byID, err, a)
	}
	_, err := e.st.GetAlert(e.ctx, a.ID+1000)
	wantErr(e.T, err, store.ErrNotFound, "GetAlert of an unknown id")

	// Firing again: one alert, counted, last_seen moves, evidence is the latest.
	t1 := t0.Add(10 * time.Minute)
	f.Evidence = map[string]any{"tool": "anydesk", "n": 2}
	f.Tags = nil
	e.ingest("a1", t1, deviceFindings(f), e.heartbeat("r2", "laptop-1", t1))
	got = e.alerts(store.AlertFilter{DeviceID: dev})
	if len(got) != 1 || got[0].ID != a.ID || got[0].Count != 2 || got[0].Evidence["n"] != float64(2) {
		e.Fatalf("after the second firing: %+v", got)
	}
	if got[0].Tags == nil || len(got[0].Tags) != 0 {
		e.Errorf("tags %#v, want an empty list", got[0].Tags)
	}
	wantTime(e.T, "first_seen after the second firing", got[0].FirstSeen, t0)
	wantTime(e.T, "last_seen after the second firing", got[0].LastSeen, t1)

	// A retried report does not fire again.
	e.ingest("a1", t1.Add(time.Minute), deviceFindings(f), e.heartbeat("r2", "laptop-1", t1))
	if got = e.alerts(store.AlertFilter{DeviceID: dev}); got[0].Count != 2 {
		e.Fatalf("a retried report counted again: %+v", got[0])
	}
}

func testListAlerts(e *env) {
	dA := e.enroll("a1", "hw:u/1", "host-a")
	dB := e.enroll("b1", "hw:u/2", "host-b")
	e.ingest("a1", t0, deviceFindings(finding("rule_a", "high"), finding("rule_b", "low")), e.heartbeat("r1", "host-a", t0))
	e.ingest("b1", t0, deviceFindings(finding("rule_a", "high"), finding("rule_c", "critical")), e.heartbeat("r1", "host-b", t0))
	all := e.alerts(store.AlertFilter{})
	if len(all) != 4 {
		e.Fatalf("alerts %+v, want 4", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			e.Fatalf("not newest first: ids %d, %d", all[i-1].ID, all[i].ID)
		}
	}
	find := func(dev, rule string) store.Alert {
		for _, a := range all {
			if a.DeviceID == dev && a.RuleID == rule {
				return a
			}
		}
		e.Fatalf("no alert %s on %s", rule, dev)
		return store.Alert{}
	}
	ack := store.StatusAcknowledged
	if _, err := e.st.UpdateAlert(e.ctx, find(dA, "rule_b").ID, store.AlertChange{Status: &ack}, "analyst:bob"); err != nil {
		e.Fatal(err)
	}
	type key struct{ dev, rule string }
	keys := func(as []store.Alert) []key {
		var out []key
		for _, a := range as {
			out = append(out, key{a.DeviceID, a.RuleID})
		}
		slices.SortFunc(out, func(x, y key) int { return strings.Compare(x.dev+x.rule, y.dev+y.rule) })
		return out
	}
	sorted := func(ks ...key) []key {
		slices.SortFunc(ks, func(x, y key) int { return strings.Compare(x.dev+x.rule, y.dev+y.rule) })
		return ks
	}
	for _, c := range []struct {
		name string
		f    store.AlertFilter
		want []key
	}{
		{"status open", store.AlertFilter{Status: store.StatusOpen}, sorted(key{dA, "rule_a"}, key{dB, "rule_a"}, key{dB, "rule_c"})},
		{"status acknowledged", store.AlertFilter{Status: store.StatusAcknowledged}, sorted(key{dA, "rule_b"})},
		{"status resolved", store.AlertFilter{Status: store.StatusResolved}, nil},
		{"severity high", store.AlertFilter{Severity: "high"}, sorted(key{dA, "rule_a"}, key{dB, "rule_a"})},
		{"severity critical", store.AlertFilter{Severity: "critical"}, sorted(key{dB, "rule_c"})},
		{"rule", store.AlertFilter{RuleID: "rule_a"}, sorted(key{dA, "rule_a"}, key{dB, "rule_a"})},
		{"device", store.AlertFilter{DeviceID: dB}, sorted(key{dB, "rule_a"}, key{dB, "rule_c"})},
		{"device and rule", store.AlertFilter{DeviceID: dB, RuleID: "rule_a"}, sorted(key{dB, "rule_a"})},
		{"all four", store.AlertFilter{Status: store.StatusOpen, Severity: "high", RuleID: "rule_a", DeviceID: dA}, sorted(key{dA, "rule_a"})},
		{"no match", store.AlertFilter{RuleID: "rule_zzz"}, nil},
		{"injection is a value", store.AlertFilter{RuleID: "x' OR '1'='1"}, nil},
	} {
		got := e.alerts(c.f)
		if got == nil {
			e.Errorf("%s: nil slice, want empty", c.name)
		}
		if k := keys(got); !slices.Equal(k, c.want) {
			e.Errorf("%s: got %v, want %v", c.name, k, c.want)
		}
	}
	for _, a := range e.alerts(store.AlertFilter{DeviceID: dA}) {
		if a.Hostname != "host-a" {
			e.Errorf("alert %d hostname %q", a.ID, a.Hostname)
		}
	}

	// Pages of three, continued by id.
	page1 := e.alerts(store.AlertFilter{Limit: 3})
	if len(page1) != 3 || page1[0].ID != all[0].ID || page1[2].ID != all[2].ID {
		e.Fatalf("page 1: %+v", page1)
	}
	page2 := e.alerts(store.AlertFilter{Limit: 3, AfterID: page1[2].ID})
	if len(page2) != 1 || page2[0].ID != all[3].ID {
		e.Fatalf("page 2: %+v", page2)
	}
	if page3 := e.alerts(store.AlertFilter{Limit: 3, AfterID: page2[0].ID}); len(page3) != 0 {
		e.Fatalf("page 3: %+v", page3)
	}
	// Pagination composes with filters.
	open1 := e.alerts(store.AlertFilter{Status: store.StatusOpen, Limit: 1})
	open2 := e.alerts(store.AlertFilter{Status: store.StatusOpen, Limit: 5, AfterID: open1[0].ID})
	if len(open1) != 1 || len(open2) != 2 || open2[0].ID >= open1[0].ID {
		e.Fatalf("filtered pages: %+v / %+v", open1, open2)
	}
}

func testListAlertsLimit(e *env) {
	dev := e.enroll("a1", "hw:u/1", "noisy")
	const n = 1005
	var fs []detect.Finding
	for i := range n {
		fs = append(fs, finding(fmt.Sprintf("rule_%04d", i), "low"))
	}
	e.ingest("a1", t0, deviceFindings(fs...), e.heartbeat("r1", "noisy", t0))
	for _, c := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1, 1}, {250, 250}, {1000, 1000}, {1001, 1000}, {5000, 1000}} {
		if got := e.alerts(store.AlertFilter{Limit: c.limit, DeviceID: dev}); len(got) != c.want {
			e.Errorf("Limit %d: %d alerts, want %d", c.limit, len(got), c.want)
		}
	}
	// Walking all pages sees every alert once.
	seen := map[int64]bool{}
	var after int64
	for pages := 0; ; pages++ {
		if pages > n {
			e.Fatal("pagination does not end")
		}
		page := e.alerts(store.AlertFilter{Limit: 300, AfterID: after})
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			if seen[a.ID] {
				e.Fatalf("alert %d listed twice", a.ID)
			}
			seen[a.ID] = true
		}
		after = page[len(page)-1].ID
	}
	if len(seen) != n {
		e.Fatalf("pages held %d alerts, want %d", len(seen), n)
	}
}

func testUpdateAlert(e *env) {
	dev := e.enroll("a1", "hw:u/1", "laptop-1")
	e.ingest("a1", t0, deviceFindings(finding("rule_a", "high")), e.heartbeat("r1", "laptop-1", t0))
	a := e.alerts(store.AlertFilter{DeviceID: dev})[0]
	id := fmt.Sprint(a.ID)

	ack, bob, note := store.StatusAcknowledged, "bob", "asked the user"
	got, err := e.st.UpdateAlert(e.ctx, a.ID, store.AlertChange{Status: &ack, Assignee: &bob, Note: &note}, "analyst:alice")
	if err != nil {
		e.Fatal(err)
	}
	if got.ID != a.ID || got.Status != ack || got.Assignee != "bob" || got.Count != 1 || got.RuleID != "rule_a" {
		e.Fatalf("UpdateAlert = %+v", got)
	}
	// The rule opened the alert; the analyst changed it.
	log := e.audit("alert", id)
	if len(log) != 2 || log[0].Actor != "system" || log[0].Action != store.ActionOpened {
		e.Fatalf("audit %+v, want the opened entry and one change", log)
	}
	want := map[string]any{
		"status":   map[string]any{"from": "open", "to": "acknowledged"},
		"assignee": map[string]any{"from": "", "to": "bob"},
		"note":     "asked the user",
	}
	if l := log[1]; l.Actor != "analyst:alice" || l.Action != "update" || l.TargetType != "alert" || !reflect.DeepEqual(l.Detail, want) {
		e.Fatalf("audit entry %+v, want detail %v", l, want)
	}

	// Nothing changes: nothing is written.
	if got, err := e.st.UpdateAlert(e.ctx, a.ID, store.AlertChange{Status: &ack, Assignee: &bob}, "analyst:alice"); err != nil || got.Status != ack {
		e.Fatalf("no-op update = %+v, %v", got, err)
	}
	if log := e.audit("alert", id); len(log) != 2 {
		e.Fatalf("a no-op update was audited: %+v", log)
	}

	// Only what changed is recorded.
	resolved := store.StatusResolved
	if _, err := e.st.UpdateAlert(e.ctx, a.ID, store.AlertChange{Status: &resolved}, "analyst:carol"); err != nil {
		e.Fatal(err)
	}
	log = e.audit("alert", id)
	if len(log) != 3 || log[2].Actor != "analyst:carol" ||
		!reflect.DeepEqual(log[2].Detail, map[string]any{"status": map[string]any{"from": "acknowledged", "to": "resolved"}}) {
		e.Fatalf("audit %+v", log)
	}
	if g, _ := e.st.GetAlert(e.ctx, a.ID); g.Status != resolved || g.Assignee != "bob" {
		e.Fatalf("alert after resolving: %+v", g)
	}

	bad := "closed"
	_, err = e.st.UpdateAlert(e.ctx, a.ID, store.AlertChange{Status: &bad, Assignee: &bob}, "analyst:alice")
	wantErr(e.T, err, store.ErrInvalid, "status closed")
	_, err = e.st.UpdateAlert(e.ctx, a.ID+1000, store.AlertChange{Status: &ack}, "analyst:alice")
	wantErr(e.T, err, store.ErrNotFound, "unknown alert")
	if log := e.audit("alert", id); len(log) != 3 {
		e.Fatalf("refused updates were audited: %+v", log)
	}
	if g, _ := e.st.GetAlert(e.ctx, a.ID); g.Status != resolved {
		e.Fatalf("a refused update changed the alert: %+v", g)
	}
}

// enrolledAt is the stored enrollment time of agent id of device dev.
func (e *env) enrolledAt(dev, id string) time.Time {
	e.Helper()
	agents, err := e.st.DeviceAgents(e.ctx, dev)
	if err != nil {
		e.Fatal(err)
	}
	for _, a := range agents {
		if a.ID == id {
			return a.EnrolledAt
		}
	}
	e.Fatalf("agent %s not on device %s", id, dev)
	return time.Time{}
}

func testDuplicateHardwareIdentity(e *env) {
	rules := &recorder{rules: defaultRules(e.T)}
	dev := e.enroll("a1", "hw:clone/SN1", "laptop-1")
	e.enrollApproved("a2", "hw:clone/SN1", "laptop-1")
	base := e.enrolledAt(dev, "a2") // both enrollments precede every report

	e.ingest("a1", base.Add(time.Minute), rules, e.heartbeat("r1", "laptop-1", base.Add(time.Minute)))
	if got := rules.last(); !slices.Equal(got, []string{"a1"}) {
		e.Fatalf("live agents after a1's first report: %v", got)
	}
	if a := e.alerts(store.AlertFilter{RuleID: "duplicate_hardware_identity"}); len(a) != 0 {
		e.Fatalf("one reporting agent raised %+v", a)
	}
	e.ingest("a2", base.Add(2*time.Minute), rules, e.heartbeat("r1", "laptop-1", base.Add(2*time.Minute)))
	if got := rules.last(); !slices.Equal(got, []string{"a2", "a1"}) {
		e.Fatalf("live agents after both reported: %v, want [a2 a1]", got)
	}
	alerts := e.alerts(store.AlertFilter{RuleID: "duplicate_hardware_identity"})
	if len(alerts) != 1 || alerts[0].DeviceID != dev || alerts[0].Severity != "high" {
		e.Fatalf("alerts %+v, want one duplicate_hardware_identity on %s", alerts, dev)
	}
	ev := alerts[0].Evidence
	if !reflect.DeepEqual(ev["agent_ids"], []any{"a2", "a1"}) || ev["agent_count"] != float64(2) {
		e.Fatalf("evidence %v", ev)
	}

}

func testReEnrolled(e *env) {
	rules := &recorder{rules: defaultRules(e.T)}
	dev := e.enroll("old", "hw:reinstall/SN1", "laptop-1")
	e.enrollApproved("new", "hw:reinstall/SN1", "laptop-1")
	enrolledNew := e.enrolledAt(dev, "new")

	// The old agent's last report precedes the new enrollment; it is well
	// inside the liveness window when the new agent reports.
	before := enrolledNew.Add(-time.Microsecond)
	e.ingest("old", before, rules, e.heartbeat("r1", "laptop-1", before))
	for i, at := range []time.Time{enrolledNew.Add(time.Minute), enrolledNew.Add(2 * time.Minute)} {
		e.ingest("new", at, rules, e.heartbeat(fmt.Sprint("n", i), "laptop-1", at))
		if got := rules.last(); !slices.Equal(got, []string{"new"}) {
			e.Fatalf("live agents after the new agent's report %d: %v, want [new]", i, got)
		}
	}
	if a := e.alerts(store.AlertFilter{DeviceID: dev}); len(a) != 0 {
		e.Fatalf("a reinstall raised %+v", a)
	}
}

func testSweep(e *env) {
	rules := defaultRules(e.T)
	silent := e.enroll("s1", "hw:u/1", "silent")
	quiet := e.enroll("q1", "hw:u/2", "quiet")
	fresh := e.enroll("f1", "hw:u/3", "fresh")
	revoked := e.enroll("r1", "hw:u/4", "revoked")
	e.ingest("s1", t0, rules, e.heartbeat("h", "silent", t0))
	e.ingest("q1", t0.Add(10*time.Minute), rules, e.heartbeat("h", "quiet", t0.Add(10*time.Minute)))
	e.ingest("f1", t0.Add(14*time.Minute), rules, e.heartbeat("h", "fresh", t0.Add(14*time.Minute)))
	e.ingest("r1", t0, rules, e.heartbeat("h", "revoked", t0))
	if err := e.st.RevokeDevice(e.ctx, revoked, "admin"); err != nil {
		e.Fatal(err)
	}
	if a := e.alerts(store.AlertFilter{RuleID: "agent_silent"}); len(a) != 0 {
		e.Fatalf("agent_silent before any sweep: %+v", a)
	}

	// At t0+16m with a 5m interval: silent is 16m silent (over 3×5m),
	// quiet 6m (overdue, evaluated, not silent), fresh 2m (not evaluated).
	now := t0.Add(16 * time.Minute)
	n, err := e.st.Sweep(e.ctx, rules, now)
	if err != nil {
		e.Fatal(err)
	}
	if n != 2 {
		e.Errorf("Sweep evaluated %d devices, want 2 (silent, quiet)", n)
	}
	alerts := e.alerts(store.AlertFilter{RuleID: "agent_silent"})
	if len(alerts) != 1 || alerts[0].DeviceID != silent {
		e.Fatalf("agent_silent alerts %+v, want one on %s (not %s, %s, %s)", alerts, silent, quiet, fresh, revoked)
	}
	a := alerts[0]
	if a.Evidence["silent_for"] != "16m0s" || a.Evidence["never_reported"] != false || a.Evidence["agent_id"] != "s1" || a.Count != 1 {
		e.Fatalf("alert %+v", a)
	}
	wantTime(e.T, "agent_silent first_seen", a.FirstSeen, now)

	// A later sweep counts the same alert again.
	later := t0.Add(30 * time.Minute)
	if _, err := e.st.Sweep(e.ctx, rules, later); err != nil {
		e.Fatal(err)
	}
	alerts = e.alerts(store.AlertFilter{RuleID: "agent_silent"})
	bySilent := e.alerts(store.AlertFilter{RuleID: "agent_silent", DeviceID: silent})
	if len(bySilent) != 1 || bySilent[0].Count != 2 || !bySilent[0].FirstSeen.Equal(now) || !bySilent[0].LastSeen.Equal(later) {
		e.Fatalf("after a second sweep: %+v", bySilent)
	}
	for _, a := range alerts {
		if a.DeviceID == revoked {
			e.Fatalf("a revoked device was swept: %+v", a)
		}
	}
}

// testSweepWaitingReport: a report the collector received and has not
// stored yet (a busy writer) is the agent's voice; the sweep does not
// call that device silent meanwhile, and does once nothing is waiting.
func testSweepWaitingReport(e *env) {
	rules := defaultRules(e.T)
	dev := e.enroll("w1", "hw:u/w1", "waiting")
	now := e.enrolledAt(dev, "w1").Add(time.Hour)
	e.st.HoldForTest(dev, 1)
	if n, err := e.st.Sweep(e.ctx, rules, now); err != nil || n != 0 {
		e.Fatalf("sweep with a report waiting: %d devices, %v; want 0", n, err)
	}
	if a := e.alerts(store.AlertFilter{DeviceID: dev}); len(a) != 0 {
		e.Fatalf("alerts while a report waits: %+v", a)
	}
	e.st.HoldForTest(dev, -1)
	if n, err := e.st.Sweep(e.ctx, rules, now); err != nil || n != 1 {
		e.Fatalf("sweep after it was stored: %d devices, %v; want 1", n, err)
	}
	if a := e.alerts(store.AlertFilter{RuleID: "agent_silent", DeviceID: dev}); len(a) != 1 {
		e.Fatalf("agent_silent alerts %+v, want one", a)
	}
}

func testSweepNeverReported(e *env) {
	rules := defaultRules(e.T)
	dev := e.enroll("n1", "hw:u/1", "never")
	// The device enrolled and never reported: it counts from its
	// enrollment, with the default interval of five minutes.
	now := e.enrolledAt(dev, "n1").Add(time.Hour)
	if _, err := e.st.Sweep(e.ctx, rules, now); err != nil {
		e.Fatal(err)
	}
	alerts := e.alerts(store.AlertFilter{RuleID: "agent_silent", DeviceID: dev})
	if len(alerts) != 1 || alerts[0].Evidence["never_reported"] != true {
		e.Fatalf("agent_silent alerts %+v, want one with never_reported", alerts)
	}
	// The device's person is known, but nothing about the laptop is: the
	// rules that need a report (egress_location_unknown would fire on the
	// empty egress) do not run, on this sweep or the next.
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "nia@example.com", DeviceSerial: "SN-never"}, "test"); err != nil {
		e.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.st.Sweep(e.ctx, rules, now.Add(time.Duration(i)*time.Minute)); err != nil {
			e.Fatal(err)
		}
	}
	all := e.alerts(store.AlertFilter{DeviceID: dev})
	if len(all) != 1 || all[0].RuleID != "agent_silent" {
		e.Fatalf("alerts on a device that never reported: %+v, want agent_silent only", all)
	}
	// Its first report resolves agent_silent, with a system entry on the
	// alert's timeline.
	e.ingest("n1", now.Add(5*time.Minute), rules, e.heartbeat("first", "never", now.Add(5*time.Minute)))
	if a := e.alerts(store.AlertFilter{RuleID: "agent_silent", DeviceID: dev, Status: store.StatusOpen}); len(a) != 0 {
		e.Fatalf("agent_silent still open after a report: %+v", a)
	}
	entries := e.audit("alert", fmt.Sprint(all[0].ID))
	if n := len(entries); n == 0 || entries[n-1].Actor != "system" || entries[n-1].Action != "resolve" {
		e.Fatalf("timeline %+v, want a system resolve last", entries)
	}

	// Shortly after enrollment it is not silent yet.
	dev2 := e.enroll("n2", "hw:u/2", "new")
	if _, err := e.st.Sweep(e.ctx, rules, e.enrolledAt(dev2, "n2").Add(time.Minute)); err != nil {
		e.Fatal(err)
	}
	if a := e.alerts(store.AlertFilter{RuleID: "agent_silent", DeviceID: dev2}); len(a) != 0 {
		e.Fatalf("a device enrolled a minute ago is silent: %+v", a)
	}
}

func testTryLock(t *testing.T, dsn string) {
	ctx := t.Context()
	st := storetest.Open(t, dsn)
	ok, release, err := st.TryLock(ctx, 42)
	if err != nil || !ok || release == nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if st.Dialect() != store.Postgres {
		// One SQLite collector: the lock always succeeds.
		ok2, release2, err := st.TryLock(ctx, 42)
		if err != nil || !ok2 {
			t.Fatalf("second TryLock on SQLite = %v, %v", ok2, err)
		}
		release2()
		release()
		return
	}
	other := storetest.Open(t, dsn) // another replica
	for _, s := range []*store.Store{other, st} {
		if ok, rel, err := s.TryLock(ctx, 42); err != nil || ok || rel != nil {
			t.Fatalf("TryLock while held = %v, %v", ok, err)
		}
	}
	ok3, release3, err := other.TryLock(ctx, 43)
	if err != nil || !ok3 {
		t.Fatalf("TryLock of another key = %v, %v", ok3, err)
	}
	release3()
	release()
	ok, release, err = other.TryLock(ctx, 42)
	if err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v", ok, err)
	}
	release()
}

func TestLiveAgents(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	type a = store.LiveAgentForTest
	now := at(60)
	const window = 15 * time.Minute
	for _, c := range []struct {
		name   string
		agents []a
		want   []string
	}{
		{"none", nil, []string{}},
		{"one live", []a{{"a1", at(0), at(59)}}, []string{"a1"}},
		{"one silent", []a{{"a1", at(0), at(44)}}, []string{}},
		{"at the window's edge", []a{{"a1", at(0), at(45)}}, []string{"a1"}},
		{"reinstall: old stopped before new enrolled", []a{{"old", at(0), at(49)}, {"new", at(50), at(59)}}, []string{"new"}},
		{"old reported at the very enrollment instant", []a{{"old", at(0), at(50)}, {"new", at(50), at(59)}}, []string{"new"}},
		{"clone: both report after both enrolled", []a{{"a1", at(0), at(58)}, {"a2", at(10), at(59)}}, []string{"a2", "a1"}},
		{"clone, older agent most recent", []a{{"a1", at(0), at(59)}, {"a2", at(10), at(58)}}, []string{"a1", "a2"}},
		{"three clones", []a{{"a1", at(0), at(57)}, {"a3", at(20), at(59)}, {"a2", at(10), at(58)}}, []string{"a3", "a2", "a1"}},
		{"newest went silent, old still live", []a{{"a1", at(0), at(59)}, {"a2", at(10), at(30)}}, []string{"a1"}},
		{"clone whose twin went silent", []a{{"a1", at(0), at(40)}, {"a2", at(10), at(59)}}, []string{"a2"}},
		{"one of three stopped before the newest enrolled", []a{{"a1", at(0), at(52)}, {"a2", at(10), at(59)}, {"a3", at(55), at(58)}}, []string{"a2", "a3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := store.LiveAgents(c.agents, now, window)
			if got == nil || !slices.Equal(got, c.want) {
				t.Fatalf("liveAgents = %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		dialect  store.Dialect
		in, want string
	}{
		{store.SQLite, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{store.Postgres, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{store.Postgres, "SELECT 1", "SELECT 1"},
		{store.Postgres, "", ""},
		{store.Postgres, "(?,?,?,?,?,?,?,?,?,?,?,?)", "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"},
		{store.Postgres, "UPDATE t SET name = ? -- «é»\nWHERE id = ?", "UPDATE t SET name = $1 -- «é»\nWHERE id = $2"},
	} {
		if got := store.Rebind(c.dialect, c.in); got != c.want {
			t.Errorf("%s: q(%q) = %q, want %q", c.dialect, c.in, got, c.want)
		}
	}
}
