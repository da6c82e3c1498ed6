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
}

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
	plain := randomToken("bfe_", 24)
	sec := Secret{ID: randomToken("", 4), Name: name, CreatedAt: time.Now().UTC()}
	_, err := s.exec(ctx, `INSERT INTO enroll_secrets (id, name, hash, created_at) VALUES (?, ?, ?, ?)`,
		sec.ID, name, hashSecret(plain), micros(sec.CreatedAt))
	if err != nil {
		return "", Secret{}, fmt.Errorf("create secret: %w", err)
	}
	return plain, sec, nil
}

// ListSecrets lists enrollment secrets, newest first.
func (s *Store) ListSecrets(ctx context.Context) ([]Secret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at, revoked_at, uses FROM enroll_secrets ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		var sec Secret
		var c, r int64
		if err := rows.Scan(&sec.ID, &sec.Name, &c, &r, &sec.Uses); err != nil {
			return nil, err
		}
		sec.CreatedAt, sec.RevokedAt = fromMicros(c), fromMicros(r)
		out = append(out, sec)
	}
	return out, rows.Err()
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
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, hash FROM enroll_secrets WHERE revoked_at = 0`)
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
	AgentID      string
	SecretID     string
	IP           string
	HardwareKey  string
	Identity     DeviceIdentity
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

// Enroll records a new agent. The device is found by hardware key, so
// re-enrolling the same hardware keeps its history; a new device record is
// made otherwise. It returns the device id.
func (s *Store) Enroll(ctx context.Context, e Enrollment) (string, error) {
	now := micros(time.Now())
	var deviceID string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM devices WHERE hardware_key = ?`), e.HardwareKey).Scan(&deviceID)
		if errors.Is(err, sql.ErrNoRows) {
			deviceID = randomToken("dev_", 8)
			id := e.Identity
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO devices (id, hardware_key, hardware_uuid, serial_number, machine_id,
				hostname, os_family, os_name, os_version, hardware_vendor, hardware_model, agent_id, agent_version, first_seen)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				deviceID, e.HardwareKey, id.HardwareUUID, id.SerialNumber, id.MachineID, id.Hostname, id.OSFamily,
				id.OSName, id.OSVersion, id.HardwareVendor, id.HardwareModel, e.AgentID, id.AgentVersion, now)
		}
		if err != nil {
			return fmt.Errorf("find device: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO agents (id, device_id, secret_id, enrolled_at, enrolled_ip, cert_serial, cert_not_after)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), e.AgentID, deviceID, e.SecretID, now, e.IP, e.CertSerial, micros(e.CertNotAfter)); err != nil {
			return fmt.Errorf("insert agent: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE enroll_secrets SET uses = uses + 1 WHERE id = ?`), e.SecretID); err != nil {
			return err
		}
		return s.audit(ctx, tx, "agent:"+e.AgentID, "enroll", "device", deviceID,
			map[string]any{"agent_id": e.AgentID, "secret_id": e.SecretID, "ip": e.IP, "hostname": e.Identity.Hostname})
	})
	return deviceID, err
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
}

// AgentByID loads an agent with its device's revocation state.
func (s *Store) AgentByID(ctx context.Context, id string) (Agent, error) {
	var a Agent
	var en, ls, na, ar, dr int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT a.id, a.device_id, a.enrolled_at, a.last_seen, a.cert_not_after, a.revoked_at, d.revoked_at
		FROM agents a JOIN devices d ON d.id = a.device_id WHERE a.id = ?`), id).Scan(&a.ID, &a.DeviceID, &en, &ls, &na, &ar, &dr)
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

// RenewAgentCert records a renewed client certificate.
func (s *Store) RenewAgentCert(ctx context.Context, agentID, serial string, notAfter time.Time) error {
	res, err := s.exec(ctx, `UPDATE agents SET cert_serial = ?, cert_not_after = ? WHERE id = ?`, serial, micros(notAfter), agentID)
	return affectedOne(res, err, "agent "+agentID)
}

// RevokeDevice cuts a device and all its agents off.
func (s *Store) RevokeDevice(ctx context.Context, id, actor string) error {
	now := micros(time.Now())
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), now, id)
		if err := affectedOne(res, err, "active device "+id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET revoked_at = ? WHERE device_id = ? AND revoked_at = 0`), now, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "revoke", "device", id, nil)
	})
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
