// Package presencestore keeps presence checks (collector/internal/presence
// runs them): the WebAuthn credentials people enrol on their laptops, the
// one-time enrolment links, the state of WebAuthn ceremonies, and the
// checks themselves from request to outcome, each step audited. The
// tables live in the collector's one database and its migrations; this
// package reaches them through the store's core (see store/core.go).
package presencestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// Store keeps the presence checks in the collector's database.
type Store struct{ db *store.Store }

// New is the presence checks kept in db.
func New(db *store.Store) *Store { return &Store{db: db} }

// Presence check states: pending (the link was sent), verifying (the
// person's assertion verified; the collector waits for the agent's
// report), passed and failed.
const (
	Pending   = "pending"
	Verifying = "verifying"
	Passed    = "passed"
	Failed    = "failed"
)

// Errors of the presence flow the edges map to their own answers.
var (
	// ErrCap: the person reached the daily cap of checks.
	ErrCap = errors.New("daily cap of presence checks reached for this person")
	// ErrDone: the check or enrolment link is no longer open
	// (completed, expired or used).
	ErrDone = errors.New("no longer open")
)

// Check is one presence check as the API shows it.
type Check struct {
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

// Credential is a WebAuthn credential bound to a person and the
// device it was registered on.
type Credential struct {
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

// Enrolment is a one-time enrolment link.
type Enrolment struct {
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

// CreateEnrolment records an enrolment link (by its token's hash).
func (s *Store) CreateEnrolment(ctx context.Context, tokenHash string, e Enrolment) error {
	roaming := 0
	if e.Roaming {
		roaming = 1
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO presence_enrolments (token_hash, person, device_id, created_by, created_at, expires_at, roaming)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), tokenHash, e.Person, e.DeviceID, e.CreatedBy, store.Micros(e.CreatedAt), store.Micros(e.ExpiresAt), roaming); err != nil {
			return fmt.Errorf("presence enrolment: %w", err)
		}
		return s.db.AuditTx(ctx, tx, e.CreatedBy, "presence_enrolment_created", "person", e.Person, map[string]any{
			"device_id": e.DeviceID, "expires_at": e.ExpiresAt, "roaming": e.Roaming})
	})
}

// GetEnrolment reads an enrolment link by its token's hash.
func (s *Store) GetEnrolment(ctx context.Context, tokenHash string) (Enrolment, error) {
	var e Enrolment
	var created, expires, used, roaming int64
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT person, device_id, created_by, created_at, expires_at, used_at, roaming FROM presence_enrolments WHERE token_hash = ?`),
		tokenHash).Scan(&e.Person, &e.DeviceID, &e.CreatedBy, &created, &expires, &used, &roaming)
	e.Roaming = roaming != 0
	if errors.Is(err, sql.ErrNoRows) {
		return e, store.ErrNotFound
	}
	e.CreatedAt, e.ExpiresAt, e.UsedAt = store.FromMicros(created), store.FromMicros(expires), store.FromMicros(used)
	return e, err
}

// UserHandle is the WebAuthn user handle of a person's credentials
// ("" when they have none yet).
func (s *Store) UserHandle(ctx context.Context, person string) (string, error) {
	var h string
	err := s.db.Reader().QueryRowContext(ctx, s.db.Rebind(`SELECT user_handle FROM presence_credentials WHERE person = ? ORDER BY created_at LIMIT 1`), person).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// AddCredential stores a credential registered through an
// enrolment link and uses the link up, in one transaction: a link
// registers one credential, before it expires.
func (s *Store) AddCredential(ctx context.Context, tokenHash string, c Credential) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE presence_enrolments SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`),
			store.Micros(c.CreatedAt), tokenHash, store.Micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("use enrolment link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("enrolment link: %w", ErrDone)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO presence_credentials (id, person, device_id, user_handle, credential, attestation, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), c.ID, c.Person, c.DeviceID, c.UserHandle, string(c.Record), c.Attestation, c.CreatedBy, store.Micros(c.CreatedAt)); err != nil {
			return fmt.Errorf("presence credential: %w", err)
		}
		return s.db.AuditTx(ctx, tx, c.Person, "presence_credential_enrolled", "person", c.Person, map[string]any{
			"device_id": c.DeviceID, "credential_id": c.ID, "attestation": c.Attestation, "link_created_by": c.CreatedBy})
	})
}

