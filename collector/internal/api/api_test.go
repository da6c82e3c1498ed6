package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/api"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// fires is an evaluator whose device rules always find the findings.
type fires []detect.Finding

func (f fires) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice {
		return f, nil
	}
	return nil, nil
}

func (fires) AutoResolve(detect.Scope) []string { return nil }

// fixture is the API over a real SQLite store with one device, on which a
// farm rule and a device rule fired, and an analyst's token.
type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	st     *store.Store
	dsn    string
	token  string
	ingest func(reportID string)
}

var findings = fires{
	{RuleID: "laptop_farm_suspected", Title: "Laptops of several people share one home network", Severity: "high",
		Category: "fleet", Evidence: map[string]any{"cluster": "c-0123456789ab", "people": 4}},
	{RuleID: "kvm_usb_identity", Title: "IP-KVM by its USB identity", Severity: "medium",
		Category: "peripherals", Evidence: map[string]any{"product": "PiKVM"}},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	dsn := filepath.Join(t.TempDir(), "bonafide.db")
	st := storetest.Open(t, dsn)
	token, _, err := accounts.New(st).CreateToken(ctx, "test", accounts.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := store.DeviceIdentity{SerialNumber: "SN1", Hostname: "lat-1", OSFamily: "linux", AgentVersion: "1.0.0"}
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-1", SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-1",
		Identity: id, CertSerial: "c1", CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	a, err := st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, dsn: dsn, token: token}
	f.ingest = func(reportID string) {
		t.Helper()
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: "198.51.100.1", ReceivedAt: time.Now(), ReportInterval: time.Minute,
			Reports: []store.IngestReport{{ReportID: reportID, Sequence: 1, CreatedAt: time.Now(), Identity: id}}}, findings); err != nil {
			t.Fatal(err)
		}
	}
	f.ingest("r1")
	f.srv = httptest.NewServer(api.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	t.Cleanup(f.srv.Close)
	return f
}

