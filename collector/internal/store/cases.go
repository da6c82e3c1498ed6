package store

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cases group the alerts of one suspected farm or one person so that an
// analyst decides once, not alert by alert. An alert belongs to at most
// one case (alerts.case_id). Cases open by themselves:
//
//   - a farm case when a fleet rule (rules/fleet.yaml) fires on a member
//     of a cluster: it takes the open alerts of the cluster's members and
//     the open person cases of their people (merged into it);
//   - a person case when a person's risk reaches PersonCaseThreshold and
//     none of their devices is in a farm that has a case: it takes the
//     open alerts of the person's devices;
//
// or by hand from selected alerts (manual). A new or re-opened alert joins
// the active case of its farm, else of its person. Closing a case with an
// outcome resolves its open alerts (benign: as false positives); an alert
// of a closed case that fires again is routed like a new one.

// Case kinds.
const (
	CaseFarm   = "farm"
	CasePerson = "person"
	CaseManual = "manual"
)

// Case statuses: open and investigating are active; merged cases were
// folded into another (MergedInto).
const (
	CaseOpen          = "open"
	CaseInvestigating = "investigating"
	CaseClosed        = "closed"
	CaseMerged        = "merged"
)

// Case outcomes, set when a case is closed.
var CaseOutcomes = []string{"confirmed_fraud", "benign", "inconclusive"}

// PersonCaseThreshold is the person risk score (fleet.Risk) from which a
// person case opens by itself: a critical and a high alert (74) do not
// reach it, a critical and two highs (83) do.
const PersonCaseThreshold = 80

// ResponseStep is one step of the response checklist.
type ResponseStep struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// ResponseSteps are what a company does about a confirmed laptop farm, in
// order. Ticking StepRevokeAgents revokes the case's devices.
var ResponseSteps = []ResponseStep{
	{StepRevokeAgents, "Revoke the laptops' agents (cuts them off the collector)"},
	{"suspend_accounts", "Suspend the person's accounts (identity provider, VPN, code hosting, e-mail)"},
	{"preserve_evidence", "Preserve evidence (export the signed evidence package; keep the laptops)"},
	{"notify_hr_legal", "Notify HR and legal"},
	{"report_ic3", "Report to the authorities (FBI IC3, ic3.gov) and, where required, sanctions compliance"},
}

// StepRevokeAgents is the checklist step that revokes the case's devices.
const StepRevokeAgents = "revoke_agents"

// Case is a group of alerts under one decision.
type Case struct {
	ID      int64  `json:"id"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"` // the farm's cluster id or the person's email
	Title   string `json:"title"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
	Owner   string `json:"owner"`
	// MergedInto is the case this one was merged into (status merged).
	MergedInto int64     `json:"merged_into,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	// Of its alerts: the highest severity, how many, how many open or
	// acknowledged, on how many devices, and when they first and last
	// fired.
	Severity   string    `json:"severity"`
	Alerts     int       `json:"alerts"`
	OpenAlerts int       `json:"open_alerts"`
	Devices    int       `json:"devices"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	// Checklist is the response checklist (GetCase only).
	Checklist []CaseStep `json:"checklist,omitempty"`
}

// Active says whether the case is open or being investigated.
func (c Case) Active() bool { return c.Status == CaseOpen || c.Status == CaseInvestigating }

// CaseStep is a checklist step and whether, when and by whom it was done.
type CaseStep struct {
	ResponseStep
	Done   bool      `json:"done"`
	DoneAt time.Time `json:"done_at,omitzero"`
	DoneBy string    `json:"done_by,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// CaseNote is an analyst's note on a case.
type CaseNote struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Text   string    `json:"text"`
}

// activeCase is the SQL condition of an active case row.
const activeCase = `status IN ('open', 'investigating')`

// notInActiveCase is the SQL condition of an alert (alias a) that is in
// no active case: the alerts the grouped queue lists one by one.
const notInActiveCase = `NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = a.case_id AND c.` + activeCase + `)`

