package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// casesRules are the real fleet rules plus stand-ins for device rules:
// every farm laptop runs an AnyDesk session; farm-1 also has a KVM and a
// mouse jiggler, so that its person's risk (83) opens a person case before
// the farm forms; "lonely" has an alert of its own.
func casesRules(t *testing.T, extra string) *detect.Engine {
	t.Helper()
	return fleetRulesWith(t, "rules/device.yaml", `
rules:
  - id: anydesk_session
    title: AnyDesk session
    severity: high
    scope: device
    description: D
    condition: device.hostname.startsWith("farm") && device.egress.ip == "198.51.100.9"
  - id: kvm_seen
    title: IP-KVM attached
    severity: critical
    scope: device
    description: D
    condition: device.hostname == "farm-1"
  - id: jiggler_seen
    title: Mouse jiggler
    severity: high
    scope: device
    description: D
    condition: device.hostname == "farm-1"
  - id: lonely_rule
    title: Lonely
    severity: medium
    scope: device
    description: D
    condition: device.hostname == "lonely"
`+extra)
}

// TestCases: a person case opens when farm-1's person crosses the risk
// threshold; when the farm forms, the fleet rules open one farm case that
// takes every farm alert and folds the person case in; a later alert of
// the farm joins it; the grouped queue lists only what no case holds,
// while the plain listing still lists every alert; a case made by hand
// takes alerts from the one they were in; closing needs an outcome and
// resolves the alerts; ticking "revoke" revokes the devices; every change
// is in the audit log with its actor.
func TestCases(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		rules := casesRules(t, "")
		for _, p := range []store.Person{{Email: "one@example.com", Name: "One", DeviceSerial: "SN-farm-1"},
			{Email: "two@example.com", Name: "Two", DeviceSerial: "SN-farm-2"}} {
			if _, err := e.st.UpsertPerson(e.ctx, p, "test"); err != nil {
				t.Fatal(err)
			}
		}
		home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		elsewhere := detect.Egress{IP: "192.0.2.77", Status: "ok", NetworkClass: policies.NetClassUnknown}
		ids := map[string]string{}
		report := func(host string, at time.Time, eg detect.Egress, ev store.Evaluator) {
			t.Helper()
			if ids[host] == "" {
				ids[host] = e.enroll("agent-"+host, "hw-"+host, host)
			}
			r := e.snapshot(host+at.String(), host, at, map[string]string{"network": eg.IP + host})
			gw := "f4:92:bf:01:02:03"
			if host == "lonely" {
				gw = "00:11:22:33:44:55"
			}
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: gw},
				Interfaces: []*agentv1.NetworkInterface{{Name: "wlan0", Addresses: []string{"192.168.1.20/24"}}}}
			b := e.batch("agent-"+host, at, r)
			b.IP, b.Egress = eg.IP, eg
			if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
				t.Fatal(err)
			}
		}
		active := func() []store.Case {
			t.Helper()
			cs, err := e.st.ListCases(e.ctx, store.CaseFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return cs
		}

		report("farm-1", t0, home, rules)
		cs := active()
		if len(cs) != 1 || cs[0].Kind != store.CasePerson || cs[0].Subject != "one@example.com" || cs[0].Alerts != 3 || cs[0].Severity != "critical" {
			t.Fatalf("after farm-1 alone: cases %+v, want one person case of one@example.com with 3 alerts", cs)
		}
		personCase := cs[0].ID
		report("farm-2", t0.Add(time.Minute), home, rules)
		report("farm-3", t0.Add(2*time.Minute), home, rules)
		report("lonely", t0.Add(3*time.Minute), elsewhere, rules)

		cs = active()
		cluster := e.device(ids["farm-1"]).ClusterID
		if len(cs) != 1 || cs[0].Kind != store.CaseFarm || cs[0].Subject != cluster || cluster == "" || cs[0].Devices != 3 {
			t.Fatalf("cases %+v, want one farm case of cluster %q on 3 devices", cs, cluster)
		}
		farm := cs[0]
		all := e.alerts(store.AlertFilter{Limit: 1000})
		for _, a := range all {
			want := farm.ID
			if a.DeviceID == ids["lonely"] {
				want = 0
			}
			if a.CaseID != want {
				t.Errorf("alert %s on %s: case %d, want %d", a.RuleID, a.Hostname, a.CaseID, want)
			}
		}
		if farm.Alerts != len(all)-1 || farm.OpenAlerts != farm.Alerts {
			t.Errorf("farm case tallies %+v, %d alerts in all", farm, len(all))
		}
		merged, err := e.st.GetCase(e.ctx, personCase)
		if err != nil || merged.Status != store.CaseMerged || merged.MergedInto != farm.ID {
			t.Errorf("person case after the farm formed: %+v %v, want merged into %d", merged, err, farm.ID)
		}
		// The grouped queue: the lonely alert alone; the plain listing: all.
		single := e.alerts(store.AlertFilter{Ungrouped: true})
		if len(single) != 1 || single[0].DeviceID != ids["lonely"] {
			t.Errorf("ungrouped alerts %+v, want the lonely one", single)
		}
		if got := e.alerts(store.AlertFilter{CaseID: farm.ID, Limit: 1000}); len(got) != farm.Alerts {
			t.Errorf("alerts of the case: %d, want %d", len(got), farm.Alerts)
		}

		// A new alert of the farm joins its case.
		report("farm-2", t0.Add(4*time.Minute), home, casesRules(t, `
  - id: new_usb
    title: New USB device
    severity: low
    scope: device
    description: D
    condition: device.hostname == "farm-2"
`))
		joined := e.alerts(store.AlertFilter{RuleID: "new_usb"})
		if len(joined) != 1 || joined[0].CaseID != farm.ID {
			t.Errorf("new_usb alerts %+v, want one in case %d", joined, farm.ID)
		}

		// A case by hand: the lonely alert and one taken from the farm.
		taken := e.alerts(store.AlertFilter{RuleID: "kvm_seen"})[0]
		manual, err := e.st.CreateCase(e.ctx, "Lonely <b>laptop</b>", []int64{single[0].ID, taken.ID, single[0].ID}, "user:ana")
		if err != nil || manual.Kind != store.CaseManual || manual.Alerts != 2 || manual.Title != "Lonely <b>laptop</b>" || manual.CreatedBy != "user:ana" {
			t.Fatalf("manual case %+v %v", manual, err)
		}
		if _, err := e.st.CreateCase(e.ctx, "", []int64{single[0].ID, 1 << 40}, "user:ana"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("case of an unknown alert: %v, want not found", err)
		}
		if _, err := e.st.CreateCase(e.ctx, "", nil, "user:ana"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("case of no alert: %v, want invalid", err)
		}
		if n := len(e.alerts(store.AlertFilter{Ungrouped: true})); n != 0 {
			t.Errorf("%d ungrouped alerts after the manual case, want 0", n)
		}

		// Owner, status, notes, checklist.
		owner, investigating := "ana", store.CaseInvestigating
		c, err := e.st.UpdateCase(e.ctx, farm.ID, store.CaseChange{Owner: &owner, Status: &investigating}, "user:ana")
		if err != nil || c.Owner != "ana" || c.Status != investigating {
			t.Fatalf("assign: %+v %v", c, err)
		}
		closed := store.CaseClosed
		if _, err := e.st.UpdateCase(e.ctx, farm.ID, store.CaseChange{Status: &closed}, "user:ana"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("closing without an outcome: %v, want invalid", err)
		}
		if _, err := e.st.AddCaseNote(e.ctx, farm.ID, "  HR informed  ", "user:ana"); err != nil {
			t.Fatal(err)
		}
		if notes, err := e.st.CaseNotes(e.ctx, farm.ID); err != nil || len(notes) != 1 || notes[0].Text != "HR informed" || notes[0].Author != "user:ana" {
			t.Errorf("notes %+v %v", notes, err)
		}
		if _, err := e.st.TickStep(e.ctx, farm.ID, "no_such_step", true, "", "user:ana"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown step: %v", err)
		}
		c, err = e.st.TickStep(e.ctx, farm.ID, store.StepRevokeAgents, true, "cut off", "user:ana")
		if err != nil || !c.Checklist[0].Done || c.Checklist[0].DoneBy != "user:ana" || c.Checklist[0].Note != "cut off" || c.Checklist[1].Done {
			t.Fatalf("tick revoke: %+v %v", c.Checklist, err)
		}
		for _, h := range []string{"farm-1", "farm-2", "farm-3"} {
			if d := e.device(ids[h]); d.RevokedAt.IsZero() {
				t.Errorf("%s not revoked by the checklist", h)
			}
			if au := e.audit("device", ids[h]); len(au) == 0 || au[len(au)-1].Action != "revoke" || au[len(au)-1].Actor != "user:ana" {
				t.Errorf("%s audit %+v", h, au)
			}
		}
		if d := e.device(ids["lonely"]); !d.RevokedAt.IsZero() {
			t.Error("lonely revoked by another case's checklist")
		}
		// Ticking again changes nothing; unticking is recorded.
		if _, err := e.st.TickStep(e.ctx, farm.ID, store.StepRevokeAgents, true, "", "user:bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.TickStep(e.ctx, farm.ID, "notify_hr_legal", true, "", "user:bob"); err != nil {
			t.Fatal(err)
		}

		outcome := "confirmed_fraud"
		c, err = e.st.UpdateCase(e.ctx, farm.ID, store.CaseChange{Status: &closed, Outcome: &outcome}, "user:ana")
		if err != nil || c.Status != store.CaseClosed || c.Outcome != outcome || c.ClosedAt.IsZero() || c.OpenAlerts != 0 {
			t.Fatalf("close: %+v %v", c, err)
		}
		for _, a := range e.alerts(store.AlertFilter{CaseID: farm.ID, Limit: 1000}) {
			if a.Status != store.StatusResolved {
				t.Errorf("alert %s of the closed case: %s", a.RuleID, a.Status)
			}
		}
		var actions []string
		au, err := e.st.CaseAudit(e.ctx, farm.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range au {
			if x.TargetType == "case" {
				actions = append(actions, x.Actor+" "+x.Action)
			}
		}
		// farm-2's and farm-3's fleet alerts bring their devices' alerts.
		want := []string{"system opened", "system add_alerts", "system merge", "system add_alerts", "system add_alerts",
			"user:ana move_alerts", "user:ana update", "user:ana note", "user:ana checklist",
			"user:bob checklist", "user:ana update"}
		if !slices.Equal(actions, want) {
			t.Errorf("case audit %q, want %q", actions, want)
		}
		if cs := active(); len(cs) != 1 || cs[0].ID != manual.ID {
			t.Errorf("active cases after closing %+v, want the manual one", cs)
		}
		all2, err := e.st.ListCases(e.ctx, store.CaseFilter{Status: "all"})
		if err != nil || len(all2) != 3 {
			t.Errorf("all cases: %d %v", len(all2), err)
		}
		if _, err := e.st.ListCases(e.ctx, store.CaseFilter{Status: "bogus"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bogus status filter: %v", err)
		}
	})
}

