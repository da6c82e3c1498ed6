package store_test

import (
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// fleetRulesWith loads the default fleet rules beside a rules file of the
// test's own (its name, such as "rules/remote_access.yaml", gives its
// rules their category, and so whether their alerts are co-signals), the
// stand-ins for the rules that flag farm laptops.
func fleetRulesWith(t testing.TB, file, yaml string) *detect.Engine {
	t.Helper()
	fleetRules, err := fs.ReadFile(policies.FS(), "rules/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := detect.Load(fstest.MapFS{"rules/fleet.yaml": {Data: fleetRules}, file: {Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestFleet: devices behind one residential router form a cluster with
// the fleet rules' alerts, devices in a declared office do not; a device
// that moves away leaves the cluster, which dissolves, and the alerts
// resolve; risk scores follow the alerts; a full recompute agrees with
// the incremental updates and drops devices that fell silent.
func TestFleet(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		// The fleet rules, and a stand-in for the remote-access rules that
		// flags the farm laptops.
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
		office := detect.Egress{IP: "203.0.113.5", Status: "ok", NetworkClass: policies.NetClassOffice}
		elsewhere := detect.Egress{IP: "192.0.2.77", Status: "ok", NetworkClass: policies.NetClassUnknown}
		ids := map[string]string{}
		report := func(host string, at time.Time, eg detect.Egress, gatewayMAC string) {
			t.Helper()
			if ids[host] == "" {
				ids[host] = e.enroll("agent-"+host, "hw-"+host, host)
			}
			r := e.snapshot(host+at.String(), host, at, map[string]string{"network": eg.IP + gatewayMAC})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: gatewayMAC},
				Interfaces: []*agentv1.NetworkInterface{{Name: "wlan0", Addresses: []string{"192.168.1.20/24"}}}}
			b := e.batch("agent-"+host, at, r)
			b.IP, b.Egress = eg.IP, eg
			if _, err := e.st.Ingest(e.ctx, b, rules); err != nil {
				t.Fatal(err)
			}
		}
		openRules := func(host string) []string {
			var out []string
			for _, a := range e.alerts(store.AlertFilter{DeviceID: ids[host]}) {
				if a.Status == store.StatusOpen {
					out = append(out, a.RuleID)
				}
			}
			slices.Sort(out)
			return out
		}
		for i, h := range []string{"farm-1", "farm-2", "farm-3"} {
			report(h, t0.Add(time.Duration(i)*time.Minute), home, "f4:92:bf:01:02:03")
		}
		for i, h := range []string{"office-1", "office-2", "office-3", "office-4"} {
			report(h, t0.Add(time.Duration(i)*time.Minute), office, "00:1a:2b:3c:4d:5e")
		}
		// high 35, high 35, medium 15: 100 × (1 − 0.65 × 0.65 × 0.85) = 64.
		farm := []string{"anydesk_session", "laptop_farm_suspected", "linked_to_flagged_device"}
		for _, h := range []string{"farm-1", "farm-2", "farm-3"} {
			if got := openRules(h); !slices.Equal(got, farm) {
				t.Errorf("%s: open alerts %v, want %v", h, got, farm)
			}
			if d := e.device(ids[h]); d.ClusterID == "" || d.Risk.Score != 64 || len(d.Risk.Contributors) != 3 {
				t.Errorf("%s: cluster %q risk %+v", h, d.ClusterID, d.Risk)
			}
		}
		for _, h := range []string{"office-1", "office-4"} {
			if got := openRules(h); len(got) != 0 || e.device(ids[h]).ClusterID != "" {
				t.Errorf("%s: alerts %v cluster %q", h, got, e.device(ids[h]).ClusterID)
			}
		}
		clusters, err := e.st.ListClusters(e.ctx, false, 0)
		if err != nil || len(clusters) != 1 {
			t.Fatalf("clusters %+v %v", clusters, err)
		}
		if suspected, err := e.st.ListClusters(e.ctx, true, 0); err != nil || len(suspected) != 1 || suspected[0].ID != clusters[0].ID {
			t.Errorf("suspected clusters %+v %v", suspected, err)
		}
		c := clusters[0]
		// Three people (0.8²), a shared network (0.75), one co-signal (0.8):
		// 100 × (1 − 0.384) = 62.
		if c.Devices != 3 || c.People != 3 || c.Unbound != 3 || !c.SharedNetwork || !c.Suspected ||
			!slices.Equal(c.Links, []string{"egress_ip", "gateway_mac"}) || c.NetworkClass != "residential" || c.Score != 62 ||
			!slices.Equal(c.CoSignals, []string{"remote_access"}) || c.CoSignalDevices != 3 {
			t.Errorf("cluster %+v", c)
		}
		var kinds []string
		for _, k := range c.Evidence {
			kinds = append(kinds, k.Kind)
		}
		if !slices.Equal(kinds, []string{"egress_ip", "gateway_mac", "lan"}) {
			t.Errorf("evidence %+v", c.Evidence)
		}

		// farm-3 leaves: two remain, below min_people, and still linked
		// to each other's flagged laptop; farm-3 is alone and clean.
		report("farm-3", t0.Add(4*time.Minute), elsewhere, "aa:bb:cc:00:11:22")
		for h, want := range map[string][]string{"farm-1": {"anydesk_session", "linked_to_flagged_device"},
			"farm-2": {"anydesk_session", "linked_to_flagged_device"}, "farm-3": nil} {
			if got := openRules(h); !slices.Equal(got, want) {
				t.Errorf("%s after the move: open alerts %v, want %v", h, got, want)
			}
			if d, score := e.device(ids[h]), map[bool]int{true: 45, false: 0}[want != nil]; d.Risk.Score != score {
				t.Errorf("%s after the move: risk %+v, want %d", h, d.Risk, score)
			}
		}
		if d := e.device(ids["farm-3"]); d.ClusterID != "" {
			t.Errorf("farm-3 still in cluster %s", d.ClusterID)
		}
		got, err := e.st.GetCluster(e.ctx, c.ID)
		if err != nil || got.Devices != 2 || got.Status != "active" {
			t.Fatalf("cluster after the move %+v %v", got, err)
		}
		// Still suspected: linked_to_flagged_device is a fleet rule too.
		if suspected, err := e.st.ListClusters(e.ctx, true, 0); err != nil || len(suspected) != 1 || !got.Suspected {
			t.Errorf("suspected clusters after the move %+v %v", suspected, err)
		}
		var events []string
		for _, ev := range got.Timeline {
			events = append(events, ev.Kind)
		}
		if !slices.Equal(events, []string{"formed", "joined", "left"}) {
			t.Errorf("timeline %v", events)
		}
		hist, err := e.st.RiskHistory(e.ctx, "device", ids["farm-1"])
		if err != nil || len(hist) < 2 || hist[0].Score != 45 || hist[1].Score != 64 {
			t.Errorf("risk history %+v %v", hist, err)
		}

		// The incremental updates kept each linking key's holder count
		// (farm-3's keys replaced: the shared ones lost a holder, its
		// new ones have one) …
		stored, counted, err := e.st.LinkKeysForTest(e.ctx)
		if err != nil || len(counted) == 0 || !maps.Equal(stored, counted) {
			t.Errorf("link_keys %v, device_keys count %v (%v)", stored, counted, err)
		}
		// … a full recompute agrees with the incremental state …
		st, err := e.st.RecomputeFleet(e.ctx, t0.Add(2*time.Hour))
		if err != nil || st.Clusters != 1 || st.Moved != 0 || st.Scores != 0 || st.Devices != 7 {
			t.Errorf("recompute = %+v, %v", st, err)
		}
		// … and, eight days later, finds everyone silent.
		st, err = e.st.RecomputeFleet(e.ctx, t0.Add(8*24*time.Hour))
		if err != nil || st.Clusters != 0 || st.Moved != 2 || st.Devices != 0 {
			t.Errorf("recompute later = %+v, %v", st, err)
		}
		if got, _ := e.st.GetCluster(e.ctx, c.ID); got.Status != "dissolved" {
			t.Errorf("cluster status %q", got.Status)
		}
	})
}

