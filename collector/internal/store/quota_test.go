package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// An agent's quota counts its reports of the day, refuses the batch that
// would pass it, starts afresh the next day, and agent_report_flood is
// raised once a day with the day's count.
func TestQuotaDays(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		dev := e.enroll("a1", "hw:q/1", "laptop-1")
		q := store.Quota{Reports: 2}
		ingest := func(at time.Time, id string) error {
			b := e.batch("a1", at, e.heartbeat(id, "laptop-1", at))
			b.Quota = q
			_, err := e.st.Ingest(e.ctx, b, noRules)
			return err
		}
		flood := func(at time.Time) bool {
			t.Helper()
			raised, err := e.st.ReportFlood(e.ctx, e.agent("a1"), q, at)
			if err != nil {
				t.Fatal(err)
			}
			return raised
		}
		if flood(t0) {
			t.Fatal("flood raised on a day with no report stored")
		}
		for i, id := range []string{"r1", "r2"} {
			if err := ingest(t0.Add(time.Duration(i)*time.Minute), id); err != nil {
				t.Fatalf("report %d of the day: %v", i+1, err)
			}
		}
		if err := ingest(t0.Add(2*time.Minute), "r3"); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("third report of the day: %v, want ErrOverQuota", err)
		}
		if !flood(t0.Add(2*time.Minute)) || flood(t0.Add(3*time.Minute)) {
			t.Fatal("flood not raised exactly once on the day")
		}
		alerts := e.alerts(store.AlertFilter{DeviceID: dev, RuleID: store.RuleReportFlood})
		if len(alerts) != 1 || alerts[0].Evidence["reports_stored"] != float64(2) {
			t.Fatalf("flood alerts %+v, want one with 2 reports stored", alerts)
		}
		next := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
		for i, id := range []string{"r4", "r5"} {
			if err := ingest(next.Add(time.Duration(i)*time.Minute), id); err != nil {
				t.Fatalf("report %d of the next day: %v", i+1, err)
			}
		}
		if err := ingest(next.Add(2*time.Minute), "r6"); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("third report of the next day: %v, want ErrOverQuota", err)
		}
		if !flood(next.Add(2 * time.Minute)) {
			t.Fatal("flood not raised again the next day")
		}
		if n := e.reportCount(dev); n != 4 {
			t.Fatalf("%d reports stored, want 4", n)
		}
	})
}
