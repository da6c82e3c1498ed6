package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeCollector records what a simulated agent sends.
type fakeCollector struct {
	heartbeat time.Duration // 0: check-in fails
	mu        sync.Mutex
	reports   []*agentv1.Report
	checkIns  int
}

func (f *fakeCollector) Report(_ context.Context, rs []*agentv1.Report) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, r := range rs {
		f.reports = append(f.reports, proto.CloneOf(r))
		ids = append(ids, r.GetReportId())
	}
	return ids, nil
}

func (f *fakeCollector) CheckIn(context.Context, *agentv1.CheckInRequest) (*agentv1.CheckInResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkIns++
	if f.heartbeat == 0 {
		return nil, errors.New("unavailable")
	}
	return &agentv1.CheckInResponse{Config: &agentv1.AgentConfig{Version: "v1", HeartbeatInterval: durationpb.New(f.heartbeat)}}, nil
}

// paceFor runs one device's paced loop against f for d.
func paceFor(t *testing.T, f *fakeCollector, dev *Device, interval, d time.Duration) (*simAgent, []*agentv1.Report) {
	t.Helper()
	cat, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-30 * time.Hour)
	res := &Result{Device: dev}
	a := &simAgent{d: dev, c: f, dir: t.TempDir(), res: res, started: time.Now(), scan: dev.Snapshot(cat, "agent-1", agentVersion, since)}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a.checkIn(ctx)
	a.pace(ctx, interval)
	if res.Err != nil || res.Sent != res.Acked || res.Sent != len(f.reports) {
		t.Errorf("sent %d, acked %d, received %d, err %v", res.Sent, res.Acked, len(f.reports), res.Err)
	}
	if seq, err := readSequence(a.dir); err != nil || seq != a.seq || seq != uint64(len(f.reports)) {
		t.Errorf("sequence file %d (%v), agent %d, %d reports", seq, err, a.seq, len(f.reports))
	}
	return a, f.reports
}

// TestPaceHeartbeatsBetweenSnapshots: with the collector's heartbeat
// interval shorter than --interval, a device sends a snapshot, heartbeats
// at the collector's interval, and a snapshot again every interval; every
// snapshot has the same content (the digest the heartbeats carry), and the
// activity is the device's own story.
func TestPaceHeartbeatsBetweenSnapshots(t *testing.T) {
	w := NewWorld(1, 0)
	dev := w.Farm()[0]
	f := &fakeCollector{heartbeat: 100 * time.Millisecond}
	a, reports := paceFor(t, f, dev, 400*time.Millisecond, 2*time.Second)
	if len(reports) < 6 {
		t.Fatalf("%d reports in 2s at a 100ms heartbeat", len(reports))
	}
	if reports[0].GetSnapshot() == nil {
		t.Fatalf("first report is not a snapshot: %v", reports[0])
	}
	want := scan.Digest(a.scan)
	var snapshots, heartbeats int
	for i, r := range reports {
		if i > 0 && r.GetSequence() != reports[i-1].GetSequence()+1 {
			t.Errorf("report %d: sequence %d after %d", i, r.GetSequence(), reports[i-1].GetSequence())
		}
		switch {
		case r.GetSnapshot() != nil:
			snapshots++
			if got := scan.Digest(r.GetSnapshot()); got != want {
				t.Errorf("report %d: the snapshot's content changed", i)
			}
			if !proto.Equal(r.GetSnapshot().GetRemoteAccess(), a.scan.GetRemoteAccess()) {
				t.Errorf("report %d: remote access differs from the scan", i)
			}
		case r.GetHeartbeat() != nil:
			heartbeats++
			hb := r.GetHeartbeat()
			if hb.GetSnapshotDigest() != want || !proto.Equal(hb.GetIdentity(), a.scan.GetIdentity()) {
				t.Errorf("report %d: heartbeat digest %s identity %v", i, hb.GetSnapshotDigest(), hb.GetIdentity())
			}
			if exp := dev.Activity(r.GetCreatedAt().AsTime(), 3); len(hb.GetActivity().GetHours()) != len(exp.GetHours()) {
				t.Errorf("report %d: activity %v, want the farm's %v", i, hb.GetActivity(), exp)
			}
		}
	}
	// Roughly one snapshot in four reports; no timing is asserted beyond
	// heartbeats coming between snapshots.
	if snapshots < 2 || heartbeats < 2*snapshots-2 {
		t.Errorf("%d snapshots and %d heartbeats", snapshots, heartbeats)
	}
	if f.checkIns != 1 {
		t.Errorf("%d check-ins, want 1 (then hourly)", f.checkIns)
	}
}

// TestPaceWithoutConfig: when the collector's configuration cannot be
// read, the device sends a snapshot every interval and keeps asking.
func TestPaceWithoutConfig(t *testing.T) {
	f := &fakeCollector{}
	_, reports := paceFor(t, f, NewWorld(1, 0).Devices[0], 150*time.Millisecond, time.Second)
	if len(reports) < 2 {
		t.Fatalf("%d reports", len(reports))
	}
	for i, r := range reports {
		if r.GetSnapshot() == nil {
			t.Errorf("report %d is not a snapshot", i)
		}
	}
	if f.checkIns < len(reports) {
		t.Errorf("%d check-ins for %d reports", f.checkIns, len(reports))
	}
}

func TestRunFlags(t *testing.T) {
	base := []string{"run", "--collector", "127.0.0.1:1", "--secret", "s", "--ca-fingerprint", "00", "--state", t.TempDir()}
	for _, extra := range [][]string{{"--duration", "1m"}, {"--interval", "-1s"}, {"--interval", "1s", "--duration", "-1s"}} {
		if err := cli(context.Background(), slices.Concat(base, extra), io.Discard, io.Discard); err == nil {
			t.Errorf("run %v accepted", extra)
		}
	}
}
