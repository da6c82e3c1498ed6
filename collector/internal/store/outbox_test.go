package store_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestOutbox: every alert event and audit entry lands in the outbox with
// the change that made it, in order; outputs start at the end, advance,
// count failures and their backlog; delivered events are pruned.
func TestOutbox(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("a1", "hw:1", "laptop-1")
		waitOutbox(t, e.st, store.OutboxCursor{}, 1) // the enrollment's audit entry
		st, err := e.st.StartOutput(e.ctx, "hook")
		if err != nil {
			t.Fatal(err)
		}
		if st.Backlog != 0 || st.Delivered != 0 {
			t.Fatalf("a new output starts at the end: %+v", st)
		}

		now := time.Now()
		rules := deviceFindings(finding("r1", "high"))
		e.ingest("a1", now, rules, e.heartbeat("rep-1", "laptop-1", now))
		e.ingest("a1", now.Add(time.Minute), rules, e.heartbeat("rep-2", "laptop-1", now.Add(time.Minute))) // same alert: no event
		a := e.alerts(store.AlertFilter{DeviceID: dev})[0]
		ack, resolved, who := store.StatusAcknowledged, store.StatusResolved, "ana"
		for _, c := range []store.AlertChange{{Status: &ack}, {Assignee: &who}, {Status: &resolved}} {
			if _, err := e.st.UpdateAlert(e.ctx, a.ID, c, "user:ana"); err != nil {
				t.Fatal(err)
			}
		}
		e.ingest("a1", now.Add(2*time.Minute), rules, e.heartbeat("rep-3", "laptop-1", now.Add(2*time.Minute))) // re-opens

		evs := waitOutbox(t, e.st, st.Cursor, 4+5) // four alert events, five audit entries
		var kinds, statuses []string
		uids := map[string]bool{}
		for i, ev := range evs {
			if i > 0 && !cursorLess(evs[i-1].Cursor, ev.Cursor) {
				t.Fatalf("events out of order: %+v then %+v", evs[i-1].Cursor, ev.Cursor)
			}
			uids[ev.UID] = true
			if ev.Event == store.EventAudit {
				au, err := ev.AuditEntry()
				if err != nil || au.ID == 0 || au.Action == "" {
					t.Fatalf("audit event %s: %+v %v", ev.Body, au, err)
				}
				continue
			}
			kinds = append(kinds, ev.Event)
			al, err := ev.Alert()
			if err != nil || al.ID != a.ID || al.Hostname != "laptop-1" || ev.RuleID != "r1" || ev.Severity != "high" {
				t.Fatalf("alert event %s: %+v %v", ev.Body, al, err)
			}
			statuses = append(statuses, al.Status)
		}
		if want := []string{store.EventNew, store.EventStatus, store.EventStatus, store.EventReopened}; !slices.Equal(kinds, want) {
			t.Fatalf("alert events %v, want %v", kinds, want)
		}
		// Each carries the alert as that event left it.
		if want := []string{"open", "acknowledged", "resolved", "open"}; !slices.Equal(statuses, want) {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
		if len(uids) != len(evs) {
			t.Fatalf("delivery ids not unique: %d of %d", len(uids), len(evs))
		}

		// Delivery state: failures, then progress.
		if err := e.st.OutputFailed(e.ctx, "hook", "connection refused", now); err != nil {
			t.Fatal(err)
		}
		if err := e.st.OutputAdvanced(e.ctx, "hook", evs[0].Cursor, true, now); err != nil {
			t.Fatal(err)
		}
		if err := e.st.OutputFailed(e.ctx, "hook", "503", now); err != nil {
			t.Fatal(err)
		}
		if err := e.st.OutputAdvanced(e.ctx, "hook", evs[1].Cursor, false, now); err != nil {
			t.Fatal(err)
		}
		sts, err := e.st.OutputStates(e.ctx, []string{"hook", "never"})
		if err != nil {
			t.Fatal(err)
		}
		if s := sts[0]; s.Delivered != 1 || s.Failures != 1 || s.LastError != "503" || s.Backlog != int64(len(evs)-2) || s.LastSuccess.IsZero() {
			t.Fatalf("state %+v", s)
		}
		if s := sts[1]; s.Name != "never" || s.Backlog != 0 {
			t.Fatalf("state of an output that never ran: %+v", s)
		}
		// Restarting keeps the place.
		if again, _ := e.st.StartOutput(e.ctx, "hook"); again.Cursor != evs[1].Cursor {
			t.Fatalf("restart moved the output: %+v", again)
		}

		// Pruning keeps what an output has not passed.
		if _, err := e.st.PruneOutbox(e.ctx, []string{"hook"}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if left, _ := e.st.OutboxAfter(e.ctx, store.OutboxCursor{}, 100); len(left) != len(evs)-2 || left[0].UID != evs[2].UID {
			t.Fatalf("after pruning %d left", len(left))
		}

		// The audit log, a page at a time and by time.
		all, err := e.st.AuditLog(e.ctx, store.AuditFilter{})
		if err != nil || len(all) != 6 {
			t.Fatalf("audit log %d %v", len(all), err)
		}
		page, _ := e.st.AuditLog(e.ctx, store.AuditFilter{Limit: 2})
		next, _ := e.st.AuditLog(e.ctx, store.AuditFilter{After: page[1].ID, Limit: 2})
		if len(page) != 2 || len(next) != 2 || next[0].ID != all[2].ID {
			t.Fatalf("paging %v %v", page, next)
		}
		if none, _ := e.st.AuditLog(e.ctx, store.AuditFilter{Since: time.Now().Add(time.Hour)}); len(none) != 0 {
			t.Fatalf("since: %v", none)
		}
		if none, _ := e.st.AuditLog(e.ctx, store.AuditFilter{Until: all[0].At}); len(none) != 0 {
			t.Fatalf("until: %v", none)
		}
	})
}