// routeAlert puts a new or re-opened alert into its case (see the package
// comment on cases): category and cluster are its rule's category and the
// device's cluster, person the device's person.
func (s *Store) routeAlert(ctx context.Context, tx wtx, alertID int64, deviceID, hostname, category, cluster, person string, at time.Time) error {
	var current int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT a.case_id FROM alerts a WHERE a.id = ? AND `+notInActiveCase), alertID).Scan(&current); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already in an active case
		}
		return fmt.Errorf("route alert: %w", err)
	}
	var target int64
	var err error
	if category == fleetCategory && cluster != "" {
		// Other devices' alerts are moved: wait for cluster work first
		// (see lockClusters).
		if err := s.lockClusters(ctx, tx.Tx); err != nil {
			return err
		}
		var created bool
		target, created, err = s.ensureCase(ctx, tx, CaseFarm, cluster, "Suspected laptop farm "+cluster, "system",
			map[string]any{"note": "a farm rule fired on " + cmp.Or(hostname, deviceID)}, at)
		if err != nil {
			return err
		}
		if created {
			if err := s.absorb(ctx, tx, target, `a.device_id IN (SELECT id FROM devices WHERE cluster_id = ?)`, []any{cluster}, at); err != nil {
				return err
			}
			// The members' people's cases fold into the farm's.
			rows, err := tx.QueryContext(ctx, s.q(`SELECT DISTINCT person FROM devices WHERE cluster_id = ? AND person <> ''`), cluster)
			if err != nil {
				return fmt.Errorf("farm case: %w", err)
			}
			people, err := scanColumn[string](rows)
			if err != nil {
				return err
			}
			for _, p := range people {
				if err := s.mergePersonCase(ctx, tx, p, target, at); err != nil {
					return err
				}
			}
		} else {
			if err := s.absorb(ctx, tx, target, `a.device_id = ?`, []any{deviceID}, at); err != nil {
				return err
			}
			if err := s.mergePersonCase(ctx, tx, person, target, at); err != nil {
				return err
			}
		}
	} else {
		if cluster != "" {
			if target, err = s.activeCaseOf(ctx, tx, CaseFarm, cluster); err != nil {
				return err
			}
		}
		if target == 0 {
			// The farm case another alert of the device is in (its
			// cluster may have changed since).
			err := tx.QueryRowContext(ctx, s.q(`SELECT c.id FROM cases c WHERE c.kind = 'farm' AND c.`+activeCase+`
				AND c.id IN (SELECT case_id FROM alerts WHERE device_id = ? AND case_id <> 0) ORDER BY c.id LIMIT 1`), deviceID).Scan(&target)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("route alert: %w", err)
			}
		}
		if target == 0 && person != "" {
			if target, err = s.activeCaseOf(ctx, tx, CasePerson, person); err != nil {
				return err
			}
		}
	}
	if target == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE alerts SET case_id = ? WHERE id = ?`), target, alertID); err != nil {
		return fmt.Errorf("route alert: %w", err)
	}
	return nil
}

// activeCaseOf is the id of the active case of a farm or person, 0 when
// there is none.
func (s *Store) activeCaseOf(ctx context.Context, tx querier, kind, subject string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM cases WHERE kind = ? AND subject = ? AND `+activeCase), kind, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("case of %s %s: %w", kind, subject, err)
	}
	return id, nil
}

// ensureCase returns the active case of a farm or person, creating it
// when there is none. Two transactions creating the same one at once (on
// PostgreSQL) make one: the second finds the first's.
func (s *Store) ensureCase(ctx context.Context, tx wtx, kind, subject, title, actor string, detail map[string]any, at time.Time) (int64, bool, error) {
	if id, err := s.activeCaseOf(ctx, tx, kind, subject); id != 0 || err != nil {
		return id, false, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO cases (kind, subject, title, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, subject) WHERE `+activeCase+` AND kind <> 'manual' DO NOTHING RETURNING id`),
		kind, subject, title, actor, micros(at), micros(at)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		id, err = s.activeCaseOf(ctx, tx, kind, subject)
		return id, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("create case: %w", err)
	}
	detail["kind"], detail["subject"] = kind, subject
	return id, true, s.audit(ctx, tx, actor, ActionOpened, "case", strconv.FormatInt(id, 10), detail)
}

