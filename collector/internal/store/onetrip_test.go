package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// oneTripGroup is three batches of groupEnv's devices at at: snapshots
// changing a section for laptop-0 and laptop-2, a heartbeat for laptop-1.
func oneTripGroup(e *env, at time.Time, prefix string) []store.IngestBatch {
	return []store.IngestBatch{
		e.batch("a0", at, e.snapshot(prefix+"-0", "laptop-0", at, map[string]string{"os": "1"})),
		e.batch("a1", at, e.heartbeat(prefix+"-1", "laptop-1", at)),
		e.batch("a2", at, e.snapshot(prefix+"-2", "laptop-2", at, map[string]string{"os": "1"})),
	}
}

// trips reads how many groups the store stored in one round trip since
// the last call (see storeInOneTrip).
func trips(e *env, last *int64) int64 {
	n := e.st.OneTripsForTest()
	d := n - *last
	*last = n
	return d
}

// postgresOnly is the PostgreSQL server of a test of its writer's one
// round trip (groupEnv makes a database of its own there).
func postgresOnly(t *testing.T) string {
	dsn := os.Getenv("BONAFIDE_TEST_POSTGRES")
	if dsn == "" {
		storetest.Missing(t, "PostgreSQL (set BONAFIDE_TEST_POSTGRES to a DSN)")
	}
	return dsn
}

// TestOneTrip: on PostgreSQL a group of prejudged reports with nothing to
// do after their fold statements (no findings, devices in no cluster) is
// stored in one round trip, a group of one too, and each report is stored
// whole, with its snapshot, as the usual way stores it.
func TestOneTrip(t *testing.T) {
	e, devs := groupEnv(t, postgresOnly(t), 3, &firing{})
	var last int64
	trips(e, &last)
	at := t0.Add(time.Minute)
	acked, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, nil, oneTripGroup(e, at, "g")...)
	for i := range devs {
		if errs[i] != nil || !slices.Equal(acked[i], []string{fmt.Sprintf("g-%d", i)}) {
			t.Fatalf("batch %d: acked %v, err %v", i, acked[i], errs[i])
		}
	}
	if n := trips(e, &last); n != 1 {
		t.Errorf("%d groups stored in one round trip, want 1", n)
	}
	at2 := at.Add(time.Minute)
	e.ingest("a1", at2, &firing{}, e.heartbeat("alone", "laptop-1", at2))
	if n := trips(e, &last); n != 1 {
		t.Errorf("a group of one: %d groups stored in one round trip, want 1", n)
	}
	for i, dev := range devs {
		wantAt, snapshots := at, 2
		if i == 1 {
			wantAt, snapshots = at2, 1
		}
		d := e.device(dev)
		if n, h := e.reportCount(dev), e.history(dev); n != int64(2+i%2) || len(h) != snapshots || !d.LastSeen.Equal(wantAt) {
			t.Errorf("laptop-%d: %d reports, %d snapshots, last seen %v", i, n, len(h), d.LastSeen)
		}
		if i != 1 && !d.SnapshotAt.Equal(at) {
			t.Errorf("laptop-%d: snapshot at %v, want %v", i, d.SnapshotAt, at)
		}
	}
}

// TestOneTripGuardMiss: a device of a group sent in one round trip changed
// after its verdict was reached: its fold statement raises, the group is
// rolled back and stored the usual way, where the device is judged again
// and the verdict stored is the one on the device as it now is. Moved:
// another report moved it to another address, which the group's report
// moves it back from; moved back: two other reports moved it away and
// back, so that only its version tells.
func TestOneTripGuardMiss(t *testing.T) {
	dsn := postgresOnly(t)
	const away = "198.51.100.9"
	// The rule fires when the device's previous address is away.
	rule := evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
		if scope != detect.ScopeDevice || f.Device.PreviousEgress.IP != away {
			return nil, nil
		}
		fd := finding("moved", "low")
		fd.Evidence = map[string]any{"previous": away}
		return []detect.Finding{fd}, nil
	})
	for _, c := range []struct {
		name  string
		moves []string // the addresses of the reports in between
		count int64    // the alert's count after the group
	}{
		{"moved", []string{away}, 1},
		{"moved back", []string{away, "203.0.113.7"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, devs := groupEnv(t, dsn, 3, rule)
			at := t0.Add(time.Minute)
			acked, errs, _ := e.st.IngestPrejudged(e.ctx, rule, func() {
				for i, ip := range c.moves {
					moveAt := at.Add(time.Duration(i-len(c.moves)) * time.Second)
					b := e.batch("a1", moveAt, e.heartbeat(fmt.Sprintf("move-%d", i), "laptop-1", moveAt))
					b.IP, b.Egress = ip, detect.Egress{IP: ip}
					if _, err := e.st.Ingest(e.ctx, b, rule); err != nil {
						t.Fatal(err)
					}
				}
			}, oneTripGroup(e, at, "g")...)
			for i := range devs {
				if errs[i] != nil || !slices.Equal(acked[i], []string{fmt.Sprintf("g-%d", i)}) {
					t.Fatalf("batch %d: acked %v, err %v", i, acked[i], errs[i])
				}
			}
			a := e.alerts(store.AlertFilter{DeviceID: devs[1]})
			if len(a) != 1 || a[0].Count != c.count || !a[0].LastSeen.Equal(at) {
				t.Errorf("laptop-1's alerts %+v, want one seen %d times, last at %v (the verdict on the device as it is)", a, c.count, at)
			}
			for i, dev := range devs {
				want := int64(2)
				if i == 1 {
					want += int64(len(c.moves))
				}
				if n := e.reportCount(dev); n != want {
					t.Errorf("laptop-%d: %d reports, want %d", i, n, want)
				}
				if i != 1 && len(e.alerts(store.AlertFilter{DeviceID: dev})) != 0 {
					t.Errorf("laptop-%d has alerts", i)
				}
			}
		})
	}
}

