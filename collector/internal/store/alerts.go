package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// Alert statuses.
const (
	StatusOpen          = "open"
	StatusAcknowledged  = "acknowledged"
	StatusResolved      = "resolved"
	StatusFalsePositive = "false_positive"
)

// ValidStatus reports whether st is a known alert status.
func ValidStatus(st string) bool {
	switch st {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusFalsePositive:
		return true
	}
	return false
}

// Alert is one rule firing on one device, deduplicated: a rule that keeps
// firing on the same device updates last_seen and count.
type Alert struct {
	ID          int64          `json:"id"`
	RuleID      string         `json:"rule_id"`
	Title       string         `json:"title"`
	Severity    string         `json:"severity"`
	Description string         `json:"description"`
	Tags        []string       `json:"tags"`
	Status      string         `json:"status"`
	Assignee    string         `json:"assignee"`
	DeviceID    string         `json:"device_id"`
	Hostname    string         `json:"hostname"`
	Person      string         `json:"person"`
	FirstSeen   time.Time      `json:"first_seen"`
	LastSeen    time.Time      `json:"last_seen"`
	Count       int64          `json:"count"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Evidence    map[string]any `json:"evidence"`
	// FarmID is the cluster of linked devices (GET /api/v1/farms/{id}) a
	// fleet rule's alert is about: the "cluster" its evidence names.
	FarmID string `json:"farm_id,omitempty"`
	// CaseID is the case the alert is grouped in (GET /api/v1/cases/{id}),
	// 0 for none.
	CaseID int64 `json:"case_id,omitempty"`
}

// upsertAlerts raises an alert for each finding (not suppressed), or
// updates the rule's alert on the device. encoded are the findings as
// encodeFindings encoded them before the writer took them (nil: they are
// encoded here). It reports whether an alert was raised or re-opened, and
// how many of the findings' rules had an open or acknowledged alert
// before and still have (-1 when a rule is found twice: not counted),
// which tells record whether the device has any other open alert.
func (s *Store) upsertAlerts(ctx context.Context, tx wtx, facts *detect.DeviceFacts, findings []detect.Finding, encoded []alertRow, at time.Time) (bool, int, error) {
	if len(findings) == 0 {
		return false, 0, nil
	}
	deviceID := facts.ID
	sup, err := s.activeSuppressions(ctx, tx, at)
	if err != nil {
		return false, 0, err
	}
	now := micros(at)
	var rows []alertRow
	for i, f := range findings {
		if suppressed(sup, f.RuleID, facts) {
			continue
		}
		if encoded != nil {
			rows = append(rows, encoded[i])
			continue
		}
		r, err := encodeFinding(f)
		if err != nil {
			return false, 0, err
		}
		rows = append(rows, r)
	}
	kept, err := s.touchAlerts(ctx, tx, deviceID, rows, now)
	if err != nil {
		return false, 0, err
	}
	open := 0
	if kept == nil { // a rule found twice
		open = -1
	}
	changed := false
	for _, r := range rows {
		f, ev, tags := r.f, r.evidence, r.tags
		if status, ok := kept[f.RuleID]; ok {
			if openStatus(status) {
				open++
			}
			continue
		}
		// A resolved alert whose rule fires again re-opens (a false
		// positive stays one).
		var id, reopened, count int64
		var status string
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO alerts (rule_id, device_id, title, severity, description, tags, category, evidence,
			first_seen, last_seen, count, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
			ON CONFLICT (rule_id, device_id) DO UPDATE SET title = excluded.title, severity = excluded.severity,
			description = excluded.description, tags = excluded.tags, category = excluded.category, evidence = excluded.evidence,
			last_seen = excluded.last_seen, count = alerts.count + 1,
			status = CASE WHEN alerts.status = 'resolved' THEN 'open' ELSE alerts.status END,
			reopened_at = CASE WHEN alerts.status = 'resolved' THEN excluded.updated_at ELSE alerts.reopened_at END
			RETURNING id, reopened_at, count, status`),
			f.RuleID, deviceID, f.Title, f.Severity, f.Description, tags, f.Category, ev, now, now, now).Scan(&id, &reopened, &count, &status); err != nil {
			return false, 0, fmt.Errorf("upsert alert %s: %w", f.RuleID, err)
		}
		if open >= 0 && count > 1 && reopened != now && openStatus(status) {
			open++ // open before: the upsert changes no other status
		}
		changed = changed || count == 1 || reopened == now
		if count == 1 || reopened == now {
			cluster := facts.Cluster.ID
			if c, ok := f.Evidence["cluster"].(string); ok && c != "" {
				cluster = c
			}
			if err := s.routeAlert(ctx, tx, id, deviceID, facts.Hostname, f.Category, cluster, facts.Person, at); err != nil {
				return false, 0, err
			}
		}
		if count == 1 {
			if err := s.audit(ctx, tx, "system", ActionOpened, "alert", fmt.Sprint(id), map[string]any{"note": "the rule fired"}); err != nil {
				return false, 0, err
			}
		}
		if reopened == now {
			if err := s.audit(ctx, tx, "system", "reopen", "alert", fmt.Sprint(id), map[string]any{
				"status": map[string]string{"from": StatusResolved, "to": StatusOpen}, "note": "the rule fired again"}); err != nil {
				return false, 0, err
			}
		}
	}
	return changed, open, nil
}

