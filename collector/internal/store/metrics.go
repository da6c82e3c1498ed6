package store

import (
	"context"
	"fmt"
	"time"
)

// Gauges are the numbers of the deployment the metrics endpoint reads
// from the database at each scrape: the same on every replica.
type Gauges struct {
	// Alerts counts alerts by rule, severity and status.
	Alerts []AlertCount
	// ConnectedAgents counts unrevoked agents that reported within three
	// report intervals of their device (the web UI's "not silent").
	ConnectedAgents int
	// AgentVersions counts unrevoked devices by the agent version they
	// last reported.
	AgentVersions []Count
}

// AlertCount is one group of Gauges.Alerts.
type AlertCount struct {
	RuleID, Severity, Status string
	N                        int
}

// Gauges reads the metrics' gauges at now: three small aggregate queries.
func (s *Store) Gauges(ctx context.Context, now time.Time) (Gauges, error) {
	var g Gauges
	rows, err := s.r.QueryContext(ctx, `SELECT rule_id, severity, status, COUNT(*) FROM alerts GROUP BY rule_id, severity, status`)
	if err != nil {
		return g, fmt.Errorf("gauges: %w", err)
	}
	if g.Alerts, err = scanRows(rows, func(sc scanner) (AlertCount, error) {
		var c AlertCount
		err := sc.Scan(&c.RuleID, &c.Severity, &c.Status, &c.N)
		return c, err
	}); err != nil {
		return g, fmt.Errorf("gauges: %w", err)
	}
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM agents a JOIN devices d ON d.id = a.device_id
		WHERE a.revoked_at = 0 AND d.revoked_at = 0 AND a.last_seen > 0 AND a.last_seen + 3 * d.report_interval >= ?`),
		micros(now)).Scan(&g.ConnectedAgents); err != nil {
		return g, fmt.Errorf("gauges: %w", err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT agent_version, COUNT(*) FROM devices WHERE revoked_at = 0 GROUP BY agent_version`)
	if err != nil {
		return g, fmt.Errorf("gauges: %w", err)
	}
	if g.AgentVersions, err = scanRows(rows, scanCount); err != nil {
		return g, fmt.Errorf("gauges: %w", err)
	}
	return g, nil
}
