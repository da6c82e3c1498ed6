package detect

import (
	"fmt"
	"reflect"
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
		src           string
		always, sized bool
	}{
		{`now > timestamp("2020-01-01T00:00:00Z")`, true, true},
		{`device.report_interval > duration("1m")`, true, true},
		{`device.hostname == "laptop-1"`, true, true}, // as costly as the shorter string
		{`lists.range(2000).all(i, i >= 0)`, true, true},
		{`snapshot.usb.devices.exists(d, d.vendor_id == 1133u)`, true, true},
		{`snapshot.sessions.current.exists(s, s.user == "root")`, true, true},
		{`snapshot.remote_access.tools.exists(t, t.category in ["vpn", "rmm"])`, true, true},
		// A device list or string is bounded only by the fact sizes.
		{`device.live_agent_ids.exists(a, a == "x")`, false, true},
		{`device.hostname.contains("laptop")`, false, true},
		{`device.egress.country != device.previous_egress.country`, false, true},
		{`snapshot.remote_access.tools.exists(t, t.tool_id in device.sanctioned_tools)`, false, true},
		{`person.signins.exists(s, size(s.shared_with) > 0)`, false, true},
		// Too costly within the sizes: nested loops over snapshot lists,
		// a custom function's result of unknown size, a long loop.
		{`snapshot.usb.devices.exists(d, snapshot.usb.devices.exists(e, d.serial == e.serial))`, false, false},
		{`snapshot.sessions.sourceAddresses([bonafide.agent.v1.LoginSession.Type.TYPE_SSH]).exists(a, a == "x")`, false, false},
		{`lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))`, false, false},
		{`device.live_agent_ids.all(a, device.live_agent_ids.all(b, device.live_agent_ids.all(c, device.live_agent_ids.all(d, a != ""))))`, false, false},
		// A variable of the expression's own named as the facts.
		{`cel.bind(snapshot, lists.range(100000), snapshot.all(i, i >= 0))`, false, false},
		{`[1, 2].exists(device, device > 1)`, false, false},
	} {
		ast, iss := envs.snapshot.Compile(tc.src)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", tc.src, iss.Err())
		}
		if always, sized := boundedCost(envs.snapshot, ast); always != tc.always || sized != tc.sized {
			t.Errorf("%s: bounded %v, on sized facts %v; want %v, %v", tc.src, always, sized, tc.always, tc.sized)
		}
	}
	// Most default rules that run on every report are bounded, always or
	// on sized facts.
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
	for _, id := range []string{"vpn_adapter_up", "egress_country_changed", "idp_device_shared", "laptop_farm_suspected"} {
		for _, r := range e.rules {
			if r.ID == id && r.cond.sized == nil {
				t.Errorf("rule %s: condition not bounded on sized facts", id)
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

// A rule bounded on sized facts only runs with the cost limit on facts
// past the sizes: a list of the device longer than maxFactList, a string
// longer than maxFactString, in the device's facts or its person's.
func TestSizedFacts(t *testing.T) {
	e, err := Load(fstest.MapFS{"r.yaml": {Data: []byte(`rules:
  - id: r_agents
    title: T
    severity: low
    description: D
    scope: device
    condition: |
      device.live_agent_ids.all(a, device.live_agent_ids.all(b, a != b || a == b))`)}})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.rules[0]; r.cond.bounded || r.cond.sized == nil {
		t.Fatalf("bounded %v, sized %v", r.cond.bounded, r.cond.sized != nil)
	}
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("a", i)
		}
		return out
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", maxFactString+1)
	for _, tc := range []struct {
		name   string
		facts  Facts
		sized  bool
		errors bool
	}{
		{"sized", Facts{Now: now, Device: &DeviceFacts{LiveAgentIDs: ids(maxFactList)}}, true, false},
		{"no device", Facts{Now: now}, true, false},
		// 2000^2 iterations: over the limit, which holds.
		{"long list", Facts{Now: now, Device: &DeviceFacts{LiveAgentIDs: ids(2000)}}, false, true},
		{"long string", Facts{Now: now, Device: &DeviceFacts{LiveAgentIDs: ids(3), Hostname: long}}, false, false},
		{"nested list", Facts{Now: now, Device: &DeviceFacts{UsernameConflicts: []UsernameConflict{{Devices: ids(maxFactList + 1)}}}}, false, false},
		{"person", Facts{Now: now, Device: &DeviceFacts{PersonFacts: &PersonFacts{Signins: []Signin{{SharedWith: []string{long}}}}}}, false, false},
		{"person given", Facts{Now: now, Person: &PersonFacts{Signins: make([]Signin, maxFactList+1)}}, false, false},
	} {
		if got := e.activation(ScopeDevice, tc.facts).sized; got != tc.sized {
			t.Errorf("%s: sized %v, want %v", tc.name, got, tc.sized)
		}
		_, err := e.Evaluate(t.Context(), ScopeDevice, tc.facts)
		if (err != nil) != tc.errors || err != nil && !strings.Contains(err.Error(), "cost limit exceeded") {
			t.Errorf("%s: error %v", tc.name, err)
		}
	}
}

// Every string and list of the device's facts and its person's counts
// towards their sizes (DeviceFacts.sized reads them by name): each one,
// found by reflection at any depth, is set past the sizes in turn on
// facts otherwise at the sizes, which are sized.
func TestSizedFactsFields(t *testing.T) {
	long := strings.Repeat("x", maxFactString+1)
	d := &DeviceFacts{}
	fill(reflect.ValueOf(d).Elem(), maxFactString, maxFactList)
	if !d.sized() {
		t.Fatal("facts at the sizes are not sized")
	}
	checked := 0
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.String:
			old := v.String()
			v.SetString(long)
			if d.sized() {
				t.Errorf("%s: %d bytes, facts still sized", path, len(long))
			}
			v.SetString(old)
			checked++
		case reflect.Slice:
			old := reflect.ValueOf(v.Interface())
			v.Set(reflect.AppendSlice(old, reflect.MakeSlice(old.Type(), 1, 1)))
			if d.sized() {
				t.Errorf("%s: %d entries, facts still sized", path, v.Len())
			}
			v.Set(old)
			checked++
			walk(v.Index(0), path+"[0]")
		case reflect.Pointer:
			walk(v.Elem(), path)
		case reflect.Struct:
			for i := range v.NumField() {
				if f := v.Type().Field(i); f.IsExported() {
					walk(v.Field(i), path+"."+f.Name)
				}
			}
		case reflect.Map, reflect.Array, reflect.Interface:
			t.Errorf("%s: a %s, which the test does not set past the sizes", path, v.Kind())
		}
	}
	walk(reflect.ValueOf(d).Elem(), "device")
	if checked < 100 {
		t.Errorf("%d fields set past the sizes: the walk missed some", checked)
	}
}

// fill sets every string of v to n bytes and every list to entries
// entries (each filled), allocating the pointers on the way.
func fill(v reflect.Value, n, entries int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strings.Repeat("x", n))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), entries, entries))
		for i := range entries {
			fill(v.Index(i), n, entries)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n, entries)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n, entries)
			}
		}
	}
}
