package store_test

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestRecomputeInSlices: a full recompute in slices of five lets reports
// through between its slices (at every slice boundary, a report sent
// after the slice committed is acknowledged before the next one starts),
// and ends where a one-shot recompute of the same fleet ends: the same
// clusters, the same scores, and nothing left for another recompute.
func TestRecomputeInSlices(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		now := time.Now().Truncate(time.Second)
		// Two identical fleets of 160 seeded devices (households of two,
		// two farms of eight with alerts) and one enrolled agent.
		oneShot, sliced := newEnv(t, freshDSN(t, dsn)), newEnv(t, freshDSN(t, dsn))
		for _, e := range []*env{oneShot, sliced} {
			if err := e.st.SeedFleet(e.ctx, 160, now); err != nil {
				t.Fatal(err)
			}
			e.enroll("agent-x", "hw:x", "host-x")
		}
		want, err := oneShot.st.RecomputeFleetInSlices(oneShot.ctx, now, 1<<30, nil)
		if err != nil {
			t.Fatal(err)
		}

		// The agent reports all along; each slice waits for two of its
		// acknowledgements, the second for a report sent after the slice
		// was committed.
		e := sliced
		acks := make(chan error)
		stop := make(chan struct{})
		reporter := make(chan int)
		go func() {
			n := 0
			defer func() { reporter <- n }()
			for seq := 1; ; seq++ {
				id := fmt.Sprintf("20000000-0000-4000-8000-%012d", seq)
				_, err := e.st.Ingest(e.ctx, e.batch("agent-x", now, e.heartbeat(id, "host-x", now)), noRules)
				if err == nil {
					n++
				}
				select {
				case acks <- err:
				case <-stop:
					return
				}
			}
		}()
		slicesDone := 0
		got, err := e.st.RecomputeFleetInSlices(e.ctx, now, 5, func() {
			slicesDone++
			for range 2 {
				if err := <-acks; err != nil {
					t.Errorf("report during the recompute: %v", err)
				}
			}
		})
		close(stop)
		reported := <-reporter
		if err != nil {
			t.Fatal(err)
		}
		if slicesDone < 10 {
			t.Errorf("%d slices, want the work cut in many", slicesDone)
		}
		if n := e.reportCount(e.agent("agent-x").DeviceID); n != int64(reported) || reported < 2*slicesDone {
			t.Errorf("%d reports stored, %d acknowledged over %d slices", n, reported, slicesDone)
		}

		if got.Clusters != want.Clusters || got.Moved != want.Moved || got.Scores != want.Scores || got.Clusters != 18 {
			t.Errorf("in slices: %+v; in one: %+v (want 18 clusters)", got, want)
		}
		if g, w := fleetState(t, sliced), fleetState(t, oneShot); g != w {
			t.Errorf("in slices the fleet is\n%s\nin one\n%s", g, w)
		}
		// Nothing is left for another recompute.
		again, err := e.st.RecomputeFleet(e.ctx, now)
		if err != nil || again.Moved != 0 || again.Scores != 0 || again.Clusters != 18 {
			t.Errorf("recompute after the sliced one = %+v, %v", again, err)
		}
	})
}

// fleetState describes a fleet's clusters (by members' host names, not
// by their random ids) and every device's risk score.
func fleetState(t *testing.T, e *env) string {
	t.Helper()
	members := map[string][]string{}
	var lines []string
	after := ""
	for {
		page, err := e.st.ListDevices(e.ctx, store.DeviceFilter{AfterID: after, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.ClusterID != "" {
				members[d.ClusterID] = append(members[d.ClusterID], d.Hostname)
			}
			lines = append(lines, fmt.Sprintf("%s score %d", d.Hostname, d.Risk.Score))
		}
		if len(page) < 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, id := range slices.Sorted(maps.Keys(members)) {
		c, err := e.st.GetCluster(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("cluster %s: %s score %d suspected %v", strings.Join(members[id], " "), c.Status, c.Score, c.Suspected))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestJobPreparesItsStatements: a fleet job's statements are prepared by
// the job, after the transaction that first ran them commits, not left
// for the ingest writer. That writer would prepare each one on the single
// SQLite connection behind one of the job's slices, so a report arriving
// at a phase of the recompute waited one slice per new statement (118–138
// ms on a quiet machine, `BenchmarkRecomputeBesideIngest`).
func TestJobPreparesItsStatements(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	e := newEnv(t, freshDSN(t, ""))
	if err := e.st.SeedFleet(e.ctx, 160, now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecomputeFleet(e.ctx, now); err != nil {
		t.Fatal(err)
	}
	if n := e.st.PendingStmtsForTest(); n != 0 {
		t.Errorf("%d statements of the recompute wait for another writer to prepare them", n)
	}
}