// alertRow is a finding with its evidence and tags encoded as stored,
// and touch, its row of touchAlerts' VALUES: boxed once, when encoded
// (off the writer for a prejudged verdict), as each conversion of a
// string to any allocates.
type alertRow struct {
	f              detect.Finding
	evidence, tags string
	touch          [7]any
}

// encodeFinding encodes a finding's evidence and tags as stored.
func encodeFinding(f detect.Finding) (alertRow, error) {
	ev, err := json.Marshal(f.Evidence)
	if err != nil {
		return alertRow{}, fmt.Errorf("rule %s evidence: %w", f.RuleID, err)
	}
	tags, _ := json.Marshal(f.Tags)
	if f.Tags == nil {
		tags = []byte("[]")
	}
	r := alertRow{f: f, evidence: string(ev), tags: string(tags)}
	r.touch = [7]any{f.RuleID, f.Title, f.Severity, f.Description, r.tags, f.Category, r.evidence}
	return r, nil
}

// encodeFindings encodes findings as upsertAlerts stores them, one row
// each, so that a verdict reached outside the writer (prejudge) spares
// the single writer the encoding. It returns nil when one fails to
// encode: upsertAlerts then meets the error itself, unless the finding
// is suppressed.
func encodeFindings(findings []detect.Finding) []alertRow {
	if len(findings) == 0 {
		return nil
	}
	rows := make([]alertRow, len(findings))
	for i, f := range findings {
		r, err := encodeFinding(f)
		if err != nil {
			return nil
		}
		rows[i] = r
	}
	return rows
}

// touchAlerts updates, in one statement, the device's alerts of rules
// that keep firing on an alert not resolved and unchanged but for its
// evidence: the common case, where only evidence, last_seen and count
// change (the alert's status, title and severity, and so the indexes on
// them, are not rewritten). It returns the rules whose alert it updated,
// each with the alert's status; the others (new, resolved or changed
// alerts) take the upsert. Findings of one rule twice take the upsert
// each (nil).
func (s *Store) touchAlerts(ctx context.Context, tx wtx, deviceID string, rows []alertRow, now int64) (map[string]string, error) {
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.f.RuleID] {
			return nil, nil
		}
		seen[r.f.RuleID] = true
	}
	if len(rows) == 0 {
		return map[string]string{}, nil
	}
	args := make([]any, 0, 2+7*len(rows))
	args = append(args, now)
	for _, r := range rows {
		args = append(args, r.touch[:]...)
	}
	args = append(args, deviceID)
	res, err := tx.QueryContext(ctx, s.q(touchAlertsSQL(len(rows))), args...)
	if err != nil {
		return nil, fmt.Errorf("update alerts: %w", err)
	}
	type touched struct{ rule, status string }
	rules, err := scanRows(res, func(sc scanner) (t touched, err error) { return t, sc.Scan(&t.rule, &t.status) })
	if err != nil {
		return nil, fmt.Errorf("update alerts: %w", err)
	}
	kept := make(map[string]string, len(rules))
	for _, t := range rules {
		kept[t.rule] = t.status
	}
	return kept, nil
}

