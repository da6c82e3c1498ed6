package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// Presence check states: pending (the link was sent), verifying (the
// person's assertion verified; the collector waits for the agent's
// report), passed and failed.
const (
	PresencePending   = "pending"
	PresenceVerifying = "verifying"
	PresencePassed    = "passed"
	PresenceFailed    = "failed"
)

// Errors of the presence flow the edges map to their own answers.
var (
	// ErrPresenceCap: the person reached the daily cap of checks.
	ErrPresenceCap = errors.New("daily cap of presence checks reached for this person")
	// ErrPresenceDone: the check or enrolment link is no longer open
	// (completed, expired or used).
	ErrPresenceDone = errors.New("no longer open")
)

// PresenceCheck is one presence check as the API shows it.
type PresenceCheck struct {
	ID          string    `json:"id"`
	Person      string    `json:"person"`
	DeviceID    string    `json:"device_id"`
	Hostname    string    `json:"hostname"`
	RequestedBy string    `json:"requested_by"`
	Note        string    `json:"note"`
	State       string    `json:"state"`
	Outcome     string    `json:"outcome"` // "" until passed or failed
	Reasons     []string  `json:"reasons"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	AssertedAt  time.Time `json:"asserted_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// CredentialID is the credential (base64url) the assertion used.
	CredentialID string `json:"credential_id"`
	// BrowserIP is the address the assertion came from, AgentIP the
	// egress address of the agent's report that corroborated it.
	BrowserIP   string `json:"browser_ip"`
	AgentIP     string `json:"agent_ip"`
	AgentReport string `json:"agent_report"`
	// Observation is what the agent saw at the moment of the check.
	Observation json.RawMessage `json:"observation"`
	// Trigger names the alert opening that asked for the check
	// automatically ("alert:ID:OPENED_US"); empty when an analyst asked.
	Trigger string `json:"trigger,omitempty"`
}

// PresenceCredential is a WebAuthn credential bound to a person and the
// device it was registered on.
type PresenceCredential struct {
	ID         string `json:"id"` // base64url credential id
	Person     string `json:"person"`
	DeviceID   string `json:"device_id"`
	UserHandle string `json:"-"`
	// Record is the WebAuthn library's credential record, JSON.
	Record json.RawMessage `json:"-"`
	// Attestation is the attestation statement format the authenticator
	// gave ("none" when it gave none).
	Attestation string    `json:"attestation"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	LastUsed    time.Time `json:"last_used,omitzero"`
}

// PresenceEnrolment is a one-time enrolment link.
type PresenceEnrolment struct {
	Person    string
	DeviceID  string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	// Roaming accepts a roaming authenticator (a FIDO2 key) where the
	// laptop has no platform one.
	Roaming bool
}

// CreatePresenceEnrolment records an enrolment link (by its token's hash).
func (s *Store) CreatePresenceEnrolment(ctx context.Context, tokenHash string, e PresenceEnrolment) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO presence_enrolments (token_hash, person, device_id, created_by, created_at, expires_at, roaming)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), tokenHash, e.Person, e.DeviceID, e.CreatedBy, micros(e.CreatedAt), micros(e.ExpiresAt), boolInt(e.Roaming)); err != nil {
			return fmt.Errorf("presence enrolment: %w", err)
		}
		return s.audit(ctx, tx, e.CreatedBy, "presence_enrolment_created", "person", e.Person, map[string]any{
			"device_id": e.DeviceID, "expires_at": e.ExpiresAt, "roaming": e.Roaming})
	})
}

// GetPresenceEnrolment reads an enrolment link by its token's hash.
func (s *Store) GetPresenceEnrolment(ctx context.Context, tokenHash string) (PresenceEnrolment, error) {
	var e PresenceEnrolment
	var created, expires, used, roaming int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT person, device_id, created_by, created_at, expires_at, used_at, roaming FROM presence_enrolments WHERE token_hash = ?`),
		tokenHash).Scan(&e.Person, &e.DeviceID, &e.CreatedBy, &created, &expires, &used, &roaming)
	e.Roaming = roaming != 0
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	e.CreatedAt, e.ExpiresAt, e.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	return e, err
}

