package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"
)

// Secret is an enrollment secret. Only its SHA-256 is stored.
type Secret struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Uses      int64     `json:"uses"`
	// MaxUses bounds the enrollments with the secret and ExpiresAt ends
	// them (0, zero: unlimited).
	MaxUses   int64     `json:"max_uses,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// State says whether the secret still enrolls: "active", "revoked …",
// "expired" or "used up".
func (s Secret) State(now time.Time) string {
	switch {
	case !s.RevokedAt.IsZero():
		return "revoked " + s.RevokedAt.UTC().Format("2006-01-02 15:04 UTC")
	case !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now):
		return "expired"
	case s.MaxUses > 0 && s.Uses >= s.MaxUses:
		return "used up"
	}
	return "active"
}

// ErrSecretUsedUp: the secret reached its use limit.
var ErrSecretUsedUp = errors.New("enrollment secret used up")

// randomToken returns a URL-safe random string with a prefix.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// CreateSecret makes a new enrollment secret and returns its plaintext, which
// is not stored and cannot be shown again.
func (s *Store) CreateSecret(ctx context.Context, name string) (string, Secret, error) {
	return s.CreateSecretLimited(ctx, name, 0, time.Time{})
}

// CreateSecretLimited is CreateSecret for a secret that enrolls at most
// maxUses agents (0: any number) until expires (zero: for ever).
func (s *Store) CreateSecretLimited(ctx context.Context, name string, maxUses int64, expires time.Time) (string, Secret, error) {
	if maxUses < 0 || !expires.IsZero() && !expires.After(time.Now()) {
		return "", Secret{}, fmt.Errorf("%w: a secret needs a positive use limit and an expiry in the future", ErrInvalid)
	}
	plain := randomToken("bfe_", 24)
	sec := Secret{ID: randomToken("", 4), Name: name, CreatedAt: time.Now().UTC(), MaxUses: maxUses, ExpiresAt: expires}
	_, err := s.exec(ctx, `INSERT INTO enroll_secrets (id, name, hash, created_at, max_uses, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		sec.ID, name, hashSecret(plain), micros(sec.CreatedAt), maxUses, micros(expires))
	if err != nil {
		return "", Secret{}, fmt.Errorf("create secret: %w", err)
	}
	return plain, sec, nil
}

// ListSecrets lists enrollment secrets, newest first.
func (s *Store) ListSecrets(ctx context.Context) ([]Secret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at, revoked_at, uses, max_uses, expires_at FROM enroll_secrets ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return scanRows(rows, func(sc scanner) (Secret, error) {
		var sec Secret
		var c, r, e int64
		err := sc.Scan(&sec.ID, &sec.Name, &c, &r, &sec.Uses, &sec.MaxUses, &e)
		sec.CreatedAt, sec.RevokedAt, sec.ExpiresAt = fromMicros(c), fromMicros(r), fromMicros(e)
		return sec, err
	})
}

// RevokeSecret stops a secret from enrolling new agents.
func (s *Store) RevokeSecret(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE enroll_secrets SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, micros(time.Now()), id)
	return affectedOne(res, err, "secret "+id)
}