// touchAlertsSQL returns touchAlerts' statement for n findings, built
// once per n: one text per number of findings, so the statement caches
// well, and the single writer builds none per report.
func touchAlertsSQL(n int) string {
	touchTexts.mu.Lock()
	defer touchTexts.mu.Unlock()
	if q, ok := touchTexts.byRows[n]; ok {
		return q
	}
	var sb strings.Builder
	sb.WriteString(`UPDATE alerts SET evidence = f.column7, last_seen = ?, count = alerts.count + 1 FROM (VALUES `)
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	sb.WriteString(`) AS f WHERE alerts.device_id = ? AND alerts.rule_id = f.column1 AND alerts.status <> 'resolved'
		AND alerts.title = f.column2 AND alerts.severity = f.column3 AND alerts.description = f.column4
		AND alerts.tags = f.column5 AND alerts.category = f.column6 RETURNING alerts.rule_id, alerts.status`)
	if touchTexts.byRows == nil {
		touchTexts.byRows = map[int]string{}
	}
	touchTexts.byRows[n] = sb.String()
	return touchTexts.byRows[n]
}

// touchTexts are touchAlertsSQL's statements, by number of findings (at
// most one per rule).
var touchTexts struct {
	mu     sync.Mutex
	byRows map[int]string
}

// AlertFilter selects alerts. Empty fields match everything.
type AlertFilter struct {
	Status   string
	Severity string
	RuleID   string
	DeviceID string
	// Match, when set, keeps only the alerts on one of its devices or of
	// one of its rules (what a search found); an empty Match matches
	// nothing.
	Match *AlertMatch
	// Sort orders the listing: SortNewest (the default), SortSeverity or
	// SortLastSeen.
	Sort string
	// AfterID continues a newest-first listing: only alerts with a smaller
	// id. Cursor (AlertCursor of the last alert shown) continues any.
	AfterID int64
	Cursor  string
	Limit   int
	// CaseID keeps the alerts of one case; Ungrouped those in no active
	// case (the grouped queue's single alerts).
	CaseID    int64
	Ungrouped bool
}

const alertColumns = `a.id, a.rule_id, a.title, a.severity, a.description, a.tags, a.status, a.assignee, a.device_id,
	d.hostname, COALESCE(` + personOfDevice + `, ''), a.first_seen, a.last_seen, a.count, a.updated_at, a.evidence, a.case_id`

func scanAlert(sc interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var tags, ev string
	var fs, ls, up int64
	if err := sc.Scan(&a.ID, &a.RuleID, &a.Title, &a.Severity, &a.Description, &tags, &a.Status, &a.Assignee,
		&a.DeviceID, &a.Hostname, &a.Person, &fs, &ls, &a.Count, &up, &ev, &a.CaseID); err != nil {
		return Alert{}, err
	}
	a.FirstSeen, a.LastSeen, a.UpdatedAt = fromMicros(fs), fromMicros(ls), fromMicros(up)
	json.Unmarshal([]byte(tags), &a.Tags)
	json.Unmarshal([]byte(ev), &a.Evidence)
	a.FarmID, _ = a.Evidence["cluster"].(string)
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return a, nil
}

// AlertMatch is a set of devices and rules to search alerts by.
type AlertMatch struct {
	DeviceIDs []string
	RuleIDs   []string
}

