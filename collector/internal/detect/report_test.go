package detect_test

import (
	"reflect"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// EvaluateReport finds, and fails, what Evaluate with the device scope and
// then with the snapshot scope does, in that order; without a snapshot,
// only the device rules run. Live's variant leaves out the disabled rules.
func TestEvaluateReport(t *testing.T) {
	e := mustLoad(t, map[string]string{"rules/r.yaml": `rules:
  - id: a_snapshot_host
    title: T
    severity: low
    description: D
    condition: snapshot.identity.hostname == device.hostname
    evidence: '{"host": snapshot.identity.hostname, "agents": device.live_agent_ids}'
  - id: b_snapshot_broken
    title: T
    severity: low
    description: D
    condition: params.nope > 0
  - id: c_device_agents
    title: T
    severity: low
    description: D
    scope: device
    condition: size(device.live_agent_ids) > 1
    evidence: '{"agents": device.live_agent_ids}'
  - id: d_device_broken
    title: T
    severity: low
    description: D
    scope: device
    condition: device.live_agent_ids[5] == ""
  - id: e_silent
    title: T
    severity: low
    description: D
    scope: device
    before_first_report: true
    condition: "true"
`})
	dev := &detect.DeviceFacts{ID: "d1", Hostname: "h", LiveAgentIDs: []string{"a1", "a2"}}
	sn := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: "h"}}
	perScope := func(f detect.Facts) ([]detect.Finding, string) {
		findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Device: f.Device, Now: f.Now, NeverReported: f.NeverReported})
		want := err.Error()
		if f.Snapshot != nil {
			more, err := e.Evaluate(t.Context(), detect.ScopeSnapshot, f)
			findings, want = append(findings, more...), want+"\n"+err.Error()
		}
		return findings, want
	}
	for _, f := range []detect.Facts{
		{Device: dev, Snapshot: sn, Now: t0},
		{Device: dev, Now: t0},
	} {
		want, wantErr := perScope(f)
		if f.Snapshot != nil && len(want) != 3 {
			t.Fatalf("per scope: %v, want c_device_agents, e_silent, a_snapshot_host", findingIDs(want))
		}
		got, err := e.EvaluateReport(t.Context(), f)
		if !reflect.DeepEqual(got, want) || err == nil || err.Error() != wantErr {
			t.Errorf("snapshot %v: EvaluateReport = %v, %v\nwant %v, %v", f.Snapshot != nil, got, err, want, wantErr)
		}
	}

	got, err := e.EvaluateReport(t.Context(), detect.Facts{Device: dev, Now: t0, NeverReported: true})
	if err != nil || !reflect.DeepEqual(findingIDs(got), []string{"e_silent"}) {
		t.Errorf("never reported: %v, %v; want e_silent alone", findingIDs(got), err)
	}

	l := detect.NewLive(e, t0)
	l.SetDisabled([]string{"b_snapshot_broken", "c_device_agents", "d_device_broken"})
	got, err = l.EvaluateReport(t.Context(), detect.Facts{Device: dev, Snapshot: sn, Now: t0})
	if err != nil || !reflect.DeepEqual(findingIDs(got), []string{"e_silent", "a_snapshot_host"}) {
		t.Errorf("live, three rules disabled: %v, %v; want e_silent, a_snapshot_host", findingIDs(got), err)
	}
}
