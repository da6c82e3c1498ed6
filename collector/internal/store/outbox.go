package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Outbox events: what happened to an alert, or an audit log entry.
const (
	EventNew      = "new"      // an alert was raised
	EventReopened = "reopened" // a resolved alert's rule fired again
	EventStatus   = "status"   // an alert's status changed (triage, auto-resolve)
	EventAudit    = "audit"    // an entry of the audit log
)

// OutboxCursor is a place in the outbox: rows are read in (XID, ID) order.
type OutboxCursor struct {
	XID int64 `json:"xid"`
	ID  int64 `json:"id"`
}

// OutboxEvent is one row of the outbox.
type OutboxEvent struct {
	Cursor OutboxCursor
	// UID names the event uniquely (a random UUID); outputs send it as
	// the delivery id, the same on every retry.
	UID      string
	At       time.Time
	Event    string
	RuleID   string // alert events
	Severity string // alert events
	// Body is the alert as the event left it (alert events) or the audit
	// entry (EventAudit), as JSON.
	Body json.RawMessage
}

// Alert decodes an alert event's body.
func (e OutboxEvent) Alert() (Alert, error) {
	var a Alert
	err := json.Unmarshal(e.Body, &a)
	return a, err
}

// AuditEntry decodes an audit event's body.
func (e OutboxEvent) AuditEntry() (AuditEntry, error) {
	var a AuditEntry
	err := json.Unmarshal(e.Body, &a)
	return a, err
}

// alertEvent is the outbox event an alert's audit entry stands for, if
// any: its opening, re-opening or a change of its status.
func alertEvent(e AuditEntry) string {
	switch e.Action {
	case ActionOpened:
		return EventNew
	case "reopen":
		return EventReopened
	case "resolve":
		return EventStatus
	case "update":
		if _, ok := e.Detail["status"]; ok {
			return EventStatus
		}
	}
	return ""
}

// outbox writes audit entry e to the outbox in tx, the transaction that
// made the change: the entry itself and, when it opens, re-opens or
// changes the status of an alert, the alert as it now is.
func (s *Store) outbox(ctx context.Context, tx auditTx, e AuditEntry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := s.outboxInsert(ctx, tx, e.At, EventAudit, "", "", body); err != nil {
		return err
	}
	ev := ""
	if e.TargetType == "alert" {
		ev = alertEvent(e)
	}
	if ev == "" {
		return nil
	}
	id, err := strconv.ParseInt(e.TargetID, 10, 64)
	if err != nil {
		return fmt.Errorf("outbox: alert id %q: %w", e.TargetID, err)
	}
	a, err := scanAlert(tx.QueryRowContext(ctx, s.q(`SELECT `+alertColumns+` FROM alerts a LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?`), id))
	if err != nil {
		return fmt.Errorf("outbox: alert %d: %w", id, err)
	}
	if body, err = json.Marshal(a); err != nil {
		return err
	}
	return s.outboxInsert(ctx, tx, e.At, ev, a.RuleID, a.Severity, body)
}

func (s *Store) outboxInsert(ctx context.Context, tx auditTx, at time.Time, event, ruleID, severity string, body []byte) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox (uid, at, event, rule_id, severity, body) VALUES (?, ?, ?, ?, ?, ?)`),
		newUUID(), micros(at), event, ruleID, severity, string(body))
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// visible limits an outbox read, on PostgreSQL, to the rows of
// transactions older than every transaction still running: a transaction
// that took its id earlier but commits later must not be passed over.
func (s *Store) visible() string {
	if s.dialect == Postgres {
		return ` AND xid < (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint`
	}
	return ""
}

// OutboxAfter reads up to limit outbox events after cursor c, in order.
func (s *Store) OutboxAfter(ctx context.Context, c OutboxCursor, limit int) ([]OutboxEvent, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT xid, id, uid, at, event, rule_id, severity, body FROM outbox
		WHERE (xid, id) > (?, ?)`+s.visible()+` ORDER BY xid, id LIMIT ?`), c.XID, c.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return scanRows(rows, func(sc scanner) (OutboxEvent, error) {
		var e OutboxEvent
		var at int64
		var body string
		if err := sc.Scan(&e.Cursor.XID, &e.Cursor.ID, &e.UID, &at, &e.Event, &e.RuleID, &e.Severity, &body); err != nil {
			return e, fmt.Errorf("outbox: %w", err)
		}
		e.At, e.Body = fromMicros(at), json.RawMessage(body)
		return e, nil
	})
}

