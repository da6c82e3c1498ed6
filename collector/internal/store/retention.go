package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Retention says how long history is kept; 0 keeps it for ever.
type Retention struct {
	// Reports: the record of each report (and so the deduplication of
	// retries); older ones are kept as daily per-device counts
	// (ReportDays).
	Reports time.Duration
	// Snapshots: the snapshot history (each device's latest snapshot is
	// always kept).
	Snapshots     time.Duration
	Risk          time.Duration // risk score history
	ClusterEvents time.Duration // cluster timelines
	Egress        time.Duration // egress history
	Audit         time.Duration // the audit log
	Signins       time.Duration // identity-provider sign-ins (by their time)
}

const day = 24 * time.Hour

// DefaultRetention is what the collector keeps unless told otherwise
// (serve's --retain-* flags): 0 keeps for ever.
var DefaultRetention = Retention{Reports: 30 * day, Snapshots: 90 * day, Risk: 365 * day, ClusterEvents: 365 * day,
	Egress: 90 * day, Audit: 0, Signins: 90 * day}

// PruneStats counts what a prune removed.
type PruneStats struct {
	Reports       int `json:"reports"` // rolled up into daily counts
	Snapshots     int `json:"snapshots"`
	Risk          int `json:"risk"`
	ClusterEvents int `json:"cluster_events"`
	Egress        int `json:"egress"`
	Audit         int `json:"audit"`
	Signins       int `json:"signins"`
}

// pruneBatch bounds the rows one pruning transaction removes.
const pruneBatch = 500

// Prune removes what r no longer keeps at now, in transactions of at most
// pruneBatch rows, so that ingest waits at most one of them. Reports are
// rolled up into daily per-device counts as they go. On PostgreSQL, run it
// on one replica at a time (TryLock).
func (s *Store) Prune(ctx context.Context, now time.Time, r Retention) (PruneStats, error) {
	return s.prune(ctx, now, r, pruneBatch)
}

