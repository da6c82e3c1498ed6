package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// Quota bounds what one agent may store per UTC day; zero fields are
// unbounded.
type Quota struct {
	Reports int64 // reports stored
	Bytes   int64 // their encoded size (snapshots) plus reportOverhead each
}

// reportOverhead is what a report costs besides its snapshot: its rows.
const reportOverhead = 256

// ErrOverQuota: the batch would take its agent past its daily quota;
// nothing of it is stored.
var ErrOverQuota = errors.New("agent over its daily report quota")

// quotaDay is the UTC day of t, in the micros of its midnight.
func quotaDay(t time.Time) int64 {
	return micros(t.UTC().Truncate(24 * time.Hour))
}

// Charging a report to its agent's day: the usage row, followed by its
// VALUES or SELECT (the agent, the day, 1 and the bytes), and the update
// within the limits (the reports and the bytes).
const (
	usageInsertSQL   = `INSERT INTO agent_usage (agent_id, day, reports, bytes)`
	usageConflictSQL = ` ON CONFLICT (agent_id, day) DO UPDATE SET reports = agent_usage.reports + 1, bytes = agent_usage.bytes + excluded.bytes
		WHERE agent_usage.reports + 1 <= ? AND agent_usage.bytes + excluded.bytes <= ?
		RETURNING reports`
)

// quotaArgs are the arguments of charging a report (usage, limits), ok
// false when the batch has no quota.
func quotaArgs(b *IngestBatch, r *IngestReport) (usage, limits []any, ok bool) {
	if b.Quota.Reports <= 0 && b.Quota.Bytes <= 0 {
		return nil, nil, false
	}
	maxReports, maxBytes := b.Quota.Reports, b.Quota.Bytes
	if maxReports <= 0 {
		maxReports = 1 << 62
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 62
	}
	size := int64(len(r.Data)) + reportOverhead
	return []any{b.Agent.ID, quotaDay(b.ReceivedAt), size}, []any{maxReports, maxBytes}, true
}

// chargeQuota counts one new report against its agent's day, inside the
// batch's transaction; ErrOverQuota when that would pass the quota.
func (s *Store) chargeQuota(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport) error {
	usage, limits, ok := quotaArgs(b, r)
	if !ok {
		return nil
	}
	var n int64
	err := tx.QueryRowContext(ctx, s.q(usageInsertSQL+` VALUES (?, ?, 1, ?)`+usageConflictSQL), append(usage, limits...)...).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrOverQuota
	}
	if err != nil {
		return fmt.Errorf("charge quota: %w", err)
	}
	return nil
}

// Usage is what an agent stored on one UTC day.
type Usage struct {
	Reports, Bytes int64
}

// ReportFlood raises agent_report_flood on the agent's device, once per
// agent and day: the agent was refused a batch because it would pass its
// quota. It reports whether the alert was raised now.
func (s *Store) ReportFlood(ctx context.Context, a Agent, q Quota, at time.Time) (bool, error) {
	day := quotaDay(at)
	raised := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE agent_usage SET flagged = 1 WHERE agent_id = ? AND day = ? AND flagged = 0`), a.ID, day)
		if err != nil {
			return fmt.Errorf("flag usage: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		var u Usage
		if err := tx.QueryRowContext(ctx, s.q(`SELECT reports, bytes FROM agent_usage WHERE agent_id = ? AND day = ?`), a.ID, day).Scan(&u.Reports, &u.Bytes); err != nil {
			return fmt.Errorf("read usage: %w", err)
		}
		w := wtx{tx, s}
		facts, err := s.deviceFacts(ctx, w, a.DeviceID, at, nil)
		if err != nil {
			return err
		}
		f := detect.Finding{RuleID: RuleReportFlood, Title: "Agent floods the collector with reports", Severity: "high",
			Category: "integrity", Tags: []string{"T1499", "T1565"},
			Description: "This device's agent sent more reports or bytes in one day than its quota allows; the excess was " +
				"refused and not stored. A real agent reports a few times an hour and sends a full snapshot only when " +
				"something changed, so this is an agent that was modified or driven by hand: an attempt to fill the " +
				"collector's disk (MITRE ATT&CK T1499, Endpoint Denial of Service) or to bury this device's real reports " +
				"(T1565, Data Manipulation). Treat the device as tampered with.",
			Evidence: map[string]any{"agent_id": a.ID, "day": fromMicros(day).Format(time.DateOnly),
				"reports_stored": u.Reports, "bytes_stored": u.Bytes, "quota_reports": q.Reports, "quota_bytes": q.Bytes}}
		if _, err := s.upsertAlerts(ctx, w, facts, []detect.Finding{f}, at); err != nil {
			return err
		}
		if _, err := s.refreshRisk(ctx, w, a.DeviceID, at); err != nil {
			return err
		}
		raised = true
		return nil
	})
	return raised, err
}

// RuleReportFlood is the alert the collector raises itself on an agent
// over its report quota.
const RuleReportFlood = "agent_report_flood"
