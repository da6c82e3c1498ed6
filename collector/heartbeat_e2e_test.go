package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestHeartbeatsFollowCollectorIntervals runs `bonafide-agent run` against a
// collector that asks for a scan every 2s and a heartbeat every 300ms. The
// agent reads a fixture root whose hostname the test keeps changing, so
// every scan finds a change and queues a snapshot. What reaches the
// collector must be a snapshot per scan interval, never more often, with
// heartbeats at about the heartbeat interval in between: an agent that only
// reports when it scans sends none in between.
//
// Timing is checked on the agent's own timestamps (created_at) with wide
// margins, and by counts and order, so that a loaded machine does not fail
// it: a late wake-up only stretches gaps, and scans can never come early.
func TestHeartbeatsFollowCollectorIntervals(t *testing.T) {
	agent, collector := binaries(t)
	const scanEvery, beatEvery = 2 * time.Second, 300 * time.Millisecond
	dataDir := t.TempDir()
	s := startServerArgs(t, collector, dataDir, "--scan-interval", scanEvery.String(), "--heartbeat-interval", beatEvery.String())
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")

	root := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../agent/internal/scan/testdata/roots/office-dock/.", root).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture root: %v %s", err, out)
	}
	rename := func(i int) {
		for _, f := range []string{"etc/hostname", "proc/sys/kernel/hostname"} {
			p := filepath.Join(root, f)
			os.WriteFile(p+".tmp", fmt.Appendf(nil, "lat-beat-%d\n", i), 0o644)
			if err := os.Rename(p+".tmp", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	rename(0)
	// No intervals in the agent's config: the collector's apply (and no
	// random start delay).
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nstart_delay: 0s\n", s.grpc, secret, fp, t.TempDir()), 0o600)

	a := exec.Command(agent, "run", "--config", cfg, "--root", root)
	var alog bytes.Buffer
	a.Stdout, a.Stderr = &alog, &alog
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Process.Kill(); a.Wait() })
	for i, stop := 1, time.Now().Add(4*scanEvery+scanEvery/2); time.Now().Before(stop); i++ {
		rename(i)
		time.Sleep(100 * time.Millisecond)
	}
	a.Process.Signal(syscall.SIGTERM)
	a.Wait()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "bonafide.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT kind, created_at FROM reports ORDER BY sequence`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type report struct {
		kind string
		at   time.Time
	}
	var reps []report
	var kinds []byte // S for a snapshot, h for a heartbeat: for the failure messages
	for rows.Next() {
		var r report
		var us int64
		if err := rows.Scan(&r.kind, &us); err != nil {
			t.Fatal(err)
		}
		r.at = time.UnixMicro(us)
		reps = append(reps, r)
		kinds = append(kinds, map[string]byte{"snapshot": 'S', "heartbeat": 'h'}[r.kind])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("reports in order: %s", kinds)

	var snaps []int
	var beatGaps []time.Duration
	for i, r := range reps {
		switch r.kind {
		case "snapshot":
			snaps = append(snaps, i)
		case "heartbeat":
			if i == 0 {
				t.Fatalf("a heartbeat before any snapshot: %s", kinds)
			}
			// Queued only when nothing was queued for an interval.
			gap := r.at.Sub(reps[i-1].at)
			if gap < beatEvery*9/10 {
				t.Errorf("heartbeat %d only %v after the report before it (interval %v): %s", i, gap, beatEvery, kinds)
			}
			beatGaps = append(beatGaps, gap)
		}
	}
	if len(snaps) < 3 || snaps[0] != 0 {
		t.Fatalf("%d snapshots, want one per scan interval from the start: %s\n%s", len(snaps), kinds, alog.String())
	}
	for k := 1; k < len(snaps); k++ {
		prev, cur := reps[snaps[k-1]], reps[snaps[k]]
		// The scan keeps its own schedule: never sooner than its interval
		// (less the time a scan takes, which the snapshot's timestamp includes;
		// half of it is still far from the heartbeat interval).
		if gap := cur.at.Sub(prev.at); gap < scanEvery/2 {
			t.Errorf("snapshots %d and %d only %v apart, scan interval %v: %s", snaps[k-1], snaps[k], gap, scanEvery, kinds)
		}
		// About scanEvery/beatEvery-1 heartbeats in between; two is
		// enough to tell the heartbeat schedule from the scan's.
		if n := snaps[k] - snaps[k-1] - 1; n < 2 {
			t.Errorf("%d heartbeats between snapshots %d and %d, want several at %v: %s", n, snaps[k-1], snaps[k], beatEvery, kinds)
		}
	}
	if len(beatGaps) == 0 {
		t.Fatalf("no heartbeats: %s", kinds)
	}
	slices.Sort(beatGaps)
	if med := beatGaps[len(beatGaps)/2]; med > 3*beatEvery {
		t.Errorf("median gap before a heartbeat %v, heartbeat interval %v: %s", med, beatEvery, kinds)
	}
}