// PresenceUserHandle is the WebAuthn user handle of a person's credentials
// ("" when they have none yet).
func (s *Store) PresenceUserHandle(ctx context.Context, person string) (string, error) {
	var h string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT user_handle FROM presence_credentials WHERE person = ? ORDER BY created_at LIMIT 1`), person).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// AddPresenceCredential stores a credential registered through an
// enrolment link and uses the link up, in one transaction: a link
// registers one credential, before it expires.
func (s *Store) AddPresenceCredential(ctx context.Context, tokenHash string, c PresenceCredential) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE presence_enrolments SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`),
			micros(c.CreatedAt), tokenHash, micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("use enrolment link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("enrolment link: %w", ErrPresenceDone)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO presence_credentials (id, person, device_id, user_handle, credential, attestation, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), c.ID, c.Person, c.DeviceID, c.UserHandle, string(c.Record), c.Attestation, c.CreatedBy, micros(c.CreatedAt)); err != nil {
			return fmt.Errorf("presence credential: %w", err)
		}
		return s.audit(ctx, tx, c.Person, "presence_credential_enrolled", "person", c.Person, map[string]any{
			"device_id": c.DeviceID, "credential_id": c.ID, "attestation": c.Attestation, "link_created_by": c.CreatedBy})
	})
}

// PresenceCredentials lists a person's credentials, oldest first.
func (s *Store) PresenceCredentials(ctx context.Context, person string) ([]PresenceCredential, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, person, device_id, user_handle, credential, attestation, created_by, created_at, last_used
		FROM presence_credentials WHERE person = ? AND revoked_at = 0 ORDER BY created_at, id LIMIT 50`), person)
	if err != nil {
		return nil, fmt.Errorf("presence credentials: %w", err)
	}
	defer rows.Close()
	out := []PresenceCredential{}
	for rows.Next() {
		var c PresenceCredential
		var rec string
		var created, used int64
		if err := rows.Scan(&c.ID, &c.Person, &c.DeviceID, &c.UserHandle, &rec, &c.Attestation, &c.CreatedBy, &created, &used); err != nil {
			return nil, err
		}
		c.Record, c.CreatedAt, c.LastUsed = json.RawMessage(rec), fromMicros(created), fromMicros(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// SavePresenceChallenge keeps the state of a WebAuthn ceremony for a
// subject (an enrolment link or a check), replacing an earlier one.
func (s *Store) SavePresenceChallenge(ctx context.Context, subject string, session []byte, expires time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO presence_challenges (subject, session, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET session = excluded.session, expires_at = excluded.expires_at`, subject, string(session), micros(expires))
	if err != nil {
		return fmt.Errorf("presence challenge: %w", err)
	}
	return nil
}

// TakePresenceChallenge removes and returns a subject's ceremony state:
// each challenge answers one response. An expired or already taken
// challenge is ErrNotFound.
func (s *Store) TakePresenceChallenge(ctx context.Context, subject string, now time.Time) ([]byte, error) {
	var session string
	var expires int64
	err := s.w.QueryRowContext(ctx, s.q(`DELETE FROM presence_challenges WHERE subject = ? RETURNING session, expires_at`), subject).Scan(&session, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= micros(now)) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("presence challenge: %w", err)
	}
	return []byte(session), nil
}