// absorb moves into case id the open and acknowledged alerts matching
// where (on alerts a) that are in no active case.
func (s *Store) absorb(ctx context.Context, tx wtx, id int64, where string, args []any, at time.Time) error {
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE alerts SET case_id = ? WHERE id IN (SELECT a.id FROM alerts a WHERE `+where+`
		AND a.status IN ('open', 'acknowledged') AND `+notInActiveCase+`) RETURNING id`), append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("case %d: take alerts: %w", id, err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil || len(ids) == 0 {
		return err
	}
	slices.Sort(ids)
	return s.audit(ctx, tx, "system", "add_alerts", "case", strconv.FormatInt(id, 10), map[string]any{"alert_ids": ids})
}

// mergePersonCase folds the person's active person case, when it is still
// open (no one investigates it), into case into.
func (s *Store) mergePersonCase(ctx context.Context, tx wtx, person string, into int64, at time.Time) error {
	if person == "" {
		return nil
	}
	var from int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM cases WHERE kind = 'person' AND subject = ? AND status = 'open'`), person).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("merge case: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE alerts SET case_id = ? WHERE case_id = ?`), into, from); err != nil {
		return fmt.Errorf("merge case: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE cases SET status = 'merged', merged_into = ?, closed_at = ?, updated_at = ? WHERE id = ?`),
		into, micros(at), micros(at), from); err != nil {
		return fmt.Errorf("merge case: %w", err)
	}
	if err := s.audit(ctx, tx, "system", "merge", "case", strconv.FormatInt(from, 10), map[string]any{"into": into,
		"status": map[string]string{"from": CaseOpen, "to": CaseMerged}}); err != nil {
		return err
	}
	return s.audit(ctx, tx, "system", "merge", "case", strconv.FormatInt(into, 10), map[string]any{"from": from})
}