// Credentials lists a person's credentials, oldest first.
func (s *Store) Credentials(ctx context.Context, person string) ([]Credential, error) {
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(`SELECT id, person, device_id, user_handle, credential, attestation, created_by, created_at, last_used
		FROM presence_credentials WHERE person = ? AND revoked_at = 0 ORDER BY created_at, id LIMIT 50`), person)
	if err != nil {
		return nil, fmt.Errorf("presence credentials: %w", err)
	}
	return store.ScanRows(rows, func(sc store.Scanner) (Credential, error) {
		var c Credential
		var rec string
		var created, used int64
		err := sc.Scan(&c.ID, &c.Person, &c.DeviceID, &c.UserHandle, &rec, &c.Attestation, &c.CreatedBy, &created, &used)
		c.Record, c.CreatedAt, c.LastUsed = json.RawMessage(rec), store.FromMicros(created), store.FromMicros(used)
		return c, err
	})
}

// SaveChallenge keeps the state of a WebAuthn ceremony for a
// subject (an enrolment link or a check), replacing an earlier one.
func (s *Store) SaveChallenge(ctx context.Context, subject string, session []byte, expires time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO presence_challenges (subject, session, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET session = excluded.session, expires_at = excluded.expires_at`, subject, string(session), store.Micros(expires))
	if err != nil {
		return fmt.Errorf("presence challenge: %w", err)
	}
	return nil
}

// TakeChallenge removes and returns a subject's ceremony state:
// each challenge answers one response. An expired or already taken
// challenge is store.ErrNotFound.
func (s *Store) TakeChallenge(ctx context.Context, subject string, now time.Time) ([]byte, error) {
	var session string
	var expires int64
	// Committed even when the challenge expired: it is gone either way.
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM presence_challenges WHERE subject = ? RETURNING session, expires_at`), subject).Scan(&session, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= store.Micros(now)) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("presence challenge: %w", err)
	}
	return []byte(session), nil
}

// DeleteExpiredChallenges removes the state of ceremonies begun
// and never answered.
func (s *Store) DeleteExpiredChallenges(ctx context.Context, now time.Time) error {
	_, err := s.db.Exec(ctx, `DELETE FROM presence_challenges WHERE expires_at <= ?`, store.Micros(now))
	return err
}

// CreateCheck records a new check unless the person already had
// dailyCap checks in the last 24 hours (ErrCap) or, for an
// automatic check, its trigger already asked for one (ErrDone).
// detail goes into the audit entry, and so to the outputs: the
// notification.
func (s *Store) CreateCheck(ctx context.Context, c Check, tokenHash string, dailyCap int, detail map[string]any) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Serialise the checks of one person (PostgreSQL), so the cap holds.
		if s.db.Dialect() == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "presence:"+c.Person); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT count(*) FROM presence_checks WHERE person = ? AND created_at > ?`),
			c.Person, store.Micros(c.CreatedAt.Add(-24*time.Hour))).Scan(&n); err != nil {
			return fmt.Errorf("count presence checks: %w", err)
		}
		if c.Trigger != "" {
			var done int
			if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT count(*) FROM presence_checks WHERE trigger_key = ?`), c.Trigger).Scan(&done); err != nil {
				return fmt.Errorf("presence check trigger: %w", err)
			}
			if done > 0 {
				return ErrDone
			}
		}
		if dailyCap > 0 && n >= dailyCap {
			return ErrCap
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO presence_checks (id, token_hash, person, device_id, requested_by, note, state, created_at, expires_at, trigger_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), c.ID, tokenHash, c.Person, c.DeviceID, c.RequestedBy, c.Note, Pending,
			store.Micros(c.CreatedAt), store.Micros(c.ExpiresAt), c.Trigger); err != nil {
			return fmt.Errorf("presence check: %w", err)
		}
		return s.db.AuditTx(ctx, tx, c.RequestedBy, "presence_check_requested", "presence_check", c.ID, detail)
	})
}

const checkColumns = `c.id, c.person, c.device_id, COALESCE(d.hostname, ''), c.requested_by, c.note, c.state, c.reasons,
	c.created_at, c.expires_at, c.asserted_at, c.completed_at, c.credential_id, c.browser_ip, c.agent_ip, c.agent_report, c.observation, c.trigger_key`