// TestCasesConcurrentReports: the farm's laptops report at once (on
// PostgreSQL the store's writers judge them in parallel); the farm still
// gets exactly one case, holding every alert of its laptops.
func TestCasesConcurrentReports(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		rules := casesRules(t, "")
		home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		hosts := []string{"farm-1", "farm-2", "farm-3", "farm-4", "farm-5", "farm-6"}
		agents := map[string]store.Agent{}
		for _, h := range hosts {
			e.enroll("agent-"+h, "hw-"+h, h)
			agents[h] = e.agent("agent-" + h)
		}
		for round := range 3 {
			var wg sync.WaitGroup
			errs := make(chan error, len(hosts))
			for i, h := range hosts {
				at := t0.Add(time.Duration(round)*time.Minute + time.Duration(i)*time.Second)
				r := e.snapshot(fmt.Sprintf("%s-%d", h, round), h, at, map[string]string{"network": home.IP + h + fmt.Sprint(round)})
				r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"},
					Interfaces: []*agentv1.NetworkInterface{{Name: "wlan0", Addresses: []string{"192.168.1.20/24"}}}}
				b := store.IngestBatch{Agent: agents[h], IP: home.IP, Egress: home, ReceivedAt: at, ReportInterval: interval, Reports: []store.IngestReport{r}}
				wg.Go(func() {
					if _, err := e.st.Ingest(e.ctx, b, rules); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		cs, err := e.st.ListCases(e.ctx, store.CaseFilter{Status: "all"})
		if err != nil {
			t.Fatal(err)
		}
		var farms []store.Case
		for _, c := range cs {
			if c.Kind == store.CaseFarm {
				farms = append(farms, c)
			}
		}
		if len(farms) != 1 || !farms[0].Active() {
			t.Fatalf("farm cases %+v, want one active", farms)
		}
		for _, a := range e.alerts(store.AlertFilter{Status: store.StatusOpen, Limit: 1000}) {
			if a.CaseID != farms[0].ID {
				t.Errorf("alert %s on %s in case %d, want %d", a.RuleID, a.Hostname, a.CaseID, farms[0].ID)
			}
		}
	})
}