// personRiskCase opens a person case when the person's risk reached the
// threshold, none is active and none of their devices is in a farm with
// an active case.
func (s *Store) personRiskCase(ctx context.Context, tx wtx, person string, score int, at time.Time) error {
	if person == "" || score < PersonCaseThreshold {
		return nil
	}
	if id, err := s.activeCaseOf(ctx, tx, CasePerson, person); id != 0 || err != nil {
		return err
	}
	var farm int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT c.id FROM cases c WHERE c.kind = 'farm' AND c.`+activeCase+`
		AND c.subject IN (SELECT cluster_id FROM devices WHERE person = ? AND cluster_id <> '') LIMIT 1`), person).Scan(&farm)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("person case: %w", err)
	}
	if err := s.lockClusters(ctx, tx.Tx); err != nil { // the person's other devices' alerts move
		return err
	}
	id, created, err := s.ensureCase(ctx, tx, CasePerson, person, "High-risk person "+person, "system",
		map[string]any{"note": fmt.Sprintf("the person's risk reached %d", score)}, at)
	if err != nil || !created {
		return err
	}
	return s.absorb(ctx, tx, id, `a.device_id IN (SELECT id FROM devices WHERE person = ?)`, []any{person}, at)
}

// CreateCase opens a case by hand with the given alerts (1 to 1000),
// taking them out of the cases they were in.
func (s *Store) CreateCase(ctx context.Context, title string, alertIDs []int64, actor string) (Case, error) {
	title = strings.TrimSpace(title)
	if len(alertIDs) == 0 || len(alertIDs) > 1000 {
		return Case{}, fmt.Errorf("a case needs 1 to 1000 alerts: %w", ErrInvalid)
	}
	if len(title) > 200 {
		return Case{}, fmt.Errorf("a case title is at most 200 bytes: %w", ErrInvalid)
	}
	slices.Sort(alertIDs)
	alertIDs = slices.Compact(alertIDs)
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM alerts WHERE id IN (`+marks(len(alertIDs))+`)`), int64Anys(alertIDs)...).Scan(&n); err != nil {
			return err
		}
		if n != len(alertIDs) {
			return fmt.Errorf("%d of the %d alerts do not exist: %w", len(alertIDs)-n, len(alertIDs), ErrNotFound)
		}
		if title == "" {
			title = fmt.Sprintf("Case of %d alerts", len(alertIDs))
		}
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO cases (kind, subject, title, created_by, created_at, updated_at) VALUES ('manual', '', ?, ?, ?, ?) RETURNING id`),
			title, actor, micros(now), micros(now)).Scan(&id); err != nil {
			return fmt.Errorf("create case: %w", err)
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT DISTINCT case_id FROM alerts WHERE case_id <> 0 AND id IN (`+marks(len(alertIDs))+`)`), int64Anys(alertIDs)...)
		if err != nil {
			return err
		}
		from, err := scanColumn[int64](rows)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alerts SET case_id = ? WHERE id IN (`+marks(len(alertIDs))+`)`), append([]any{id}, int64Anys(alertIDs)...)...); err != nil {
			return err
		}
		for _, f := range from {
			if err := s.audit(ctx, tx, actor, "move_alerts", "case", strconv.FormatInt(f, 10), map[string]any{"to": id}); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, actor, ActionOpened, "case", strconv.FormatInt(id, 10), map[string]any{"kind": CaseManual, "alert_ids": alertIDs})
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

func int64Anys(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// CaseFilter selects cases. Status is a status, "active" (open or
// investigating; the default) or "all".
type CaseFilter struct {
	Status  string
	Kind    string
	Owner   string
	AfterID int64 // newest first: only cases with a smaller id
	Limit   int
}

const caseColumns = `id, kind, subject, title, status, outcome, owner, merged_into, created_by, created_at, updated_at, closed_at`

func scanCase(sc interface{ Scan(...any) error }) (Case, error) {
	var c Case
	var created, updated, closed int64
	if err := sc.Scan(&c.ID, &c.Kind, &c.Subject, &c.Title, &c.Status, &c.Outcome, &c.Owner, &c.MergedInto, &c.CreatedBy,
		&created, &updated, &closed); err != nil {
		return Case{}, err
	}
	c.CreatedAt, c.UpdatedAt, c.ClosedAt = fromMicros(created), fromMicros(updated), fromMicros(closed)
	return c, nil
}

// ListCases lists cases newest first, a page at a time.
func (s *Store) ListCases(ctx context.Context, f CaseFilter) ([]Case, error) {
	var where []string
	var args []any
	switch st := cmp.Or(f.Status, "active"); st {
	case "active":
		where = append(where, activeCase)
	case "all":
	case CaseOpen, CaseInvestigating, CaseClosed, CaseMerged:
		where, args = append(where, "status = ?"), append(args, st)
	default:
		return nil, fmt.Errorf("case status %q: %w", st, ErrInvalid)
	}
	switch f.Kind {
	case "":
	case CaseFarm, CasePerson, CaseManual:
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	default:
		return nil, fmt.Errorf("case kind %q: %w", f.Kind, ErrInvalid)
	}
	if f.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, f.Owner)
	}
	if f.AfterID > 0 {
		where, args = append(where, "id < ?"), append(args, f.AfterID)
	}
	q := `SELECT ` + caseColumns + ` FROM cases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY id DESC LIMIT ?`), append(args, PageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	out, err := scanRows(rows, scanCase)
	if err != nil {
		return nil, err
	}
	return out, s.caseTallies(ctx, out)
}

// caseTallies fills the cases' alert counts, severity and times.
func (s *Store) caseTallies(ctx context.Context, cases []Case) error {
	if len(cases) == 0 {
		return nil
	}
	index := map[int64]int{}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		index[c.ID], ids[i] = i, c.ID
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT case_id, severity, status, device_id, first_seen, last_seen FROM alerts
		WHERE case_id IN (`+marks(len(ids))+`)`), int64Anys(ids)...)
	if err != nil {
		return fmt.Errorf("case alerts: %w", err)
	}
	defer rows.Close()
	devices := map[int64]map[string]bool{}
	for rows.Next() {
		var id, first, last int64
		var sev, status, device string
		if err := rows.Scan(&id, &sev, &status, &device, &first, &last); err != nil {
			return err
		}
		c := &cases[index[id]]
		c.Alerts++
		if status == StatusOpen || status == StatusAcknowledged {
			c.OpenAlerts++
			if c.Severity == "" || slices.Index(Severities, sev) < slices.Index(Severities, c.Severity) {
				c.Severity = sev
			}
		}
		if devices[id] == nil {
			devices[id] = map[string]bool{}
		}
		devices[id][device] = true
		if f := fromMicros(first); c.FirstSeen.IsZero() || f.Before(c.FirstSeen) {
			c.FirstSeen = f
		}
		if l := fromMicros(last); l.After(c.LastSeen) {
			c.LastSeen = l
		}
	}
	for id, d := range devices {
		cases[index[id]].Devices = len(d)
	}
	for i := range cases {
		cases[i].Severity = cmp.Or(cases[i].Severity, "low")
	}
	return rows.Err()
}

