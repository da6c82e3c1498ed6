package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// clearingRule finds nothing and names one auto-resolving device rule,
// "cleared_rule", so every evaluation clears it; it counts its
// evaluations (pausing).
type clearingRule struct {
	pausing
}

func (*clearingRule) AutoResolve(scope detect.Scope) []string {
	if scope == detect.ScopeDevice {
		return []string{"cleared_rule"}
	}
	return nil
}

func (r *clearingRule) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	r.evaluating()
	return nil, nil
}

// TestGuardedUpdate: on SQLite, the heartbeats of a device whose row the
// writer cached are stored by the device UPDATE that applies only while
// the row still holds what prejudge read, without RETURNING
// (guardedUpdate), one each; the row the writer caches still matches the
// database after each, with its open_alerts known. A heartbeat from
// another address (with no egress known, so that the device's keys stay)
// is stored so too, and its address enters the egress history, as the
// device's egress_since the UPDATE set says.
func TestGuardedUpdate(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "bonafide.db"))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &clearingRule{}
	at := t0
	var moved time.Time
	for i := range 6 {
		at = at.Add(time.Minute)
		before := e.st.GuardedUpdatesForTest()
		b := e.batch("agent-1", at, e.heartbeat(fmt.Sprintf("50000000-0000-4000-8000-%012d", i+1), "host-1", at))
		if i >= 3 {
			b.IP = "198.51.100.4"
			if i == 3 {
				moved = at
			}
		}
		if _, err := e.st.Ingest(e.ctx, b, rule); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue // the device's first report is judged on its row as read
		}
		if n := e.st.GuardedUpdatesForTest() - before; n != 1 {
			t.Fatalf("heartbeat %d: %d guarded device updates, want 1", i+1, n)
		}
		if open, ok := e.st.CachedOpenAlertsForTest(dev); !ok || open != 0 {
			t.Fatalf("heartbeat %d: cached open_alerts %d (cached %v), want 0", i+1, open, ok)
		}
		if ok, err := e.st.CachedRowMatchesForTest(e.ctx, dev); err != nil || !ok {
			t.Fatalf("heartbeat %d: cached row matches: %v, %v", i+1, ok, err)
		}
	}
	h, err := e.st.EgressHistory(e.ctx, dev, time.Time{}, 10)
	if err != nil || len(h) != 2 || h[0].IP != "198.51.100.4" || !h[0].At.Equal(moved) || h[1].IP != "203.0.113.7" {
		t.Fatalf("egress history %+v (%v), want 198.51.100.4 at %s after 203.0.113.7", h, err, moved)
	}
	if d := e.device(dev); !d.LastSeen.Equal(at) {
		t.Fatalf("last_seen %s, want %s", d.LastSeen, at)
	}
	if a := e.agent("agent-1"); !a.LastSeen.Equal(at) {
		t.Fatalf("agent last_seen %s, want %s", a.LastSeen, at)
	}
	if n := e.reportCount(dev); n != 6 {
		t.Fatalf("%d reports stored, want 6", n)
	}
	if n := rule.count(); n != 6 {
		t.Fatalf("rules ran %d times for 6 heartbeats, want once each", n)
	}
}

// TestGuardedUpdateMiss: an alert opened on the device after prejudge
// read its row, by a write that leaves the device's version alone (its
// open_alerts is kept by a trigger), makes the guarded UPDATE miss: the
// writer then learns the device's open alerts from the UPDATE that
// returns them, and resolves the alert of the rule the verdict cleared.
// Trusting the open_alerts read, it would have found nothing to resolve.
func TestGuardedUpdateMiss(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "bonafide.db"))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &clearingRule{}
	e.ingest("agent-1", t0, rule, e.heartbeat("50000000-0000-4000-8000-000000000001", "host-1", t0))
	// A write elsewhere drops the cached rows: the next report is judged
	// on its row as read, under a guard read with it.
	if _, err := e.st.Exec(e.ctx, `UPDATE devices SET hostname = hostname WHERE id = ?`, dev); err != nil {
		t.Fatal(err)
	}
	paused, resume := rule.pause()
	done := make(chan error, 1)
	at := t0.Add(time.Minute)
	go func() {
		_, err := e.st.Ingest(e.ctx, e.batch("agent-1", at, e.heartbeat("50000000-0000-4000-8000-000000000002", "host-1", at)), rule)
		done <- err
	}()
	<-paused
	before := e.st.GuardedUpdatesForTest()
	if _, err := e.st.Exec(e.ctx, `INSERT INTO alerts (rule_id, device_id, title, severity, category, first_seen, last_seen, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, "cleared_rule", dev, "Cleared", "low", "test", store.Micros(t0), store.Micros(t0), store.Micros(t0)); err != nil {
		t.Fatal(err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.st.GuardedUpdatesForTest() - before; n != 0 {
		t.Fatalf("%d guarded device updates applied, want none (the device's open_alerts changed)", n)
	}
	a := e.alerts(store.AlertFilter{DeviceID: dev})
	if len(a) != 1 || a[0].Status != store.StatusResolved {
		t.Fatalf("alerts %+v, want cleared_rule's resolved", a)
	}
	stored, counted, err := e.st.OpenAlertsForTest(e.ctx, dev)
	if err != nil || stored != 0 || counted != 0 {
		t.Fatalf("open_alerts %d, counted %d (%v), want 0", stored, counted, err)
	}
}