// Alert listing orders.
const (
	SortNewest   = "newest"    // newest alert first
	SortSeverity = "severity"  // critical first, newest first within a severity
	SortLastSeen = "last_seen" // most recently fired first
)

// Severities from the most to the least severe.
var Severities = []string{"critical", "high", "medium", "low"}

// AlertCursor is where a listing in order sort continues after a.
func AlertCursor(sort string, a Alert) string {
	switch sort {
	case SortSeverity:
		return a.Severity + "." + strconv.FormatInt(a.ID, 10)
	case SortLastSeen:
		return strconv.FormatInt(micros(a.LastSeen), 10) + "." + strconv.FormatInt(a.ID, 10)
	}
	return strconv.FormatInt(a.ID, 10)
}

// alertCursor parses an AlertCursor: the severity (severity order) or
// the time in microseconds (last-seen order), and the alert id.
func alertCursor(sort, c string) (sev string, at, id int64, err error) {
	bad := fmt.Errorf("cursor %q: %w", c, ErrInvalid)
	key, c, keyed := strings.Cut(c, ".")
	if !keyed {
		c = key
	}
	if id, err = strconv.ParseInt(c, 10, 64); err != nil || id <= 0 || keyed != (sort != SortNewest) {
		return "", 0, 0, bad
	}
	switch sort {
	case SortSeverity:
		if !slices.Contains(Severities, key) {
			return "", 0, 0, bad
		}
		sev = key
	case SortLastSeen:
		if at, err = strconv.ParseInt(key, 10, 64); err != nil {
			return "", 0, 0, bad
		}
	}
	return sev, at, id, nil
}