// DeleteExpiredPresenceChallenges removes the state of ceremonies begun
// and never answered.
func (s *Store) DeleteExpiredPresenceChallenges(ctx context.Context, now time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM presence_challenges WHERE expires_at <= ?`, micros(now))
	return err
}

// CreatePresenceCheck records a new check unless the person already had
// dailyCap checks in the last 24 hours (ErrPresenceCap) or, for an
// automatic check, its trigger already asked for one (ErrPresenceDone).
// detail goes into the audit entry, and so to the outputs: the
// notification.
func (s *Store) CreatePresenceCheck(ctx context.Context, c PresenceCheck, tokenHash string, dailyCap int, detail map[string]any) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Serialise the checks of one person (PostgreSQL), so the cap holds.
		if s.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "presence:"+c.Person); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM presence_checks WHERE person = ? AND created_at > ?`),
			c.Person, micros(c.CreatedAt.Add(-24*time.Hour))).Scan(&n); err != nil {
			return fmt.Errorf("count presence checks: %w", err)
		}
		if c.Trigger != "" {
			var done int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM presence_checks WHERE trigger_key = ?`), c.Trigger).Scan(&done); err != nil {
				return fmt.Errorf("presence check trigger: %w", err)
			}
			if done > 0 {
				return ErrPresenceDone
			}
		}
		if dailyCap > 0 && n >= dailyCap {
			return ErrPresenceCap
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO presence_checks (id, token_hash, person, device_id, requested_by, note, state, created_at, expires_at, trigger_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), c.ID, tokenHash, c.Person, c.DeviceID, c.RequestedBy, c.Note, PresencePending,
			micros(c.CreatedAt), micros(c.ExpiresAt), c.Trigger); err != nil {
			return fmt.Errorf("presence check: %w", err)
		}
		return s.audit(ctx, tx, c.RequestedBy, "presence_check_requested", "presence_check", c.ID, detail)
	})
}

const presenceColumns = `c.id, c.person, c.device_id, COALESCE(d.hostname, ''), c.requested_by, c.note, c.state, c.reasons,
	c.created_at, c.expires_at, c.asserted_at, c.completed_at, c.credential_id, c.browser_ip, c.agent_ip, c.agent_report, c.observation, c.trigger_key`

func scanPresence(sc interface{ Scan(...any) error }) (PresenceCheck, error) {
	var c PresenceCheck
	var reasons, obs string
	var created, expires, asserted, completed int64
	if err := sc.Scan(&c.ID, &c.Person, &c.DeviceID, &c.Hostname, &c.RequestedBy, &c.Note, &c.State, &reasons,
		&created, &expires, &asserted, &completed, &c.CredentialID, &c.BrowserIP, &c.AgentIP, &c.AgentReport, &obs, &c.Trigger); err != nil {
		return c, err
	}
	c.Reasons = []string{}
	json.Unmarshal([]byte(reasons), &c.Reasons)
	c.Observation = json.RawMessage(obs)
	c.CreatedAt, c.ExpiresAt, c.AssertedAt, c.CompletedAt = fromMicros(created), fromMicros(expires), fromMicros(asserted), fromMicros(completed)
	if c.State == PresencePassed || c.State == PresenceFailed {
		c.Outcome = c.State
	}
	return c, nil
}

func (s *Store) presenceCheck(ctx context.Context, q querier, where string, arg any) (PresenceCheck, error) {
	c, err := scanPresence(q.QueryRowContext(ctx, s.q(`SELECT `+presenceColumns+` FROM presence_checks c LEFT JOIN devices d ON d.id = c.device_id WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// GetPresenceCheck reads a check by id.
func (s *Store) GetPresenceCheck(ctx context.Context, id string) (PresenceCheck, error) {
	return s.presenceCheck(ctx, s.r, "c.id = ?", id)
}

// PresenceCheckByToken reads a check by its link token's hash.
func (s *Store) PresenceCheckByToken(ctx context.Context, tokenHash string) (PresenceCheck, error) {
	return s.presenceCheck(ctx, s.r, "c.token_hash = ?", tokenHash)
}

// ListPresenceChecks lists a person's checks, newest first, at most limit.
func (s *Store) ListPresenceChecks(ctx context.Context, person string, limit int) ([]PresenceCheck, error) {
	return s.queryPresence(ctx, `c.person = ? ORDER BY c.created_at DESC, c.id LIMIT ?`, person, PageLimit(limit))
}

// PresenceChecksAwaitingAgent lists the checks of a device whose
// assertion verified and that wait for the agent's report.
func (s *Store) PresenceChecksAwaitingAgent(ctx context.Context, deviceID string, now time.Time) ([]PresenceCheck, error) {
	return s.queryPresence(ctx, `c.device_id = ? AND c.state = '`+PresenceVerifying+`' AND c.expires_at > ? ORDER BY c.created_at LIMIT 10`, deviceID, micros(now))
}

// PresenceChecksAwaitingPerson lists the checks of a device that wait for
// the person's answer.
func (s *Store) PresenceChecksAwaitingPerson(ctx context.Context, deviceID string, now time.Time) ([]PresenceCheck, error) {
	return s.queryPresence(ctx, `c.device_id = ? AND c.state = '`+PresencePending+`' AND c.expires_at > ? ORDER BY c.created_at LIMIT 10`, deviceID, micros(now))
}

// ExpiredPresenceChecks lists open checks past their deadline.
func (s *Store) ExpiredPresenceChecks(ctx context.Context, now time.Time) ([]PresenceCheck, error) {
	return s.queryPresence(ctx, `c.state IN ('`+PresencePending+`', '`+PresenceVerifying+`') AND c.expires_at <= ? ORDER BY c.expires_at LIMIT 500`, micros(now))
}

func (s *Store) queryPresence(ctx context.Context, where string, args ...any) ([]PresenceCheck, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+presenceColumns+` FROM presence_checks c LEFT JOIN devices d ON d.id = c.device_id WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("presence checks: %w", err)
	}
	defer rows.Close()
	out := []PresenceCheck{}
	for rows.Next() {
		c, err := scanPresence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AssertPresenceCheck records a verified assertion on a pending check
// that has not expired: the check now waits for the agent until
// deadline. The credential's record (new sign count) is updated with it.
func (s *Store) AssertPresenceCheck(ctx context.Context, id, credentialID string, record []byte, browserIP string, at, deadline time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE presence_checks SET state = ?, asserted_at = ?, expires_at = ?, credential_id = ?, browser_ip = ?
			WHERE id = ? AND state = ? AND expires_at > ?`), PresenceVerifying, micros(at), micros(deadline), credentialID, browserIP, id, PresencePending, micros(at))
		if err != nil {
			return fmt.Errorf("presence assertion: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("presence check %s: %w", id, ErrPresenceDone)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE presence_credentials SET credential = ?, last_used = ? WHERE id = ?`), string(record), micros(at), credentialID); err != nil {
			return fmt.Errorf("presence credential: %w", err)
		}
		return s.audit(ctx, tx, "system", "presence_check_asserted", "presence_check", id, map[string]any{
			"credential_id": credentialID, "browser_ip": browserIP})
	})
}

