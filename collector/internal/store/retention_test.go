package store_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestPrune: with a retention of 30 days, what is older goes (reports
// into daily counts per device, snapshot, risk, egress history and
// cluster timelines) in batches, and what is younger stays, as does the
// latest snapshot; the audit log is kept until a limit is set.
func TestPrune(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		dev := e.enroll("agent-1", "hw:1", "host-1")
		old, older, recent := t0.Add(-40*24*time.Hour), t0.Add(-35*24*time.Hour), t0.Add(-24*time.Hour)
		report := func(ip string, at time.Time, ev store.Evaluator, r store.IngestReport) {
			b := e.batch("agent-1", at, r)
			b.IP, b.Egress = ip, detect.Egress{IP: ip}
			if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
				t.Fatal(err)
			}
		}
		one := deviceFindings(finding("rule_a", "high"))
		two := deviceFindings(finding("rule_a", "high"), finding("rule_b", "critical"))
		// 40 days ago: a snapshot and a heartbeat, from a first address, a
		// first alert; 35 days ago a heartbeat; yesterday a new snapshot
		// from another address, and a second alert.
		report("203.0.113.1", old, one, e.snapshot("30000000-0000-4000-8000-000000000001", "host-1", old, map[string]string{"usb": "1"}))
		report("203.0.113.1", old.Add(time.Hour), one, e.heartbeat("30000000-0000-4000-8000-000000000002", "host-1", old.Add(time.Hour)))
		report("203.0.113.1", older, one, e.heartbeat("30000000-0000-4000-8000-000000000003", "host-1", older))
		report("198.51.100.2", recent, two, e.snapshot("30000000-0000-4000-8000-000000000004", "host-1", recent, map[string]string{"usb": "2"}))
		for _, at := range []time.Time{old, older, recent, recent} {
			if err := e.st.AddClusterEvent(e.ctx, "c-1", at); err != nil {
				t.Fatal(err)
			}
		}
		times := func(table, column string) []time.Time {
			ts, err := e.st.TimesIn(e.ctx, table, column)
			if err != nil {
				t.Fatal(err)
			}
			return ts
		}
		audited := len(times("audit_log", "at"))
		if audited == 0 {
			t.Fatal("no audit entries to keep")
		}

		month := 30 * 24 * time.Hour
		st, err := e.st.PruneInBatches(e.ctx, t0, store.Retention{Reports: month, Snapshots: month, Risk: month, ClusterEvents: month, Egress: month}, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := store.PruneStats{Reports: 3, Snapshots: 1, Risk: 1, ClusterEvents: 2, Egress: 1}
		if st != want {
			t.Errorf("pruned %+v, want %+v", st, want)
		}
		for _, c := range []struct{ table, column string }{
			{"reports", "received_at"}, {"snapshot_history", "received_at"}, {"risk_history", "at"}, {"egress_history", "at"},
		} {
			if got := times(c.table, c.column); len(got) != 1 || !got[0].Equal(recent) {
				t.Errorf("%s kept %v, want only yesterday's %v", c.table, got, recent)
			}
		}
		if got := times("cluster_events", "at"); len(got) != 2 || !got[0].Equal(recent) {
			t.Errorf("cluster events kept %v, want yesterday's two", got)
		}
		days, err := e.st.ReportDays(e.ctx, dev)
		wantDays := []store.ReportDay{
			{Day: old.Truncate(24 * time.Hour), Snapshots: 1, Heartbeats: 1},
			{Day: older.Truncate(24 * time.Hour), Heartbeats: 1},
		}
		if err != nil || !slices.Equal(days, wantDays) {
			t.Errorf("report days %+v, %v; want %+v", days, err, wantDays)
		}
		if sn, err := e.st.LatestSnapshot(e.ctx, dev); err != nil || sn.ReportID != "30000000-0000-4000-8000-000000000004" {
			t.Errorf("latest snapshot %q, %v", sn.ReportID, err)
		}
		if n := len(times("audit_log", "at")); n != audited {
			t.Errorf("audit log: %d entries left of %d without a limit", n, audited)
		}

		// Pruning again finds nothing; an audit limit prunes the log
		// (its entries carry the wall-clock time).
		if st, err := e.st.PruneInBatches(e.ctx, t0, store.Retention{Reports: month, Snapshots: month, Risk: month, ClusterEvents: month, Egress: month}, 2); err != nil || st != (store.PruneStats{}) {
			t.Errorf("second prune %+v, %v", st, err)
		}
		st, err = e.st.PruneInBatches(e.ctx, time.Now().Add(2*time.Hour), store.Retention{Audit: time.Hour}, 2)
		if err != nil || st.Audit < audited || len(times("audit_log", "at")) != 0 {
			t.Errorf("audit prune %+v, %v: %d left", st, err, len(times("audit_log", "at")))
		}
	})
}

// TestPruneKeepsLatestSnapshot: a device's latest snapshot keeps its data
// in the history entry it names, so pruning keeps that entry however old,
// deletes the device's older ones and the other devices' old ones behind
// it (batch by batch, past the kept one), and the latest snapshot still
// loads whole.
func TestPruneKeepsLatestSnapshot(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		quiet, busy := e.enroll("agent-1", "hw:1", "host-1"), e.enroll("agent-2", "hw:2", "host-2")
		old, older, recent := t0.Add(-40*24*time.Hour), t0.Add(-35*24*time.Hour), t0.Add(-24*time.Hour)
		last := e.snapshot("40000000-0000-4000-8000-000000000002", "host-1", older, map[string]string{"usb": "2"})
		e.ingest("agent-1", old, noRules, e.snapshot("40000000-0000-4000-8000-000000000001", "host-1", old, map[string]string{"usb": "1"}))
		e.ingest("agent-1", older, noRules, last)
		e.ingest("agent-2", old, noRules, e.snapshot("40000000-0000-4000-8000-000000000003", "host-2", old, map[string]string{"usb": "1"}))
		e.ingest("agent-2", recent, noRules, e.snapshot("40000000-0000-4000-8000-000000000004", "host-2", recent, map[string]string{"usb": "2"}))

		month := 30 * 24 * time.Hour
		st, err := e.st.PruneInBatches(e.ctx, t0, store.Retention{Snapshots: month}, 1)
		if err != nil || st != (store.PruneStats{Snapshots: 2}) {
			t.Fatalf("pruned %+v, %v; want the two older snapshots", st, err)
		}
		if h := e.history(quiet); len(h) != 1 || h[0].ReportID != last.ReportID {
			t.Errorf("quiet device's history %+v, want only its latest snapshot", h)
		}
		if h := e.history(busy); len(h) != 1 || h[0].ReportID != "40000000-0000-4000-8000-000000000004" {
			t.Errorf("busy device's history %+v, want only yesterday's snapshot", h)
		}
		sn, err := e.st.LatestSnapshot(e.ctx, quiet)
		if err != nil || sn.ReportID != last.ReportID || !bytes.Equal(sn.Data, last.Data) || len(sn.Data) == 0 {
			t.Errorf("latest snapshot %q (%d bytes), %v; want %q with its data", sn.ReportID, len(sn.Data), err, last.ReportID)
		}
		if st, err := e.st.PruneInBatches(e.ctx, t0, store.Retention{Snapshots: month}, 1); err != nil || st != (store.PruneStats{}) {
			t.Errorf("second prune %+v, %v", st, err)
		}
	})
}