// MatchSecret finds the active secret whose plaintext is plain. Every active
// secret is compared in constant time, so timing reveals nothing about which
// prefix matched.
func (s *Store) MatchSecret(ctx context.Context, plain string) (Secret, error) {
	want, _ := hex.DecodeString(hashSecret(plain))
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, name, hash FROM enroll_secrets WHERE revoked_at = 0
		AND (expires_at = 0 OR expires_at > ?) AND (max_uses = 0 OR uses < max_uses)`), micros(time.Now()))
	if err != nil {
		return Secret{}, fmt.Errorf("match secret: %w", err)
	}
	defer rows.Close()
	var found Secret
	ok := 0
	for rows.Next() {
		var sec Secret
		var h string
		if err := rows.Scan(&sec.ID, &sec.Name, &h); err != nil {
			return Secret{}, err
		}
		got, _ := hex.DecodeString(h)
		if subtle.ConstantTimeCompare(got, want) == 1 {
			found, ok = sec, 1
		}
	}
	if err := rows.Err(); err != nil {
		return Secret{}, err
	}
	if ok == 0 {
		return Secret{}, ErrNotFound
	}
	return found, nil
}

// HardwareKey is the identity a device record is keyed by: the SMBIOS UUID
// and serial when the agent reports them, else the OS installation id.
func HardwareKey(hardwareUUID, serial, machineID string) string {
	u := strings.ToLower(strings.TrimSpace(hardwareUUID))
	sn := strings.ToUpper(strings.TrimSpace(serial))
	if u != "" || sn != "" {
		return "hw:" + u + "/" + sn
	}
	if m := strings.ToLower(strings.TrimSpace(machineID)); m != "" {
		return "os:" + m
	}
	return ""
}

// Enrollment is one successful Enroll call.
type Enrollment struct {
	AgentID     string
	SecretID    string
	IP          string
	HardwareKey string
	Identity    DeviceIdentity
	// Key identifies the key the certificate is issued for (see
	// EnrollAgent); "" enrolls without idempotency.
	Key          string
	Certificate  []byte // DER, returned again to a retry
	CertSerial   string
	CertNotAfter time.Time
}

// DeviceIdentity is what the agent says about its machine.
type DeviceIdentity struct {
	HardwareUUID   string
	SerialNumber   string
	MachineID      string
	Hostname       string
	OSFamily       string
	OSName         string
	OSVersion      string
	HardwareVendor string
	HardwareModel  string
	AgentVersion   string
}

// Enrolled is the agent an enrollment stands for.
type Enrolled struct {
	AgentID     string
	DeviceID    string
	Certificate []byte
	// Created is false when an earlier enrollment with the same key
	// created the agent (a retry).
	Created bool
	Revoked bool // the agent or its device is revoked
}

// ErrKeyEnrolled: the enrollment key belongs to an agent of another device.
var ErrKeyEnrolled = errors.New("key already enrolled for another device")

// Enroll records a new agent (see EnrollAgent) and returns its device id.
func (s *Store) Enroll(ctx context.Context, e Enrollment) (string, error) {
	r, err := s.EnrollAgent(ctx, e)
	return r.DeviceID, err
}

// EnrollAgent records a new agent. The device is found by hardware key, so
// re-enrolling the same hardware keeps its history; a new device record is
// made otherwise.
//
// Enrollment is idempotent by e.Key: when an agent was already enrolled
// with that key (a retry whose first answer was lost, even one that
// committed after its caller gave up), that agent is returned with the
// certificate issued to it, and nothing is written; an agent of another
// device is ErrKeyEnrolled. So a retry never leaves a second agent behind.
//
// Concurrent enrollments are committed together, like reports (see Ingest):
// one transaction, each enrollment under its own savepoint.
func (s *Store) EnrollAgent(ctx context.Context, e Enrollment) (Enrolled, error) {
	if e.Key != "" {
		// A retry is answered from the database without the writer.
		r, err := s.enrolledByKey(ctx, s.r, e)
		if !errors.Is(err, ErrNotFound) {
			return r, err
		}
	}
	req := &enrollReq{ctx: ctx, e: &e, done: make(chan enrollResult, 1)}
	select {
	case s.enrollQ <- req:
	case <-ctx.Done():
		return Enrolled{}, ctx.Err()
	case <-s.stop:
		return Enrolled{}, errClosed
	}
	select {
	case r := <-req.done:
		return r.enrolled, r.err
	case <-ctx.Done():
		// The group may still commit it; a retry with the same key gets it.
		return Enrolled{}, ctx.Err()
	case <-s.stop:
		return Enrolled{}, errClosed
	}
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type enrollReq struct {
	ctx  context.Context
	e    *Enrollment
	done chan enrollResult
}

type enrollResult struct {
	enrolled Enrolled
	err      error
}

// enrolledByKey finds the agent enrolled with e.Key (ErrNotFound: none).
// Saying that the key is not empty lets both engines use the partial index
// agents_enroll_key; without it every lookup scanned all agents.
func (s *Store) enrolledByKey(ctx context.Context, q rowQuerier, e Enrollment) (Enrolled, error) {
	r := Enrolled{}
	var hwKey string
	var ar, dr int64
	err := q.QueryRowContext(ctx, s.q(`SELECT a.id, a.device_id, a.enroll_cert, a.revoked_at, d.revoked_at,
		CASE WHEN d.claimed_key <> '' THEN d.claimed_key ELSE d.hardware_key END
		FROM agents a JOIN devices d ON d.id = a.device_id WHERE a.enroll_key = ? AND a.enroll_key <> ''`), e.Key).
		Scan(&r.AgentID, &r.DeviceID, &r.Certificate, &ar, &dr, &hwKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Enrolled{}, ErrNotFound
	}
	if err != nil {
		return Enrolled{}, fmt.Errorf("find enrollment: %w", err)
	}
	if hwKey != e.HardwareKey {
		return Enrolled{}, ErrKeyEnrolled
	}
	r.Revoked = ar != 0 || dr != 0
	return r, nil
}

// enrollWriter commits the enrollments waiting, up to maxGroup at a time,
// in one transaction.
func (s *Store) enrollWriter() {
	for {
		group, ok := nextGroup(s.enrollQ, s.stop)
		if !ok {
			return
		}
		results := make([]enrollResult, len(group))
		var err error
		for attempt := 0; ; attempt++ {
			if err = s.enrollGroup(group, results); !retryable(err) || attempt == maxGroupRetries {
				break
			}
			time.Sleep(time.Duration(1+mathrand.IntN(10*(attempt+1))) * time.Millisecond)
		}
		for i, r := range group {
			if err != nil {
				results[i] = enrollResult{err: err}
			}
			r.done <- results[i]
		}
	}
}

// enrollGroup stores a group of enrollments in one transaction, each under
// its own savepoint so that a failing one is rolled back alone.
func (s *Store) enrollGroup(group []*enrollReq, results []enrollResult) error {
	// The transaction is shared, so it must not die with one caller's context.
	ctx := context.Background()
	return s.tx(ctx, func(tx *sql.Tx) error {
		for i, r := range group {
			results[i] = enrollResult{}
			if err := r.ctx.Err(); err != nil {
				results[i].err = err
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT enroll"); err != nil {
				return err
			}
			enrolled, err := s.enrollOne(ctx, tx, r.e)
			if retryable(err) {
				return err
			}
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT enroll"); rerr != nil {
					return rerr
				}
			}
			results[i] = enrollResult{enrolled, err}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT enroll"); err != nil {
				return err
			}
		}
		return nil
	})
}

// enrollOne stores one enrollment inside the group's transaction.
func (s *Store) enrollOne(ctx context.Context, tx *sql.Tx, e *Enrollment) (Enrolled, error) {
	if e.Key != "" {
		// Another enrollment with this key may have been committed (or be
		// in this group) since the caller looked.
		r, err := s.enrolledByKey(ctx, tx, *e)
		if !errors.Is(err, ErrNotFound) {
			return r, err
		}
	}
	now := micros(time.Now())
	var deviceID string
	var revoked int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id, revoked_at FROM devices WHERE hardware_key = ?`), e.HardwareKey).Scan(&deviceID, &revoked)
	if err == nil && revoked != 0 {
		// A revoked laptop does not come back by enrolling again: nothing
		// is written, no certificate is handed out.
		return Enrolled{Revoked: true}, s.audit(ctx, tx, "agent:"+e.AgentID, "enroll_refused", "device", deviceID,
			map[string]any{"reason": "device revoked", "secret_id": e.SecretID, "ip": e.IP, "hostname": e.Identity.Hostname})
	}
	// Hardware identity is a claim, not a key: an enrollment claiming the
	// hardware of an active device gets a device of its own, which records
	// the claim (duplicate_hardware_identity fires on it) until an admin
	// approves it (ApproveClaim). The answer names only the new device.
	claims := ""
	if err == nil {
		claims, err = deviceID, sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Mass enrollment (many fake laptops to dilute a farm's keys): the
		// devices enrolled from this address in the last 24 hours and with
		// this secret in the last hour, this one included.
		var sameAddr, sameSecret int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT
			(SELECT COUNT(DISTINCT device_id) FROM agents WHERE enrolled_ip = ? AND enrolled_ip <> '' AND enrolled_at > ?),
			(SELECT COUNT(DISTINCT device_id) FROM agents WHERE secret_id = ? AND enrolled_at > ?)`),
			e.IP, now-(24*time.Hour).Microseconds(), e.SecretID, now-time.Hour.Microseconds()).Scan(&sameAddr, &sameSecret); err != nil {
			return Enrolled{}, fmt.Errorf("count enrollments: %w", err)
		}
		sameAddr++
		sameSecret++
		deviceID = randomToken("dev_", 8)
		hwKey, claimedKey := e.HardwareKey, ""
		if claims != "" {
			hwKey, claimedKey = "claim:"+deviceID, e.HardwareKey
		}
		id := e.Identity
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO devices (id, hardware_key, hardware_uuid, serial_number, machine_id,
			hostname, os_family, os_name, os_version, hardware_vendor, hardware_model, agent_id, agent_version, first_seen,
			claims_device, claimed_key, enrolled_same_address, enrolled_same_secret)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			deviceID, hwKey, id.HardwareUUID, id.SerialNumber, id.MachineID, id.Hostname, id.OSFamily,
			id.OSName, id.OSVersion, id.HardwareVendor, id.HardwareModel, e.AgentID, id.AgentVersion, now, claims, claimedKey,
			sameAddr, sameSecret)
	}
	if err != nil {
		return Enrolled{}, fmt.Errorf("find device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO agents (id, device_id, secret_id, enrolled_at, enrolled_ip, cert_serial, cert_not_after, enroll_key, enroll_cert)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), e.AgentID, deviceID, e.SecretID, now, e.IP, e.CertSerial, micros(e.CertNotAfter), e.Key, e.Certificate); err != nil {
		return Enrolled{}, fmt.Errorf("insert agent: %w", err)
	}
	// The use limit holds against concurrent enrollments: the count and
	// its bound are checked in the enrollment's own transaction.
	res, err := tx.ExecContext(ctx, s.q(`UPDATE enroll_secrets SET uses = uses + 1 WHERE id = ? AND (max_uses = 0 OR uses < max_uses)`), e.SecretID)
	if err != nil {
		return Enrolled{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Enrolled{}, ErrSecretUsedUp
	}
	detail := map[string]any{"agent_id": e.AgentID, "secret_id": e.SecretID, "ip": e.IP, "hostname": e.Identity.Hostname}
	if claims != "" {
		detail["claims_device"] = claims
	}
	err = s.audit(ctx, tx, "agent:"+e.AgentID, "enroll", "device", deviceID, detail)
	return Enrolled{AgentID: e.AgentID, DeviceID: deviceID, Certificate: e.Certificate, Created: true}, err
}

// Agent is an enrolled agent installation.
type Agent struct {
	ID            string
	DeviceID      string
	EnrolledAt    time.Time
	LastSeen      time.Time
	CertNotAfter  time.Time
	Revoked       bool // the agent or its device is revoked
	DeviceRevoked bool
	// CertSerial is the serial (hex) of the agent's certificate, and
	// PrevCertSerial that of the one it renewed, accepted until the new
	// one is first used (see CertUsed); "" when there is none.
	CertSerial, PrevCertSerial string
}

// AgentByID loads an agent with its device's revocation state.
func (s *Store) AgentByID(ctx context.Context, id string) (Agent, error) {
	var a Agent
	var en, ls, na, ar, dr int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT a.id, a.device_id, a.enrolled_at, a.last_seen, a.cert_not_after, a.revoked_at, d.revoked_at,
		a.cert_serial, a.prev_cert_serial
		FROM agents a JOIN devices d ON d.id = a.device_id WHERE a.id = ?`), id).Scan(&a.ID, &a.DeviceID, &en, &ls, &na, &ar, &dr, &a.CertSerial, &a.PrevCertSerial)
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, ErrNotFound
	}
	if err != nil {
		return Agent{}, fmt.Errorf("load agent: %w", err)
	}
	a.EnrolledAt, a.LastSeen, a.CertNotAfter = fromMicros(en), fromMicros(ls), fromMicros(na)
	a.DeviceRevoked = dr != 0
	a.Revoked = ar != 0 || dr != 0
	return a, nil
}

