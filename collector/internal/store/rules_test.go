package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

const overrideRules = `rules:
  - id: on_h1
    title: On h1
    severity: high
    description: d
    scope: device
    auto_resolve: true
    condition: device.hostname == "h1"
  - id: on_h2
    title: On h2
    severity: high
    description: d
    scope: device
    condition: device.hostname == "h2"
`

// TestRuleOverrides: an administrator disables rules (audited, listed,
// idempotent); the live set follows the store; a disabled rule raises
// nothing and its open alert is neither resolved nor touched; enabling it
// again resumes both.
func TestRuleOverrides(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		eng, err := detect.Load(fstest.MapFS{"rules/test.yaml": {Data: []byte(overrideRules)}})
		if err != nil {
			t.Fatal(err)
		}
		live := detect.NewLive(eng, t0)
		dev := e.enroll("a1", "hw:u/1", "h1")
		open := func() []string {
			var out []string
			for _, a := range e.alerts(store.AlertFilter{DeviceID: dev, Status: store.StatusOpen}) {
				out = append(out, a.RuleID)
			}
			slices.Sort(out)
			return out
		}
		e.ingest("a1", t0, live, e.heartbeat("r1", "h1", t0))
		if got := open(); !slices.Equal(got, []string{"on_h1"}) {
			t.Fatalf("open alerts before any override: %v", got)
		}

		for _, id := range []string{"on_h1", "on_h2"} {
			changed, err := e.st.SetRuleEnabled(e.ctx, id, false, "  noisy during the migration ", "user:root")
			if err != nil || !changed {
				t.Fatalf("disable %s: %v %v", id, changed, err)
			}
		}
		if changed, err := e.st.SetRuleEnabled(e.ctx, "on_h1", false, "again", "user:other"); err != nil || changed {
			t.Errorf("disabling a disabled rule: %v %v", changed, err)
		}
		list, err := e.st.RuleOverrides(e.ctx)
		if err != nil || len(list) != 2 || list[0].RuleID != "on_h1" || list[0].DisabledBy != "user:root" ||
			list[0].Reason != "noisy during the migration" || list[0].DisabledAt.IsZero() {
			t.Fatalf("overrides: %+v %v", list, err)
		}
		if a := e.audit("rule", "on_h1"); len(a) != 1 || a[0].Actor != "user:root" || a[0].Action != "disable" ||
			a[0].Detail["reason"] != "noisy during the migration" {
			t.Errorf("audit after disabling: %+v", a)
		}
		if changed, err := e.st.SyncRuleOverrides(e.ctx, live); err != nil || !changed ||
			!slices.Equal(live.Disabled(), []string{"on_h1", "on_h2"}) {
			t.Fatalf("sync: %v %v %v", changed, err, live.Disabled())
		}
		if changed, _ := e.st.SyncRuleOverrides(e.ctx, live); changed {
			t.Error("a second sync reported a change")
		}

		// on_h1 cleared but is disabled: its alert stays open; on_h2
		// would fire but is disabled.
		at := t0.Add(interval)
		e.ingest("a1", at, live, e.heartbeat("r2", "h2", at))
		if got := open(); !slices.Equal(got, []string{"on_h1"}) {
			t.Errorf("open alerts with both rules disabled: %v", got)
		}

		if changed, err := e.st.SetRuleEnabled(e.ctx, "on_h1", true, "", "user:root"); err != nil || !changed {
			t.Fatalf("enable: %v %v", changed, err)
		}
		if changed, err := e.st.SetRuleEnabled(e.ctx, "on_h1", true, "", "user:root"); err != nil || changed {
			t.Errorf("enabling an enabled rule: %v %v", changed, err)
		}
		if a := e.audit("rule", "on_h1"); len(a) != 2 || a[1].Action != "enable" || a[1].Actor != "user:root" {
			t.Errorf("audit after enabling: %+v", a)
		}
		if _, err := e.st.SyncRuleOverrides(e.ctx, live); err != nil || !slices.Equal(live.Disabled(), []string{"on_h2"}) {
			t.Fatalf("sync after enabling: %v %v", err, live.Disabled())
		}
		at = at.Add(interval)
		e.ingest("a1", at, live, e.heartbeat("r3", "h2", at))
		if got := open(); len(got) != 0 {
			t.Errorf("open alerts after enabling on_h1 (cleared) with on_h2 disabled: %v", got)
		}

		for _, bad := range []string{"", "A", "x", "rule-1", "1rule", "rule'; DROP TABLE rules; --"} {
			if _, err := e.st.SetRuleEnabled(e.ctx, bad, false, "", "user:root"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("rule id %q: %v", bad, err)
			}
		}
		if _, err := e.st.SetRuleEnabled(e.ctx, "on_h1", false, strings.Repeat("x", 4001), "user:root"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("long reason: %v", err)
		}
	})
}