// BenchmarkRecomputeFleet measures a full recompute over 100,000 devices
// in the database (SQLite and PostgreSQL): reading every device with its
// person binding, every linking key and every open alert, finding the
// clusters, and writing what changed. The first iteration forms every
// cluster (1,250 farms of eight, 10,000 households) and scores every
// device; the later ones, which the figure is dominated by, find nothing
// to change, as the periodic pass usually does.
func BenchmarkRecomputeFleet(b *testing.B) {
	const n = 100_000
	engines := map[string]func() string{
		"sqlite":   func() string { return filepath.Join(b.TempDir(), "bonafide.db") },
		"postgres": func() string { return storetest.PostgresDSN(b) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st := storetest.Open(b, engines[name]())
			now := time.Now()
			if err := st.SeedFleet(b.Context(), n, now); err != nil {
				b.Fatal(err)
			}
			first, err := st.RecomputeFleet(b.Context(), now)
			if err != nil || first.Clusters != n/80+n/10 {
				b.Fatalf("first recompute %+v, %v", first, err)
			}
			b.ResetTimer()
			for b.Loop() {
				if st, err := st.RecomputeFleet(b.Context(), now); err != nil || st.Moved != 0 || st.Devices != n {
					b.Fatalf("recompute %+v, %v", st, err)
				}
			}
		})
	}
}

// BenchmarkRecomputeBesideIngest measures what a full recompute costs the
// reports stored beside it: the first recompute over 100,000 seeded devices
// (the heavy one: 11,250 clusters formed, 10,000 devices scored, all
// written in slices) runs while one agent sends heartbeats one after
// another, and the benchmark reports the longest and the 99th-percentile
// wait of those reports, next to the same agent's waits alone just before
// (the floor, same machine, same run).
func BenchmarkRecomputeBesideIngest(b *testing.B) {
	const n = 100_000
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				dsn := filepath.Join(b.TempDir(), "bonafide.db")
				if name == "postgres" {
					dsn = storetest.PostgresDSN(b)
				}
				st := storetest.Open(b, dsn)
				ctx := b.Context()
				now := time.Now()
				if err := st.SeedFleet(ctx, n, now); err != nil {
					b.Fatal(err)
				}
				_, sec, err := st.CreateSecret(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-x", SecretID: sec.ID, IP: "203.0.113.7",
					HardwareKey: "hw:x", Identity: identity("host-x"), CertSerial: "c-x", CertNotAfter: certNotAfter}); err != nil {
					b.Fatal(err)
				}
				agent, err := st.AgentByID(ctx, "agent-x")
				if err != nil {
					b.Fatal(err)
				}
				var seq uint64
				// report sends heartbeats until stop is closed and returns
				// how long each waited.
				report := func(stop <-chan struct{}) []time.Duration {
					var waits []time.Duration
					for {
						select {
						case <-stop:
							return waits
						default:
						}
						seq++
						at := time.Now()
						r := store.IngestReport{ReportID: fmt.Sprintf("20000000-0000-4000-8000-%012d", seq), Sequence: seq,
							CreatedAt: at.Add(-time.Second), Identity: identity("host-x")}
						if _, err := st.Ingest(ctx, store.IngestBatch{Agent: agent, IP: "203.0.113.7", ReceivedAt: at,
							ReportInterval: interval, Reports: []store.IngestReport{r}}, noRules); err != nil {
							b.Error(err)
							return waits
						}
						waits = append(waits, time.Since(at))
					}
				}
				stop := make(chan struct{})
				time.AfterFunc(3*time.Second, func() { close(stop) })
				floor := report(stop)
				stop = make(chan struct{})
				beside := make(chan []time.Duration)
				go func() { beside <- report(stop) }()
				b.ResetTimer()
				first, err := st.RecomputeFleet(ctx, now)
				b.StopTimer()
				close(stop)
				waits := <-beside
				if err != nil || first.Clusters != n/80+n/10 {
					b.Fatalf("first recompute %+v, %v", first, err)
				}
				for _, w := range []struct {
					name  string
					waits []time.Duration
				}{{"floor", floor}, {"beside", waits}} {
					slices.Sort(w.waits)
					if len(w.waits) == 0 {
						b.Fatalf("no report stored (%s)", w.name)
					}
					b.ReportMetric(float64(w.waits[len(w.waits)-1].Microseconds())/1000, "ms-max-"+w.name)
					b.ReportMetric(float64(w.waits[len(w.waits)*99/100].Microseconds())/1000, "ms-p99-"+w.name)
				}
				b.ReportMetric(float64(len(waits)), "reports-beside")
			}
		})
	}
}

