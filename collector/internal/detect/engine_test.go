package detect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func mustLoad(t testing.TB, files map[string]string) *detect.Engine {
	t.Helper()
	e, err := detect.Load(mapFS(files))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e
}

func findingIDs(fs []detect.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.RuleID)
	}
	return ids
}

// A rule that exceeds its cost limit, or fails on a missing key, must not
// stop the rules after it.
func TestEvaluateIsolatesRuntimeErrors(t *testing.T) {
	e := mustLoad(t, map[string]string{"rules/r.yaml": `rules:
  - id: a_runaway
    title: Quadratic loop
    severity: low
    description: Two nested loops over lists.range(params.n) cost n*n.
    scope: device
    params: {n: 2000}
    condition: |
      lists.range(params.n).all(i,
        lists.range(params.n).all(j, i + j >= 0))
  - id: b_missing_key
    title: Missing param
    severity: low
    description: D
    scope: device
    condition: params.nope == 1
  - id: c_hostname
    title: Hostname
    severity: high
    description: D
    scope: device
    tags: [T1036, farm]
    condition: device.hostname == "laptop-1"
    evidence: '{"hostname": device.hostname}'
  - id: d_disabled
    title: Disabled
    severity: low
    description: D
    scope: device
    enabled: false
    condition: "true"
  - id: e_snapshot
    title: Snapshot rule
    severity: low
    description: D
    condition: "true"
`})
	findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{
		Now:    t0,
		Device: &detect.DeviceFacts{Hostname: "laptop-1"},
	})
	want := []detect.Finding{{
		RuleID: "c_hostname", Title: "Hostname", Severity: "high", Description: "D",
		Tags: []string{"T1036", "farm"}, Category: "r", Evidence: map[string]any{"hostname": "laptop-1"},
	}}
	if !reflect.DeepEqual(findings, want) {
		t.Errorf("findings = %+v, want %+v", findings, want)
	}
	if err == nil {
		t.Fatal("Evaluate returned no error, want errors for a_runaway and b_missing_key")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Fatalf("error has %d parts, want 2: %v", len(lines), err)
	}
	if !strings.HasPrefix(lines[0], "rule a_runaway: condition: ") || !strings.Contains(lines[0], "cost limit exceeded") {
		t.Errorf("error[0] = %q, want rule a_runaway, cost limit exceeded", lines[0])
	}
	if !strings.HasPrefix(lines[1], "rule b_missing_key: condition: ") || !strings.Contains(lines[1], "no such key: nope") {
		t.Errorf("error[1] = %q, want rule b_missing_key, no such key", lines[1])
	}
}

func TestEvaluateStopsOnCancelledContext(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - {id: r1, title: T, severity: low, description: D, scope: device, condition: "true"}
  - {id: r2, title: T, severity: low, description: D, scope: device, condition: "true"}
`})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	findings, err := e.Evaluate(ctx, detect.ScopeDevice, detect.Facts{Now: t0})
	if len(findings) != 0 {
		t.Errorf("findings = %v, want none", findingIDs(findings))
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rules r1, r2 not evaluated") {
		t.Errorf("err = %v, want context.Canceled naming r1, r2", err)
	}
}

// lateCtx is a context that Evaluate's check before each rule sees as live
// but whose Done channel is already closed, as if its deadline passed just
// as the rule started.
type lateCtx struct {
	context.Context
	done  chan struct{}
	calls atomic.Int32
}

func (c *lateCtx) Done() <-chan struct{} { return c.done }

func (c *lateCtx) Err() error {
	if c.calls.Add(1) == 1 {
		return nil
	}
	return context.DeadlineExceeded
}

// The interrupt check stops a long comprehension in the middle.
func TestEvaluateInterruptsLongRule(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: lists.range(90000).all(i, i >= 0)
`})
	// Without the deadline, the rule runs to the end and fires.
	findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Now: t0})
	if err != nil || len(findings) != 1 {
		t.Fatalf("Evaluate = %v, %v; want r1 to fire", findingIDs(findings), err)
	}
	ctx := &lateCtx{Context: t.Context(), done: make(chan struct{})}
	close(ctx.done)
	findings, err = e.Evaluate(ctx, detect.ScopeDevice, detect.Facts{Now: t0})
	if len(findings) != 0 || !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "rule r1: condition: ") {
		t.Errorf("Evaluate = %v, %v; want no finding and rule r1 stopped by the deadline", findingIDs(findings), err)
	}
}

