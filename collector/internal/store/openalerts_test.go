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
// auto-resolving on a device with no open alert, follows every change of
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