// TestSweepKeepsClustersTrue: three colleagues travelling together share
// a hotel's network, each with a location finding, and their laptops go
// silent. Silence is no co-signal, so no farm is escalated. When a sweep
// does raise a co-signal (here a stand-in time-based activity rule), the
// cluster's stored view follows, so that the farm view and the fleet
// rules agree.
func TestSweepKeepsClustersTrue(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		files := fstest.MapFS{"rules/location.yaml": {Data: []byte(`
rules:
  - id: far_from_home
    title: Far from home
    severity: medium
    scope: device
    description: D
    condition: device.egress.ip == "198.51.100.9"
`)}, "rules/activity.yaml": {Data: []byte(`
rules:
  - id: up_all_night
    title: Up all night
    severity: medium
    scope: device
    description: D
    condition: device.hostname == "late" && (now - device.last_seen) > duration("2h")
`)}}
		for _, f := range []string{"rules/fleet.yaml", "rules/agent.yaml"} {
			b, err := fs.ReadFile(policies.FS(), f)
			if err != nil {
				t.Fatal(err)
			}
			files[f] = &fstest.MapFile{Data: b}
		}
		rules, err := detect.Load(files)
		if err != nil {
			t.Fatal(err)
		}
		hotel := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		ids := map[string]string{}
		for i, h := range []string{"ana", "ben", "late"} {
			ids[h] = e.enroll("agent-"+h, "hw-"+h, h)
			at := t0.Add(time.Duration(i) * time.Minute)
			b := e.batch("agent-"+h, at, e.heartbeat(h, h, at))
			b.IP, b.Egress = hotel.IP, hotel
			if _, err := e.st.Ingest(e.ctx, b, rules); err != nil {
				t.Fatal(err)
			}
		}
		// The view the farm pages show agrees with the fleet rules' alerts.
		agree := func(when string, wantSignals []string, wantFleet bool) {
			t.Helper()
			clusters, err := e.st.ListClusters(e.ctx, false, 0)
			if err != nil || len(clusters) != 1 {
				t.Fatalf("%s: clusters %+v %v", when, clusters, err)
			}
			c := clusters[0]
			fleetAlerts := 0
			for _, id := range ids {
				for _, a := range e.alerts(store.AlertFilter{DeviceID: id, Status: store.StatusOpen}) {
					if strings.HasPrefix(a.RuleID, "laptop_farm_") || a.RuleID == "linked_to_flagged_device" {
						fleetAlerts++
					}
				}
			}
			if !slices.Equal(c.CoSignals, wantSignals) || c.Suspected != (fleetAlerts > 0) || (fleetAlerts > 0) != wantFleet {
				t.Errorf("%s: cluster co-signals %v suspected %v with %d open fleet alerts; want %v, fleet alerts %v",
					when, c.CoSignals, c.Suspected, fleetAlerts, wantSignals, wantFleet)
			}
		}
		agree("together", []string{"location"}, false)

		// An hour later every laptop is silent; "late" is not yet up all night.
		if _, err := e.st.Sweep(e.ctx, rules, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for h, id := range ids {
			if a := e.alerts(store.AlertFilter{DeviceID: id, RuleID: "agent_silent"}); len(a) != 1 {
				t.Errorf("%s: agent_silent %+v", h, a)
			}
			if a := e.alerts(store.AlertFilter{DeviceID: id, RuleID: "laptop_farm_escalated"}); len(a) != 0 {
				t.Errorf("%s: travellers escalated to a farm: %+v", h, a[0].Evidence)
			}
		}
		agree("silent", []string{"location"}, false)

		// Three hours later the sweep raises a real co-signal: the
		// cluster's view follows at once, and the escalation with it.
		if _, err := e.st.Sweep(e.ctx, rules, t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		agree("a second co-signal", []string{"activity", "location"}, true)
	})
}

