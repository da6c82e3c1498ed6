package detect

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
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
		// The size of a list built over one, when an empty list makes
		// the comparison false.
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) > 0`, "remote_access.tools"},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= 2 && device.id != ""`, "remote_access.tools"},
		{`snapshot.posture.interactive_accounts.filter(a, a != "x").size() >= 1`, "posture.interactive_accounts"},
		{`2 <= size(snapshot.remote_access.tools.map(t, t.category == "x", t.tool_id))`, "remote_access.tools"},
		{`0 < size(snapshot.remote_access.tools.map(t, t.tool_id))`, "remote_access.tools"},
		{`size(person.signins.filter(s, s.result == "success")) >= 3`, "person.signins"},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= 0`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) > -1`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) < 2`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) == 2`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= 9223372036854775807`, "remote_access.tools"},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) > 9223372036854775807`, "remote_access.tools"},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= 2u`, ""},
		{`size(snapshot.remote_access.tools) >= 1`, ""},
		{`size(snapshot.remote_access.tools.all(t, t.tool_id == "x") ? [1] : []) >= 1`, ""},
		{`size(snapshot.remote_access.tools.exists(t, t.tool_id == "x") ? [1] : []) >= 1`, ""},
		{`size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= device.live_agent_ids.size()`, ""},
		{`device.id != "" && size(snapshot.remote_access.tools.filter(t, t.tool_id == "x")) >= 2`, ""},
		{`[1, 2].exists(x, x > 1)`, ""},
		{`device.live_agent_ids.exists(a, a == "x")`, ""},
		{`snapshot.remote_access.tools.map(t, t.tool_id).exists(x, x == "a")`, ""},
		{`cel.bind(s, snapshot, s.remote_access.tools.exists(t, t.tool_id == "x"))`, ""},
		// The person's lists.
		{`person.signins.exists(s, s.result == "success")`, "person.signins"},
		{`person.egress_history.exists(e, e.ip == "x") && device.id != ""`, "person.egress_history"},
		{`person.email != "" && person.signins.exists(s, s.result == "success")`, ""},
		{`person.signins.all(s, s.result == "success")`, ""},
		{`person.signins.map(s, s.result).exists(r, r == "success")`, ""},
		{`[person].exists(p, p.signins.exists(s, s.result == "success"))`, ""},
	} {
		c, iss := compileExpr(envs.snapshot, tc.cond, conditionExpr, nil)
		if c.prg == nil {
			if tc.want == "" && len(iss) > 0 {
				continue // not a valid condition here, so no guard either
			}
			t.Fatalf("%s: %v", tc.cond, iss)
		}
		if got := guardPath(c.guard); got != tc.want {
			t.Errorf("%s: guard %q, want %q", tc.cond, got, tc.want)
		}
	}
	// The default rules over the lists most laptops report empty.
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"remote_tool_installed", "remote_tool_running", "kvm_switch_usb", "os_remote_access_exposed", "virtual_camera_or_voice_tool",
		"idp_signin_anonymizer", "idp_impossible_travel", "idp_device_shared", "idp_signin_far_from_laptop",
		"multiple_remote_tools", "several_accounts_on_laptop", "jiggler_rhythm"} {
		i := slices.IndexFunc(e.rules, func(r *compiledRule) bool { return r.ID == id })
		if i < 0 || e.rules[i].cond.guard == nil {
			t.Errorf("rule %s has no empty guard", id)
		}
	}
}

// guardPath is the list g guards: its path from the snapshot, or
// person.NAME; "" for none.
func guardPath(g *emptyGuard) string {
	switch {
	case g == nil:
		return ""
	case g.person >= 0:
		return "person." + reflect.TypeFor[PersonFacts]().Field(g.person).Tag.Get("cel")
	}
	var names []string
	for _, fd := range g.snapshot {
		names = append(names, string(fd.Name()))
	}
	return strings.Join(names, ".")
}

// TestRulesAgreeWithCEL evaluates every default rule as loaded (its
// empty guard, its program without the cost tracker where its cost is
// bounded) and as planned before either (CEL alone, every program with
// the cost tracker) on the rules' own test facts and on generated
// snapshots with each guarded list full, empty, and with the messages on
// its path empty or unset, and on people with sign-ins and without (the
// rules' tests give people with them): the findings (evidence included) and errors
// must be the same.
func TestRulesAgreeWithCEL(t *testing.T) {
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	var facts []Facts
	for _, r := range e.rules {
		for _, tc := range r.tests {
			facts = append(facts, tc.facts)
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
	guarded, bounded := 0, 0
	for _, r := range e.rules {
		if r.cond.bounded {
			bounded++
		}
		if r.cond.guard == nil {
			continue
		}
		guarded++
		if r.cond.guard.snapshot == nil {
			continue
		}
		for _, sn := range snaps[:3] {
			snaps = append(snaps, emptied(sn, r.cond.guard)...)
		}
	}
	if guarded == 0 || bounded == 0 {
		t.Fatalf("%d default rules with an empty guard, %d with a bounded condition", guarded, bounded)
	}
	for _, sn := range snaps {
		facts = append(facts, Facts{Now: now, Device: device, Snapshot: sn})
	}
	// People without sign-ins, given and as the device's, and the
	// person of a rule test given as the device's.
	var signedIn *PersonFacts
	for _, f := range facts {
		if f.Person != nil && len(f.Person.Signins) > 0 {
			signedIn = f.Person
		}
	}
	if signedIn == nil {
		t.Fatal("no rule test has a person with sign-ins")
	}
	bound := *device
	bound.Person, bound.PersonFacts = "ana@example.com", signedIn
	unbound := *device
	unbound.PersonFacts = &PersonFacts{Email: "ana@example.com", EgressHistory: signedIn.EgressHistory}
	facts = append(facts, Facts{Now: now, Device: device, Person: &PersonFacts{Email: "ana@example.com"}},
		Facts{Now: now, Device: &bound}, Facts{Now: now, Device: &unbound}, Facts{Now: now, Device: &unbound, Person: signedIn})
	ctx := context.Background()
	skipped, personSkipped := 0, 0
	for _, r := range e.rules {
		before := *r
		before.cond = trackedProgram(t, envs.forScope(r.Scope), r.Condition, r.Params)
		if r.Evidence != "" {
			before.evid = trackedProgram(t, envs.forScope(r.Scope), r.Evidence, r.Params)
		}
		for i, f := range facts {
			if r.cond.guard != nil && r.cond.guard.empty(f.Snapshot, guardedPerson(f)) {
				skipped++
				if r.cond.guard.person >= 0 {
					personSkipped++
				}
			}
			want, wantErr := e.evaluateRules(ctx, ScopeSnapshot, []*compiledRule{&before}, f, nil)
			got, gotErr := e.evaluateRules(ctx, ScopeSnapshot, []*compiledRule{r}, f, nil)
			if !reflect.DeepEqual(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("rule %s, facts %d: as loaded %v (%v), as before %v (%v)", r.ID, i, got, gotErr, want, wantErr)
			}
			// And after a tracked program in one frame, as Evaluate runs
			// the rules: the frame holds a cost tracker then.
			both, bothErr := e.evaluateRules(ctx, ScopeSnapshot, []*compiledRule{&before, r}, f, nil)
			if !reflect.DeepEqual(both, append(want, want...)) || fmt.Sprint(bothErr) != fmt.Sprint(errors.Join(wantErr, wantErr)) {
				t.Errorf("rule %s, facts %d: after itself as before %v (%v), want %v (%v) twice", r.ID, i, both, bothErr, want, wantErr)
			}
		}
	}
	if skipped == 0 || personSkipped == 0 {
		t.Fatalf("guards answered for CEL %d times, %d of them the person's", skipped, personSkipped)
	}
}

// guardedPerson is the person of f as the rules see it (nil: empty).
func guardedPerson(f Facts) *PersonFacts {
	if f.Person == nil && f.Device != nil {
		return f.Device.PersonFacts
	}
	return f.Person
}

// trackedProgram is src planned as before guards and static bounds: with
// the runtime cost tracker and its limit.
func trackedProgram(t *testing.T, env *cel.Env, src string, params map[string]any) compiled {
	t.Helper()
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.CostLimit(costLimit), cel.InterruptCheckFrequency(interruptCheckFrequency)}
	if inlined := inlineParams(env, ast, params); inlined != ast {
		if prg, err := env.Program(inlined, opts...); err == nil {
			return compiled{prg: prg}
		}
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return compiled{prg: prg}
}

// emptied are copies of sn with the guarded list emptied, and with each
// message on its path set empty and unset.
func emptied(sn *agentv1.HostSnapshot, guard *emptyGuard) []*agentv1.HostSnapshot {
	g := guard.snapshot
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
