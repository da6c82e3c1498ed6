package store_test

import (
	"context"
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

// TestFleetAcrossReplicas: eight laptops of one farm report in pairs, at
// the same moment, the two of each pair to two collector replicas (two
// stores on one PostgreSQL database), over three rounds. They end in one
// cluster, each with the fleet rules' alerts once per (rule, device): the
// same outcome as the same reports one after another on one collector.
func TestFleetAcrossReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	rules := fleetRulesWith(t, "rules/remote_access.yaml", `
rules:
  - id: anydesk_session
    title: AnyDesk session
    severity: high
    scope: device
    auto_resolve: true
    description: D
    condition: device.hostname.startsWith("farm") && device.egress.ip == "198.51.100.9"
`)
	home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
	hosts := []string{"farm-1", "farm-2", "farm-3", "farm-4", "farm-5", "farm-6", "farm-7", "farm-8"}

	// reports builds each laptop's snapshot of a round.
	reports := func(e *env, round int) []store.IngestBatch {
		var out []store.IngestBatch
		for _, h := range hosts {
			at := t0.Add(time.Duration(round) * time.Minute)
			r := e.snapshot(h+at.String(), h, at, map[string]string{"network": home.IP + "router"})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"},
				Interfaces: []*agentv1.NetworkInterface{{Name: "wlan0", Addresses: []string{"192.168.1.20/24"}}}}
			b := e.batch("agent-"+h, at, r)
			b.IP, b.Egress = home.IP, home
			out = append(out, b)
		}
		return out
	}
	// outcome is each laptop's alerts (every status, with how many of
	// each rule) and the laptops of each active cluster.
	outcome := func(e *env, ids map[string]string) (map[string][]string, [][]string) {
		alerts := map[string][]string{}
		byID := map[string]string{}
		for h, id := range ids {
			byID[id] = h
			for _, a := range e.alerts(store.AlertFilter{DeviceID: id, Limit: 1000}) {
				alerts[h] = append(alerts[h], a.RuleID+"/"+a.Status)
			}
			slices.Sort(alerts[h])
		}
		clusters, err := e.st.ListClusters(e.ctx, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		var members [][]string
		for _, c := range clusters {
			var m []string
			for h, id := range ids {
				if e.device(id).ClusterID == c.ID {
					m = append(m, h)
				}
			}
			slices.Sort(m)
			members = append(members, m)
		}
		return alerts, members
	}

	// Two replicas, the laptops of each pair reporting to both at once.
	a := newEnv(t, dsn)
	b := &env{T: t, ctx: a.ctx, st: storetest.Open(t, dsn), secretID: a.secretID}
	ids := map[string]string{}
	for _, h := range hosts {
		ids[h] = a.enroll("agent-"+h, "hw-"+h, h)
	}
	for round := range 3 {
		batches := reports(a, round)
		var wg sync.WaitGroup
		for i := 0; i < len(batches); i += 2 {
			start := make(chan struct{})
			for j, st := range []*store.Store{a.st, b.st} {
				wg.Go(func() {
					<-start
					if _, err := st.Ingest(context.Background(), batches[i+j], rules); err != nil {
						t.Errorf("round %d, %s: %v", round, hosts[i+j], err)
					}
				})
			}
			close(start)
		}
		wg.Wait()
	}
	gotAlerts, gotClusters := outcome(a, ids)

	// The same reports, one after another, on one collector.
	one := newEnv(t, storetest.PostgresDSN(t))
	oneIDs := map[string]string{}
	for _, h := range hosts {
		oneIDs[h] = one.enroll("agent-"+h, "hw-"+h, h)
	}
	for round := range 3 {
		for _, bt := range reports(one, round) {
			if _, err := one.st.Ingest(one.ctx, bt, rules); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantAlerts, wantClusters := outcome(one, oneIDs)

	want := []string{"anydesk_session/open", "laptop_farm_suspected/open", "linked_to_flagged_device/open"}
	for _, h := range hosts {
		if !slices.Equal(gotAlerts[h], want) || !slices.Equal(wantAlerts[h], want) {
			t.Errorf("%s: alerts %v across replicas, %v on one collector, want %v", h, gotAlerts[h], wantAlerts[h], want)
		}
	}
	if len(gotClusters) != 1 || !slices.Equal(gotClusters[0], hosts) || len(wantClusters) != 1 {
		t.Errorf("clusters across replicas %v, on one collector %v; want one of all eight", gotClusters, wantClusters)
	}
}