// GetCase loads a case with its tallies and checklist.
func (s *Store) GetCase(ctx context.Context, id int64) (Case, error) {
	c, err := scanCase(s.r.QueryRowContext(ctx, s.q(`SELECT `+caseColumns+` FROM cases WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Case{}, ErrNotFound
	}
	if err != nil {
		return Case{}, err
	}
	one := []Case{c}
	if err := s.caseTallies(ctx, one); err != nil {
		return Case{}, err
	}
	c = one[0]
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT step, done_at, done_by, note FROM case_steps WHERE case_id = ?`), id)
	if err != nil {
		return Case{}, fmt.Errorf("case checklist: %w", err)
	}
	defer rows.Close()
	done := map[string]CaseStep{}
	for rows.Next() {
		var st CaseStep
		var at int64
		if err := rows.Scan(&st.ID, &at, &st.DoneBy, &st.Note); err != nil {
			return Case{}, err
		}
		st.Done, st.DoneAt = true, fromMicros(at)
		done[st.ID] = st
	}
	if err := rows.Err(); err != nil {
		return Case{}, err
	}
	for _, rs := range ResponseSteps {
		st := done[rs.ID]
		st.ResponseStep = rs
		c.Checklist = append(c.Checklist, st)
	}
	return c, nil
}

// CaseChange is an analyst's change to a case; nil fields are kept.
// Closing needs an outcome.
type CaseChange struct {
	Status  *string
	Outcome *string
	Owner   *string
	Title   *string
}

// UpdateCase applies a change and records it in the audit log. Closing a
// case resolves its open and acknowledged alerts (benign: as false
// positives), each with a timeline entry.
func (s *Store) UpdateCase(ctx context.Context, id int64, c CaseChange, actor string) (Case, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockClusters(ctx, tx); err != nil { // closing touches the alerts' clusters
			return err
		}
		cur, err := scanCase(tx.QueryRowContext(ctx, s.q(`SELECT `+caseColumns+` FROM cases WHERE id = ?`+s.forUpdate()), id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur.Status == CaseMerged {
			return fmt.Errorf("case %d was merged into case %d: %w", id, cur.MergedInto, ErrInvalid)
		}
		next := cur
		if c.Status != nil {
			next.Status = *c.Status
		}
		if c.Outcome != nil {
			next.Outcome = *c.Outcome
		}
		if c.Owner != nil {
			next.Owner = strings.TrimSpace(*c.Owner)
		}
		if c.Title != nil && strings.TrimSpace(*c.Title) != "" {
			next.Title = strings.TrimSpace(*c.Title)
		}
		switch {
		case !slices.Contains([]string{CaseOpen, CaseInvestigating, CaseClosed}, next.Status):
			return fmt.Errorf("case status %q (open, investigating or closed): %w", next.Status, ErrInvalid)
		case next.Status == CaseClosed && !slices.Contains(CaseOutcomes, next.Outcome):
			return fmt.Errorf("closing a case needs an outcome (%s): %w", strings.Join(CaseOutcomes, ", "), ErrInvalid)
		case next.Status != CaseClosed && next.Outcome != "" && c.Outcome != nil:
			return fmt.Errorf("an outcome is given when the case is closed: %w", ErrInvalid)
		case len(next.Owner) > 200 || len(next.Title) > 200:
			return fmt.Errorf("owner and title are at most 200 bytes: %w", ErrInvalid)
		}
		if next.Status != CaseClosed {
			next.Outcome = ""
		}
		detail := map[string]any{}
		for _, f := range []struct{ name, from, to string }{{"status", cur.Status, next.Status}, {"outcome", cur.Outcome, next.Outcome},
			{"owner", cur.Owner, next.Owner}, {"title", cur.Title, next.Title}} {
			if f.from != f.to {
				detail[f.name] = map[string]string{"from": f.from, "to": f.to}
			}
		}
		if len(detail) == 0 {
			return nil
		}
		now := time.Now()
		closedAt := micros(cur.ClosedAt)
		if next.Status == CaseClosed && cur.Status != CaseClosed {
			closedAt = micros(now)
		} else if next.Status != CaseClosed {
			closedAt = 0
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE cases SET status = ?, outcome = ?, owner = ?, title = ?, closed_at = ?, updated_at = ? WHERE id = ?`),
			next.Status, next.Outcome, next.Owner, next.Title, closedAt, micros(now), id); err != nil {
			if cur.Kind != CaseManual && next.Status != CaseClosed {
				return fmt.Errorf("the %s already has another active case: %w", cur.Kind, ErrInvalid)
			}
			return fmt.Errorf("update case: %w", err)
		}
		if err := s.audit(ctx, tx, actor, "update", "case", strconv.FormatInt(id, 10), detail); err != nil {
			return err
		}
		if next.Status == CaseClosed && cur.Status != CaseClosed {
			return s.closeCaseAlerts(ctx, wtx{Tx: tx, s: s}, id, next.Outcome, actor, now)
		}
		return nil
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

// closeCaseAlerts resolves a closed case's open and acknowledged alerts
// and refreshes the scores and clusters they counted in.
func (s *Store) closeCaseAlerts(ctx context.Context, tx wtx, id int64, outcome, actor string, now time.Time) error {
	to := StatusResolved
	if outcome == "benign" {
		to = StatusFalsePositive
	}
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE alerts SET status = ?, updated_at = ? WHERE case_id = ? AND status IN ('open', 'acknowledged')
		RETURNING id, device_id`), to, micros(now), id)
	if err != nil {
		return fmt.Errorf("close case: %w", err)
	}
	var alerts []int64
	devices := map[string]bool{}
	for rows.Next() {
		var a int64
		var d string
		if err := rows.Scan(&a, &d); err != nil {
			rows.Close()
			return err
		}
		alerts, devices[d] = append(alerts, a), true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	slices.Sort(alerts)
	for _, a := range alerts {
		if err := s.audit(ctx, tx, actor, "update", "alert", strconv.FormatInt(a, 10), map[string]any{
			"status": map[string]string{"to": to}, "note": fmt.Sprintf("case %d closed: %s", id, outcome)}); err != nil {
			return err
		}
	}
	clusters := map[string]bool{}
	for _, d := range slices.Sorted(maps.Keys(devices)) {
		if _, err := s.refreshRisk(ctx, tx, d, now); err != nil {
			return err
		}
		var cluster string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT cluster_id FROM devices WHERE id = ?`), d).Scan(&cluster); err != nil {
			return err
		}
		if cluster != "" {
			clusters[cluster] = true
		}
	}
	for _, c := range slices.Sorted(maps.Keys(clusters)) {
		if _, err := s.refreshCluster(ctx, tx, c, now); err != nil {
			return err
		}
	}
	return nil
}

// AddCaseNote adds a note (1 to 4000 bytes) to a case.
func (s *Store) AddCaseNote(ctx context.Context, id int64, text, actor string) (CaseNote, error) {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 4000 {
		return CaseNote{}, fmt.Errorf("a note is 1 to 4000 bytes: %w", ErrInvalid)
	}
	n := CaseNote{At: time.Now().UTC().Truncate(time.Microsecond), Author: actor, Text: text}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.caseExists(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO case_notes (case_id, at, author, text) VALUES (?, ?, ?, ?) RETURNING id`),
			id, micros(n.At), actor, text).Scan(&n.ID); err != nil {
			return fmt.Errorf("case note: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE cases SET updated_at = ? WHERE id = ?`), micros(n.At), id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "note", "case", strconv.FormatInt(id, 10), map[string]any{"note": text})
	})
	return n, err
}

func (s *Store) caseExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var n int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM cases WHERE id = ?`), id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// CaseNotes lists a case's notes, oldest first.
func (s *Store) CaseNotes(ctx context.Context, id int64) ([]CaseNote, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, at, author, text FROM case_notes WHERE case_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("case notes: %w", err)
	}
	return scanRows(rows, func(sc scanner) (CaseNote, error) {
		var n CaseNote
		var at int64
		err := sc.Scan(&n.ID, &at, &n.Author, &n.Text)
		n.At = fromMicros(at)
		return n, err
	})
}

// TickStep marks a checklist step done (done false: not done), with an
// optional note, in the audit log with its actor. Ticking StepRevokeAgents
// first revokes every device of the case that is not revoked yet (each
// revocation in the audit log too), in the same transaction.
func (s *Store) TickStep(ctx context.Context, id int64, step string, done bool, note, actor string) (Case, error) {
	if !slices.ContainsFunc(ResponseSteps, func(r ResponseStep) bool { return r.ID == step }) {
		return Case{}, fmt.Errorf("checklist step %q: %w", step, ErrInvalid)
	}
	note = strings.TrimSpace(note)
	if len(note) > 4000 {
		return Case{}, fmt.Errorf("a note is at most 4000 bytes: %w", ErrInvalid)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.caseExists(ctx, tx, id); err != nil {
			return err
		}
		now := time.Now()
		var had int
		err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM case_steps WHERE case_id = ? AND step = ?`), id, step).Scan(&had)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if (had == 1) == done {
			return nil // already so
		}
		detail := map[string]any{"step": step, "done": done}
		if note != "" {
			detail["note"] = note
		}
		if !done {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM case_steps WHERE case_id = ? AND step = ?`), id, step); err != nil {
				return err
			}
			return s.audit(ctx, tx, actor, "checklist", "case", strconv.FormatInt(id, 10), detail)
		}
		if step == StepRevokeAgents {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT DISTINCT d.id FROM devices d JOIN alerts a ON a.device_id = d.id
				WHERE a.case_id = ? AND d.revoked_at = 0 ORDER BY d.id`), id)
			if err != nil {
				return err
			}
			ids, err := scanColumn[string](rows)
			if err != nil {
				return err
			}
			for _, d := range ids {
				if err := s.revokeDevice(ctx, tx, d, actor, now); err != nil {
					return err
				}
			}
			detail["revoked_devices"] = ids
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO case_steps (case_id, step, done_at, done_by, note) VALUES (?, ?, ?, ?, ?)`),
			id, step, micros(now), actor, note); err != nil {
			return fmt.Errorf("checklist: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE cases SET updated_at = ? WHERE id = ?`), micros(now), id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "checklist", "case", strconv.FormatInt(id, 10), detail)
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

