package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// TestStoreReport: what storing a prejudged report writes (on PostgreSQL
// one statement: the report, its agent, its quota, the device, the
// snapshot's rows and the activity histogram), when nothing intervened
// and when another report of the device was stored meanwhile, which also
// changed its host name: the parts that depended on the device as
// prejudge read it are then written by the writer on the device as it
// is. A report over its agent's quota is refused whole; a retried one is
// acknowledged and neither stored nor charged again.
func TestStoreReport(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("agent-1", "hw:1", "host-1")
		rule := &egressRule{}
		hour := func(back int) time.Time { return t0.Truncate(time.Hour).Add(-time.Duration(back) * time.Hour) }
		send := func(at time.Time, r store.IngestReport) error {
			b := e.batch("agent-1", at, r)
			b.Quota = store.Quota{Reports: 6}
			_, err := e.st.Ingest(e.ctx, b, rule)
			return err
		}
		// check: the device's host name, latest snapshot, history (report
		// ids, and the sections each entry after the first changed) and
		// active minutes by hours back.
		check := func(host string, latest store.IngestReport, history, changed []string, active map[int]uint8) {
			t.Helper()
			if d := e.device(dev); d.Hostname != host || d.SnapshotAt.IsZero() {
				t.Fatalf("device %+v, want host name %s and a snapshot time", d, host)
			}
			sn, err := e.st.LatestSnapshot(e.ctx, dev)
			if err != nil || sn.ReportID != latest.ReportID || sn.Digest != latest.Digest || string(sn.Data) != string(latest.Data) {
				t.Fatalf("latest snapshot %s (%v), want %s's", sn.ReportID, err, latest.ReportID)
			}
			h := e.history(dev)
			if len(h) != len(history) {
				t.Fatalf("history %+v, want entries of %v", h, history)
			}
			for i, id := range history {
				if h[i].ReportID != id || (i > 0 && h[i].Changed != changed[i-1]) {
					t.Fatalf("history %+v, want entries of %v changing %v", h, history, changed)
				}
			}
			hist, err := e.st.DeviceActivity(e.ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			for back, want := range active {
				if got := hist.Active[hour(back).Unix()/3600-(hist.End-activity.Window)]; got != want {
					t.Fatalf("activity %d hours back: %d active minutes, want %d", back, got, want)
				}
			}
		}
		snapshot := func(id string, at time.Time, host, apps string, back int, active uint32) store.IngestReport {
			r := e.snapshot(fmt.Sprintf("30000000-0000-4000-8000-%012s", id), host, at, map[string]string{"apps": apps})
			r.Activity = []activity.Hour{{Start: hour(back), Active: active, Sampled: 60}}
			return r
		}

		// The first snapshot (the writer judges it: its user names are
		// new), then one judged before the writer took it, kept.
		r1 := snapshot("1", t0, "host-1", "1", 5, 10)
		r2 := snapshot("2", t0.Add(time.Minute), "host-1", "2", 4, 20)
		for _, r := range []store.IngestReport{r1, r2} {
			if err := send(r.CreatedAt.Add(2*time.Second), r); err != nil {
				t.Fatal(err)
			}
		}
		if n := rule.count(); n != 2 {
			t.Fatalf("rules ran %d times for 2 reports, want once each", n)
		}
		check("host-1", r2, []string{r1.ReportID, r2.ReportID}, []string{"apps"}, map[int]uint8{5: 10, 4: 20})

		// A is judged; before it is stored, B is, which renames the device
		// (a heartbeat) or changes another section of its snapshot.
		at := t0.Add(2 * time.Minute)
		race := func(a, b store.IngestReport) {
			t.Helper()
			paused, resume := rule.pause()
			done := make(chan error, 1)
			go func() { done <- send(at, a) }()
			<-paused
			if err := send(at, b); err != nil {
				t.Fatal(err)
			}
			calls := rule.count()
			close(resume)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := rule.count() - calls; n != 1 {
				t.Fatalf("the writer evaluated A %d times again, want once", n)
			}
		}
		a1 := snapshot("a1", at, "host-1", "3", 2, 40)
		b1 := e.heartbeat("30000000-0000-4000-8000-0000000000b1", "host-2", at)
		b1.Activity = []activity.Hour{{Start: hour(3), Active: 30, Sampled: 60}}
		race(a1, b1)
		active := map[int]uint8{5: 10, 4: 20, 3: 30, 2: 40}
		check("host-1", a1, []string{r1.ReportID, r2.ReportID, a1.ReportID}, []string{"apps", "apps"}, active)
		a2 := snapshot("a2", at, "host-1", "5", 0, 60)
		b2 := snapshot("b2", at, "host-1", "4", 1, 50)
		b2.Sections["disk"] = "x"
		race(a2, b2)
		active[1], active[0] = 50, 60
		check("host-1", a2, []string{r1.ReportID, r2.ReportID, a1.ReportID, b2.ReportID, a2.ReportID}, []string{"apps", "apps", "apps,disk", "apps,disk"}, active)

		// Six reports stored today: a seventh is refused, and nothing of
		// it stored; A again is acknowledged, and stored once.
		if err := send(at, snapshot("7", at, "host-1", "7", 0, 59)); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("a seventh report: %v, want ErrOverQuota", err)
		}
		if err := send(at, a2); err != nil {
			t.Fatalf("A again: %v", err)
		}
		if n := e.reportCount(dev); n != 6 {
			t.Fatalf("%d reports stored, want 6", n)
		}
		check("host-1", a2, []string{r1.ReportID, r2.ReportID, a1.ReportID, b2.ReportID, a2.ReportID}, []string{"apps", "apps", "apps,disk", "apps,disk"}, active)
	})
}