func scanCheck(sc interface{ Scan(...any) error }) (Check, error) {
	var c Check
	var reasons, obs string
	var created, expires, asserted, completed int64
	if err := sc.Scan(&c.ID, &c.Person, &c.DeviceID, &c.Hostname, &c.RequestedBy, &c.Note, &c.State, &reasons,
		&created, &expires, &asserted, &completed, &c.CredentialID, &c.BrowserIP, &c.AgentIP, &c.AgentReport, &obs, &c.Trigger); err != nil {
		return c, err
	}
	c.Reasons = []string{}
	json.Unmarshal([]byte(reasons), &c.Reasons)
	c.Observation = json.RawMessage(obs)
	c.CreatedAt, c.ExpiresAt, c.AssertedAt, c.CompletedAt = store.FromMicros(created), store.FromMicros(expires), store.FromMicros(asserted), store.FromMicros(completed)
	if c.State == Passed || c.State == Failed {
		c.Outcome = c.State
	}
	return c, nil
}

func (s *Store) check(ctx context.Context, q store.Querier, where string, arg any) (Check, error) {
	c, err := scanCheck(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+checkColumns+` FROM presence_checks c LEFT JOIN devices d ON d.id = c.device_id WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, err
}

// GetCheck reads a check by id.
func (s *Store) GetCheck(ctx context.Context, id string) (Check, error) {
	return s.check(ctx, s.db.Reader(), "c.id = ?", id)
}

// CheckByToken reads a check by its link token's hash.
func (s *Store) CheckByToken(ctx context.Context, tokenHash string) (Check, error) {
	return s.check(ctx, s.db.Reader(), "c.token_hash = ?", tokenHash)
}

// ListChecks lists a person's checks, newest first, at most limit.
func (s *Store) ListChecks(ctx context.Context, person string, limit int) ([]Check, error) {
	return s.query(ctx, `c.person = ? ORDER BY c.created_at DESC, c.id LIMIT ?`, person, store.PageLimit(limit))
}

// ChecksAwaitingAgent lists the checks of a device whose
// assertion verified and that wait for the agent's report.
func (s *Store) ChecksAwaitingAgent(ctx context.Context, deviceID string, now time.Time) ([]Check, error) {
	return s.query(ctx, `c.device_id = ? AND c.state = '`+Verifying+`' AND c.expires_at > ? ORDER BY c.created_at LIMIT 10`, deviceID, store.Micros(now))
}

// ChecksAwaitingPerson lists the checks of a device that wait for
// the person's answer.
func (s *Store) ChecksAwaitingPerson(ctx context.Context, deviceID string, now time.Time) ([]Check, error) {
	return s.query(ctx, `c.device_id = ? AND c.state = '`+Pending+`' AND c.expires_at > ? ORDER BY c.created_at LIMIT 10`, deviceID, store.Micros(now))
}

// ExpiredChecks lists open checks past their deadline.
func (s *Store) ExpiredChecks(ctx context.Context, now time.Time) ([]Check, error) {
	return s.query(ctx, `c.state IN ('`+Pending+`', '`+Verifying+`') AND c.expires_at <= ? ORDER BY c.expires_at LIMIT 500`, store.Micros(now))
}

func (s *Store) query(ctx context.Context, where string, args ...any) ([]Check, error) {
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(`SELECT `+checkColumns+` FROM presence_checks c LEFT JOIN devices d ON d.id = c.device_id WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("presence checks: %w", err)
	}
	return store.ScanRows(rows, scanCheck)
}

// AssertCheck records a verified assertion on a pending check
// that has not expired: the check now waits for the agent until
// deadline. The credential's record (new sign count) is updated with it.
func (s *Store) AssertCheck(ctx context.Context, id, credentialID string, record []byte, browserIP string, at, deadline time.Time) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE presence_checks SET state = ?, asserted_at = ?, expires_at = ?, credential_id = ?, browser_ip = ?
			WHERE id = ? AND state = ? AND expires_at > ?`), Verifying, store.Micros(at), store.Micros(deadline), credentialID, browserIP, id, Pending, store.Micros(at))
		if err != nil {
			return fmt.Errorf("presence assertion: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("presence check %s: %w", id, ErrDone)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE presence_credentials SET credential = ?, last_used = ? WHERE id = ?`), string(record), store.Micros(at), credentialID); err != nil {
			return fmt.Errorf("presence credential: %w", err)
		}
		return s.db.AuditTx(ctx, tx, "system", "presence_check_asserted", "presence_check", id, map[string]any{
			"credential_id": credentialID, "browser_ip": browserIP})
	})
}

