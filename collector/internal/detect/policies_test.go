package detect_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest/ingesttest"
	"github.com/bonafide-sec/bonafide/policies"
)

// TestDefaultPolicies loads the embedded default rules and runs every
// rule's own test cases through the engine.
func TestDefaultPolicies(t *testing.T) {
	e, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatalf("Load(policies.FS()): %v", err)
	}
	cases := map[string]int{}
	for _, r := range e.Test(t.Context()) {
		cases[r.RuleID]++
		if r.Err != nil {
			t.Errorf("%s:%d: rule %s, case %q: %v", r.File, r.Line, r.RuleID, r.Name, r.Err)
		}
	}

	type meta struct {
		id, severity, file string
		scope              detect.Scope
		tags               []string
	}
	var got []meta
	for _, r := range e.Rules() {
		got = append(got, meta{r.ID, r.Severity, r.File, r.Scope, r.Tags})
		if !r.Enabled {
			t.Errorf("default rule %s is disabled", r.ID)
		}
	}
	want := []meta{
		{"agent_silent", "medium", "rules/agent.yaml", detect.ScopeDevice, []string{"T1562.001"}},
		{"duplicate_hardware_identity", "high", "rules/agent.yaml", detect.ScopeDevice, []string{"T1564.006", "T1036"}},
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(m meta) bool { return m.id == w.id })
		if i < 0 {
			t.Errorf("default rule %s is missing", w.id)
			continue
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("rule %s = %+v, want %+v", w.id, got[i], w)
		}
		if cases[w.id] < 4 {
			t.Errorf("rule %s has %d test cases, want at least 4", w.id, cases[w.id])
		}
	}
}

// The default rules, driven from Go rather than from their own YAML cases.
func TestDefaultAgentRules(t *testing.T) {
	e, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		device detect.DeviceFacts
		want   map[string]map[string]any // rule id → evidence subset
	}{
		{
			name: "healthy",
			device: detect.DeviceFacts{
				ID: "d1", AgentID: "a1", FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-time.Minute),
				ReportInterval: time.Minute, LiveAgentIDs: []string{"a1"},
			},
			want: map[string]map[string]any{},
		},
		{
			name: "silent and cloned",
			device: detect.DeviceFacts{
				ID: "d1", AgentID: "a2", HardwareUUID: "u-1", SerialNumber: "s-1",
				FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-3*time.Minute - 500*time.Millisecond),
				ReportInterval: time.Minute, LiveAgentIDs: []string{"a2", "a1"},
			},
			want: map[string]map[string]any{
				"agent_silent": {
					"last_seen": "2026-03-01T09:56:59.5Z", "silent_for": "3m0s",
					"expected_interval": "1m0s", "intervals": int64(3), "never_reported": false, "agent_id": "a2",
				},
				"duplicate_hardware_identity": {
					"agent_ids": []any{"a2", "a1"}, "agent_count": int64(2),
					"hardware_uuid": "u-1", "serial_number": "s-1",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Now: now, Device: &tt.device})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]any{}
			for _, f := range findings {
				got[f.RuleID] = f.Evidence
			}
			if len(got) != len(tt.want) {
				t.Fatalf("fired %v, want %d rules", keys(got), len(tt.want))
			}
			for id, want := range tt.want {
				for k, v := range want {
					if !reflect.DeepEqual(got[id][k], v) {
						t.Errorf("%s evidence[%q] = %#v, want %#v", id, k, got[id][k], v)
					}
				}
			}
		})
	}
}

func keys(m map[string]map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// BenchmarkEvaluate measures one Evaluate call over the default device
// rules; ns/rule is the figure to keep well under 10µs.
func BenchmarkEvaluate(b *testing.B) {
	e, err := detect.Load(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	device := &detect.DeviceFacts{
		ID: "d1", AgentID: "a1", Hostname: "laptop-1", HardwareUUID: "u-1", SerialNumber: "s-1",
		FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-time.Minute),
		ReportInterval: time.Minute, LiveAgentIDs: []string{"a1"},
	}
	n := 0
	for _, r := range e.Rules() {
		if r.Enabled && r.Scope == detect.ScopeDevice {
			n++
		}
	}
	for _, bc := range []struct {
		name string
		ids  []string
	}{{"quiet", []string{"a1"}}, {"firing", []string{"a2", "a1"}}} {
		b.Run(bc.name, func(b *testing.B) {
			d := *device
			d.LiveAgentIDs = bc.ids
			facts := detect.Facts{Now: now, Device: &d}
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(ctx, detect.ScopeDevice, facts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/rule")
		})
	}
}

// BenchmarkEvaluateReport measures what the rules cost per report: the
// device rules and the snapshot rules (EvaluateReport, as the collector
// runs them) over the ingest benchmarks' snapshot
// (ingesttest.Snapshot), quiet (no rule fires) and farm-like (the
// remote-access rules fire and their evidence is built). cpu-ns/op is the
// process's CPU time per report, garbage collection included, which a
// shared machine inflates less than ns/op.
func BenchmarkEvaluateReport(b *testing.B) {
	e, err := detect.Load(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, bc := range []struct {
		name  string
		quiet bool
	}{{"quiet", true}, {"farm", false}} {
		b.Run(bc.name, func(b *testing.B) {
			sn := ingesttest.Snapshot(1, "a1")
			if bc.quiet {
				ingesttest.Quiet(sn)
			}
			id := sn.GetIdentity()
			device := &detect.DeviceFacts{
				ID: "d1", AgentID: "a1", Hostname: id.GetHostname(), HardwareUUID: id.GetHardwareUuid(), SerialNumber: id.GetSerialNumber(),
				OSFamily: "windows", AgentVersion: id.GetAgentVersion(), FirstSeen: now.Add(-48 * time.Hour), LastSeen: now,
				ReportInterval: time.Minute, LiveAgentIDs: []string{"a1"}, EgressIP: "203.0.113.1", EgressDistanceKm: -1, TravelKmh: -1,
			}
			ctx := b.Context()
			b.ReportAllocs()
			cpu := ingesttest.ProcessCPU()
			for b.Loop() {
				if _, err := e.EvaluateReport(ctx, detect.Facts{Now: now, Device: device, Snapshot: sn}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ingesttest.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func ExampleEngine_Evaluate() {
	e, err := detect.Load(policies.FS())
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	findings, err := e.Evaluate(context.Background(), detect.ScopeDevice, detect.Facts{
		Now: now,
		Device: &detect.DeviceFacts{
			ID: "d1", AgentID: "a1", LastSeen: now.Add(-time.Hour),
			ReportInterval: 5 * time.Minute, LiveAgentIDs: []string{"a1"},
		},
	})
	if err != nil {
		panic(err)
	}
	for _, f := range findings {
		fmt.Println(f.RuleID, f.Severity, f.Evidence["silent_for"])
	}
	// Output: agent_silent medium 1h0m0s
}
