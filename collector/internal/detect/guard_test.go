package detect

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bonafide-sec/bonafide/collector/internal/ingest/ingesttest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestGuardOf(t *testing.T) {
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cond string
		want string // the guarded path, "" for none
	}{
		{`snapshot.remote_access.tools.exists(t, t.tool_id == "x")`, "remote_access.tools"},
		{`snapshot.peripherals.findings.exists(f, f.kind == "k") && device.id != ""`, "peripherals.findings"},
		{`snapshot.usb.devices.exists(d, d.serial == "") && now > timestamp("2020-01-01T00:00:00Z") && true`, "usb.devices"},
		{`(snapshot.network.interfaces.exists(i, i.up) && device.id != "") && device.hostname != ""`, "network.interfaces"},
		// Not first: an earlier term may fail or cost first.
		{`device.id != "" && snapshot.remote_access.tools.exists(t, t.tool_id == "x")`, ""},
		{`snapshot.remote_access.tools.exists(t, t.tool_id == "x") || device.id == ""`, ""},
		{`!snapshot.remote_access.tools.exists(t, t.tool_id == "x")`, ""},
		{`snapshot.remote_access.tools.all(t, t.tool_id == "x")`, ""},
		{`snapshot.remote_access.tools.exists_one(t, t.tool_id == "x")`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) > 0`, ""},
		{`[1, 2].exists(x, x > 1)`, ""},
		{`device.live_agent_ids.exists(a, a == "x")`, ""},
		{`snapshot.remote_access.tools.map(t, t.tool_id).exists(x, x == "a")`, ""},
		{`cel.bind(s, snapshot, s.remote_access.tools.exists(t, t.tool_id == "x"))`, ""},
	} {
		prg, guard, iss := compileExpr(envs.snapshot, tc.cond, conditionExpr, nil)
		if prg == nil {
			if tc.want == "" && len(iss) > 0 {
				continue // not a valid condition here, so no guard either
			}
			t.Fatalf("%s: %v", tc.cond, iss)
		}
		var got []string
		for _, fd := range guard {
			got = append(got, string(fd.Name()))
		}
		if strings.Join(got, ".") != tc.want {
			t.Errorf("%s: guard %q, want %q", tc.cond, strings.Join(got, "."), tc.want)
		}
	}
	// The default rules over the lists most laptops report empty.
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"remote_tool_installed", "remote_tool_running", "kvm_switch_usb", "os_remote_access_exposed", "virtual_camera_or_voice_tool"} {
		i := slices.IndexFunc(e.rules, func(r *compiledRule) bool { return r.ID == id })
		if i < 0 || e.rules[i].guard == nil {
			t.Errorf("rule %s has no empty guard", id)
		}
	}
}

// TestGuardsAgreeWithCEL evaluates every default rule with its empty guard
// and without (CEL alone) on the rules' own test facts and on generated
// snapshots with each guarded list full, empty, and with the messages on
// its path empty or unset: the findings (evidence included) and errors
// must be the same.
func TestGuardsAgreeWithCEL(t *testing.T) {
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	var facts []Facts
	for _, r := range e.rules {
		for _, tc := range r.tests {
			if tc.facts.Snapshot != nil {
				facts = append(facts, tc.facts)
			}
		}
	}
	now := time.Now()
	device := &DeviceFacts{ID: "d1", AgentID: "a1", Hostname: "laptop-001", OSFamily: "windows", FirstSeen: now.Add(-48 * time.Hour),
		LastSeen: now, ReportInterval: time.Minute, LiveAgentIDs: []string{"a1"}, EgressDistanceKm: -1, TravelKmh: -1}
	var snaps []*agentv1.HostSnapshot
	for i := range 3 {
		farm := ingesttest.Snapshot(i, "a1")
		farm.Peripherals = &agentv1.Peripherals{Findings: []*agentv1.PeripheralFinding{
			{Kind: "usb_identity", Category: "kvm_switch", Family: "aten", Name: "ATEN CS", Device: "1-1"}}}
		quiet := proto.Clone(farm).(*agentv1.HostSnapshot)
		ingesttest.Quiet(quiet)
		snaps = append(snaps, farm, quiet, &agentv1.HostSnapshot{}, nil)
	}
	guarded := 0
	for _, r := range e.rules {
		if r.guard == nil {
			continue
		}
		guarded++
		for _, sn := range snaps[:3] {
			snaps = append(snaps, emptied(sn, r.guard)...)
		}
	}
	if guarded == 0 {
		t.Fatal("no default rule has an empty guard")
	}
	for _, sn := range snaps {
		facts = append(facts, Facts{Now: now, Device: device, Snapshot: sn})
	}
	ctx := context.Background()
	skipped := 0
	for _, r := range e.rules {
		if r.guard == nil || r.Scope != ScopeSnapshot {
			continue
		}
		plain := *r
		plain.guard = nil
		for i, f := range facts {
			if r.guard.empty(f.Snapshot) {
				skipped++
			}
			want, wantErr := e.evaluateRules(ctx, ScopeSnapshot, []*compiledRule{&plain}, f, nil)
			got, gotErr := e.evaluateRules(ctx, ScopeSnapshot, []*compiledRule{r}, f, nil)
			if !reflect.DeepEqual(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("rule %s, facts %d: with the guard %v (%v), CEL alone %v (%v)", r.ID, i, got, gotErr, want, wantErr)
			}
		}
	}
	if skipped == 0 {
		t.Fatal("no guard answered for CEL")
	}
}

// emptied are copies of sn with the guarded list emptied, and with each
// message on its path set empty and unset.
func emptied(sn *agentv1.HostSnapshot, g emptyGuard) []*agentv1.HostSnapshot {
	var out []*agentv1.HostSnapshot
	for depth := range g {
		for _, unset := range []bool{false, true} {
			if depth == len(g)-1 && !unset {
				continue // the list itself: cleared below
			}
			c := proto.Clone(sn).(*agentv1.HostSnapshot)
			m := protoreflect.Message(c.ProtoReflect())
			for _, fd := range g[:depth] {
				m = m.Mutable(fd).Message()
			}
			if unset {
				m.Clear(g[depth])
			} else {
				m.Set(g[depth], protoreflect.ValueOfMessage(m.NewField(g[depth]).Message()))
			}
			out = append(out, c)
		}
	}
	return out
}
