package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestGroupFailsBatchAlone: batches of many agents arrive at once, so the
// writers commit them in groups, each batch under its own savepoint; every
// other batch fails on its second report. Each failed batch leaves nothing
// behind (no report, no last_seen, no snapshot), every other one is stored
// and acknowledged whole, and a retry of a failed batch, now good, is
// stored. Grouping is up to the scheduler, so over the rounds most groups
// hold several batches, good and failed side by side.
func TestGroupFailsBatchAlone(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		const agents, rounds = 12, 4
		poison := evaluator(func(scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
			if f.Snapshot != nil && f.Snapshot.GetIdentity().GetHostname() == "poison" {
				return []detect.Finding{{RuleID: "poison", Title: "t", Severity: "low", Evidence: map[string]any{"ch": make(chan int)}}}, nil
			}
			return nil, nil
		})
		devices := make([]string, agents)
		for i := range devices {
			devices[i] = e.enroll(fmt.Sprintf("a%d", i), fmt.Sprintf("hw:%d", i), fmt.Sprintf("laptop-%d", i))
		}
		failed := func(i int) bool { return i%2 == 1 }
		for round := range rounds {
			at := t0.Add(time.Duration(round) * time.Minute)
			batches := make([]store.IngestBatch, agents)
			for i := range batches {
				host := fmt.Sprintf("laptop-%d", i)
				first := e.snapshot(fmt.Sprintf("r%d-%d-1", round, i), host, at, map[string]string{"usb": fmt.Sprint(round)})
				second := e.heartbeat(fmt.Sprintf("r%d-%d-2", round, i), host, at)
				if failed(i) {
					second = e.snapshot(fmt.Sprintf("r%d-%d-2", round, i), "poison", at, map[string]string{"usb": "p"})
				}
				batches[i] = e.batch(fmt.Sprintf("a%d", i), at, first, second)
			}
			acked := make([][]string, agents)
			errs := make([]error, agents)
			var wg sync.WaitGroup
			for i := range batches {
				wg.Go(func() { acked[i], errs[i] = e.st.Ingest(e.ctx, batches[i], poison) })
			}
			wg.Wait()
			for i := range batches {
				want := []string{batches[i].Reports[0].ReportID, batches[i].Reports[1].ReportID}
				if failed(i) {
					if errs[i] == nil || acked[i] != nil {
						t.Errorf("round %d, batch %d: acked %v, err %v; want an error and nothing acked", round, i, acked[i], errs[i])
					}
				} else if errs[i] != nil || !slices.Equal(acked[i], want) {
					t.Errorf("round %d, batch %d: acked %v, err %v; want %v", round, i, acked[i], errs[i], want)
				}
			}
		}
		for i, dev := range devices {
			n, d, a := e.reportCount(dev), e.device(dev), e.agent(fmt.Sprintf("a%d", i))
			if failed(i) {
				if n != 0 || !d.LastSeen.IsZero() || !a.LastSeen.IsZero() || !d.SnapshotAt.IsZero() || len(e.history(dev)) != 0 {
					t.Errorf("failed device %d: %d reports, last seen %v / %v, snapshot at %v", i, n, d.LastSeen, a.LastSeen, d.SnapshotAt)
				}
			} else if n != 2*rounds || d.LastSeen.IsZero() || a.LastSeen.IsZero() || len(e.history(dev)) != rounds {
				t.Errorf("device %d: %d reports, %d history entries, last seen %v / %v", i, n, len(e.history(dev)), d.LastSeen, a.LastSeen)
			}
		}
		// A failed batch retried without its poison is stored whole.
		retry := e.batch("a1", t0.Add(time.Hour), e.snapshot("r0-1-1", "laptop-1", t0, map[string]string{"usb": "0"}))
		if acked, err := e.st.Ingest(e.ctx, retry, poison); err != nil || !slices.Equal(acked, []string{"r0-1-1"}) || e.reportCount(devices[1]) != 1 {
			t.Errorf("retry: acked %v, err %v, %d reports", acked, err, e.reportCount(devices[1]))
		}
	})
}
