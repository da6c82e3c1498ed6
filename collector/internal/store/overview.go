package store

import (
	"context"
	"fmt"
	"time"
)

// Overview is the fleet at a glance (the web UI's first page).
type Overview struct {
	// OpenBySeverity counts open alerts per severity.
	OpenBySeverity map[string]int `json:"open_by_severity"`
	// SuspectedFarms are the clusters a fleet rule flagged, highest score
	// first (at most 10).
	SuspectedFarms []Cluster `json:"suspected_farms"`
	// Devices counts devices not revoked; Silent those whose agent has
	// not reported for three report intervals.
	Devices int `json:"devices"`
	Silent  int `json:"silent"`
	// ByOS and ByAgentVersion count devices not revoked.
	ByOS           []Count `json:"by_os"`
	ByAgentVersion []Count `json:"by_agent_version"`
}

// Count is one row of a breakdown.
type Count struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// scanCount reads a breakdown's row: its key and count.
func scanCount(sc scanner) (Count, error) {
	var c Count
	err := sc.Scan(&c.Key, &c.N)
	return c, err
}

// Overview summarises the fleet at now.
func (s *Store) Overview(ctx context.Context, now time.Time) (Overview, error) {
	o := Overview{OpenBySeverity: map[string]int{}}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT severity, COUNT(*) FROM alerts WHERE status = 'open' GROUP BY severity`))
	if err != nil {
		return o, fmt.Errorf("overview: %w", err)
	}
	bySeverity, err := scanRows(rows, scanCount)
	if err != nil {
		return o, err
	}
	for _, c := range bySeverity {
		o.OpenBySeverity[c.Key] = c.N
	}
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen > 0 AND last_seen + 3 * report_interval < ? THEN 1 ELSE 0 END), 0)
		FROM devices WHERE revoked_at = 0`), micros(now)).Scan(&o.Devices, &o.Silent); err != nil {
		return o, fmt.Errorf("overview: %w", err)
	}
	for _, b := range []struct {
		col string
		out *[]Count
	}{{"os_family", &o.ByOS}, {"agent_version", &o.ByAgentVersion}} {
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+b.col+`, COUNT(*) FROM devices WHERE revoked_at = 0 GROUP BY `+b.col+` ORDER BY COUNT(*) DESC, `+b.col+` LIMIT 20`))
		if err != nil {
			return o, fmt.Errorf("overview: %w", err)
		}
		if *b.out, err = scanRows(rows, scanCount); err != nil {
			return o, err
		}
	}
	o.SuspectedFarms, err = s.ListClusters(ctx, true, 10)
	return o, err
}
