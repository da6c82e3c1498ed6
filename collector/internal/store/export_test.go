package store

import (
	"context"
	"fmt"
	"time"
)

// This file exports internals to the external test package store_test,
// which cannot be package store because it imports storetest (which
// imports store).

// LiveAgentForTest is a liveAgent with exported fields.
type LiveAgentForTest struct {
	ID                 string
	Enrolled, LastSeen time.Time
}

// LiveAgents runs liveAgents.
func LiveAgents(in []LiveAgentForTest, now time.Time, window time.Duration) []string {
	agents := make([]liveAgent, len(in))
	for i, a := range in {
		agents[i] = liveAgent{id: a.ID, enrolled: a.Enrolled, lastSeen: a.LastSeen}
	}
	return liveAgents(agents, now, window)
}

// Rebind runs the placeholder rebinding of a store of dialect d.
func Rebind(d Dialect, query string) string { return (&Store{dialect: d}).q(query) }

// HistoryEntry is one row of snapshot_history.
type HistoryEntry struct {
	ReportID string
	Digest   string
	Changed  string
}

// SnapshotHistory lists a device's snapshot history, oldest first. No
// production code reads the table yet.
func (s *Store) SnapshotHistory(ctx context.Context, deviceID string) ([]HistoryEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT report_id, digest, changed FROM snapshot_history WHERE device_id = ? ORDER BY id`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("snapshot history: %w", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.ReportID, &h.Digest, &h.Changed); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