// TestOneTripAutoResolve: a device whose open alert the verdict clears
// has it resolved: its fold statement raises, and the usual way resolves
// it. An open alert of a rule that does not auto-resolve is left open,
// and the group is stored in one round trip.
func TestOneTripAutoResolve(t *testing.T) {
	e, devs := groupEnv(t, postgresOnly(t), 3, &firing{})
	at := t0.Add(time.Minute)
	// laptop-0 has an alert of r1 (auto-resolving), laptop-2 of r3.
	e.ingest("a0", at, &firing{rules: []string{"r1"}}, e.heartbeat("r1", "laptop-0", at))
	e.ingest("a2", at, &firing{rules: []string{"r3"}}, e.heartbeat("r3", "laptop-2", at))
	var last int64
	trips(e, &last)
	status := func(dev string) string {
		t.Helper()
		a := e.alerts(store.AlertFilter{DeviceID: dev})
		if len(a) != 1 {
			t.Fatalf("alerts %+v", a)
		}
		return a[0].Status
	}
	at = at.Add(time.Minute)
	for _, g := range [][]int{{1, 2}, {0, 1}} {
		var batches []store.IngestBatch
		for _, i := range g {
			batches = append(batches, oneTripGroup(e, at, fmt.Sprintf("%v", g))[i])
		}
		_, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, nil, batches...)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Minute)
	}
	if st := status(devs[0]); st != store.StatusResolved {
		t.Errorf("laptop-0's alert of r1 is %s, want resolved", st)
	}
	if st := status(devs[2]); st != store.StatusOpen {
		t.Errorf("laptop-2's alert of r3 is %s, want open", st)
	}
	if n := trips(e, &last); n != 1 {
		t.Errorf("%d groups stored in one round trip, want 1 (laptop-2's)", n)
	}
}

// TestOneTripRetriedReport: a report stored before comes again in a group
// stored in one round trip: it is acknowledged and stored once, its
// device untouched, and its fold statement raises nothing.
func TestOneTripRetriedReport(t *testing.T) {
	e, devs := groupEnv(t, postgresOnly(t), 3, &firing{})
	var last int64
	trips(e, &last)
	at := t0.Add(time.Minute)
	group := oneTripGroup(e, at, "g")
	group[0] = e.batch("a0", at, e.snapshot("first-0", "laptop-0", t0, map[string]string{"os": "0"}))
	acked, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, nil, group...)
	for i, want := range []string{"first-0", "g-1", "g-2"} {
		if errs[i] != nil || !slices.Equal(acked[i], []string{want}) {
			t.Fatalf("batch %d: acked %v, err %v", i, acked[i], errs[i])
		}
	}
	if n := trips(e, &last); n != 1 {
		t.Errorf("%d groups stored in one round trip, want 1", n)
	}
	for i, want := range []int64{1, 2, 2} {
		if n := e.reportCount(devs[i]); n != want {
			t.Errorf("laptop-%d: %d reports, want %d", i, n, want)
		}
	}
	if d := e.device(devs[0]); !d.LastSeen.Equal(t0) {
		t.Errorf("the retried report updated its device: last seen %v, want %v", d.LastSeen, t0)
	}
}