// ListAlerts lists alerts in f.Sort order, a page at a time. Every order
// walks an index (see migration 00012), so a page costs the same on a
// million alerts as on a hundred; severity order reads each severity's
// alerts newest first in turn.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"a.status", f.Status}, {"a.severity", f.Severity}, {"a.rule_id", f.RuleID}, {"a.device_id", f.DeviceID}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.CaseID != 0 {
		where, args = append(where, "a.case_id = ?"), append(args, f.CaseID)
	}
	if f.Ungrouped {
		where = append(where, notInActiveCase)
	}
	if m := f.Match; m != nil {
		if len(m.DeviceIDs)+len(m.RuleIDs) == 0 {
			return []Alert{}, nil
		}
		// A union of two index lookups: an OR of the two would have the
		// planner walk the whole queue instead.
		var union []string
		for _, c := range []struct {
			col string
			ids []string
		}{{"device_id", m.DeviceIDs}, {"rule_id", m.RuleIDs}} {
			if len(c.ids) > 0 {
				union = append(union, "SELECT id FROM alerts WHERE "+c.col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(c.ids)), ", ")+")")
				args = append(args, anys(c.ids)...)
			}
		}
		where = append(where, "a.id IN ("+strings.Join(union, " UNION ")+")")
	}
	sort := cmp.Or(f.Sort, SortNewest)
	key, at, after := "", int64(0), f.AfterID
	if f.Cursor != "" {
		var err error
		if key, at, after, err = alertCursor(sort, f.Cursor); err != nil {
			return nil, err
		}
	}
	limit := PageLimit(f.Limit)
	switch sort {
	case SortNewest:
		if after > 0 {
			where, args = append(where, "a.id < ?"), append(args, after)
		}
		return s.queryAlerts(ctx, where, args, "a.id DESC", limit)
	case SortLastSeen:
		if after > 0 {
			where, args = append(where, "(a.last_seen, a.id) < (?, ?)"), append(args, at, after)
		}
		return s.queryAlerts(ctx, where, args, "a.last_seen DESC, a.id DESC", limit)
	case SortSeverity:
		out := []Alert{}
		for _, sev := range Severities[max(slices.Index(Severities, key), 0):] {
			if f.Severity != "" && sev != f.Severity {
				continue
			}
			w, a := append(slices.Clip(where), "a.severity = ?"), append(slices.Clip(args), sev)
			if sev == key {
				w, a = append(w, "a.id < ?"), append(a, after)
			}
			page, err := s.queryAlerts(ctx, w, a, "a.id DESC", limit-len(out))
			if err != nil {
				return nil, err
			}
			if out = append(out, page...); len(out) == limit {
				break
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("sort %q: %w", f.Sort, ErrInvalid)
}

// queryAlerts picks the page's alert ids first and only then reads those
// alerts with their host and person: sorting ids is cheap, while sorting
// whole rows would look up the person of every matching alert.
func (s *Store) queryAlerts(ctx context.Context, where []string, args []any, order string, limit int) ([]Alert, error) {
	ids := `SELECT a.id FROM alerts a`
	if len(where) > 0 {
		ids += " WHERE " + strings.Join(where, " AND ")
	}
	q := `SELECT ` + alertColumns + ` FROM alerts a LEFT JOIN devices d ON d.id = a.device_id WHERE a.id IN (` +
		ids + ` ORDER BY ` + order + ` LIMIT ?) ORDER BY ` + order
	rows, err := s.r.QueryContext(ctx, s.q(q), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return scanRows(rows, scanAlert)
}

// PageLimit is the page size a listing uses for a requested limit: 100 by
// default, at most 1000.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// GetAlert loads one alert.
func (s *Store) GetAlert(ctx context.Context, id int64) (Alert, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, s.q(`SELECT `+alertColumns+` FROM alerts a LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Alert{}, ErrNotFound
	}
	return a, err
}

// AlertChange is a triage action; nil fields are left as they are.
type AlertChange struct {
	Status   *string
	Assignee *string
	Note     *string
}

// UpdateAlert applies a triage change and records it in the audit log with
// its actor.
func (s *Store) UpdateAlert(ctx context.Context, id int64, c AlertChange, actor string) (Alert, error) {
	if c.Status != nil && !ValidStatus(*c.Status) {
		return Alert{}, fmt.Errorf("status %q: %w", *c.Status, ErrInvalid)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockClusters(ctx, tx); err != nil { // refreshCluster touches the members
			return err
		}
		var status, assignee, deviceID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT status, assignee, device_id FROM alerts WHERE id = ?`), id).Scan(&status, &assignee, &deviceID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		detail := map[string]any{}
		statusChanged := c.Status != nil && *c.Status != status
		if statusChanged {
			detail["status"] = map[string]string{"from": status, "to": *c.Status}
			status = *c.Status
		}
		if c.Assignee != nil && *c.Assignee != assignee {
			detail["assignee"] = map[string]string{"from": assignee, "to": *c.Assignee}
			assignee = *c.Assignee
		}
		if c.Note != nil && *c.Note != "" {
			detail["note"] = *c.Note
		}
		if len(detail) == 0 {
			return nil
		}
		now := time.Now()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alerts SET status = ?, assignee = ?, updated_at = ? WHERE id = ?`),
			status, assignee, micros(now), id); err != nil {
			return err
		}
		if statusChanged {
			// A resolved alert or a false positive no longer counts, in
			// the scores and in the device's cluster.
			if _, err := s.refreshRisk(ctx, wtx{Tx: tx, s: s}, deviceID, now); err != nil {
				return err
			}
			var cluster string
			if err := tx.QueryRowContext(ctx, s.q(`SELECT cluster_id FROM devices WHERE id = ?`), deviceID).Scan(&cluster); err != nil {
				return err
			}
			if cluster != "" {
				if _, err := s.refreshCluster(ctx, wtx{Tx: tx, s: s}, cluster, now); err != nil {
					return err
				}
			}
		}
		return s.audit(ctx, tx, actor, "update", "alert", fmt.Sprint(id), detail)
	})
	if err != nil {
		return Alert{}, err
	}
	return s.GetAlert(ctx, id)
}

// ErrInvalid marks a request the store refuses as malformed.
var ErrInvalid = errors.New("invalid")