// TestFleetCrowdedKey: a farm's router (its egress address and gateway
// MAC) reported by a crowd of laptops first seen after the farm's, more
// than fleet.MaxHolders in all, keeps linking the farm: the key links its
// most senior holders, the newcomers past the limit join nothing, and the
// farm's alerts stay open, through the farm's own re-clustering (the
// incremental path) and a full recompute, which agree.
func TestFleetCrowdedKey(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		rules := fleetRulesWith(t, "rules/remote_access.yaml", `
rules:
  - id: anydesk_session
    title: AnyDesk session
    severity: high
    scope: device
    auto_resolve: true
    description: D
    condition: device.hostname.startsWith("farm")
`)
		home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		ids := map[string]string{}
		report := func(host string, at time.Time, bssid string) {
			t.Helper()
			if ids[host] == "" {
				ids[host] = e.enroll("agent-"+host, "hw-"+host, host)
			}
			r := e.snapshot(host+at.String(), host, at, map[string]string{"network": "home" + bssid})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"}}
			if bssid != "" {
				r.Snapshot.Network.Wifi = &agentv1.Wifi{Bssid: bssid}
			}
			b := e.batch("agent-"+host, at, r)
			b.IP, b.Egress = home.IP, home
			if _, err := e.st.Ingest(e.ctx, b, rules); err != nil {
				t.Fatal(err)
			}
		}
		farm := []string{"farm-1", "farm-2", "farm-3"}
		farmOpen := func(when string) {
			t.Helper()
			for _, h := range farm {
				var states []string
				for _, a := range e.alerts(store.AlertFilter{DeviceID: ids[h], RuleID: "laptop_farm_suspected"}) {
					states = append(states, string(a.Status))
				}
				if !slices.Equal(states, []string{string(store.StatusOpen)}) {
					t.Errorf("%s: %s's laptop_farm_suspected alerts %v, want one open", when, h, states)
				}
			}
		}
		for _, h := range farm {
			report(h, t0, "")
		}
		farmOpen("the farm")
		cluster := e.device(ids["farm-1"]).ClusterID

		// The crowd, first seen after the farm: 253 holders of each key.
		time.Sleep(10 * time.Millisecond) // first_seen is the enrollment's wall clock
		if err := e.st.SeedCrowd(e.ctx, fleet.MaxHolders, time.Now(), "egress_ip 198.51.100.9", "gateway_mac f4:92:bf:01:02:03"); err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			for _, h := range farm {
				if got := e.device(ids[h]).ClusterID; got != cluster {
					t.Errorf("%s: %s in cluster %q, want the farm's %q", when, h, got, cluster)
				}
			}
			// The keys link their 250 most senior holders: the last
			// three of the crowd join nothing.
			for i := range fleet.MaxHolders {
				want := cluster
				if i >= fleet.MaxHolders-len(farm) {
					want = ""
				}
				if got := e.device(fmt.Sprintf("dev_crowd%04d", i)).ClusterID; got != want {
					t.Errorf("%s: crowd %d in cluster %q, want %q", when, i, got, want)
				}
			}
		}
		// A farm laptop's key set changes (it reports its access point
		// too): it is re-clustered over the crowded keys.
		report("farm-1", t0.Add(time.Hour), "a0:b1:c2:d3:e4:f5")
		check("crowded")
		for _, h := range farm {
			report(h, t0.Add(2*time.Hour), "")
		}
		farmOpen("reporting again")

		// A full recompute finds the same clusters, and the farm's next
		// reports keep its alerts open.
		st, err := e.st.RecomputeFleet(e.ctx, t0.Add(2*time.Hour))
		if err != nil || st.Clusters != 1 || st.Moved != 0 {
			t.Errorf("recompute = %+v, %v; want the one cluster, nothing moved", st, err)
		}
		check("recomputed")
		for _, h := range farm {
			report(h, t0.Add(3*time.Hour), "")
		}
		farmOpen("after the recompute")
	})
}

// TestReevaluateSeesFreshCluster: when a cluster's members are judged
// again one after another, the cluster is read once and each judged
// member's alerts are read back into it; every member must still see the
// cluster exactly as a fresh read shows it at that moment, the alerts
// raised on the members judged before it included (here each member's
// new high alert flags it to the members judged after it).
func TestReevaluateSeesFreshCluster(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		const n = 6
		var ids []string
		for i := range n {
			host := fmt.Sprintf("m-%d", i)
			ids = append(ids, e.enroll("agent-"+host, "hw-"+host, host))
			r := e.snapshot(host, host, t0, map[string]string{"network": "home"})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"}}
			b := e.batch("agent-"+host, t0, r)
			b.IP, b.Egress = home.IP, home
			if _, err := e.st.Ingest(e.ctx, b, noRules); err != nil {
				t.Fatal(err)
			}
		}
		cluster := e.device(ids[0]).ClusterID
		if cluster == "" {
			t.Fatal("no cluster")
		}
		remote := deviceFindings(detect.Finding{RuleID: "remote_session", Title: "T", Severity: "high", Description: "D", Category: "remote_access"})
		seen, fresh, err := e.st.ReevaluateCluster(e.ctx, cluster, t0.Add(time.Minute), remote)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != n || len(fresh) != n {
			t.Fatalf("%d members judged (%d fresh reads), want %d", len(seen), len(fresh), n)
		}
		for i := range seen {
			if !reflect.DeepEqual(seen[i], fresh[i]) {
				t.Errorf("member %d judged on\n%+v\nwhile a fresh read shows\n%+v", i, seen[i], fresh[i])
			}
			if len(seen[i].Flagged) != i {
				t.Errorf("member %d saw %d flagged members, want the %d judged before it", i, len(seen[i].Flagged), i)
			}
		}
		if c, err := e.st.GetCluster(e.ctx, cluster); err != nil || !slices.Equal(c.CoSignals, []string{"remote_access"}) || c.CoSignalDevices != n {
			t.Errorf("cluster after the judgement: %+v, %v", c, err)
		}
	})
}