// TestOneTripOverQuota: a batch over its quota in a group sent in one
// round trip makes its fold statement raise; the group is stored the
// usual way, where that batch alone fails (with ErrOverQuota) and the
// others are stored; alone, it fails as before.
func TestOneTripOverQuota(t *testing.T) {
	e, devs := groupEnv(t, postgresOnly(t), 3, &firing{})
	var last int64
	trips(e, &last)
	at := t0.Add(time.Minute)
	group := oneTripGroup(e, at, "g")
	group[1].Quota = store.Quota{Reports: 1} // its first report used it
	acked, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, nil, group...)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrOverQuota) || errs[2] != nil {
		t.Fatalf("errors %v, want laptop-1's over its quota", errs)
	}
	if !slices.Equal(acked[0], []string{"g-0"}) || acked[1] != nil || !slices.Equal(acked[2], []string{"g-2"}) {
		t.Fatalf("acked %v", acked)
	}
	b := e.batch("a1", at, e.heartbeat("alone", "laptop-1", at))
	b.Quota = store.Quota{Reports: 1}
	if _, err := e.st.Ingest(e.ctx, b, &firing{}); !errors.Is(err, store.ErrOverQuota) {
		t.Errorf("alone: %v, want ErrOverQuota", err)
	}
	if n := trips(e, &last); n != 0 {
		t.Errorf("%d groups stored in one round trip, want none", n)
	}
	for i, want := range []int64{2, 1, 2} {
		if n := e.reportCount(devs[i]); n != want {
			t.Errorf("laptop-%d: %d reports, want %d", i, n, want)
		}
	}
	if d := e.device(devs[1]); !d.LastSeen.Equal(t0) {
		t.Errorf("the refused batch updated its device: last seen %v, want %v", d.LastSeen, t0)
	}
}

// TestOneTripEgress: a report from a new address, whose egress change
// the writer records after the fold statement, makes the statement
// raise: the group is stored the usual way, with the change recorded. (The
// address is not described, as when the egress lookup failed: a described
// one is one of the device's keys, and prejudge leaves a change of keys to
// the writer.)
func TestOneTripEgress(t *testing.T) {
	e, devs := groupEnv(t, postgresOnly(t), 3, &firing{})
	at := t0.Add(time.Minute)
	group := oneTripGroup(e, at, "g")
	group[1].IP = "198.51.100.9"
	_, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, nil, group...)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	h, err := e.st.EgressHistory(e.ctx, devs[1], time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 || h[0].IP != "198.51.100.9" || !h[0].At.Equal(at) {
		t.Errorf("laptop-1's egress history %+v, want the change to 198.51.100.9 at %v first", h, at)
	}
}

// TestOneTripPersonActivity: a report of a device bound to a person, in a
// group sent in one round trip, after whose judging another device of the
// person reported an hour of theirs: its fold statement does not keep the
// facts (the person's activity histogram is not the one read) and raises;
// the usual way judges the report again, and the person's histogram keeps
// both devices' hours.
func TestOneTripPersonActivity(t *testing.T) {
	e := newEnv(t, freshDSN(t, postgresOnly(t)))
	devA := e.enroll("agent-a", "hw:a", "host-a")
	e.enroll("agent-b", "hw:b", "host-b")
	// A is Ann's by its serial number, B by the user name it reports.
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-a", Username: "ann"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	hour := func(back int) time.Time { return t0.Truncate(time.Hour).Add(-time.Duration(back) * time.Hour) }
	n := 0
	report := func(agent, host string, back int, active uint32) store.IngestBatch {
		n++
		r := e.heartbeat(fmt.Sprintf("50000000-0000-4000-8000-%012d", n), host, t0)
		r.Activity = []activity.Hour{{Start: hour(back), Active: active, Sampled: 60}}
		return e.batch(agent, t0.Add(time.Duration(n)*time.Second), r)
	}
	b := e.snapshot("50000000-0000-4000-8000-0000000000b0", "host-b", t0, map[string]string{"locale": "ann"})
	b.Snapshot.Locale = &agentv1.Locale{KeyboardLayouts: []*agentv1.KeyboardLayout{{User: "ann"}}}
	e.ingest("agent-b", t0, &firing{}, b)
	// A's first report binds it to Ann.
	if _, err := e.st.Ingest(e.ctx, report("agent-a", "host-a", 5, 10), &firing{}); err != nil {
		t.Fatal(err)
	}
	_, errs, _ := e.st.IngestPrejudged(e.ctx, &firing{}, func() {
		if _, err := e.st.Ingest(e.ctx, report("agent-b", "host-b", 1, 50), &firing{}); err != nil {
			t.Fatal(err)
		}
	}, report("agent-a", "host-a", 2, 40))
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	for _, c := range []struct {
		name string
		read func(context.Context, string) (*activity.Histogram, error)
		key  string
		want map[int]uint8
	}{
		{"Ann's", e.st.PersonActivity, "ann@example.com", map[int]uint8{5: 10, 2: 40, 1: 50}},
		{"A's", e.st.DeviceActivity, devA, map[int]uint8{5: 10, 2: 40, 1: 0}},
	} {
		h, err := c.read(e.ctx, c.key)
		if err != nil || h == nil {
			t.Fatalf("%s histogram %v (%v)", c.name, h, err)
		}
		for back, w := range c.want {
			if got := h.Active[hour(back).Unix()/3600-(h.End-activity.Window)]; got != w {
				t.Errorf("%s histogram, %d hours back: %d active minutes, want %d", c.name, back, got, w)
			}
		}
	}
}
