package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// PolicyVersion is one rule set that became active.
type PolicyVersion struct {
	ID          int64     `json:"id"`
	Digest      string    `json:"digest"`
	ActivatedAt time.Time `json:"activated_at"`
	Rules       int       `json:"rules"`
	RuleIDs     []string  `json:"rule_ids"`
}

// RecordPolicyVersion records that a rule set became active, unless it is
// already the latest recorded one (a restart with unchanged policies).
func (s *Store) RecordPolicyVersion(ctx context.Context, digest string, ruleIDs []string, at time.Time) error {
	var last string
	err := s.w.QueryRowContext(ctx, `SELECT digest FROM policy_versions ORDER BY id DESC LIMIT 1`).Scan(&last)
	if err == nil && last == digest {
		return nil
	}
	_, err = s.exec(ctx, `INSERT INTO policy_versions (digest, activated_at, rules, rule_ids) VALUES (?, ?, ?, ?)`,
		digest, micros(at), len(ruleIDs), strings.Join(ruleIDs, ","))
	if err != nil {
		return fmt.Errorf("record policy version: %w", err)
	}
	return nil
}

// PolicyVersions lists the recorded rule sets, newest first.
func (s *Store) PolicyVersions(ctx context.Context, limit int) ([]PolicyVersion, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, digest, activated_at, rules, rule_ids FROM policy_versions ORDER BY id DESC LIMIT ?`), PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	defer rows.Close()
	out := []PolicyVersion{}
	for rows.Next() {
		var v PolicyVersion
		var at int64
		var ids string
		if err := rows.Scan(&v.ID, &v.Digest, &at, &v.Rules, &ids); err != nil {
			return nil, err
		}
		v.ActivatedAt = fromMicros(at)
		if ids != "" {
			v.RuleIDs = strings.Split(ids, ",")
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
