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
)

// perDevice is an egressRule that counts its evaluations by device.
type perDevice struct {
	egressRule
	mu    sync.Mutex
	evals map[string]int
}

func newPerDevice() *perDevice {
	r := &perDevice{evals: map[string]int{}}
	r.evidence = func(f *detect.DeviceFacts) any {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.evals[f.ID]++
		return f.PreviousEgress.IP
	}
	return r
}

func (r *perDevice) count(deviceID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evals[deviceID]
}

// groupEnv enrolls n devices (agents a0.., hosts laptop-0..), each with
// one snapshot stored from the batches' address. The groups' snapshots
// change a section that changes neither the devices' keys nor their
// peripherals: prejudge judges them.
func groupEnv(t *testing.T, dsn string, n int, ev store.Evaluator) (*env, []string) {
	e := newEnv(t, freshDSN(t, dsn))
	devs := make([]string, n)
	for i := range devs {
		devs[i] = e.enroll(fmt.Sprintf("a%d", i), fmt.Sprintf("hw:f/%d", i), fmt.Sprintf("laptop-%d", i))
		// Charged to the agent's day: a batch of the day with a quota of
		// one report is over it.
		b := e.batch(fmt.Sprintf("a%d", i), t0, e.snapshot(fmt.Sprintf("first-%d", i), fmt.Sprintf("laptop-%d", i), t0, map[string]string{"os": "0"}))
		b.Quota = store.Quota{Reports: 1}
		if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
			t.Fatal(err)
		}
	}
	return e, devs
}

// TestFoldAheadGuardMiss: a group's prejudged reports are stored with
// their fold statements sent together (PostgreSQL). The middle one's
// device is changed by another report after its verdict was reached:
// its fold finds the device at another version, and the writer judges
// it again on the device as it now is. Judging it again could change the
// devices of the folds sent after it, so on PostgreSQL the group runs
// again one batch after another, where it is judged again once more;
// the others keep the verdicts reached outside. Every report is stored
// once, snapshots and all.
func TestFoldAheadGuardMiss(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		rule := newPerDevice()
		e, devs := groupEnv(t, dsn, 3, rule)
		at := t0.Add(time.Minute)
		before := []int{rule.count(devs[0]), rule.count(devs[1]), rule.count(devs[2])}
		var batches []store.IngestBatch
		for i := range devs {
			batches = append(batches, e.batch(fmt.Sprintf("a%d", i), at,
				e.snapshot(fmt.Sprintf("g-%d", i), fmt.Sprintf("laptop-%d", i), at, map[string]string{"os": "1"})))
		}
		acked, errs, ahead := e.st.IngestPrejudged(e.ctx, rule, func() {
			// Another report moves laptop-1 to another address.
			b := e.batch("a1", at, e.heartbeat("moved-1", "laptop-1", at))
			b.IP, b.Egress = "198.51.100.9", detect.Egress{IP: "198.51.100.9"}
			if _, err := e.st.Ingest(e.ctx, b, rule); err != nil {
				t.Fatal(err)
			}
		}, batches...)
		if e.st.Dialect() == store.Postgres && !slices.Equal(ahead, []int{0, 1, 2}) {
			t.Fatalf("sent ahead %v, want all three", ahead)
		}
		for i := range devs {
			if errs[i] != nil || !slices.Equal(acked[i], []string{fmt.Sprintf("g-%d", i)}) {
				t.Fatalf("batch %d: acked %v, err %v", i, acked[i], errs[i])
			}
		}
		// laptop-1: judged outside, by the report that moved it, and again
		// by the writer (twice on PostgreSQL: the group ran again); the
		// others once, outside.
		again := 3
		if e.st.Dialect() == store.Postgres {
			again = 4
		}
		for i, want := range []int{1, again, 1} {
			if n := rule.count(devs[i]) - before[i]; n != want {
				t.Errorf("laptop-%d evaluated %d times, want %d", i, n, want)
			}
		}
		// The verdict stored on laptop-1 saw the move: its previous
		// address is the one the other report came from.
		a := e.alerts(store.AlertFilter{DeviceID: devs[1]})
		if len(a) != 1 || a[0].Evidence["previous"] != "198.51.100.9" {
			t.Errorf("laptop-1's alert %+v, want previous egress 198.51.100.9 (a verdict on the device as it was before the move)", a)
		}
		for i, dev := range devs {
			want := int64(2)
			if i == 1 {
				want = 3
			}
			if n, h, d := e.reportCount(dev), e.history(dev), e.device(dev); n != want || len(h) != 2 || d.SnapshotAt.IsZero() {
				t.Errorf("laptop-%d: %d reports (want %d), %d snapshots, snapshot at %v", i, n, want, len(h), d.SnapshotAt)
			}
		}
	})
}