// TestReevaluateWhatMembersSee: a member's new alert has the other
// members judged again only when it changes what they see of the
// cluster: a low alert (no co-signal, flags no one) does not, a high one
// (a co-signal, a flagged member) does. The cluster's stored view
// follows both.
func TestReevaluateWhatMembersSee(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
		var mu sync.Mutex
		judged := map[string]int{}
		fire := map[string][]detect.Finding{}
		ev := evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
			if scope != detect.ScopeDevice {
				return nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			judged[f.Device.ID]++
			return fire[f.Device.ID], nil
		})
		ids := map[string]string{}
		report := func(host string, at time.Time) {
			t.Helper()
			if ids[host] == "" {
				ids[host] = e.enroll("agent-"+host, "hw-"+host, host)
			}
			r := e.snapshot(host+at.String(), host, at, map[string]string{"network": "home"})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"}}
			b := e.batch("agent-"+host, at, r)
			b.IP, b.Egress = home.IP, home
			if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
				t.Fatal(err)
			}
		}
		hosts := []string{"m-0", "m-1", "m-2", "m-3"}
		for _, h := range hosts {
			report(h, t0)
		}
		cluster := e.device(ids["m-0"]).ClusterID
		// othersJudged reports how many times the members other than m-0
		// were judged while fn ran.
		othersJudged := func(fn func()) int {
			mu.Lock()
			clear(judged)
			mu.Unlock()
			fn()
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for id, k := range judged {
				if id != ids["m-0"] {
					n += k
				}
			}
			return n
		}
		mu.Lock()
		fire[ids["m-0"]] = []detect.Finding{{RuleID: "odd_setting", Title: "T", Severity: "low", Description: "D", Category: "posture"}}
		mu.Unlock()
		if n := othersJudged(func() { report("m-0", t0.Add(time.Minute)) }); n != 0 {
			t.Errorf("a low alert on m-0 had the other members judged %d times, want none", n)
		}
		if c, err := e.st.GetCluster(e.ctx, cluster); err != nil || !slices.ContainsFunc(c.Members, func(m store.ClusterMember) bool {
			return m.DeviceID == ids["m-0"] && slices.Equal(m.Alerts, []string{"odd_setting"})
		}) || len(c.CoSignals) != 0 {
			t.Errorf("cluster after the low alert: %+v, %v", c, err)
		}
		mu.Lock()
		fire[ids["m-0"]] = append(fire[ids["m-0"]], detect.Finding{RuleID: "remote_session", Title: "T", Severity: "high", Description: "D", Category: "remote_access"})
		mu.Unlock()
		if n := othersJudged(func() { report("m-0", t0.Add(2*time.Minute)) }); n != len(hosts)-1 {
			t.Errorf("a high alert on m-0 had the other members judged %d times, want %d", n, len(hosts)-1)
		}
		if c, err := e.st.GetCluster(e.ctx, cluster); err != nil || !slices.Equal(c.CoSignals, []string{"remote_access"}) {
			t.Errorf("cluster after the high alert: %+v, %v", c, err)
		}
	})
}

// resolving is an evaluator whose device rules in resolve auto-resolve.
type resolving struct {
	evaluator
	resolve []string
}

// AutoResolve returns a list of its own, as detect.Engine does.
func (r resolving) AutoResolve(scope detect.Scope) []string {
	if scope != detect.ScopeDevice {
		return nil
	}
	return slices.Clone(r.resolve)
}

// TestClusterRowFollowsMoves: as a device moves into and out of a farm,
// and the members' alerts and risk scores follow (a rule fires on every
// member while the farm has five), each cluster's stored row is what a
// fresh read of its members computes. A report reads a changed cluster
// once and keeps that read up to date as it judges the members, so this
// fails if the read misses what judging a member changed (its alerts,
// risk score or person).
func TestClusterRowFollowsMoves(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		report := mover(t, e, resolving{evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
			if scope != detect.ScopeDevice || f.Device.Cluster.Devices < 5 {
				return nil, nil
			}
			return []detect.Finding{{RuleID: "crowded_house", Title: "T", Severity: "high", Description: "D", Category: "remote_access"}}, nil
		}), []string{"crowded_house"}})
		for _, h := range []string{"m-0", "m-1", "m-2", "m-3", "mover"} {
			e.enroll("agent-"+h, "hw-"+h, h)
		}
		for _, h := range []string{"m-0", "m-1", "m-2", "m-3"} {
			report(h, t0, "home")
		}
		mover := e.agent("agent-mover").DeviceID
		// A member that stays sees its cluster change with every move: its
		// version moves on each time, so that a verdict reached on the
		// cluster as it was is not kept (see prejudge).
		stayer := e.agent("agent-m-0").DeviceID
		version := func() int64 {
			t.Helper()
			v, err := e.st.DeviceVersionForTest(e.ctx, stayer)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for i := range 6 {
			at := t0.Add(time.Duration(i+1) * time.Minute)
			where := []string{"home", "away"}[i%2]
			before := version()
			report("mover", at, where)
			if version() == before {
				t.Errorf("report %d from %s: the cluster changed and its member's version stayed %d", i, where, before)
			}
			if in := e.device(mover).ClusterID != ""; in != (where == "home") {
				t.Fatalf("report %d from %s: mover in a cluster %v", i, where, in)
			}
			clusters, err := e.st.ListClusters(e.ctx, false, 100)
			if err != nil || len(clusters) != 1 {
				t.Fatalf("clusters %+v, %v", clusters, err)
			}
			c := clusters[0]
			if want := map[string]int{"home": 5, "away": 4}[where]; c.Devices != want {
				t.Fatalf("report %d: cluster of %d, want %d", i, c.Devices, want)
			}
			if flagged := slices.ContainsFunc(c.Members, func(m store.ClusterMember) bool { return m.RiskScore > 0 }); flagged != (where == "home") {
				t.Errorf("report %d from %s: members' risk scores %+v", i, where, c.Members)
			}
			stored, fresh, err := e.st.ClusterRowAndFresh(e.ctx, c.ID, at)
			if err != nil {
				t.Fatal(err)
			}
			if stored != fresh {
				t.Errorf("report %d from %s: the cluster's row holds\n%s\nwhile a fresh read computes\n%s", i, where, stored, fresh)
			}
			// Replacing the mover's keys kept each linking key's holders.
			if stored, counted, err := e.st.LinkKeysForTest(e.ctx); err != nil || len(counted) == 0 || !maps.Equal(stored, counted) {
				t.Errorf("report %d from %s: link_keys %v, device_keys count %v (%v)", i, where, stored, counted, err)
			}
		}
	})
}