func TestEvaluateScopesAndEmptyFacts(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: device_empty
    title: T
    severity: low
    description: D
    scope: device
    condition: device.id == "" && size(device.live_agent_ids) == 0 && int(device.last_seen) == 0
  - id: snapshot_empty
    title: T
    severity: low
    description: D
    condition: snapshot.identity.hostname == "" && size(snapshot.usb.devices) == 0 && device.id == ""
  - id: snapshot_kvm
    title: T
    severity: critical
    description: D
    condition: snapshot.usb.devices.exists(d, d.vendor_id == 0x1d6bu && d.hid.absolute_pointer)
    evidence: '{"products": snapshot.usb.devices.map(d, d.product)}'
`})
	tests := []struct {
		name  string
		scope detect.Scope
		facts detect.Facts
		want  []string
	}{
		{"nil device", detect.ScopeDevice, detect.Facts{Now: t0}, []string{"device_empty"}},
		{"device", detect.ScopeDevice, detect.Facts{Now: t0, Device: &detect.DeviceFacts{ID: "d1"}}, nil},
		{"nil snapshot", detect.ScopeSnapshot, detect.Facts{Now: t0}, []string{"snapshot_empty"}},
		{"KVM", detect.ScopeSnapshot, detect.Facts{Now: t0, Snapshot: &agentv1.HostSnapshot{
			Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{{
				VendorId: 0x1d6b, ProductId: 0x0104, Product: "PiKVM",
				Hid: &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true},
			}}},
		}}, []string{"snapshot_kvm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := e.Evaluate(t.Context(), tt.scope, tt.facts)
			if err != nil {
				t.Fatal(err)
			}
			if got := findingIDs(findings); !slices.Equal(got, tt.want) {
				t.Errorf("fired %v, want %v", got, tt.want)
			}
		})
	}

	if _, err := e.Evaluate(t.Context(), "fleet", detect.Facts{Now: t0}); !errors.Is(err, detect.ErrUnknownScope) {
		t.Errorf("Evaluate(scope fleet) error = %v, want ErrUnknownScope", err)
	}
	if _, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{}); !errors.Is(err, detect.ErrNoTime) {
		t.Errorf("Evaluate(zero Now) error = %v, want ErrNoTime", err)
	}
}

func TestEvidenceConversion(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: everything
    title: T
    severity: low
    description: D
    condition: "true"
    evidence: |
      {
        "now": now,
        "offset_now": timestamp("2026-01-01T14:00:00.5+02:00"),
        "dur": duration("90m"),
        "list": [1, 2u, 1.5, "s", true, null, b"\x01\x02"],
        "nested": {"by_int": {1: "one"}, "by_bool": {true: "yes"}},
        "identity": snapshot.identity,
        "device_ids": device.live_agent_ids,
        "agents": device.live_agent_ids.map(a, {"agent": a, "n": [size(a)]}),
        "device": device,
        "nan": double("NaN"),
        "inf": -double("Inf"),
        "none": optional.none(),
        "some": optional.of(3),
        "type": type(1),
        "params": params,
      }
    params: {list: [1, x], when: 2026-01-01T00:00:00Z}
`})
	boot := time.Date(2025, 12, 31, 8, 0, 0, 0, time.UTC)
	findings, err := e.Evaluate(t.Context(), detect.ScopeSnapshot, detect.Facts{
		Now: t0,
		Device: &detect.DeviceFacts{
			ID: "d1", LastSeen: t0.Add(-time.Hour), ReportInterval: 5 * time.Minute,
			LiveAgentIDs: []string{"a1", "a2"}, DroppedReports: 7,
		},
		Snapshot: &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{
			Hostname: "laptop-1",
			Os:       &agentv1.OperatingSystem{Family: "linux"},
			BootTime: timestamppb.New(boot),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 {
		t.Fatalf("got %d findings, want 1", len(findings))
	}
	ev := findings[0].Evidence
	want := map[string]any{
		"now":        "2026-01-01T12:00:00Z",
		"offset_now": "2026-01-01T12:00:00.5Z",
		"dur":        "1h30m0s",
		"list":       []any{int64(1), uint64(2), 1.5, "s", true, nil, []byte{1, 2}},
		"nested": map[string]any{
			"by_int":  map[string]any{"1": "one"},
			"by_bool": map[string]any{"true": "yes"},
		},
		"identity": map[string]any{
			"hostname":  "laptop-1",
			"os":        map[string]any{"family": "linux"},
			"boot_time": "2025-12-31T08:00:00Z",
		},
		"device_ids": []any{"a1", "a2"},
		"agents":     []any{map[string]any{"agent": "a1", "n": []any{int64(2)}}, map[string]any{"agent": "a2", "n": []any{int64(2)}}},
		"nan":        "NaN",
		"inf":        "-Inf",
		"none":       nil,
		"some":       int64(3),
		"type":       "int",
		"params":     map[string]any{"list": []any{int64(1), "x"}, "when": "2026-01-01T00:00:00Z"},
	}
	device, _ := ev["device"].(map[string]any)
	delete(ev, "device")
	if !reflect.DeepEqual(ev, want) {
		gotJSON, _ := json.MarshalIndent(ev, "", "  ")
		wantJSON, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("evidence =\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	wantDevice := map[string]any{
		"id": "d1", "hostname": "", "last_seen": "2026-01-01T11:00:00Z",
		"first_seen": "1970-01-01T00:00:00Z", "report_interval": "5m0s",
		"live_agent_ids": []any{"a1", "a2"}, "dropped_reports": int64(7), "clock_skew": "0s",
	}
	for k, v := range wantDevice {
		if !reflect.DeepEqual(device[k], v) {
			t.Errorf("evidence device[%q] = %#v, want %#v", k, device[k], v)
		}
	}
	if _, err := json.Marshal(findings[0].Evidence); err != nil {
		t.Errorf("evidence does not marshal to JSON: %v", err)
	}
}

// When the evidence fails, the finding is kept and the error reported.
func TestEvaluateEvidenceError(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: "true"
    evidence: '{"x": params.missing}'
`})
	findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Now: t0})
	if len(findings) != 1 || findings[0].Evidence["evidence_error"] != "no such key: missing" {
		t.Errorf("findings = %+v, want r1 with evidence_error", findings)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "rule r1: evidence: no such key: missing") {
		t.Errorf("err = %v, want rule r1: evidence: no such key", err)
	}
}

func TestRulesAndDigest(t *testing.T) {
	files := map[string]string{
		"rules/b.yaml": `rules:
  - id: zeta
    title: Z
    severity: critical
    description: D
    tags: [T1219]
    params: {names: [anydesk]}
    condition: "true"
    enabled: false
`,
		"rules/a.yaml": `# first
rules:
  - id: alpha
    title: A
    severity: low
    description: D
    scope: device
    condition: device.id == "x"
    evidence: '{"id": device.id}'
` + quietTests,
	}
	e := mustLoad(t, files)
	want := []detect.Rule{
		{
			ID: "alpha", Title: "A", Severity: "low", Description: "D", Enabled: true,
			Scope: detect.ScopeDevice, File: "rules/a.yaml", Line: 3,
			Condition: `device.id == "x"`, Evidence: `{"id": device.id}`, Params: map[string]any{},
		},
		{
			ID: "zeta", Title: "Z", Severity: "critical", Description: "D", Tags: []string{"T1219"},
			Scope: detect.ScopeSnapshot, File: "rules/b.yaml", Line: 2, Condition: "true",
			Params: map[string]any{"names": []any{"anydesk"}},
		},
	}
	got := e.Rules()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%+v\nwant\n%+v", got, want)
	}
	// The result is a copy.
	got[1].Params["names"].([]any)[0] = "changed"
	got[1].Tags[0] = "changed"
	if again := e.Rules(); !reflect.DeepEqual(again, want) {
		t.Errorf("Rules() changed after modifying a returned copy: %+v", again)
	}

	d := e.Digest()
	if len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "" {
		t.Errorf("Digest() = %q, want 64 hex digits", d)
	}
	if d2 := mustLoad(t, files).Digest(); d2 != d {
		t.Errorf("Digest() of the same files = %s, want %s", d2, d)
	}
	files["rules/b.yaml"] += "# a comment\n"
	if d3 := mustLoad(t, files).Digest(); d3 == d {
		t.Errorf("Digest() unchanged after editing a file")
	}
}

func TestRuleTestsReportFailures(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: device.hostname.startsWith("farm-")
    evidence: '{"hostname": device.hostname, "n": 2}'
    tests:
      - name: passes
        facts: {now: 2026-01-01T00:00:00Z, device: {hostname: farm-1}}
        fires: true
        evidence: {hostname: farm-1, n: 2}
      - name: wrong evidence
        facts: {now: 2026-01-01T00:00:00Z, device: {hostname: farm-2}}
        fires: true
        evidence: {hostname: farm-1}
      - name: missing evidence key
        facts: {now: 2026-01-01T00:00:00Z, device: {hostname: farm-2}}
        fires: true
        evidence: {serial: x}
      - name: does not fire
        facts: {now: 2026-01-01T00:00:00Z, device: {hostname: laptop}}
        fires: true
      - name: fires unexpectedly
        facts: {now: 2026-01-01T00:00:00Z, device: {hostname: farm-3}}
        fires: false
  - id: r2
    title: T
    severity: low
    description: D
    scope: device
    condition: "true"
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z}, fires: true}
  - id: r3_disabled
    title: T
    severity: low
    description: D
    enabled: false
    condition: "true"
  - id: r4
    title: T
    severity: low
    description: D
    scope: device
    condition: params.x == 1
`})
	type result struct {
		rule, name string
		line       int
		err        string
	}
	var got []result
	for _, r := range e.Test(t.Context()) {
		if r.File != "r.yaml" {
			t.Errorf("result %+v: File = %q, want r.yaml", r, r.File)
		}
		msg := ""
		if r.Err != nil {
			msg = r.Err.Error()
		}
		got = append(got, result{r.RuleID, r.Name, r.Line, msg})
	}
	want := []result{
		{"r1", "passes", 10, ""},
		{"r1", "wrong evidence", 14, `evidence.hostname: expected "farm-1", got "farm-2"`},
		{"r1", "missing evidence key", 18, `evidence.serial: expected "x", the key is missing (evidence {"hostname":"farm-2","n":2})`},
		{"r1", "does not fire", 22, "expected the rule to fire, it did not"},
		{"r1", "fires unexpectedly", 25, `expected no finding, the rule fired with evidence {"hostname":"farm-3","n":2}`},
		{"r2", "fires", 35, ""},
		{"r2", "coverage", 28, "an enabled rule needs test cases that fire and that do not; missing a case with fires: false"},
		{"r4", "coverage", 42, "an enabled rule needs test cases that fire and that do not; missing a case with fires: true and a case with fires: false"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Test() =\n%+v\nwant\n%+v", got, want)
	}
}

// Run with -race: one engine, many goroutines.
func TestEvaluateConcurrently(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    params: {min: 1}
    condition: size(device.live_agent_ids) > params.min
    evidence: '{"ids": device.live_agent_ids}'
`})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ids := []string{"a"}
				if (g+i)%2 == 0 {
					ids = append(ids, "b")
				}
				findings, err := e.Evaluate(context.Background(), detect.ScopeDevice,
					detect.Facts{Now: t0, Device: &detect.DeviceFacts{LiveAgentIDs: ids}})
				if err != nil {
					t.Error(err)
					return
				}
				fired := len(findings) == 1
				if fired != (len(ids) == 2) {
					t.Errorf("goroutine %d, iteration %d: fired = %v with ids %v", g, i, fired, ids)
					return
				}
				if fired && !reflect.DeepEqual(findings[0].Evidence["ids"], []any{"a", "b"}) {
					t.Errorf("evidence ids = %v", findings[0].Evidence["ids"])
					return
				}
			}
		})
	}
	wg.Wait()
}

// On a device that never reported only before_first_report rules run:
// the others would judge facts nobody reported (an unknown egress, an
// empty activity histogram).
func TestEvaluateNeverReported(t *testing.T) {
	e := mustLoad(t, map[string]string{"rules/r.yaml": `rules:
  - id: silent
    title: Silent
    severity: medium
    description: D
    scope: device
    before_first_report: true
    condition: "true"
  - id: needs_a_report
    title: Needs a report
    severity: low
    description: D
    scope: device
    condition: device.egress.status != "ok"
`})
	dev := &detect.DeviceFacts{ID: "d1"}
	got, err := e.Evaluate(context.Background(), detect.ScopeDevice, detect.Facts{Device: dev, Now: t0, NeverReported: true})
	if err != nil || !slices.Equal(findingIDs(got), []string{"silent"}) {
		t.Fatalf("never reported: %v %v, want [silent]", findingIDs(got), err)
	}
	got, err = e.Evaluate(context.Background(), detect.ScopeDevice, detect.Facts{Device: dev, Now: t0})
	if err != nil || !slices.Equal(findingIDs(got), []string{"needs_a_report", "silent"}) {
		t.Fatalf("reported: %v %v, want both", findingIDs(got), err)
	}
	if r := e.Rules(); !r[1].BeforeFirstReport || r[0].BeforeFirstReport {
		t.Fatalf("rules %+v", r)
	}
}

// The cost limit holds per expression, not per Evaluate: the rules of one
// call share an execution frame, and each must start from a cost of zero.
// The test finds a loop size whose rule costs most of the limit (the
// largest that still runs, in steps of 10 %), then runs three such rules
// in one call.
func TestCostLimitPerExpression(t *testing.T) {
	rule := func(id string, n int) string {
		return fmt.Sprintf(`
  - id: %s
    title: T
    severity: low
    description: D
    scope: device
    params: {n: %d}
    condition: lists.range(params.n).all(i, lists.range(params.n).all(j, i + j >= 0))`, id, n)
	}
	runs := func(n int, ids ...string) error {
		src := "rules:"
		for _, id := range ids {
			src += rule(id, n)
		}
		_, err := mustLoad(t, map[string]string{"r.yaml": src}).Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Now: t0})
		return err
	}
	n := 10
	for next := n * 11 / 10; runs(next, "r1") == nil; next = n * 11 / 10 {
		if n = next; n > 100_000 {
			t.Fatal("no loop size reaches the cost limit")
		}
	}
	if err := runs(n*11/10+1, "r1"); err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("n = %d: want the cost limit exceeded, got %v", n*11/10+1, err)
	}
	if err := runs(n, "r1", "r2", "r3"); err != nil {
		t.Errorf("three rules of size %d, each under the limit: %v", n, err)
	}
}
