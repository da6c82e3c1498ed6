package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Replica is a collector replica sharing the database, as it last said.
type Replica struct {
	Name      string            `json:"name"`
	Settings  map[string]string `json:"settings"`
	StartedAt time.Time         `json:"started_at"`
	SeenAt    time.Time         `json:"seen_at"`
}

// maxReplicaSettings caps a replica's stored settings.
const maxReplicaSettings = 16 << 10

// SeeReplica records that the replica r.Name is alive at r.SeenAt with
// r.Settings (added on its first call, refreshed on the next).
func (s *Store) SeeReplica(ctx context.Context, r Replica) error {
	b, err := json.Marshal(r.Settings)
	if err != nil {
		return err
	}
	if len(b) > maxReplicaSettings || len(r.Name) > 512 {
		return fmt.Errorf("replica %.64q: settings or name too large", r.Name)
	}
	if _, err := s.exec(ctx, `INSERT INTO replicas (name, settings, started_at, seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, started_at = excluded.started_at, seen_at = excluded.seen_at`,
		r.Name, string(b), micros(r.StartedAt), micros(r.SeenAt)); err != nil {
		return fmt.Errorf("record replica: %w", err)
	}
	return nil
}

// Replicas lists the replicas seen at or after since, by name.
func (s *Store) Replicas(ctx context.Context, since time.Time) ([]Replica, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT name, settings, started_at, seen_at FROM replicas WHERE seen_at >= ? ORDER BY name`), micros(since))
	if err != nil {
		return nil, fmt.Errorf("replicas: %w", err)
	}
	return scanRows(rows, func(sc scanner) (Replica, error) {
		var r Replica
		var settings string
		var started, seen int64
		if err := sc.Scan(&r.Name, &settings, &started, &seen); err != nil {
			return r, err
		}
		if len(settings) > maxReplicaSettings || json.Unmarshal([]byte(settings), &r.Settings) != nil {
			r.Settings = nil // not one of ours: compared as having none
		}
		r.StartedAt, r.SeenAt = fromMicros(started), fromMicros(seen)
		return r, nil
	})
}