// OutputState is an output's place in the outbox and its delivery state.
type OutputState struct {
	Name   string       `json:"name"`
	Cursor OutboxCursor `json:"-"`
	// Delivered counts the events the output received.
	Delivered   int64     `json:"delivered"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures counts the failed attempts since the last success.
	Failures int64 `json:"failures"`
	// Backlog counts the outbox events after the output's place.
	Backlog int64 `json:"backlog"`
}

// StartOutput reads output name's state; an output seen for the first
// time starts at the end of the outbox (it receives the events that
// happen from now on).
func (s *Store) StartOutput(ctx context.Context, name string) (OutputState, error) {
	var c OutboxCursor
	err := s.r.QueryRowContext(ctx, s.q(`SELECT xid, id FROM outbox WHERE 1 = 1`+s.visible()+` ORDER BY xid DESC, id DESC LIMIT 1`)).Scan(&c.XID, &c.ID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return OutputState{}, fmt.Errorf("output %s: %w", name, err)
	}
	if _, err := s.exec(ctx, `INSERT INTO output_state (name, cursor_xid, cursor_id) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, c.XID, c.ID); err != nil {
		return OutputState{}, fmt.Errorf("output %s: %w", name, err)
	}
	st, err := s.OutputStates(ctx, []string{name})
	if err != nil {
		return OutputState{}, err
	}
	return st[0], nil
}

// OutputAdvanced moves output name past the event at c: delivered to it
// at at, or (delivered false) not meant for it.
func (s *Store) OutputAdvanced(ctx context.Context, name string, c OutboxCursor, delivered bool, at time.Time) error {
	q := `UPDATE output_state SET cursor_xid = ?, cursor_id = ? WHERE name = ?`
	args := []any{c.XID, c.ID, name}
	if delivered {
		q = `UPDATE output_state SET cursor_xid = ?, cursor_id = ?, delivered = delivered + 1, last_success = ?, failures = 0 WHERE name = ?`
		args = []any{c.XID, c.ID, micros(at), name}
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("output %s: %w", name, err)
	}
	return nil
}

// OutputFailed records a failed delivery attempt to output name.
func (s *Store) OutputFailed(ctx context.Context, name, msg string, at time.Time) error {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	if _, err := s.exec(ctx, `UPDATE output_state SET last_error = ?, last_error_at = ?, failures = failures + 1 WHERE name = ?`,
		msg, micros(at), name); err != nil {
		return fmt.Errorf("output %s: %w", name, err)
	}
	return nil
}

// OutputStates reads the state of the named outputs, in that order; an
// output that never ran has only its name.
func (s *Store) OutputStates(ctx context.Context, names []string) ([]OutputState, error) {
	out := make([]OutputState, 0, len(names))
	for _, n := range names {
		st := OutputState{Name: n}
		var ok, le int64
		err := s.r.QueryRowContext(ctx, s.q(`SELECT cursor_xid, cursor_id, delivered, last_success, last_error, last_error_at, failures
			FROM output_state WHERE name = ?`), n).Scan(&st.Cursor.XID, &st.Cursor.ID, &st.Delivered, &ok, &st.LastError, &le, &st.Failures)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("output %s: %w", n, err)
		default:
			st.LastSuccess, st.LastErrorAt = fromMicros(ok), fromMicros(le)
			if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM outbox WHERE (xid, id) > (?, ?)`),
				st.Cursor.XID, st.Cursor.ID).Scan(&st.Backlog); err != nil {
				return nil, fmt.Errorf("output %s: %w", n, err)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// PruneOutbox deletes the outbox events from before before that every
// output in names has passed; with no names, all from before before.
func (s *Store) PruneOutbox(ctx context.Context, names []string, before time.Time) (int64, error) {
	q, args := `DELETE FROM outbox WHERE at < ?`, []any{micros(before)}
	if len(names) > 0 {
		sts, err := s.OutputStates(ctx, names)
		if err != nil {
			return 0, err
		}
		low := sts[0].Cursor
		for _, st := range sts[1:] {
			if st.Cursor.XID < low.XID || st.Cursor.XID == low.XID && st.Cursor.ID < low.ID {
				low = st.Cursor
			}
		}
		q, args = q+` AND (xid, id) <= (?, ?)`, append(args, low.XID, low.ID)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return res.RowsAffected()
}

// AuditFilter selects audit log entries: those after the entry with id
// After, at or after Since and before Until (zero: unbounded).
type AuditFilter struct {
	After        int64
	Since, Until time.Time
	Limit        int
}

// AuditLog lists the audit log oldest first, a page (PageLimit) at a
// time: the next page is after the last entry's id.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q, args := `SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log WHERE id > ?`, []any{f.After}
	if !f.Since.IsZero() {
		q, args = q+` AND at >= ?`, append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		q, args = q+` AND at < ?`, append(args, micros(f.Until))
	}
	rows, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY id LIMIT ?`), append(args, PageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return scanRows(rows, scanAuditEntry)
}
