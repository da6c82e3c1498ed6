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

// Charging a report to its agent's day: the day's count is kept on the
// agent's row, which the report rewrites anyway (its last_seen): no page
// more (migration 00044). A new day starts it afresh, and the day's first
// report is always counted. quotaSet follows a SET, quotaWhere a WHERE on
// the agent's row, which matches no row when the report would pass the
// quota.
const (
	quotaSet = `usage_day = ?,
		usage_reports = CASE WHEN usage_day = ? THEN usage_reports + 1 ELSE 1 END,
		usage_bytes = CASE WHEN usage_day = ? THEN usage_bytes + ? ELSE ? END,
		usage_flagged = CASE WHEN usage_day = ? THEN usage_flagged ELSE 0 END`
	quotaWhere = ` AND (usage_day <> ? OR (usage_reports + 1 <= ? AND usage_bytes + ? <= ?))`
)

// quotaArgs are the arguments of quotaSet and quotaWhere for a report, ok
// false when the batch has no quota.
func quotaArgs(b *IngestBatch, r *IngestReport) (set, where []any, ok bool) {
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
	size, day := int64(len(r.Data))+reportOverhead, quotaDay(b.ReceivedAt)
	return []any{day, day, day, size, size, day}, []any{day, maxReports, size, maxBytes}, true
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
		var u Usage
		err := tx.QueryRowContext(ctx, s.q(`UPDATE agents SET usage_flagged = 1 WHERE id = ? AND usage_day = ? AND usage_flagged = 0
			RETURNING usage_reports, usage_bytes`), a.ID, day).Scan(&u.Reports, &u.Bytes)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // raised before today, or no report stored today
		}
		if err != nil {
			return fmt.Errorf("flag usage: %w", err)
		}
		w := wtx{Tx: tx, s: s}
		facts, err := s.deviceFacts(ctx, w, a.DeviceID, at, nil, nil)
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
		if _, _, err := s.upsertAlerts(ctx, w, facts, []detect.Finding{f}, nil, at); err != nil {
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