func cursorLess(a, b store.OutboxCursor) bool {
	return a.XID < b.XID || a.XID == b.XID && a.ID < b.ID
}

// TestOutboxInFlight: on PostgreSQL, a transaction that wrote to the
// outbox first but commits last is not passed over by a reader.
func TestOutboxInFlight(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	st := storetest.Open(t, dsn)
	ctx := t.Context()
	start, err := st.StartOutput(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert := `INSERT INTO outbox (uid, at, event, body) VALUES ($1, 0, 'audit', '{}')`
	slow, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	if _, err := slow.Exec(insert, "slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(insert, "fast"); err != nil {
		t.Fatal(err)
	}
	if evs, _ := st.OutboxAfter(ctx, start.Cursor, 10); len(evs) != 0 {
		t.Fatalf("read past a transaction still running: %+v", evs)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	if evs := waitOutbox(t, st, start.Cursor, 2); evs[0].UID != "slow" || evs[1].UID != "fast" {
		t.Fatalf("after the commit: %+v", evs)
	}
}

// waitOutbox waits until n events after c can be read. On PostgreSQL a
// write transaction anywhere on the server (another test creating its
// database) holds back what a reader may see until it ends.
func waitOutbox(t *testing.T, st *store.Store, c store.OutboxCursor, n int) []store.OutboxEvent {
	t.Helper()
	var evs []store.OutboxEvent
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if evs, err = st.OutboxAfter(t.Context(), c, 1000); err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n {
			break
		}
	}
	if len(evs) != n {
		t.Fatalf("%d outbox events after %+v, want %d", len(evs), c, n)
	}
	return evs
}

// clearing fires r1 on devices while fire is set; r1 auto-resolves.
type clearing struct{ fire bool }

func (c *clearing) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice && c.fire {
		return []detect.Finding{finding("r1", "medium")}, nil
	}
	return nil, nil
}

func (c *clearing) AutoResolve(scope detect.Scope) []string {
	if scope == detect.ScopeDevice {
		return []string{"r1"}
	}
	return nil
}

// TestOutboxAutoResolve: an alert the system resolves because its
// condition cleared is a status event in the same transaction.
func TestOutboxAutoResolve(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		e.enroll("a1", "hw:1", "laptop-1")
		waitOutbox(t, e.st, store.OutboxCursor{}, 1)
		st, err := e.st.StartOutput(e.ctx, "o")
		if err != nil {
			t.Fatal(err)
		}
		ev, now := &clearing{fire: true}, time.Now()
		e.ingest("a1", now, ev, e.heartbeat("rep-1", "laptop-1", now))
		ev.fire = false
		e.ingest("a1", now.Add(time.Minute), ev, e.heartbeat("rep-2", "laptop-1", now.Add(time.Minute)))
		var got []string
		for _, x := range waitOutbox(t, e.st, st.Cursor, 4) { // opened and resolved, each with its audit entry
			if x.Event == store.EventAudit {
				continue
			}
			a, err := x.Alert()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, x.Event+":"+a.Status)
		}
		if strings.Join(got, ",") != "new:open,status:resolved" {
			t.Fatalf("alert events %v", got)
		}
	})
}