// call makes a request and decodes the JSON answer, failing unless the
// status is want.
func (f *fixture) call(method, path, body string, want int) map[string]any {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != want {
		f.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return out
}

// TestListFilters: every list endpoint takes what the web UI sends
// (status=all) and refuses, with invalid_argument, a value or a
// parameter it does not know instead of silently matching everything or
// nothing.
func TestListFilters(t *testing.T) {
	f := newFixture(t)
	count := func(path string) int {
		t.Helper()
		return len(f.call("GET", path, "", 200)["alerts"].([]any))
	}
	for path, want := range map[string]int{
		"/api/v1/alerts":                            2,
		"/api/v1/alerts?status=all":                 2,
		"/api/v1/alerts?status=open":                2,
		"/api/v1/alerts?status=resolved":            0,
		"/api/v1/alerts?severity=high":              1,
		"/api/v1/alerts?status=all&sort=severity":   2,
		"/api/v1/alerts?sort=last_seen&limit=1":     1,
		"/api/v1/alerts?rule_id=kvm_usb_identity":   1,
		"/api/v1/alerts?severity=&status=&sort=":    2,
		"/api/v1/alerts?device_id=no-such-device":   0,
		"/api/v1/alerts?status=all&severity=medium": 1,
	} {
		if got := count(path); got != want {
			t.Errorf("GET %s: %d alerts, want %d", path, got, want)
		}
	}
	for path, msg := range map[string]string{
		"/api/v1/alerts?severity=urgent":          `unknown severity "urgent" (one of critical, high, medium, low)`,
		"/api/v1/alerts?status=pending":           `unknown status "pending" (one of all, open, acknowledged, resolved, false_positive)`,
		"/api/v1/alerts?sort=oldest":              `unknown sort "oldest"`,
		"/api/v1/alerts?severty=high":             `unknown query parameter "severty"`,
		"/api/v1/alerts?status=open&status=all":   `query parameter "status" given 2 times`,
		"/api/v1/alerts?limit=-1":                 "limit must be a non-negative integer",
		"/api/v1/alerts?sort=severity&cursor=x.1": `cursor "x.1"`,
		"/api/v1/devices?sort=name":               `unknown sort "name" (one of id, risk)`,
		"/api/v1/devices?status=open":             `unknown query parameter "status" (this endpoint takes sort, cursor, limit)`,
		"/api/v1/devices?limit=ten":               "limit must be a non-negative integer",
		"/api/v1/people?sort=risk":                `unknown query parameter "sort"`,
		"/api/v1/people?limit=x":                  "limit must be a non-negative integer",
		"/api/v1/farms?suspected=yes":             `unknown suspected "yes" (one of true, false)`,
		"/api/v1/farms?status=open":               `unknown query parameter "status"`,
		"/api/v1/suppressions?rule_id=x":          `unknown query parameter "rule_id" (this endpoint takes none)`,
	} {
		e := f.call("GET", path, "", 400)["error"].(map[string]any)
		if e["code"] != "invalid_argument" || !strings.Contains(e["message"].(string), msg) {
			t.Errorf("GET %s: %v, want invalid_argument saying %q", path, e, msg)
		}
	}
	for _, path := range []string{"/api/v1/devices?sort=risk&limit=5", "/api/v1/devices?sort=id", "/api/v1/people?limit=5",
		"/api/v1/farms?suspected=true&limit=5", "/api/v1/farms?suspected=false", "/api/v1/suppressions"} {
		f.call("GET", path, "", 200)
	}
}

// TestAlertTimelineAndFarm: a new alert's timeline starts with its
// "opened" entry, a re-opened one records that, and a farm rule's alert
// names its farm.
func TestAlertTimelineAndFarm(t *testing.T) {
	f := newFixture(t)
	alerts := f.call("GET", "/api/v1/alerts?sort=severity", "", 200)["alerts"].([]any)
	farm, device := alerts[0].(map[string]any), alerts[1].(map[string]any)
	if farm["rule_id"] != "laptop_farm_suspected" || farm["farm_id"] != "c-0123456789ab" {
		t.Errorf("farm alert: %v, want farm_id c-0123456789ab", farm)
	}
	if _, ok := device["farm_id"]; ok || device["rule_id"] != "kvm_usb_identity" {
		t.Errorf("device alert: %v, want no farm_id", device)
	}

	path := "/api/v1/alerts/" + strconv.Itoa(int(farm["id"].(float64)))
	actions := func() []string {
		t.Helper()
		got := f.call("GET", path, "", 200)
		if got["farm_id"] != "c-0123456789ab" {
			t.Errorf("GET %s: farm_id %v", path, got["farm_id"])
		}
		var out []string
		for _, e := range got["timeline"].([]any) {
			e := e.(map[string]any)
			out = append(out, e["actor"].(string)+" "+e["action"].(string))
		}
		return out
	}
	if got := actions(); strings.Join(got, ", ") != "system opened" {
		t.Errorf("new alert's timeline: %q, want [system opened]", got)
	}
	f.call("PATCH", path, `{"status": "resolved", "note": "checked"}`, 200)
	f.ingest("r2") // the rule fires again
	got := actions()
	if len(got) != 3 || got[0] != "system opened" || !strings.HasSuffix(got[1], " update") || got[2] != "system reopen" {
		t.Errorf("re-opened alert's timeline: %q, want opened, update, reopen", got)
	}
	// Still one "opened": the alert was raised once.
	if n := strings.Count(strings.Join(got, ","), "opened"); n != 1 {
		t.Errorf("timeline %q has %d opened entries", got, n)
	}
	// The entry is in the audit log itself, not only in the API's answer.
	if log, err := f.st.Audit(t.Context(), "alert", path[len("/api/v1/alerts/"):]); err != nil || len(log) != 3 || log[0].Action != "opened" {
		t.Errorf("audit log %+v %v", log, err)
	}

	// An alert raised by a collector that did not record "opened" yet
	// shows it at its first_seen.
	db, err := sql.Open("sqlite", f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := strconv.Itoa(int(device["id"].(float64)))
	if _, err := db.Exec(`DELETE FROM audit_log WHERE target_type = 'alert' AND target_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	old := f.call("GET", "/api/v1/alerts/"+id, "", 200)
	if tl := old["timeline"].([]any); len(tl) != 1 || tl[0].(map[string]any)["action"] != "opened" || tl[0].(map[string]any)["at"] != old["first_seen"] {
		t.Errorf("legacy alert's timeline %v, want opened at first_seen %v", tl, old["first_seen"])
	}
}
