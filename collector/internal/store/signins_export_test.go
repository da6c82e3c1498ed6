package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// DeviceFactsForTest reads a device's facts as the read path of ingest
// does (prejudge), person facts included.
func (s *Store) DeviceFactsForTest(ctx context.Context, deviceID string, now time.Time) (*detect.DeviceFacts, error) {
	r, err := s.readFacts(ctx, s.reader(), deviceID, now, nil, nil)
	if err != nil {
		return nil, err
	}
	return r.facts, nil
}

// SeedReportsForTest records heartbeats of a device received at times,
// in one transaction, without judging anything.
func (s *Store) SeedReportsForTest(ctx context.Context, deviceID string, times []time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for i, at := range times {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO reports (agent_id, report_id, device_id, sequence, kind, created_at, received_at)
				VALUES (?, ?, ?, ?, 'heartbeat', ?, ?)`), "seed-"+deviceID, fmt.Sprintf("seed-%d", i), deviceID, i, micros(at), micros(at)); err != nil {
				return err
			}
		}
		return nil
	})
}