func (s *Store) prune(ctx context.Context, now time.Time, r Retention, batch int) (PruneStats, error) {
	var st PruneStats
	if r.Reports > 0 {
		n, err := s.rollUpReports(ctx, now.Add(-r.Reports), batch)
		st.Reports = n
		if err != nil {
			return st, err
		}
	}
	// Tables appended in time order: the oldest rows have the lowest ids.
	for _, t := range []struct {
		keep          time.Duration
		table, column string
		n             *int
		// kept is a condition on a row (as t) that keeps it whatever its
		// age.
		kept string
	}{
		// A device's latest snapshot keeps its data in the history entry
		// it names (migration 00042).
		{r.Snapshots, "snapshot_history", "received_at", &st.Snapshots,
			"EXISTS (SELECT 1 FROM snapshots sn WHERE sn.device_id = t.device_id AND sn.history_id = t.id)"},
		{r.Risk, "risk_history", "at", &st.Risk, ""},
		{r.ClusterEvents, "cluster_events", "at", &st.ClusterEvents, ""},
		{r.Egress, "egress_history", "at", &st.Egress, ""},
		{r.Audit, "audit_log", "at", &st.Audit, ""},
	} {
		if t.keep <= 0 {
			continue
		}
		n, err := s.pruneOldest(ctx, t.table, t.column, t.kept, now.Add(-t.keep), batch)
		*t.n = n
		if err != nil {
			return st, err
		}
	}
	if r.Signins > 0 {
		n, err := s.pruneSignins(ctx, now.Add(-r.Signins), batch)
		st.Signins = n
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// pruneOldest deletes the rows of table whose time column is before
// cutoff, lowest ids first, batch at a time, except those kept says to
// keep. The table is appended in time order, so it stops at the first row
// inside the retention, and each batch starts after the last one's rows:
// it reads only the rows it deletes or keeps, and one more.
func (s *Store) pruneOldest(ctx context.Context, table, column, kept string, cutoff time.Time, batch int) (int, error) {
	del := `DELETE FROM ` + table + ` AS t WHERE id > ? AND id <= ?`
	if kept != "" {
		del += ` AND NOT ` + kept
	}
	total := 0
	var after int64 // the rows up to this id are deleted or kept
	for {
		n, old := 0, 0
		err := s.tx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT id, `+column+` FROM `+table+` WHERE id > ? ORDER BY id LIMIT ?`), after, batch)
			if err != nil {
				return err
			}
			var last int64
			for rows.Next() {
				var id, at int64
				if err := rows.Scan(&id, &at); err != nil {
					rows.Close()
					return err
				}
				if at >= micros(cutoff) {
					break
				}
				last = id
				old++
			}
			rows.Close()
			if err := rows.Err(); err != nil || old == 0 {
				return err
			}
			res, err := tx.ExecContext(ctx, s.q(del), after, last)
			if err != nil {
				return err
			}
			d, _ := res.RowsAffected()
			n, after = int(d), last
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		if old < batch {
			return total, nil
		}
	}
}

// reportDay is a device's reports of one UTC day.
type reportDay struct {
	device string
	day    int64 // micros of the day's start
}

// rollUpReports moves the reports received before cutoff into their
// devices' daily counts, batch at a time.
func (s *Store) rollUpReports(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	const day = int64(24 * time.Hour / time.Microsecond)
	total := 0
	for {
		n := 0
		err := s.tx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT agent_id, report_id, device_id, kind, received_at FROM reports
				WHERE received_at < ? ORDER BY received_at LIMIT ?`), micros(cutoff), batch)
			if err != nil {
				return err
			}
			counts := map[reportDay]*[2]int64{} // snapshots, heartbeats
			var keys [][2]string
			for rows.Next() {
				var agent, report, device, kind string
				var at int64
				if err := rows.Scan(&agent, &report, &device, &kind, &at); err != nil {
					rows.Close()
					return err
				}
				d := reportDay{device, at - at%day}
				if counts[d] == nil {
					counts[d] = &[2]int64{}
				}
				if kind == "snapshot" {
					counts[d][0]++
				} else {
					counts[d][1]++
				}
				keys = append(keys, [2]string{agent, report})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			days := make([]reportDay, 0, len(counts))
			for d := range counts {
				days = append(days, d)
			}
			slices.SortFunc(days, func(a, b reportDay) int {
				return cmp.Or(strings.Compare(a.device, b.device), cmp.Compare(a.day, b.day))
			})
			w := wtx{Tx: tx, s: s}
			for _, d := range days {
				c := counts[d]
				if _, err := w.ExecContext(ctx, s.q(`INSERT INTO report_days (device_id, day, snapshots, heartbeats) VALUES (?, ?, ?, ?)
					ON CONFLICT (device_id, day) DO UPDATE SET snapshots = report_days.snapshots + excluded.snapshots,
					heartbeats = report_days.heartbeats + excluded.heartbeats`), d.device, d.day, c[0], c[1]); err != nil {
					return err
				}
			}
			for _, k := range keys {
				if _, err := w.ExecContext(ctx, s.q(`DELETE FROM reports WHERE agent_id = ? AND report_id = ?`), k[0], k[1]); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("roll up reports: %w", err)
		}
		if n < batch {
			return total, nil
		}
	}
}

// ReportDay is how many reports a device sent on one UTC day, kept once
// the reports themselves are past their retention.
type ReportDay struct {
	Day        time.Time `json:"day"`
	Snapshots  int64     `json:"snapshots"`
	Heartbeats int64     `json:"heartbeats"`
}

// ReportDays lists a device's rolled-up report counts, oldest first.
func (s *Store) ReportDays(ctx context.Context, deviceID string) ([]ReportDay, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT day, snapshots, heartbeats FROM report_days WHERE device_id = ? ORDER BY day`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("report days: %w", err)
	}
	return scanRows(rows, func(sc scanner) (ReportDay, error) {
		var d ReportDay
		var day int64
		err := sc.Scan(&day, &d.Snapshots, &d.Heartbeats)
		d.Day = fromMicros(day)
		return d, err
	})
}
