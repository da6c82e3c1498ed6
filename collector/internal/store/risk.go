package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
)

// Risk is a device's or person's risk score with the alerts behind it
// (fleet.Risk documents the formula).
type Risk struct {
	Score        int                  `json:"score"`
	Contributors []fleet.Contribution `json:"contributors"`
}

// RiskPoint is one entry of a score's history.
type RiskPoint struct {
	At    time.Time `json:"at"`
	Score int       `json:"score"`
	// Contributors are the rule ids behind the score at that time.
	Contributors []string `json:"contributors"`
}

// refreshRisk recomputes the risk of a device from its open and
// acknowledged alerts, and that of its person over all their devices,
// storing each score (and a history entry) when it changed. It reports
// whether the device's score changed.
func (s *Store) refreshRisk(ctx context.Context, tx wtx, deviceID string, at time.Time) (bool, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT rule_id, severity, category FROM alerts
		WHERE device_id = ? AND status IN ('open', 'acknowledged')`), deviceID)
	if err != nil {
		return false, fmt.Errorf("risk: %w", err)
	}
	in, err := scanRows(rows, func(sc scanner) (fleet.Contribution, error) {
		var c fleet.Contribution
		err := sc.Scan(&c.RuleID, &c.Severity, &c.Category)
		return c, err
	})
	if err != nil {
		return false, err
	}
	score, contrib := fleet.Risk(in)
	changed, err := s.storeRisk(ctx, tx, "device", deviceID, score, contrib, at)
	if err != nil || !changed {
		return false, err
	}
	var person string
	if err := tx.QueryRowContext(ctx, s.q(`SELECT person FROM devices WHERE id = ?`), deviceID).Scan(&person); err != nil {
		return false, fmt.Errorf("risk: %w", err)
	}
	return true, s.refreshPersonRisk(ctx, tx, person, at)
}

// refreshPersonRisk combines the contributions of a person's devices.
func (s *Store) refreshPersonRisk(ctx context.Context, tx wtx, person string, at time.Time) error {
	if person == "" {
		return nil
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, risk_contributors FROM devices WHERE person = ? AND revoked_at = 0`), person)
	if err != nil {
		return fmt.Errorf("person risk: %w", err)
	}
	var in []fleet.Contribution
	for rows.Next() {
		var id, js string
		if err := rows.Scan(&id, &js); err != nil {
			rows.Close()
			return err
		}
		var cs []fleet.Contribution
		json.Unmarshal([]byte(js), &cs)
		for _, c := range cs {
			c.Device = id
			in = append(in, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	score, contrib := fleet.Risk(in)
	changed, err := s.storeRisk(ctx, tx, "person", person, score, contrib, at)
	if err != nil || !changed {
		return err
	}
	return s.personRiskCase(ctx, tx, person, score, at)
}

// storeRisk writes a score when it differs from the stored one, with a
// history entry.
func (s *Store) storeRisk(ctx context.Context, tx wtx, subject, id string, score int, contrib []fleet.Contribution, at time.Time) (bool, error) {
	js, _ := json.Marshal(contrib)
	update := `UPDATE devices SET risk_score = ?, risk_contributors = ? WHERE id = ? AND (risk_score <> ? OR risk_contributors <> ?)`
	if subject == "person" {
		update = `UPDATE people SET risk_score = ?, risk_contributors = ? WHERE email = ? AND (risk_score <> ? OR risk_contributors <> ?)`
	}
	res, err := tx.ExecContext(ctx, s.q(update), score, string(js), id, score, string(js))
	if err != nil {
		return false, fmt.Errorf("%s risk: %w", subject, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	ids := make([]string, len(contrib))
	for i, c := range contrib {
		ids[i] = c.RuleID
	}
	hist, _ := json.Marshal(ids)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO risk_history (subject_type, subject_id, at, score, contributors) VALUES (?, ?, ?, ?, ?)`),
		subject, id, micros(at), score, string(hist)); err != nil {
		return false, fmt.Errorf("%s risk: %w", subject, err)
	}
	return true, nil
}

// RiskHistory lists a device's or person's score changes, newest first
// (at most 100).
func (s *Store) RiskHistory(ctx context.Context, subject, id string) ([]RiskPoint, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT at, score, contributors FROM risk_history
		WHERE subject_type = ? AND subject_id = ? ORDER BY id DESC LIMIT 100`), subject, id)
	if err != nil {
		return nil, fmt.Errorf("risk history: %w", err)
	}
	return scanRows(rows, func(sc scanner) (RiskPoint, error) {
		var p RiskPoint
		var at int64
		var js string
		err := sc.Scan(&at, &p.Score, &js)
		p.At = fromMicros(at)
		json.Unmarshal([]byte(js), &p.Contributors)
		return p, err
	})
}
