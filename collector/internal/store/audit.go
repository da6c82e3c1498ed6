package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// AuditEntry is one change recorded in the audit log.
type AuditEntry struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	Actor      string         `json:"actor"`
	Action     string         `json:"action"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// auditTx is the transaction audit writes in: a *sql.Tx, or the writer's
// wtx, which runs the statements prepared once (see stmtCache) where a
// *sql.Tx has SQLite parse each again: an alert raised, re-opened or
// resolved by a report is four statements of audit and outbox in the
// single writer (the entry, its outbox row, the alert read back and its
// outbox row).
type auditTx interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// audit records a change in the audit log and in the outbox (see outbox),
// in tx, the transaction that makes it.
func (s *Store) audit(ctx context.Context, tx auditTx, actor, action, targetType, targetID string, detail map[string]any) error {
	d, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	if detail == nil {
		d = []byte("{}")
	}
	e := AuditEntry{At: time.Now().UTC().Truncate(time.Microsecond), Actor: actor, Action: action, TargetType: targetType, TargetID: targetID, Detail: detail}
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, target_type, target_id, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		micros(e.At), actor, action, targetType, targetID, string(d)).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return s.outbox(ctx, tx, e)
}

// Audit lists the audit log of one target, oldest first.
func (s *Store) Audit(ctx context.Context, targetType, targetID string) ([]AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log
		WHERE target_type = ? AND target_id = ? ORDER BY id`), targetType, targetID)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return scanRows(rows, scanAuditEntry)
}

// scanAuditEntry reads an audit entry (id, at, actor, action, target_type,
// target_id, detail).
func scanAuditEntry(sc scanner) (AuditEntry, error) {
	var e AuditEntry
	var at int64
	var d string
	err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &d)
	e.At = fromMicros(at)
	json.Unmarshal([]byte(d), &e.Detail)
	return e, err
}

// ActionOpened is the action of an alert's first timeline entry.
const ActionOpened = "opened"

// AlertTimeline is the audit log of alert a, oldest first, starting with
// its "opened" entry. Alerts raised before the collector recorded that
// entry get it from their first_seen.
func (s *Store) AlertTimeline(ctx context.Context, a Alert) ([]AuditEntry, error) {
	id := strconv.FormatInt(a.ID, 10)
	tl, err := s.Audit(ctx, "alert", id)
	if err != nil {
		return nil, err
	}
	if len(tl) == 0 || tl[0].Action != ActionOpened {
		tl = append([]AuditEntry{{At: a.FirstSeen, Actor: "system", Action: ActionOpened, TargetType: "alert", TargetID: id}}, tl...)
	}
	return tl, nil
}
