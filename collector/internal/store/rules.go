package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// RuleOverride is a rule an administrator disabled in the web UI, on top
// of the policy files. The collector does not evaluate a disabled rule
// (detect.Live.SetDisabled); its open alerts stay as they are.
type RuleOverride struct {
	RuleID     string    `json:"rule_id"`
	DisabledBy string    `json:"disabled_by"`
	DisabledAt time.Time `json:"disabled_at"`
	Reason     string    `json:"reason"`
}

// validRuleID checks an id against the rule files' pattern
// ^[a-z][a-z0-9_]{1,63}$ (see detect.Load).
func validRuleID(id string) bool {
	if len(id) < 2 || len(id) > 64 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for _, c := range []byte(id) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// SetRuleEnabled disables a rule (enabled false, with an optional reason)
// or enables it again (its override is deleted), and records the change
// in the audit log under the actor. It reports whether anything changed:
// disabling a disabled rule or enabling an enabled one does nothing.
// Whether the id names a loaded rule is the caller's business; an
// override of an unknown rule applies if such a rule appears.
func (s *Store) SetRuleEnabled(ctx context.Context, ruleID string, enabled bool, reason, actor string) (bool, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case !validRuleID(ruleID):
		return false, fmt.Errorf("rule id %q: %w", ruleID, ErrInvalid)
	case len(reason) > 4000:
		return false, fmt.Errorf("a reason is at most 4000 bytes: %w", ErrInvalid)
	}
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		action, detail := "enable", map[string]any{}
		if enabled {
			res, err = tx.ExecContext(ctx, s.q(`DELETE FROM rule_overrides WHERE rule_id = ?`), ruleID)
		} else {
			action, detail = "disable", map[string]any{"reason": reason}
			res, err = tx.ExecContext(ctx, s.q(`INSERT INTO rule_overrides (rule_id, disabled_by, disabled_at, reason)
				VALUES (?, ?, ?, ?) ON CONFLICT (rule_id) DO NOTHING`), ruleID, actor, micros(time.Now()), reason)
		}
		if err != nil {
			return fmt.Errorf("rule override: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		return s.audit(ctx, tx, actor, action, "rule", ruleID, detail)
	})
	return changed, err
}

// RuleOverrides lists the disabled rules by id. There are at most as many
// as rule ids ever loaded, so the list is not paged.
func (s *Store) RuleOverrides(ctx context.Context) ([]RuleOverride, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT rule_id, disabled_by, disabled_at, reason FROM rule_overrides ORDER BY rule_id`)
	if err != nil {
		return nil, fmt.Errorf("rule overrides: %w", err)
	}
	return scanRows(rows, func(sc scanner) (RuleOverride, error) {
		var o RuleOverride
		var at int64
		err := sc.Scan(&o.RuleID, &o.DisabledBy, &at, &o.Reason)
		o.DisabledAt = fromMicros(at)
		return o, err
	})
}

// SyncRuleOverrides makes the stored disabled rules the live set's
// (detect.Live.SetDisabled) and reports whether they changed. The
// collector calls it at start and periodically, so that every replica
// follows an edit made on another.
func (s *Store) SyncRuleOverrides(ctx context.Context, live *detect.Live) (bool, error) {
	list, err := s.RuleOverrides(ctx)
	if err != nil {
		return false, err
	}
	ids := make([]string, len(list))
	for i, o := range list {
		ids[i] = o.RuleID
	}
	return live.SetDisabled(ids), nil
}