// CaseDevices lists the ids of the devices a case's alerts are on.
func (s *Store) CaseDevices(ctx context.Context, id int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT DISTINCT device_id FROM alerts WHERE case_id = ? ORDER BY device_id`), id)
	if err != nil {
		return nil, fmt.Errorf("case devices: %w", err)
	}
	return scanColumn[string](rows)
}

// CaseAudit is the audit log of a case and of its alerts, oldest first
// (at most 5000 entries).
func (s *Store) CaseAudit(ctx context.Context, id int64) ([]AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log
		WHERE (target_type = 'case' AND target_id = ?) OR (target_type = 'alert' AND target_id IN (SELECT `+s.castText("id")+` FROM alerts WHERE case_id = ?))
		ORDER BY id LIMIT 5000`), strconv.FormatInt(id, 10), id)
	if err != nil {
		return nil, fmt.Errorf("case audit: %w", err)
	}
	return scanRows(rows, scanAuditEntry)
}

// castText casts an integer column to text in the dialect.
func (s *Store) castText(col string) string {
	return "CAST(" + col + " AS TEXT)"
}

// Locate finds a place's coordinates in the gazetteer (SetPlaces); ok is
// false when there is none or it does not know the place.
func (s *Store) Locate(country, region, city string) (lat, lon float64, ok bool) {
	if s.places == nil || city == "" {
		return 0, 0, false
	}
	_, lat, lon, err := s.places.Locate(country, region, city)
	return lat, lon, err == nil
}

