package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
)

// TestPolicyHotReload edits the running collector's policy directory: a
// broken edit is refused (the last good set stays active, the error is in
// the API with file:line), a good edit becomes active at once, is
// versioned, and its new rule fires on the next report.
func TestPolicyHotReload(t *testing.T) {
	agent, collector := binaries(t)
	pol := filepath.Join(t.TempDir(), "policies")
	if err := os.CopyFS(pol, policies.FS()); err != nil {
		t.Fatal(err)
	}
	s := startServerArgs(t, collector, t.TempDir(), "--policies", pol, "--policy-reload-interval", "100ms")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	status := func() map[string]any { return s.api(t, "GET", "/api/v1/policies", viewer, "", 200) }
	until := func(what string, ok func(map[string]any) bool) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if st := status(); ok(st) {
				return st
			}
		}
		t.Fatalf("%s: %v", what, status())
		return nil
	}
	st := status()
	first := st["active"].(map[string]any)["digest"].(string)
	if len(st["versions"].([]any)) != 1 || len(st["rules"].([]any)) < 20 {
		t.Fatalf("initial policies: %v", st)
	}

	rule := func(cond string) string {
		return `rules:
  - id: lab_host
    title: The lab's Debian laptop reported
    severity: low
    description: A rule added while the collector runs.
    scope: device
    condition: ` + cond + `
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: deb-laptop-042}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: other}}, fires: false}
`
	}
	file := filepath.Join(pol, "rules", "lab.yaml")
	os.WriteFile(file, []byte(rule(`device.hostnme == "deb-laptop-042"`)), 0o644)
	st = until("broken edit reported", func(m map[string]any) bool {
		e, _ := m["active"].(map[string]any)["last_error"].(string)
		return strings.Contains(e, "rules/lab.yaml:7")
	})
	if st["active"].(map[string]any)["digest"] != first {
		t.Fatalf("a broken edit replaced the active set: %v", st["active"])
	}

	os.WriteFile(file, []byte(rule(`device.hostname == "deb-laptop-042"`)), 0o644)
	st = until("good edit active and versioned", func(m map[string]any) bool {
		a := m["active"].(map[string]any)
		return a["digest"] != first && a["last_error"] == nil && len(m["versions"].([]any)) == 2
	})
	if v := st["versions"].([]any); len(v) != 2 || !strings.Contains(strings.Join(toStrings(v[0].(map[string]any)["rule_ids"].([]any)), ","), "lab_host") {
		t.Fatalf("versions %v", v)
	}

	// The new rule runs on the next report.
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	st2 := t.TempDir()
	root := "../agent/internal/hostid/testdata/root-debian"
	runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", st2, "--root", root)
	runAgent(t, agent, "run", "--once", "--state-dir", st2, "--root", root)
	if alerts := s.api(t, "GET", "/api/v1/alerts?rule_id=lab_host", viewer, "", 200)["alerts"].([]any); len(alerts) != 1 {
		t.Fatalf("lab_host alerts %v", alerts)
	}

	// Resolved, then the rule fires again: the alert re-opens, and its
	// timeline says the system did it.
	alert := s.api(t, "GET", "/api/v1/alerts?rule_id=lab_host", viewer, "", 200)["alerts"].([]any)[0].(map[string]any)
	id := fmt.Sprint(int64(alert["id"].(float64)))
	analyst := s.admin(t, "token", "create", "--role", "analyst")
	s.api(t, "PATCH", "/api/v1/alerts", analyst, `{"ids": [`+id+`], "status": "resolved", "note": "lab machine"}`, 200)
	runAgent(t, agent, "run", "--once", "--state-dir", st2, "--root", root)
	got := s.api(t, "GET", "/api/v1/alerts/"+id, viewer, "", 200)
	timeline, _ := json.Marshal(got["timeline"])
	if got["status"] != "open" || !strings.Contains(string(timeline), `"actor":"system"`) || !strings.Contains(string(timeline), "fired again") {
		t.Fatalf("re-open: %v", got)
	}
	s.api(t, "PATCH", "/api/v1/alerts", analyst, `{"ids": [`+id+`, 999999], "status": "acknowledged"}`, 404)
	if a := s.api(t, "GET", "/api/v1/alerts/"+id, viewer, "", 200); a["status"] != "open" {
		t.Fatalf("a bulk change with an unknown id changed %v", a["status"])
	}

	// Suppressed (for this device and rule, with a reason and an expiry),
	// a resolved alert stays resolved when the rule fires again; once the
	// suppression is deleted, it re-opens.
	devID := alert["device_id"].(string)
	expires := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	s.api(t, "POST", "/api/v1/suppressions", analyst, `{"rule_id": "lab_host", "reason": "x"}`, 400)       // no expiry
	s.api(t, "POST", "/api/v1/suppressions", analyst, `{"reason": "x", "expires_at": "`+expires+`"}`, 400) // no matcher
	s.api(t, "POST", "/api/v1/suppressions", analyst, `{"network": "not-a-cidr", "reason": "x", "expires_at": "`+expires+`"}`, 400)
	s.api(t, "POST", "/api/v1/suppressions", viewer, `{"rule_id": "lab_host", "reason": "x", "expires_at": "`+expires+`"}`, 403)
	sup := s.api(t, "POST", "/api/v1/suppressions", analyst,
		`{"rule_id": "lab_host", "device_id": "`+devID+`", "reason": "the lab's test laptop", "expires_at": "`+expires+`"}`, 200)
	supID := fmt.Sprint(int64(sup["id"].(float64)))
	if list := s.api(t, "GET", "/api/v1/suppressions", viewer, "", 200)["suppressions"].([]any); len(list) != 1 {
		t.Fatalf("suppressions %v", list)
	}
	s.api(t, "PATCH", "/api/v1/alerts", analyst, `{"ids": [`+id+`], "status": "resolved"}`, 200)
	runAgent(t, agent, "run", "--once", "--state-dir", st2, "--root", root)
	if a := s.api(t, "GET", "/api/v1/alerts/"+id, viewer, "", 200); a["status"] != "resolved" {
		t.Fatalf("a suppressed finding re-opened the alert: %v", a["status"])
	}
	s.api(t, "DELETE", "/api/v1/suppressions/"+supID, analyst, "", 200)
	s.api(t, "DELETE", "/api/v1/suppressions/"+supID, analyst, "", 404)
	runAgent(t, agent, "run", "--once", "--state-dir", st2, "--root", root)
	if a := s.api(t, "GET", "/api/v1/alerts/"+id, viewer, "", 200); a["status"] != "open" {
		t.Fatalf("after the suppression was deleted: %v", a["status"])
	}

	// With auto_resolve, the alert resolves itself once a report shows the
	// condition cleared.
	os.WriteFile(file, []byte(`rules:
  - id: lab_host
    title: The lab's Debian laptop reported
    severity: low
    description: Now only another host.
    scope: device
    auto_resolve: true
    condition: device.hostname == "lab-never"
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: lab-never}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: deb-laptop-042}}, fires: false}
`), 0o644)
	until("auto-resolving rule active", func(m map[string]any) bool { return len(m["versions"].([]any)) == 3 })
	runAgent(t, agent, "run", "--once", "--state-dir", st2, "--root", root)
	got = s.api(t, "GET", "/api/v1/alerts/"+id, viewer, "", 200)
	timeline, _ = json.Marshal(got["timeline"])
	if got["status"] != "resolved" || !strings.Contains(string(timeline), "the condition cleared") {
		t.Fatalf("auto-resolve: %v", got)
	}

	// A dry run evaluates a draft against the fleet and creates no alert.
	draft := strings.ReplaceAll(rule(`device.hostname == "deb-laptop-042"`), "lab_host", "draft_rule")
	out := s.api(t, "POST", "/api/v1/policies/dry-run", analyst, draft, 200)
	hits := out["would_fire"].([]any)
	if out["devices_evaluated"] != 1.0 || len(hits) != 1 || hits[0].(map[string]any)["rule_id"] != "draft_rule" ||
		hits[0].(map[string]any)["hostname"] != "deb-laptop-042" {
		t.Fatalf("dry run %v", out)
	}
	if alerts := s.api(t, "GET", "/api/v1/alerts?rule_id=draft_rule", viewer, "", 200)["alerts"].([]any); len(alerts) != 0 {
		t.Fatalf("a dry run created alerts: %v", alerts)
	}
	// A draft that does not load, or whose own tests fail, is refused with where.
	bad := s.api(t, "POST", "/api/v1/policies/dry-run", analyst, strings.Replace(draft, "device.hostname", "device.hostnme", 1), 400)
	if msg := bad["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "rules/draft.yaml:7") {
		t.Fatalf("broken draft: %v", bad)
	}
	failing := s.api(t, "POST", "/api/v1/policies/dry-run", analyst, strings.Replace(draft, `"deb-laptop-042"`, `"nope"`, 1), 400)
	if msg := failing["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "draft_rule/fires") {
		t.Fatalf("draft with a failing test: %v", failing)
	}
	s.api(t, "POST", "/api/v1/policies/dry-run", viewer, draft, 403)
}

func toStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}
