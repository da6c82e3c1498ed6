package store_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// movingFleet is a fleet whose laptops move between two homes and places
// of their own, each report judged by the fleet rules and a stand-in for
// the remote-access rules that flags the laptops named f-… at home A; a
// low rule shows each device's activity.
type movingFleet struct {
	e     *env
	rules store.Evaluator
	ids   map[string]string // host → device id
}

var movingHosts = []string{"f-0", "f-1", "f-2", "f-3", "f-4", "h-0", "h-1"}

// newMovingFleet enrolls the fleet's laptops in a fresh database (dsn: its
// engine's) or, with proxied, in the database proxied names.
func newMovingFleet(t *testing.T, dsn string, proxied bool) *movingFleet {
	if !proxied {
		dsn = freshDSN(t, dsn)
	}
	f := &movingFleet{e: newEnv(t, dsn), ids: map[string]string{}, rules: fleetRulesWith(t, "rules/remote_access.yaml", `
rules:
  - id: anydesk_session
    title: AnyDesk session
    severity: high
    scope: device
    auto_resolve: true
    description: D
    condition: device.hostname.startsWith("f-") && device.egress.ip == "198.51.100.9"
  - id: active
    title: Active
    severity: low
    scope: device
    description: D
    condition: device.activity.active_minutes > 0
    evidence: |
      {"minutes": device.activity.active_minutes}
`)}
	for _, h := range movingHosts {
		f.ids[h] = f.e.enroll("agent-"+h, "hw-"+h, h)
	}
	return f
}

// batch is host's snapshot from where: home "A" or "B" (a shared access
// point and address each) or "away" (its own); from "heartbeat", a
// heartbeat from an address of its own (not the one of "away"), the
// access point unchanged.
func (f *movingFleet) batch(host string, at time.Time, where string) store.IngestBatch {
	if where == "heartbeat" {
		b := f.e.batch("agent-"+host, at, f.e.heartbeat(host+at.String(), host, at))
		n := slices.Index(movingHosts, host)
		b.IP = fmt.Sprintf("192.0.2.%d", 100+n)
		b.Egress = detect.Egress{IP: b.IP, Status: "ok", NetworkClass: policies.NetClassResidential}
		return b
	}
	gateway, egress := "f4:92:bf:0a:0a:0a", detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
	switch where {
	case "B":
		gateway, egress.IP = "f4:92:bf:0b:0b:0b", "198.51.100.10"
	case "away":
		n := slices.Index(movingHosts, host)
		gateway, egress.IP = fmt.Sprintf("f4:92:bf:01:01:%02x", n), fmt.Sprintf("192.0.2.%d", 10+n)
	}
	r := f.e.snapshot(host+at.String(), host, at, map[string]string{"network": where})
	// The hour's count (the "active" rule's evidence shows the histogram
	// stored with it).
	r.Activity = []activity.Hour{{Start: at.Truncate(time.Hour), Active: 30, Sampled: 60}}
	r.Snapshot.Network = &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: gateway}}
	b := f.e.batch("agent-"+host, at, r)
	b.IP, b.Egress = egress.IP, egress
	return b
}

