package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
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
	return scanRows(rows, func(sc scanner) (PolicyVersion, error) {
		var v PolicyVersion
		var at int64
		var ids string
		err := sc.Scan(&v.ID, &v.Digest, &at, &v.Rules, &ids)
		v.ActivatedAt = fromMicros(at)
		if ids != "" {
			v.RuleIDs = strings.Split(ids, ",")
		}
		return v, err
	})
}

// DryRunHit is one finding a draft rule set would raise.
type DryRunHit struct {
	DeviceID string         `json:"device_id"`
	Hostname string         `json:"hostname"`
	RuleID   string         `json:"rule_id"`
	Severity string         `json:"severity"`
	Evidence map[string]any `json:"evidence"`
}

// DryRunBudget is the most time one dry-run may take: a draft's rules run
// over the whole fleet, and a request must not keep a CPU busy after its
// client gave up.
const DryRunBudget = 30 * time.Second

// DryRun evaluates ev (a draft rule set) against every device's current
// facts and latest snapshot, as ingest would, and returns what would fire.
// Nothing is written: no alert, no activity update. It stops when ctx is
// done (the request's deadline, or its client gone) or DryRunBudget has
// passed, with ErrInvalid saying so.
func (s *Store) DryRun(ctx context.Context, ev Evaluator, now time.Time) ([]DryRunHit, int, error) {
	ctx, cancel := context.WithTimeout(ctx, DryRunBudget)
	defer cancel()
	stopped := func(devices int) error {
		return fmt.Errorf("%w: the dry-run stopped after %d devices: it ran past its budget (%s) or the request's deadline; make the draft's rules cheaper", ErrInvalid, devices, DryRunBudget)
	}
	hits := []DryRunHit{}
	devices := 0
	after := ""
	for {
		page, err := s.ListDevices(ctx, DeviceFilter{AfterID: after, Limit: 1000})
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, stopped(devices)
			}
			return nil, 0, err
		}
		for _, d := range page {
			if !d.RevokedAt.IsZero() {
				continue
			}
			if ctx.Err() != nil {
				return nil, 0, stopped(devices)
			}
			devices++
			r, err := s.readFacts(ctx, s.r, d.ID, now, nil, nil)
			if err != nil {
				if ctx.Err() != nil {
					return nil, 0, stopped(devices)
				}
				return nil, 0, err
			}
			f := detect.Facts{Device: r.facts, Now: now}
			if sn, err := s.LatestSnapshot(ctx, d.ID); err == nil {
				var snap agentv1.HostSnapshot
				if proto.Unmarshal(sn.Data, &snap) == nil {
					f.Snapshot = &snap
				}
			}
			findings, evalErr := evaluateReport(ctx, ev, f)
			if evalErr != nil {
				if ctx.Err() != nil {
					return nil, 0, stopped(devices)
				}
				return nil, 0, evalErr
			}
			for _, f := range findings {
				hits = append(hits, DryRunHit{DeviceID: d.ID, Hostname: d.Hostname, RuleID: f.RuleID, Severity: f.Severity, Evidence: f.Evidence})
			}
		}
		if len(page) < 1000 {
			return hits, devices, nil
		}
		after = page[len(page)-1].ID
	}
}