// signingKeyName names the evidence packages' key in signing_keys.
const signingKeyName = "evidence"

// SigningKey is the collector's Ed25519 key that signs evidence packages,
// created on first use and kept in the database, so that every replica
// signs with the same key.
func (s *Store) SigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	load := func() (ed25519.PrivateKey, error) {
		var priv string
		err := s.w.QueryRowContext(ctx, s.q(`SELECT private_key FROM signing_keys WHERE name = ?`), signingKeyName).Scan(&priv)
		if err != nil {
			return nil, err
		}
		seed, err := hex.DecodeString(priv)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("signing key: stored seed is malformed")
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	k, err := load()
	if !errors.Is(err, sql.ErrNoRows) {
		return k, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO signing_keys (name, private_key, public_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		signingKeyName, hex.EncodeToString(priv.Seed()), hex.EncodeToString(pub), micros(time.Now())); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return load() // another replica's, when it was first
}

// RecordExport notes in the audit log that a case's evidence package was
// exported, with the SHA-256 of its signed manifest.
func (s *Store) RecordExport(ctx context.Context, id int64, manifestSHA256, actor string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.caseExists(ctx, tx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "export", "case", strconv.FormatInt(id, 10), map[string]any{"manifest_sha256": manifestSHA256})
	})
}