// state is what the fleet shows, with device and cluster ids replaced by
// host names (a cluster's name: its founders'), alert times and counts
// left out: the clusters, their timelines, each device's open alerts
// (with their evidence) and risk score.
func (f *movingFleet) state(t *testing.T, at time.Time) string {
	t.Helper()
	e := f.e
	hosts := map[string]string{}
	for h, id := range f.ids {
		hosts[id] = h
	}
	var out []string
	ids := map[string]bool{}
	for _, h := range movingHosts {
		d := e.device(f.ids[h])
		if d.ClusterID != "" {
			ids[d.ClusterID] = true
		}
		var alerts []string
		for _, a := range e.alerts(store.AlertFilter{DeviceID: f.ids[h]}) {
			if a.Status != store.StatusOpen {
				continue
			}
			delete(a.Evidence, "cluster")
			ev, _ := json.Marshal(a.Evidence)
			alerts = append(alerts, a.RuleID+" "+a.Severity+" "+string(ev))
		}
		slices.Sort(alerts)
		out = append(out, fmt.Sprintf("%s risk %d alerts %v", h, d.Risk.Score, alerts))
	}
	active, err := e.st.ListClusters(e.ctx, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range active {
		ids[c.ID] = true
	}
	// Every cluster ever named, by its founders.
	clusters := map[string]store.Cluster{}
	names := map[string]string{"": ""}
	for more := true; more; {
		more = false
		for id := range ids {
			if _, ok := clusters[id]; ok {
				continue
			}
			c, err := e.st.GetCluster(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			clusters[id], more = c, true
			for _, ev := range c.Timeline {
				for _, k := range []string{"from", "to"} {
					if other, _ := ev.Detail[k].(string); other != "" {
						ids[other] = true
					}
				}
				if ev.Kind == "formed" {
					var founders []string
					for _, d := range ev.Detail["devices"].([]any) {
						founders = append(founders, hosts[d.(string)])
					}
					slices.Sort(founders)
					names[id] = "[" + strings.Join(founders, " ") + "]"
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(clusters)) {
		c := clusters[id]
		var members, events []string
		for _, m := range c.Members {
			members = append(members, hosts[m.DeviceID])
		}
		for _, ev := range c.Timeline {
			s := ev.Kind
			if d, _ := ev.Detail["device_id"].(string); d != "" {
				s += " " + hosts[d]
			}
			for _, k := range []string{"from", "to"} {
				if other, ok := ev.Detail[k].(string); ok {
					s += " " + k + " " + names[other]
				}
			}
			events = append(events, ev.At.Format(time.TimeOnly)+" "+s)
		}
		// The moves of one group are in no order of their own.
		slices.Sort(events)
		out = append(out, fmt.Sprintf("cluster %s %s members %v score %d suspected %v people %d co-signals %v links %v timeline %v",
			names[id], c.Status, members, c.Score, c.Suspected, c.People, c.CoSignals, c.Links, events))
		if c.Status == "active" {
			stored, fresh, err := e.st.ClusterRowAndFresh(e.ctx, id, at)
			if err != nil {
				t.Fatal(err)
			}
			if stored != fresh {
				t.Errorf("cluster %s: its row holds\n%s\nwhile a fresh read computes\n%s", names[id], stored, fresh)
			}
		}
	}
	slices.Sort(out[len(movingHosts):])
	return strings.Join(out, "\n")
}

// TestMovingTogether: reports that may move their devices between
// clusters, read before the writer takes them as Ingest reads them and
// stored in one group (their writes sent together, their cluster work done
// together), leave the same clusters, timelines, alerts (members'
// included) and risk scores as the same reports stored one after another,
// each doing its own cluster work (ingestOne). In each round laptops join
// and leave a farm and a household forms and dissolves; the farm is
// flagged on all its laptops, and the laptops that joined it in the same
// group see each other flagged.
func TestMovingTogether(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		together, alone := newMovingFleet(t, dsn, false), newMovingFleet(t, dsn, false)
		rounds := [][]string{
			{"f-0 A", "f-1 A", "h-0 B"},
			{"f-2 A", "f-3 A", "h-1 B"},
			{"f-4 A", "f-0 away", "h-0 away"},
			{"f-1 away", "f-0 A", "h-0 B", "f-2 A"},
			{"f-1 heartbeat", "f-0 away", "h-1 B"},
		}
		for i, round := range rounds {
			at := t0.Add(time.Duration(i) * time.Hour) // a new hour of activity each
			var batches []store.IngestBatch
			for _, r := range round {
				host, where, _ := strings.Cut(r, " ")
				batches = append(batches, together.batch(host, at, where))
				if _, err := alone.e.st.IngestAlone(alone.e.ctx, alone.rules, alone.batch(host, at, where)); err != nil {
					t.Fatal(err)
				}
			}
			_, errs, _ := together.e.st.IngestPrejudged(together.e.ctx, together.rules, nil, batches...)
			for j, err := range errs {
				if err != nil {
					t.Fatalf("round %d, %s: %v", i, round[j], err)
				}
			}
			got, want := together.state(t, at), alone.state(t, at)
			if got != want {
				t.Errorf("round %d %v: stored together\n%s\none after another\n%s", i, round, got, want)
			}
			if i == 1 {
				// A farm of four people with AnyDesk sessions: flagged on
				// every laptop, each linked to the others.
				for _, h := range []string{"f-0", "f-1", "f-2", "f-3"} {
					var rules []string
					for _, a := range together.e.alerts(store.AlertFilter{DeviceID: together.ids[h]}) {
						if a.Status == store.StatusOpen {
							rules = append(rules, a.RuleID)
						}
					}
					slices.Sort(rules)
					if want := []string{"active", "anydesk_session", "laptop_farm_suspected", "linked_to_flagged_device"}; !slices.Equal(rules, want) {
						t.Errorf("%s after round %d: open alerts %v, want %v", h, i, rules, want)
					}
				}
			}
		}
	})
}

// TestMovingTogetherRoundTrips counts the round trips to PostgreSQL of
// four reports that move their laptops into a farm (and one out of it),
// stored in one group and one after another: together, the farm is
// re-clustered, read, its members judged and its row refreshed once, and
// the cluster lock taken once.
func TestMovingTogetherRoundTrips(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		if !store.IsPostgres(dsn) {
			t.Skip("PostgreSQL only")
		}
		trips, statements, updates := map[bool]int64{}, map[bool]int64{}, map[bool]int64{}
		for _, together := range []bool{true, false} {
			fresh := freshDSN(t, dsn)
			proxied, n := proxyPostgres(t, fresh)
			f := newMovingFleet(t, proxied, true)
			updated := countDeviceUpdates(t, fresh)
			// Every laptop has reported (from away, but for the farm's
			// first two) before the group.
			for _, h := range movingHosts {
				where := map[bool]string{true: "A", false: "away"}[h == "f-0" || h == "f-1" || h == "h-0"]
				if _, errs := f.e.st.IngestGroup(f.e.ctx, f.rules, f.batch(h, t0, where)); errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			at := t0.Add(time.Minute)
			batches := []store.IngestBatch{f.batch("f-2", at, "A"), f.batch("f-3", at, "A"), f.batch("f-4", at, "A"), f.batch("h-1", at, "A"), f.batch("h-0", at, "away")}
			before, ran, rows := n.n.Load(), n.statements.Load(), updated()
			if together {
				_, errs, _ := f.e.st.IngestPrejudged(f.e.ctx, f.rules, nil, batches...)
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			} else {
				for _, b := range batches {
					if _, errs, _ := f.e.st.IngestPrejudged(f.e.ctx, f.rules, nil, b); errs[0] != nil {
						t.Fatal(errs[0])
					}
				}
			}
			trips[together], statements[together], updates[together] = n.n.Load()-before, n.statements.Load()-ran, updated()-rows
		}
		t.Logf("round trips: %d together, %d one after another; statements: %d together, %d one after another; devices rows updated: %d together, %d one after another",
			trips[true], trips[false], statements[true], statements[false], updates[true], updates[false])
		if trips[true]*10 > trips[false]*8 {
			t.Errorf("%d round trips together, %d one after another: want at most 0.8 of them", trips[true], trips[false])
		}
		// Together, the reporters' keys are replaced in one round trip
		// (newKeys: 216 with two for each), without reading them first
		// (replaceKeysPostgres), in one statement text whatever their
		// number; their activity histograms set by their reports' UPDATEs
		// (prejudged.activity); the cluster lock taken with the group's
		// fold statements (foldMoving): 208 with a round trip after
		// judging, a read before the replacement, texts made for the
		// number of keys (prepared once each; the read's text is
		// prepared anyway) and the lock in a round trip of its own.
		if trips[true] > 203 {
			t.Errorf("%d round trips together, want 203 at most", trips[true])
		}
		// Each reporter's keys replaced in one statement without reading
		// them first (replaceKeysPostgres; 226 with a read and two), its
		// activity histogram set by its report's UPDATE (an UPDATE more
		// each).
		if statements[true] > 211 {
			t.Errorf("%d statements together, want 211 at most", statements[true])
		}
		// Each reporter's row is updated by its report's UPDATE, which
		// sets its keys' digest and activity histogram too (44 with an
		// UPDATE each more), then by the moves and the clusters' changes.
		if updates[true] > 34 {
			t.Errorf("%d devices rows updated together, want 34 at most", updates[true])
		}
	})
}

// countDeviceUpdates makes the PostgreSQL database of dsn count the
// updates of devices rows (a trigger, on a sequence: no lock), and returns
// their count so far.
func countDeviceUpdates(t *testing.T, dsn string) func() int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE SEQUENCE device_updates`,
		`CREATE FUNCTION count_device_update() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM nextval('device_updates'); RETURN NULL; END $$`,
		`CREATE TRIGGER count_device_updates AFTER UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION count_device_update()`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return func() int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM device_updates`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestMovingStaleSnapshot stores a report that moves its laptop after
// another report moved a laptop into its cluster since the report was
// read (prejudge): the laptop's version moved on, its snapshot not, so
// the fold statement stores the new snapshot and sets the device's
// snapshot columns all the same (PostgreSQL). The history and latest
// snapshot are those of the same reports stored one after another.
func TestMovingStaleSnapshot(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		pg := store.IsPostgres(dsn)
		run := func(stale bool) (history []store.HistoryEntry, digest string, trips int64) {
			var n *roundTrips
			fresh := freshDSN(t, dsn)
			if pg {
				fresh, n = proxyPostgres(t, fresh)
			}
			f := newMovingFleet(t, fresh, pg)
			for _, h := range movingHosts {
				where := map[bool]string{true: "A", false: "away"}[h == "f-0" || h == "f-1" || h == "h-0"]
				if _, errs := f.e.st.IngestGroup(f.e.ctx, f.rules, f.batch(h, t0, where)); errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			at := t0.Add(time.Minute)
			join := func() {
				if _, errs := f.e.st.IngestGroup(f.e.ctx, f.rules, f.batch("f-2", at, "A")); errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			var before int64
			between := func() {
				join()
				if n != nil {
					before = n.n.Load()
				}
			}
			if !stale {
				join()
				between = nil
			}
			if _, errs, _ := f.e.st.IngestPrejudged(f.e.ctx, f.rules, between, f.batch("f-0", at.Add(time.Second), "B")); errs[0] != nil {
				t.Fatal(errs[0])
			}
			if n != nil {
				trips = n.n.Load() - before
			}
			id := f.ids["f-0"]
			history, err := f.e.st.SnapshotHistory(f.e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sn, err := f.e.st.LatestSnapshot(f.e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if d := f.e.device(id); d.ClusterID != "" {
				t.Fatalf("f-0 in cluster %s after moving away from A", d.ClusterID)
			}
			return history, sn.Digest, trips
		}
		history, digest, trips := run(true)
		want, wantDigest, _ := run(false)
		t.Logf("%d round trips to store the stale report", trips)
		if !slices.Equal(history, want) || digest != wantDigest {
			t.Fatalf("stale: history %v, latest %s; read afresh: %v, %s", history, digest, want, wantDigest)
		}
		if len(history) != 2 || history[1].Digest != digest {
			t.Fatalf("history %v, latest %s: want the second report's snapshot last", history, digest)
		}
		// The group's round trips, its alerts' (the laptop's resolved,
		// its former cluster's members judged again) included: 48 with
		// the stored snapshot read on its own and the device's snapshot
		// columns set in a round trip of their own; 45 with the snapshot
		// stored after the fold statement (storeSnapshot) and the cluster
		// lock taken in a round trip of its own; 42 with the keys read
		// before they were replaced; the fold statement now stores it,
		// the device's snapshot being the one read.
		if pg && trips > 39 {
			t.Errorf("%d round trips to store the stale report, want 39 at most", trips)
		}
	})
}

// TestMovingStaleKeys stores a heartbeat that moves its laptop from its
// farm's access point to an address of its own, after a snapshot of the
// same laptop from another access point was stored since the heartbeat was
// read (prejudge): the keys prejudge found for it (replaceKeysPostgres) are
// made of snapshot keys the laptop's row no longer holds, so they are read
// and found again. The fleet is then as with the two reports stored one
// after another: the laptop linked by the other access point's keys.
func TestMovingStaleKeys(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		run := func(stale bool) string {
			f := newMovingFleet(t, dsn, false)
			for _, h := range movingHosts {
				where := map[bool]string{true: "A", false: "B"}[h == "f-0" || h == "f-1" || h == "f-2"]
				if _, errs := f.e.st.IngestGroup(f.e.ctx, f.rules, f.batch(h, t0, where)); errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			at := t0.Add(time.Minute)
			snapshot := func() {
				if _, errs := f.e.st.IngestGroup(f.e.ctx, f.rules, f.batch("f-0", at, "B")); errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			between := snapshot
			if !stale {
				snapshot()
				between = nil
			}
			if _, errs, _ := f.e.st.IngestPrejudged(f.e.ctx, f.rules, between, f.batch("f-0", at.Add(time.Second), "heartbeat")); errs[0] != nil {
				t.Fatal(errs[0])
			}
			if stored, counted, err := f.e.st.LinkKeysForTest(f.e.ctx); err != nil || !maps.Equal(stored, counted) {
				t.Fatalf("link_keys %v, device_keys count %v (%v)", stored, counted, err)
			}
			if f.e.device(f.ids["f-0"]).ClusterID == "" {
				t.Fatal("f-0 in no cluster: it keeps B's access point")
			}
			return f.state(t, at)
		}
		if got, want := run(true), run(false); got != want {
			t.Errorf("stored after a snapshot since it was read\n%s\nafter it\n%s", got, want)
		}
	})
}
