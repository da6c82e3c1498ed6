package detect

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
)

func TestBoundedCost(t *testing.T) {
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src     string
		bounded bool
	}{
		{`now > timestamp("2020-01-01T00:00:00Z")`, true},
		{`device.report_interval > duration("1m")`, true},
		{`device.hostname == "laptop-1"`, true}, // as costly as the shorter string
		{`lists.range(2000).all(i, i >= 0)`, true},
		{`snapshot.usb.devices.exists(d, d.vendor_id == 1133u)`, true},
		{`snapshot.sessions.current.exists(s, s.user == "root")`, true},
		{`snapshot.remote_access.tools.exists(t, t.category in ["vpn", "rmm"])`, true},
		// A device list or string has no static bound.
		{`device.live_agent_ids.exists(a, a == "x")`, false},
		{`device.hostname.contains("laptop")`, false},
		{`snapshot.remote_access.tools.exists(t, t.tool_id in device.sanctioned_tools)`, false},
		// Too costly within the snapshot's bounds: nested loops, a
		// custom function's result of unknown size, a list built at run
		// time.
		{`snapshot.usb.devices.exists(d, snapshot.usb.devices.exists(e, d.serial == e.serial))`, false},
		{`snapshot.sessions.sourceAddresses([bonafide.agent.v1.LoginSession.Type.TYPE_SSH]).exists(a, a == "x")`, false},
		{`lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))`, false},
		// A variable of the expression's own named snapshot.
		{`cel.bind(snapshot, lists.range(100000), snapshot.all(i, i >= 0))`, false},
	} {
		ast, iss := envs.snapshot.Compile(tc.src)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", tc.src, iss.Err())
		}
		if got := boundedCost(envs.snapshot, ast); got != tc.bounded {
			t.Errorf("%s: bounded %v, want %v", tc.src, got, tc.bounded)
		}
	}
	// Most default rules that run on every report are bounded.
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"agent_silent", "jiggler_rhythm", "activity_around_the_clock", "impossible_travel", "kvm_switch_usb"} {
		for _, r := range e.rules {
			if r.ID == id && !r.cond.bounded {
				t.Errorf("rule %s: condition not bounded", id)
			}
		}
	}
}

// Bounded expressions run between tracked ones in one frame: the tracked
// ones keep their cost limit, each from where the last left the tracker.
func TestBoundedAmongTracked(t *testing.T) {
	runaway := func(id string) string {
		return `
  - id: ` + id + `
    title: T
    severity: low
    description: D
    scope: device
    condition: lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))`
	}
	bounded := func(id string) string {
		return `
  - id: ` + id + `
    title: T
    severity: low
    description: D
    scope: device
    condition: now > timestamp("2020-01-01T00:00:00Z")
    evidence: '{"now": now}'`
	}
	e, err := Load(fstest.MapFS{"r.yaml": {Data: []byte("rules:" + bounded("r_a") + runaway("r_b") + bounded("r_c") + runaway("r_d") + bounded("r_e"))}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.rules {
		if r.cond.bounded != (r.ID != "r_b" && r.ID != "r_d") {
			t.Fatalf("rule %s: bounded %v", r.ID, r.cond.bounded)
		}
	}
	fs, err := e.Evaluate(t.Context(), ScopeDevice, Facts{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if len(fs) != 3 || fs[0].RuleID != "r_a" || fs[1].RuleID != "r_c" || fs[2].RuleID != "r_e" || fs[2].Evidence["now"] != "2026-01-01T00:00:00Z" {
		t.Errorf("findings %+v", fs)
	}
	if err == nil || strings.Count(err.Error(), "cost limit exceeded") != 2 {
		t.Errorf("want rules r_b and r_d over the cost limit, got %v", err)
	}
}