// TestFoldAheadFailingBatch: a batch of a group whose reports were sent
// ahead fails (over its quota, after its fold; on PostgreSQL also inside
// the pipeline, on text the database refuses). The group runs again with
// a savepoint per batch: the failing batch alone is rolled back, and the
// others are stored once.
func TestFoldAheadFailingBatch(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		cases := []string{"quota"}
		if store.IsPostgres(dsn) {
			cases = append(cases, "refused")
		}
		for _, c := range cases {
			t.Run(c, func(t *testing.T) {
				e, devs := groupEnv(t, dsn, 3, noRules)
				at := t0.Add(time.Minute)
				bad := e.batch("a1", at, e.heartbeat("g-1", "laptop-1", at))
				if c == "quota" {
					bad.Quota = store.Quota{Reports: 1} // its first report used it
				} else {
					bad.Reports[0].Identity.OSName = "Debian\x00" // PostgreSQL's text refuses NUL
				}
				acked, errs, ahead := e.st.IngestPrejudged(e.ctx, noRules, nil,
					e.batch("a0", at, e.snapshot("g-0", "laptop-0", at, map[string]string{"os": "1"})), bad,
					e.batch("a2", at, e.snapshot("g-2", "laptop-2", at, map[string]string{"os": "1"})))
				if e.st.Dialect() == store.Postgres && !slices.Equal(ahead, []int{0, 1, 2}) {
					t.Fatalf("sent ahead %v, want all three", ahead)
				}
				if errs[0] != nil || errs[1] == nil || errs[2] != nil || c == "quota" && !errors.Is(errs[1], store.ErrOverQuota) {
					t.Fatalf("errors %v, want laptop-1's only", errs)
				}
				if !slices.Equal(acked[0], []string{"g-0"}) || acked[1] != nil || !slices.Equal(acked[2], []string{"g-2"}) {
					t.Fatalf("acked %v", acked)
				}
				for i, dev := range devs {
					want, snapshots := int64(2), 2
					if i == 1 {
						want, snapshots = 1, 1
					}
					if n, h := e.reportCount(dev), e.history(dev); n != want || len(h) != snapshots {
						t.Errorf("laptop-%d: %d reports (want %d), %d snapshots (want %d)", i, n, want, len(h), snapshots)
					}
				}
				if d := e.device(devs[1]); !d.LastSeen.Equal(t0) {
					t.Errorf("the failed batch updated its device: last seen %v, want %v", d.LastSeen, t0)
				}
			})
		}
	})
}

// TestFoldAheadRetriedReport: a report stored before comes again (its
// agent retried) in a group sent ahead with others: it is acknowledged
// and stored once, not judged again, and the others are stored.
func TestFoldAheadRetriedReport(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		rule := newPerDevice()
		e, devs := groupEnv(t, dsn, 3, rule)
		at := t0.Add(time.Minute)
		before := rule.count(devs[0])
		retried := e.batch("a0", at, e.snapshot("first-0", "laptop-0", t0, map[string]string{"os": "0"}))
		acked, errs, ahead := e.st.IngestPrejudged(e.ctx, rule, nil, retried,
			e.batch("a1", at, e.heartbeat("g-1", "laptop-1", at)), e.batch("a2", at, e.heartbeat("g-2", "laptop-2", at)))
		if e.st.Dialect() == store.Postgres && !slices.Equal(ahead, []int{0, 1, 2}) {
			t.Fatalf("sent ahead %v, want all three", ahead)
		}
		for i, want := range []string{"first-0", "g-1", "g-2"} {
			if errs[i] != nil || !slices.Equal(acked[i], []string{want}) {
				t.Fatalf("batch %d: acked %v, err %v", i, acked[i], errs[i])
			}
		}
		for i, want := range []int64{1, 2, 2} {
			if n := e.reportCount(devs[i]); n != want {
				t.Errorf("laptop-%d: %d reports, want %d", i, n, want)
			}
		}
		// Judged outside the writer, as every report is, and not again.
		if n := rule.count(devs[0]) - before; n != 1 {
			t.Errorf("the retried report was evaluated %d times, want once", n)
		}
		if d := e.device(devs[0]); !d.LastSeen.Equal(t0) {
			t.Errorf("the retried report updated its device: last seen %v, want %v", d.LastSeen, t0)
		}
	})
}