// Result is how a check ended.
type Result struct {
	Passed      bool
	Reasons     []string
	BrowserIP   string // when the browser answered (kept otherwise)
	AgentIP     string
	AgentReport string
	Observation any
	// Alert is raised on the check's device when the check failed.
	Alert *detect.Finding
}

// FinishCheck ends a check that is still in one of the states
// from: it stores the outcome, audits it and, for a failed check, raises
// r.Alert on the device through the rules' path (so the device's risk and
// its cluster's co-signals follow). It returns the check as it ended, and
// ErrDone when the check had already left those states.
func (s *Store) FinishCheck(ctx context.Context, id string, from []string, r Result, at time.Time, ev store.Evaluator) (Check, error) {
	state := Failed
	if r.Passed {
		state = Passed
	}
	reasons, _ := json.Marshal(append([]string{}, r.Reasons...))
	obs, err := json.Marshal(r.Observation)
	if err != nil {
		return Check{}, err
	}
	if r.Observation == nil {
		obs = []byte("{}")
	}
	var out Check
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var locked string
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT state FROM presence_checks WHERE id = ?`+s.db.ForUpdate()), id).Scan(&locked); errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		c, err := s.check(ctx, tx, "c.id = ?", id)
		if err != nil {
			return err
		}
		ok := false
		for _, f := range from {
			ok = ok || c.State == f
		}
		if !ok {
			return fmt.Errorf("presence check %s: %w", id, ErrDone)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE presence_checks SET state = ?, reasons = ?, completed_at = ?, agent_ip = ?, agent_report = ?, observation = ?,
			browser_ip = CASE WHEN CAST(? AS TEXT) = '' THEN browser_ip ELSE CAST(? AS TEXT) END WHERE id = ?`), state, string(reasons), store.Micros(at), r.AgentIP, r.AgentReport, string(obs),
			r.BrowserIP, r.BrowserIP, id); err != nil {
			return fmt.Errorf("finish presence check: %w", err)
		}
		if err := s.db.AuditTx(ctx, tx, "system", "presence_check_"+state, "presence_check", id, map[string]any{
			"person": c.Person, "device_id": c.DeviceID, "reasons": r.Reasons}); err != nil {
			return err
		}
		if !r.Passed && r.Alert != nil {
			if err := s.db.Raise(ctx, tx, c.DeviceID, *r.Alert, at, ev); err != nil {
				return err
			}
		}
		out, err = s.check(ctx, tx, "c.id = ?", id)
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

// Key names the opening for CreateCheck's trigger.
func (o AlertOpening) Key() string {
	return fmt.Sprintf("alert:%d:%d", o.AlertID, store.Micros(o.OpenedAt))
}

// AlertOpenings lists the open alerts opened or re-opened after since on
// devices bound to a person, oldest first, at most 500.
func (s *Store) AlertOpenings(ctx context.Context, since time.Time) ([]AlertOpening, error) {
	rows, err := s.db.Reader().QueryContext(ctx, s.db.Rebind(`SELECT a.id, a.rule_id, a.device_id, d.person, a.first_seen, a.reopened_at FROM alerts a JOIN devices d ON d.id = a.device_id
		WHERE a.status = 'open' AND d.person <> '' AND (a.first_seen > ? OR a.reopened_at > ?) ORDER BY a.id LIMIT 500`), store.Micros(since), store.Micros(since))
	if err != nil {
		return nil, fmt.Errorf("alert openings: %w", err)
	}
	return store.ScanRows(rows, func(sc store.Scanner) (AlertOpening, error) {
		var o AlertOpening
		var first, reopened int64
		err := sc.Scan(&o.AlertID, &o.RuleID, &o.DeviceID, &o.Person, &first, &reopened)
		o.OpenedAt = store.FromMicros(max(first, reopened))
		return o, err
	})
}