// TestKeysKeepHolders: a device's keys are replaced by what changed, and
// a key the device keeps but that links no longer (its egress network
// turned out an office's) or again counts its holders as the keys held
// do. Two devices behind one home router form a cluster; when one reports
// from the same address and router on an office network, its egress and
// router keys stop linking and the cluster dissolves; back home, it forms
// again.
func TestKeysKeepHolders(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		none := evaluator(func(detect.Scope, detect.Facts) ([]detect.Finding, error) { return nil, nil })
		report := func(host string, at time.Time, class string) {
			t.Helper()
			r := e.snapshot(host+at.String(), host, at, map[string]string{"class": class})
			r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "f4:92:bf:01:02:03"}}
			b := e.batch("agent-"+host, at, r)
			b.IP, b.Egress = "198.51.100.9", detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: class}
			if _, err := e.st.Ingest(e.ctx, b, none); err != nil {
				t.Fatal(err)
			}
			if stored, counted, err := e.st.LinkKeysForTest(e.ctx); err != nil || !maps.Equal(stored, counted) {
				t.Fatalf("%s from %s: link_keys %v, device_keys count %v (%v)", host, class, stored, counted, err)
			}
		}
		for _, h := range []string{"a", "b"} {
			e.enroll("agent-"+h, "hw-"+h, h)
			report(h, t0, policies.NetClassResidential)
		}
		b := e.agent("agent-b").DeviceID
		for i, class := range []string{policies.NetClassOffice, policies.NetClassResidential, policies.NetClassOffice} {
			report("b", t0.Add(time.Duration(i+1)*time.Minute), class)
			if in := e.device(b).ClusterID != ""; in != (class == policies.NetClassResidential) {
				t.Fatalf("report %d from %s: in a cluster %v", i, class, in)
			}
		}
	})
}

// TestMoveRoundTrips counts the round trips to PostgreSQL of a report
// that moves its device into a cluster and out again. Its transaction
// takes the cluster lock before any row (tryGroup), and judging the device
// and the members of the clusters it moved between took it again; the
// clusters' timeline entries, each cluster's read and each one's members'
// rows were a round trip each; the ids of the members of the cluster the
// device leaves another: all inside the lock.
func TestMoveRoundTrips(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		if !store.IsPostgres(dsn) {
			t.Skip("PostgreSQL only")
		}
		proxied, trips := proxyPostgres(t, freshDSN(t, dsn))
		e := newEnv(t, proxied)
		report := mover(t, e, evaluator(func(detect.Scope, detect.Facts) ([]detect.Finding, error) { return nil, nil }))
		for _, h := range []string{"m-0", "m-1", "n-0", "n-1", "mover"} {
			e.enroll("agent-"+h, "hw-"+h, h)
		}
		for _, h := range []string{"m-0", "m-1"} {
			report(h, t0, "home")
		}
		for _, h := range []string{"n-0", "n-1"} {
			report(h, t0, "next door")
		}
		mover := e.agent("agent-mover").DeviceID
		for i, where := range []string{"home", "away", "home", "away", "next door", "home"} {
			at := t0.Add(time.Duration(i+1) * time.Minute)
			before := trips.n.Load()
			report("mover", at, where)
			n := trips.n.Load() - before
			if in := e.device(mover).ClusterID != ""; in != (where != "away") {
				t.Fatalf("report %d from %s: mover in a cluster %v", i, where, in)
			}
			// The first join forms the cluster (18 round trips: the read
			// before the writer, BEGIN and COMMIT included), then 11 or 12
			// to leave or join (the first leave prepares a statement more)
			// and 11 to go from one cluster to the other and back. One
			// more each with the device's keys read before they were
			// replaced (see replaceKeysPostgres); one more each with the
			// lock taken in a round trip of its own, before the report's
			// fold statement (foldMoving); one more each with the lock
			// taken twice; one more
			// with the moves sent before the timeline entries, the
			// clusters' and their members' reads; two more with those
			// entries, the cluster's read and its members' rows one each;
			// one more to leave with the ids of the members left read on
			// their own; one or two more with a search for the components
			// of each seed (the device and the members it leaves); one
			// more with the device's row read on its own after them; one
			// more with the keys' replacement waiting for the keys it
			// emptied; one more back home with the two clusters' rows
			// refreshed one after the other; one more (but to leave,
			// where the members left link no one new) with a statement
			// for each level of the search for the components, where
			// one reads two.
			if most := []int64{18, 12, 11, 11, 11, 11}[i]; n > most {
				t.Errorf("report %d from %s: %d round trips, want %d at most", i, where, n, most)
			}
		}
	})
}

