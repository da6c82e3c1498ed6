package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// Suppression stops alerts for findings that match every field it sets:
// a rule, a device, a person (email) and/or a network (CIDR, matched
// against the device's egress address), until it expires.
type Suppression struct {
	ID        int64     `json:"id"`
	RuleID    string    `json:"rule_id"`
	DeviceID  string    `json:"device_id"`
	Person    string    `json:"person"`
	Network   string    `json:"network"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// maxSuppressionAge is the longest a suppression may run.
const maxSuppressionAge = 366 * 24 * time.Hour

// Validate checks a new suppression; the error names the field.
func (x *Suppression) Validate(now time.Time) error {
	x.RuleID, x.DeviceID = strings.TrimSpace(x.RuleID), strings.TrimSpace(x.DeviceID)
	x.Person, x.Network = strings.ToLower(strings.TrimSpace(x.Person)), strings.TrimSpace(x.Network)
	x.Reason = strings.TrimSpace(x.Reason)
	switch {
	case x.RuleID == "" && x.DeviceID == "" && x.Person == "" && x.Network == "":
		return errors.New("a suppression needs a rule_id, device_id, person or network")
	case x.Reason == "":
		return errors.New("reason: required")
	case len(x.Reason) > 4096 || len(x.RuleID) > 256 || len(x.DeviceID) > 256 || len(x.Person) > 256:
		return errors.New("fields are limited to 256 bytes (reason 4096)")
	case !x.ExpiresAt.After(now):
		return errors.New("expires_at: must be in the future")
	case x.ExpiresAt.Sub(now) > maxSuppressionAge:
		return errors.New("expires_at: at most a year ahead")
	}
	if x.Network != "" {
		p, err := netip.ParsePrefix(x.Network)
		if err != nil {
			return fmt.Errorf("network %q: not a CIDR", x.Network)
		}
		x.Network = p.Masked().String()
	}
	return nil
}

// CreateSuppression stores a suppression and records it in the audit log.
func (s *Store) CreateSuppression(ctx context.Context, x Suppression, actor string) (Suppression, error) {
	now := time.Now().UTC()
	if err := x.Validate(now); err != nil {
		return Suppression{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	x.CreatedBy, x.CreatedAt = actor, now
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO suppressions (rule_id, device_id, person, network, reason, expires_at, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), x.RuleID, x.DeviceID, x.Person, x.Network, x.Reason,
			micros(x.ExpiresAt), actor, micros(now)).Scan(&x.ID); err != nil {
			return fmt.Errorf("store suppression: %w", err)
		}
		return s.audit(ctx, tx, actor, "create", "suppression", fmt.Sprint(x.ID), map[string]any{
			"rule_id": x.RuleID, "device_id": x.DeviceID, "person": x.Person, "network": x.Network,
			"reason": x.Reason, "expires_at": x.ExpiresAt})
	})
	return x, err
}

// DeleteSuppression removes a suppression (audited).
func (s *Store) DeleteSuppression(ctx context.Context, id int64, actor string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM suppressions WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.audit(ctx, tx, actor, "delete", "suppression", fmt.Sprint(id), nil)
	})
}

// ListSuppressions lists the suppressions that have not expired.
func (s *Store) ListSuppressions(ctx context.Context, now time.Time) ([]Suppression, error) {
	return s.activeSuppressions(ctx, s.r, now)
}

func (s *Store) activeSuppressions(ctx context.Context, q querier, now time.Time) ([]Suppression, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT id, rule_id, device_id, person, network, reason, expires_at, created_by, created_at
		FROM suppressions WHERE expires_at > ? ORDER BY id`), micros(now))
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	return scanRows(rows, func(sc scanner) (Suppression, error) {
		var x Suppression
		var exp, at int64
		err := sc.Scan(&x.ID, &x.RuleID, &x.DeviceID, &x.Person, &x.Network, &x.Reason, &exp, &x.CreatedBy, &at)
		x.ExpiresAt, x.CreatedAt = fromMicros(exp), fromMicros(at)
		return x, err
	})
}

// suppressed reports whether a suppression covers the finding of rule on
// the device these facts describe.
func suppressed(list []Suppression, rule string, f *detect.DeviceFacts) bool {
	ip, _ := netip.ParseAddr(f.EgressIP)
	for _, x := range list {
		if x.RuleID != "" && x.RuleID != rule || x.DeviceID != "" && x.DeviceID != f.ID ||
			x.Person != "" && x.Person != f.Person {
			continue
		}
		if x.Network != "" {
			p, err := netip.ParsePrefix(x.Network)
			if err != nil || !ip.IsValid() || !p.Contains(ip.Unmap()) {
				continue
			}
		}
		return true
	}
	return false
}