// PresenceResult is how a check ended.
type PresenceResult struct {
	Passed      bool
	Reasons     []string
	BrowserIP   string // when the browser answered (kept otherwise)
	AgentIP     string
	AgentReport string
	Observation any
	// Alert is raised on the check's device when the check failed.
	Alert *detect.Finding
}

// FinishPresenceCheck ends a check that is still in one of the states
// from: it stores the outcome, audits it and, for a failed check, raises
// r.Alert on the device through the rules' path (so the device's risk and
// its cluster's co-signals follow). It returns the check as it ended, and
// ErrPresenceDone when the check had already left those states.
func (s *Store) FinishPresenceCheck(ctx context.Context, id string, from []string, r PresenceResult, at time.Time, ev Evaluator) (PresenceCheck, error) {
	state := PresenceFailed
	if r.Passed {
		state = PresencePassed
	}
	reasons, _ := json.Marshal(append([]string{}, r.Reasons...))
	obs, err := json.Marshal(r.Observation)
	if err != nil {
		return PresenceCheck{}, err
	}
	if r.Observation == nil {
		obs = []byte("{}")
	}
	var out PresenceCheck
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var locked string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT state FROM presence_checks WHERE id = ?`+s.forUpdate()), id).Scan(&locked); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		c, err := s.presenceCheck(ctx, tx, "c.id = ?", id)
		if err != nil {
			return err
		}
		ok := false
		for _, f := range from {
			ok = ok || c.State == f
		}
		if !ok {
			return fmt.Errorf("presence check %s: %w", id, ErrPresenceDone)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE presence_checks SET state = ?, reasons = ?, completed_at = ?, agent_ip = ?, agent_report = ?, observation = ?,
			browser_ip = CASE WHEN CAST(? AS TEXT) = '' THEN browser_ip ELSE CAST(? AS TEXT) END WHERE id = ?`), state, string(reasons), micros(at), r.AgentIP, r.AgentReport, string(obs),
			r.BrowserIP, r.BrowserIP, id); err != nil {
			return fmt.Errorf("finish presence check: %w", err)
		}
		if err := s.audit(ctx, tx, "system", "presence_check_"+state, "presence_check", id, map[string]any{
			"person": c.Person, "device_id": c.DeviceID, "reasons": r.Reasons}); err != nil {
			return err
		}
		if !r.Passed && r.Alert != nil {
			if err := s.lockClusters(ctx, tx); err != nil {
				return err
			}
			w := wtx{tx, s}
			facts, err := s.deviceFacts(ctx, w, c.DeviceID, at, nil)
			if err != nil {
				return err
			}
			if err := s.judge(ctx, w, facts, verdict{findings: []detect.Finding{*r.Alert}}, nil, at, ev); err != nil {
				return err
			}
		}
		out, err = s.presenceCheck(ctx, tx, "c.id = ?", id)
		return err
	})
	return out, err
}

// AlertOpening is an alert's opening or re-opening, which may ask for an
// automatic presence check.
type AlertOpening struct {
	AlertID  int64
	RuleID   string
	DeviceID string
	Person   string // the device's bound person ("" when none)
	OpenedAt time.Time
}

// Key names the opening for CreatePresenceCheck's trigger.
func (o AlertOpening) Key() string { return fmt.Sprintf("alert:%d:%d", o.AlertID, micros(o.OpenedAt)) }

// AlertOpenings lists the open alerts opened or re-opened after since on
// devices bound to a person, oldest first, at most 500.
func (s *Store) AlertOpenings(ctx context.Context, since time.Time) ([]AlertOpening, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT a.id, a.rule_id, a.device_id, d.person, a.first_seen, a.reopened_at FROM alerts a JOIN devices d ON d.id = a.device_id
		WHERE a.status = 'open' AND d.person <> '' AND (a.first_seen > ? OR a.reopened_at > ?) ORDER BY a.id LIMIT 500`), micros(since), micros(since))
	if err != nil {
		return nil, fmt.Errorf("alert openings: %w", err)
	}
	defer rows.Close()
	var out []AlertOpening
	for rows.Next() {
		var o AlertOpening
		var first, reopened int64
		if err := rows.Scan(&o.AlertID, &o.RuleID, &o.DeviceID, &o.Person, &first, &reopened); err != nil {
			return nil, err
		}
		o.OpenedAt = fromMicros(max(first, reopened))
		out = append(out, o)
	}
	return out, rows.Err()
}