// mover reports a device's snapshot, judged by ev, from "home" or "next
// door" (each a shared access point and address) or "away" (its own).
func mover(t *testing.T, e *env, ev store.Evaluator) func(host string, at time.Time, where string) {
	home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
	away := detect.Egress{IP: "198.51.100.77", Status: "ok", NetworkClass: policies.NetClassResidential}
	nextDoor := detect.Egress{IP: "198.51.100.50", Status: "ok", NetworkClass: policies.NetClassResidential}
	return func(host string, at time.Time, where string) {
		t.Helper()
		gateway, egress := "f4:92:bf:01:02:03", home
		switch where {
		case "away":
			gateway, egress = "f4:92:bf:09:09:09", away
		case "next door":
			gateway, egress = "f4:92:bf:05:05:05", nextDoor
		}
		r := e.snapshot(host+at.String(), host, at, map[string]string{"network": where})
		r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: gateway}}
		b := e.batch("agent-"+host, at, r)
		b.IP, b.Egress = egress.IP, egress
		if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestComponentsOfSeeds: the re-clustering search from many seeds at once
// (one breadth-first search for all of them) finds the components that
// searches from each seed alone find, merged where they overlap, on a
// generated fleet of households linked by shared keys, with devices that
// fell silent or were revoked (seeds among them) and a key crowded past
// fleet.MaxHolders by silent devices more senior than the fleet, which
// links only the fleet's three most senior holders of it. Where no seed
// has stopped reporting, the components are fleet.Components' (the full
// recompute's).
func TestComponentsOfSeeds(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		now := t0.Add(30 * 24 * time.Hour)
		const crowdKey = "egress_ip 203.0.113.1"
		var devs []store.FleetDevice
		// The crowd: silent devices, the crowded key's most senior holders
		// but three.
		for i := range fleet.MaxHolders - 3 {
			devs = append(devs, store.FleetDevice{ID: fmt.Sprintf("crowd-%03d", i), FirstSeen: t0.Add(time.Duration(i) * time.Second),
				LastSeen: t0, Keys: []string{crowdKey}})
		}
		// Households of ten devices, each holding two of its household's
		// six keys (some of which link nothing: one holder) and its own
		// serial; every seventh device fell silent, every eleventh is
		// revoked; six devices of different households hold the crowded
		// key too, the first three within its senior holders.
		rnd := uint64(1)
		next := func(n int) int { rnd = rnd*6364136223846793005 + 1442695040888963407; return int(rnd>>33) % n }
		var fleetDevs []string
		for i := range 200 {
			id := fmt.Sprintf("dev-%03d", i)
			d := store.FleetDevice{ID: id, FirstSeen: t0.Add(time.Hour + time.Duration(i)*time.Second), LastSeen: now.Add(-time.Hour),
				Keys: []string{fmt.Sprintf("peripheral usb %03d", i)}}
			for len(d.Keys) < 3 {
				if k := fmt.Sprintf("bssid h%02d-%d", i/10, next(6)); !slices.Contains(d.Keys, k) {
					d.Keys = append(d.Keys, k)
				}
			}
			if i%7 == 3 {
				d.LastSeen = now.Add(-8 * 24 * time.Hour)
			}
			d.Revoked = i%11 == 5
			if i%30 == 1 && i < 180 {
				d.Keys = append(d.Keys, crowdKey)
			}
			devs = append(devs, d)
			fleetDevs = append(fleetDevs, id)
		}
		if err := e.st.SeedDevices(e.ctx, devs); err != nil {
			t.Fatal(err)
		}
		live := map[string]bool{}
		for _, d := range devs {
			live[d.ID] = !d.Revoked && now.Sub(d.LastSeen) < 7*24*time.Hour
		}
		// The full recompute's components of the fleet, by device.
		keys := make([][]fleet.Key, len(devs))
		liveAt := make([]bool, len(devs))
		for i, d := range devs {
			for _, k := range d.Keys {
				keys[i] = append(keys[i], fleet.Key(k))
			}
			liveAt[i] = live[d.ID]
		}
		recomputed := map[string][]string{}
		for _, g := range fleet.Components(keys, liveAt) {
			var ids []string
			for _, i := range g {
				ids = append(ids, devs[i].ID)
			}
			slices.Sort(ids)
			for _, id := range ids {
				recomputed[id] = ids
			}
		}
		if n := len(recomputed["dev-001"]); n <= 10 || n > fleet.MaxHolders {
			t.Fatalf("the crowded key links %d devices with dev-001, want two households or more, fewer than %d", n, fleet.MaxHolders)
		}

		alone := func(seed string) []string {
			t.Helper()
			groups, err := e.st.ComponentsForTest(e.ctx, []string{seed}, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) != 1 || !slices.Contains(groups[0], seed) {
				t.Fatalf("search from %s alone: %v, want one component holding it", seed, groups)
			}
			return groups[0]
		}
		byAlone := map[string][]string{}
		for _, id := range fleetDevs {
			byAlone[id] = alone(id)
			if want := recomputed[id]; live[id] && !slices.Equal(byAlone[id], want) && (want != nil || len(byAlone[id]) != 1) {
				t.Errorf("search from %s alone: %v, the recompute's component %v", id, byAlone[id], want)
			}
		}
		for _, seeds := range [][]string{
			fleetDevs,
			{"dev-001", "dev-031", "dev-061", "dev-091"}, // linked by the crowded key
			{"dev-003", "dev-004", "dev-005", "dev-010"}, // silent, live, revoked
			{"dev-121", "dev-151"},                       // past the crowded key's senior holders
			{"dev-017", "dev-017", "dev-018"},
		} {
			got, err := e.st.ComponentsForTest(e.ctx, seeds, now)
			if err != nil {
				t.Fatal(err)
			}
			// The searches from each seed alone, merged where they
			// overlap.
			var want [][]string
			for _, seed := range seeds {
				g := byAlone[seed]
				merged := slices.Clone(g)
				want = slices.DeleteFunc(want, func(w []string) bool {
					if slices.ContainsFunc(w, func(id string) bool { return slices.Contains(g, id) }) {
						merged = append(merged, w...)
						return true
					}
					return false
				})
				slices.Sort(merged)
				want = append(want, slices.Compact(merged))
			}
			slices.SortFunc(want, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("search from %d seeds (%v...): %d components, want %d:\n got %v\nwant %v", len(seeds), seeds[0], len(got), len(want), got, want)
			}
		}
	})
}