// RenewAgentCert records a renewed client certificate. It retires the
// certificate before it: that one is accepted only until the new one is
// first used (CertUsed), so that an agent whose renewal answer was lost
// can renew again. A renewal before the previous renewed certificate was
// used keeps the older one, which the agent still holds.
func (s *Store) RenewAgentCert(ctx context.Context, agentID, serial string, notAfter time.Time) error {
	res, err := s.exec(ctx, `UPDATE agents SET prev_cert_serial = CASE WHEN prev_cert_serial = '' THEN cert_serial ELSE prev_cert_serial END,
		cert_serial = ?, cert_not_after = ? WHERE id = ?`, serial, micros(notAfter), agentID)
	return affectedOne(res, err, "agent "+agentID)
}

// CertUsed records that the agent used its current certificate: the one
// it renewed is refused from now on.
func (s *Store) CertUsed(ctx context.Context, agentID, serial string) error {
	_, err := s.exec(ctx, `UPDATE agents SET prev_cert_serial = '' WHERE id = ? AND cert_serial = ? AND prev_cert_serial <> ''`, agentID, serial)
	if err != nil {
		return fmt.Errorf("retire previous certificate: %w", err)
	}
	return nil
}

// RevokeDevice cuts a device and all its agents off.
func (s *Store) RevokeDevice(ctx context.Context, id, actor string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.revokeDevice(ctx, tx, id, actor, time.Now()) })
}

