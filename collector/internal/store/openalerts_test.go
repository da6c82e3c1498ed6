package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// firing fires the device rules it holds; r1 and r2 auto-resolve.
type firing struct{ rules []string }

func (f *firing) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	var out []detect.Finding
	for _, r := range f.rules {
		out = append(out, finding(r, "medium"))
	}
	return out, nil
}

func (*firing) AutoResolve(scope detect.Scope) []string {
	if scope == detect.ScopeDevice {
		return []string{"r1", "r2"}
	}
	return nil
}

// TestOpenAlertsCount: a device's open_alerts, by which ingest skips
// auto-resolving on a device with no open alert but of the rules that
// fire (see TestAutoResolveOnlyOthersOpen), follows every change of
// its alerts' statuses (raised, re-opened, triaged, auto-resolved), and
// an alert that must auto-resolve still does.
func TestOpenAlertsCount(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("a1", "hw:1", "laptop-1")
		other := e.enroll("a2", "hw:2", "laptop-2")
		check := func(step string, id string, want int64) {
			t.Helper()
			stored, counted, err := e.st.OpenAlertsForTest(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if stored != counted || counted != want {
				t.Fatalf("%s: open_alerts %d, counted %d, want %d", step, stored, counted, want)
			}
		}
		status := func(rule string) string {
			t.Helper()
			a := e.alerts(store.AlertFilter{DeviceID: dev, RuleID: rule})
			if len(a) != 1 {
				t.Fatalf("alerts of %s: %+v", rule, a)
			}
			return a[0].Status
		}
		set := func(rule, st string) {
			t.Helper()
			a := e.alerts(store.AlertFilter{DeviceID: dev, RuleID: rule})
			if _, err := e.st.UpdateAlert(e.ctx, a[0].ID, store.AlertChange{Status: &st}, "analyst"); err != nil {
				t.Fatal(err)
			}
		}
		ev := &firing{rules: []string{"r1", "r2"}}
		at, n := t0, 0
		report := func(agent, host string) {
			t.Helper()
			at, n = at.Add(time.Minute), n+1
			e.ingest(agent, at, ev, e.heartbeat(fmt.Sprintf("rep-%d", n), host, at))
		}
		report("a1", "laptop-1")
		check("raised", dev, 2)
		report("a2", "laptop-2")
		check("raised on laptop-2", other, 2)
		ev.rules = nil
		report("a2", "laptop-2")
		check("cleared on laptop-2", other, 0)
		report("a2", "laptop-2")
		check("nothing open on laptop-2", other, 0)

		set("r2", store.StatusAcknowledged)
		check("acknowledged", dev, 2)
		set("r2", store.StatusFalsePositive)
		check("false positive", dev, 1)

		// r1 cleared: resolved (the count was 1 when the report locked
		// the device).
		ev.rules = nil
		report("a1", "laptop-1")
		if s := status("r1"); s != store.StatusResolved {
			t.Fatalf("r1 %s after its condition cleared, want resolved", s)
		}
		check("auto-resolved", dev, 0)
		ev.rules = []string{"r1"}
		report("a1", "laptop-1")
		check("re-opened", dev, 1)
		set("r2", store.StatusOpen)
		check("false positive re-opened", dev, 2)
		ev.rules = nil
		report("a1", "laptop-1")
		check("both cleared", dev, 0)
		if s := status("r2"); s != store.StatusResolved {
			t.Fatalf("r2 %s after its condition cleared, want resolved", s)
		}
	})
}

// TestAutoResolveOnlyOthersOpen: a report whose findings' rules are the
// device's only open or acknowledged alerts (a farm laptop's, firing on
// every report) runs no auto-resolve statement, while an alert of a
// cleared rule is still resolved when the device's open alerts number as
// many as the findings but one of these is a false positive. On
// PostgreSQL a statement trigger counts the statements that update
// alerts.
func TestAutoResolveOnlyOthersOpen(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("a1", "hw:1", "laptop-1")
		pg := store.IsPostgres(dsn)
		if pg {
			for _, q := range []string{
				`CREATE TABLE alert_updates (n BIGINT NOT NULL)`,
				`INSERT INTO alert_updates VALUES (0)`,
				`CREATE FUNCTION count_alert_updates() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN UPDATE alert_updates SET n = n + 1; RETURN NULL; END $$`,
				`CREATE TRIGGER alert_updates AFTER UPDATE ON alerts FOR EACH STATEMENT EXECUTE FUNCTION count_alert_updates()`,
			} {
				if _, err := e.st.Exec(e.ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		// updates is how many statements updated alerts so far (0 on
		// SQLite, which has no statement triggers).
		updates := func() int64 {
			t.Helper()
			var n int64
			if pg {
				if err := e.st.Reader().QueryRowContext(e.ctx, `SELECT n FROM alert_updates`).Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
			return n
		}
		alert := func(rule string) store.Alert {
			t.Helper()
			a := e.alerts(store.AlertFilter{DeviceID: dev, RuleID: rule})
			if len(a) != 1 {
				t.Fatalf("alerts of %s: %+v", rule, a)
			}
			return a[0]
		}
		set := func(rule, st string) {
			t.Helper()
			if _, err := e.st.UpdateAlert(e.ctx, alert(rule).ID, store.AlertChange{Status: &st}, "analyst"); err != nil {
				t.Fatal(err)
			}
		}
		ev := &firing{rules: []string{"r1"}}
		at, n := t0, 0
		report := func() {
			t.Helper()
			at, n = at.Add(time.Minute), n+1
			e.ingest("a1", at, ev, e.heartbeat(fmt.Sprintf("rep-%d", n), "laptop-1", at))
		}
		report()
		for _, st := range []string{store.StatusOpen, store.StatusAcknowledged} {
			set("r1", st)
			before := updates()
			report()
			// r1 fires on its alert, the device's only open one: the
			// touch is the only statement.
			if got := updates() - before; pg && got != 1 {
				t.Fatalf("r1 %s fires again: %d statements updated alerts, want 1 (no auto-resolve)", st, got)
			}
			if a := alert("r1"); a.Status != st || a.Count != int64(n) || !a.LastSeen.Equal(at) {
				t.Fatalf("r1 after report %d: %s, count %d, last seen %v", n, a.Status, a.Count, a.LastSeen)
			}
		}

		// r1 acknowledged, r2 and r3 open, r3 then a false positive: two
		// alerts open. r1 and r3 fire, two findings, but r2 (cleared) is
		// the other open alert and is resolved.
		ev.rules = []string{"r1", "r2", "r3"}
		report()
		set("r3", store.StatusFalsePositive)
		ev.rules = []string{"r1", "r3"}
		report()
		if a := alert("r2"); a.Status != store.StatusResolved {
			t.Fatalf("r2 %s after its condition cleared, want resolved", a.Status)
		}
		if a := alert("r1"); a.Status != store.StatusAcknowledged || a.Count != int64(n) {
			t.Fatalf("r1 %s, count %d after report %d", a.Status, a.Count, n)
		}
		if a := alert("r3"); a.Status != store.StatusFalsePositive {
			t.Fatalf("r3 %s, want still a false positive", a.Status)
		}
		stored, counted, err := e.st.OpenAlertsForTest(e.ctx, dev)
		if err != nil || stored != 1 || counted != 1 {
			t.Fatalf("open_alerts %d, counted %d (%v), want 1", stored, counted, err)
		}
	})
}