// TestComponentsPastMaxHolders: a component found past fleet.MaxHolders
// devices is searched no further, though the search from another seed
// goes on, and the statement that read the first level read the keys of
// the devices it found (the next level's, most often; see components):
// neither a key of theirs (b-000's with c-0) nor a crowded one that they
// are among the senior holders of (b-001's with c-1) links anyone.
func TestComponentsPastMaxHolders(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		now := t0.Add(time.Hour)
		dev := func(id string, at time.Duration, keys ...string) store.FleetDevice {
			return store.FleetDevice{ID: id, FirstSeen: t0.Add(at), LastSeen: now.Add(-time.Minute), Keys: keys}
		}
		devs := []store.FleetDevice{dev("s", 0, "bssid big-a", "bssid big-b"), dev("t", 0, "bssid small"), dev("u", 0, "bssid small"),
			dev("c-0", 0, "bssid past"), dev("c-1", 0, "bssid crowded")}
		big := []string{"s"}
		for i := range fleet.MaxHolders {
			id := fmt.Sprintf("b-%03d", i)
			keys := []string{"bssid big-a"}
			if i%2 == 1 {
				keys = []string{"bssid big-b"}
			}
			switch i {
			case 0:
				keys = append(keys, "bssid past")
			case 1:
				keys = append(keys, "bssid crowded")
			}
			devs = append(devs, dev(id, time.Second, keys...))
			big = append(big, id)
		}
		// The crowded key's other holders, silent and junior to b-001.
		for i := range fleet.MaxHolders {
			d := dev(fmt.Sprintf("x-%03d", i), time.Minute, "bssid crowded")
			d.LastSeen = t0
			devs = append(devs, d)
		}
		if err := e.st.SeedDevices(e.ctx, devs); err != nil {
			t.Fatal(err)
		}
		got, err := e.st.ComponentsForTest(e.ctx, []string{"s", "t"}, now)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(big)
		if want := [][]string{big, {"t", "u"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("components %v, want %v", got, want)
		}
	})
}

// TestMovesFollowThePlan: applying a re-clustering plan moves only the
// devices still in the cluster the plan started from, and writes the
// timeline entries of those that moved: a cluster formed by the plan is
// announced once when any of its founders moved, even when the first did
// not (on PostgreSQL the moves and their entries are one statement sent
// with the reads that follow).
func TestMovesFollowThePlan(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		now := t0.Add(time.Hour)
		var devs []store.FleetDevice
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			devs = append(devs, store.FleetDevice{ID: id, FirstSeen: t0, LastSeen: now})
		}
		devs[0].ClusterID = "c-other"
		if err := e.st.SeedDevices(e.ctx, devs); err != nil {
			t.Fatal(err)
		}
		// a is not where the plan believes (in no cluster: another
		// report moved it): it stays, and b founds the cluster alone.
		changed, events, err := e.st.ApplyClustersForTest(e.ctx, [][]string{{"a", "b"}}, map[string]string{"a": "", "b": ""}, now)
		if err != nil {
			t.Fatal(err)
		}
		formed := e.device("b").ClusterID
		if formed == "" || e.device("a").ClusterID != "c-other" || !slices.Equal(changed, []string{formed}) {
			t.Fatalf("a in %q, b in %q, changed %v: want a in c-other, b in a new cluster, the one changed", e.device("a").ClusterID, formed, changed)
		}
		want := []string{formed + ` formed {"devices":["a","b"]}`}
		if !slices.Equal(events, want) {
			t.Errorf("timeline %q, want %q", events, want)
		}
		// c and d join it, e stays out: the plan believes e in it.
		changed, events, err = e.st.ApplyClustersForTest(e.ctx, [][]string{{"b", "c", "d"}}, map[string]string{"b": formed, "c": "", "d": "", "e": formed}, now)
		if err != nil {
			t.Fatal(err)
		}
		for id, in := range map[string]string{"b": formed, "c": formed, "d": formed, "e": ""} {
			if got := e.device(id).ClusterID; got != in {
				t.Errorf("%s in %q, want %q", id, got, in)
			}
		}
		want = append(want, formed+` joined {"device_id":"c","from":""}`, formed+` joined {"device_id":"d","from":""}`)
		if !slices.Equal(changed, []string{formed}) || !slices.Equal(events, want) {
			t.Errorf("changed %v, timeline %q; want %v, %q", changed, events, []string{formed}, want)
		}
	})
}