// revokeDevice revokes a device and its agents in tx (see RevokeDevice).
func (s *Store) revokeDevice(ctx context.Context, tx *sql.Tx, id, actor string, at time.Time) error {
	now := micros(at)
	res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), now, id)
	if err := affectedOne(res, err, "active device "+id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET revoked_at = ? WHERE device_id = ? AND revoked_at = 0`), now, id); err != nil {
		return err
	}
	return s.audit(ctx, tx, actor, "revoke", "device", id, nil)
}

func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// ApproveClaim merges a device that enrolled claiming the hardware of
// another (an admin decided it is that laptop, reinstalled): the claimant's
// agents move to the claimed device, whose history they continue, and the
// claimant's record is closed (revoked, under a retired key) with the
// reports it stored so far. The claimed device's older agents are left as
// they are: if they keep reporting, duplicate_hardware_identity fires.
func (s *Store) ApproveClaim(ctx context.Context, claimantID, actor string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var owner string
		var revoked, ownerRevoked int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT c.claims_device, c.revoked_at, o.revoked_at FROM devices c JOIN devices o ON o.id = c.claims_device
			WHERE c.id = ?`), claimantID).Scan(&owner, &revoked, &ownerRevoked)
		if errors.Is(err, sql.ErrNoRows) || err == nil && revoked != 0 {
			return fmt.Errorf("active device %s with a hardware claim: %w", claimantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("load claim: %w", err)
		}
		if ownerRevoked != 0 {
			return fmt.Errorf("device %s claims revoked device %s (readmit its hardware instead): %w", claimantID, owner, ErrInvalid)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET device_id = ? WHERE device_id = ?`), owner, claimantID); err != nil {
			return fmt.Errorf("move agents: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET hardware_key = ?, claims_device = '', claimed_key = '', revoked_at = ? WHERE id = ?`),
			"retired:"+claimantID, micros(time.Now()), claimantID); err != nil {
			return fmt.Errorf("approve claim: %w", err)
		}
		return s.audit(ctx, tx, actor, "approve_claim", "device", owner, map[string]any{"merged_device": claimantID})
	})
}

// Readmit lets the hardware of a revoked device enroll again (as a new
// device): the revoked device keeps its history under a retired key.
func (s *Store) Readmit(ctx context.Context, id, actor string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET hardware_key = ? WHERE id = ? AND revoked_at <> 0 AND hardware_key NOT LIKE 'retired:%'`), "retired:"+id, id)
		if err := affectedOne(res, err, "revoked device "+id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "readmit", "device", id, nil)
	})
}