// TestStoreReportPerson: a prejudged report of a device bound to a person
// stores the device's and the person's activity histograms with its
// verdict while the person's histogram is still the one read; when
// another device of the person reported meanwhile, the writer judges the
// report again, and the person's histogram keeps both devices' hours.
func TestStoreReportPerson(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		devA := e.enroll("agent-a", "hw:a", "host-a")
		e.enroll("agent-b", "hw:b", "host-b")
		// A is Ann's by its serial number, B by the user name it reports.
		if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-a", Username: "ann"}, "admin:test"); err != nil {
			t.Fatal(err)
		}
		rule := &egressRule{evidence: func(f *detect.DeviceFacts) any { return f.Person }}
		hour := func(back int) time.Time { return t0.Truncate(time.Hour).Add(-time.Duration(back) * time.Hour) }
		n := 0
		report := func(agent, host string, back int, active uint32) error {
			n++
			r := e.heartbeat(fmt.Sprintf("40000000-0000-4000-8000-%012d", n), host, t0)
			if back >= 0 {
				r.Activity = []activity.Hour{{Start: hour(back), Active: active, Sampled: 60}}
			}
			_, err := e.st.Ingest(e.ctx, e.batch(agent, t0.Add(time.Duration(n)*time.Second), r), rule)
			return err
		}
		active := func(h *activity.Histogram, err error, want map[int]uint8) {
			t.Helper()
			if err != nil || h == nil {
				t.Fatalf("histogram %v (%v)", h, err)
			}
			for back, w := range want {
				if got := h.Active[hour(back).Unix()/3600-(h.End-activity.Window)]; got != w {
					t.Fatalf("%d hours back: %d active minutes, want %d", back, got, w)
				}
			}
		}
		b := e.snapshot("40000000-0000-4000-8000-0000000000b0", "host-b", t0, map[string]string{"locale": "ann"})
		b.Snapshot.Locale = &agentv1.Locale{KeyboardLayouts: []*agentv1.KeyboardLayout{{User: "ann"}}}
		e.ingest("agent-b", t0, rule, b)
		// A's first report binds it to Ann (the writer judges it); the
		// second is judged before the writer takes it, and kept.
		for i, back := range []int{5, 4} {
			if err := report("agent-a", "host-a", back, uint32(10*(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		calls := rule.count()
		if err := report("agent-a", "host-a", 3, 30); err != nil {
			t.Fatal(err)
		}
		if n := rule.count() - calls; n != 1 {
			t.Fatalf("rules ran %d times for one report, want once", n)
		}
		if e.alerts(store.AlertFilter{DeviceID: devA})[0].Evidence["previous"] != "ann@example.com" {
			t.Fatal("A is not judged as Ann's")
		}
		h, err := e.st.PersonActivity(e.ctx, "ann@example.com")
		active(h, err, map[int]uint8{5: 10, 4: 20, 3: 30})

		// A is judged; before it is stored, B reports an hour of Ann's.
		paused, resume := rule.pause()
		done := make(chan error, 1)
		go func() { done <- report("agent-a", "host-a", 2, 40) }()
		<-paused
		if err := report("agent-b", "host-b", 1, 50); err != nil {
			t.Fatal(err)
		}
		calls = rule.count()
		close(resume)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := rule.count() - calls; n != 1 {
			t.Fatalf("the writer evaluated A %d times again, want once (Ann's hours changed since A was judged)", n)
		}
		h, err = e.st.PersonActivity(e.ctx, "ann@example.com")
		active(h, err, map[int]uint8{5: 10, 4: 20, 3: 30, 2: 40, 1: 50})
		h, err = e.st.DeviceActivity(e.ctx, devA)
		active(h, err, map[int]uint8{5: 10, 4: 20, 3: 30, 2: 40, 1: 0})
	})
}
