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

// Device is the collector's record of one machine.
type Device struct {
	ID             string        `json:"id"`
	Hostname       string        `json:"hostname"`
	HardwareUUID   string        `json:"hardware_uuid"`
	SerialNumber   string        `json:"serial_number"`
	MachineID      string        `json:"machine_id"`
	OSFamily       string        `json:"os_family"`
	OSName         string        `json:"os_name"`
	OSVersion      string        `json:"os_version"`
	HardwareVendor string        `json:"hardware_vendor"`
	HardwareModel  string        `json:"hardware_model"`
	AgentID        string        `json:"agent_id"`
	AgentVersion   string        `json:"agent_version"`
	FirstSeen      time.Time     `json:"first_seen"`
	LastSeen       time.Time     `json:"last_seen,omitzero"`
	LastIP         string        `json:"last_ip"`
	ReportInterval time.Duration `json:"-"`
	DroppedReports int64         `json:"dropped_reports"`
	SnapshotAt     time.Time     `json:"snapshot_at,omitzero"`
	RevokedAt      time.Time     `json:"revoked_at,omitzero"`
	// Person is the email of the person bound to the device, and
	// PersonBinding how: "device_serial" (the HR export's device_serial is
	// this device's hardware serial), "username" (the person's user name
	// was seen on the device), or empty when unbound.
	Person        string `json:"person"`
	PersonBinding string `json:"person_binding"`
	// Egress is where the latest report came from: address, GeoIP answer
	// (status says why when unknown) and network class.
	Egress detect.Egress `json:"egress"`
	// ClusterID is the cluster of linked devices this one is in ("" when
	// none; GET /api/v1/farms/{id}); Risk its risk score.
	ClusterID string `json:"cluster_id"`
	Risk      Risk   `json:"risk"`
	// ClaimsDevice is the active device whose hardware identity this one
	// claimed when it enrolled (it got a record of its own; an admin may
	// approve the claim, see ApproveClaim); empty when none.
	ClaimsDevice string `json:"claims_device,omitempty"`
}

const deviceColumns = `d.id, d.hostname, d.hardware_uuid, d.serial_number, d.machine_id, d.os_family, d.os_name, d.os_version,
	d.hardware_vendor, d.hardware_model, d.agent_id, d.agent_version, d.first_seen, d.last_seen, d.last_ip, d.report_interval,
	d.dropped_reports, d.snapshot_at, d.revoked_at, COALESCE(` + personBySerial + `, ''), COALESCE(` + personByUser + `, ''),
	d.egress, d.egress_since, d.cluster_id, d.risk_score, d.risk_contributors, d.claims_device`

func scanDevice(sc interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var fs, ls, iv, sa, ra, es int64
	var egress, bySerial, byUser, risk string
	err := sc.Scan(&d.ID, &d.Hostname, &d.HardwareUUID, &d.SerialNumber, &d.MachineID, &d.OSFamily, &d.OSName, &d.OSVersion,
		&d.HardwareVendor, &d.HardwareModel, &d.AgentID, &d.AgentVersion, &fs, &ls, &d.LastIP, &iv, &d.DroppedReports, &sa, &ra,
		&bySerial, &byUser, &egress, &es, &d.ClusterID, &d.Risk.Score, &risk, &d.ClaimsDevice)
	json.Unmarshal([]byte(risk), &d.Risk.Contributors)
	switch {
	case bySerial != "":
		d.Person, d.PersonBinding = bySerial, "device_serial"
	case byUser != "":
		d.Person, d.PersonBinding = byUser, "username"
	}
	json.Unmarshal([]byte(egress), &d.Egress)
	d.Egress.Since = fromMicros(es)
	d.FirstSeen, d.LastSeen, d.SnapshotAt, d.RevokedAt = fromMicros(fs), fromMicros(ls), fromMicros(sa), fromMicros(ra)
	d.ReportInterval = time.Duration(iv) * time.Microsecond
	return d, err
}

// DeviceFilter selects devices.
type DeviceFilter struct {
	// AfterID continues a listing ordered by id.
	AfterID string
	Limit   int
	// ByRisk lists the highest risk scores first (one page, no cursor).
	ByRisk bool
}

// ListDevices lists devices ordered by id, or by risk score.
func (s *Store) ListDevices(ctx context.Context, f DeviceFilter) ([]Device, error) {
	q := `SELECT ` + deviceColumns + ` FROM devices d WHERE d.id > ? ORDER BY d.id LIMIT ?`
	if f.ByRisk {
		q = `SELECT ` + deviceColumns + ` FROM devices d WHERE d.id > ? ORDER BY d.risk_score DESC, d.id LIMIT ?`
		f.AfterID = ""
	}
	rows, err := s.r.QueryContext(ctx, s.q(q), f.AfterID, PageLimit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return scanRows(rows, scanDevice)
}

// GetDevice loads one device.
func (s *Store) GetDevice(ctx context.Context, id string) (Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices d WHERE d.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, ErrNotFound
	}
	return d, err
}

// AgentInfo describes one agent installation of a device.
type AgentInfo struct {
	ID           string    `json:"id"`
	EnrolledAt   time.Time `json:"enrolled_at"`
	EnrolledIP   string    `json:"enrolled_ip"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	CertNotAfter time.Time `json:"cert_not_after"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
}

// DeviceAgents lists the agents enrolled for a device, newest first.
func (s *Store) DeviceAgents(ctx context.Context, deviceID string) ([]AgentInfo, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, enrolled_at, enrolled_ip, last_seen, cert_not_after, revoked_at
		FROM agents WHERE device_id = ? ORDER BY enrolled_at DESC`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return scanRows(rows, func(sc scanner) (AgentInfo, error) {
		var a AgentInfo
		var en, ls, na, ra int64
		err := sc.Scan(&a.ID, &en, &a.EnrolledIP, &ls, &na, &ra)
		a.EnrolledAt, a.LastSeen, a.CertNotAfter, a.RevokedAt = fromMicros(en), fromMicros(ls), fromMicros(na), fromMicros(ra)
		return a, err
	})
}

// Snapshot is the latest full snapshot of a device, protobuf-encoded.
type Snapshot struct {
	ReportID   string
	CreatedAt  time.Time
	ReceivedAt time.Time
	Digest     string
	Data       []byte
}

// LatestSnapshot loads a device's latest snapshot.
func (s *Store) LatestSnapshot(ctx context.Context, deviceID string) (Snapshot, error) {
	var sn Snapshot
	var c, r int64
	// The data is the history entry's the snapshot names, or its own when
	// it was stored before migration 00042 (history_id 0).
	err := s.r.QueryRowContext(ctx, s.q(`SELECT sn.report_id, sn.created_at, sn.received_at, sn.digest, COALESCE(h.data, sn.data)
		FROM snapshots sn LEFT JOIN snapshot_history h ON h.id = sn.history_id WHERE sn.device_id = ?`), deviceID).
		Scan(&sn.ReportID, &c, &r, &sn.Digest, &sn.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, ErrNotFound
	}
	sn.CreatedAt, sn.ReceivedAt = fromMicros(c), fromMicros(r)
	return sn, err
}

// ReportCount is the number of reports stored for a device.
func (s *Store) ReportCount(ctx context.Context, deviceID string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM reports WHERE device_id = ?`), deviceID).Scan(&n)
	return n, err
}

// Sweep evaluates the device-scope rules on every active device that has
// not reported within its interval (the only devices whose time-based
// facts can have changed since their last report), raising alerts for what
// fires, and refreshing their clusters when their alerts changed. A device
// that enrolled and never reported (last_seen 0) is always evaluated, with
// only the rules that need no report (before_first_report: agent_silent
// counts its silence from the enrollment). A device with a report waiting
// in Ingest is left to that report. It returns how many devices it
// evaluated.
func (s *Store) Sweep(ctx context.Context, ev Evaluator, now time.Time) (int, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM devices WHERE revoked_at = 0 AND last_seen + report_interval < ?`), micros(now))
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	ids, err := scanColumn[string](rows)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if s.waiting(id) {
			// The collector heard from it and has not stored that yet (a
			// busy writer): silence is not the agent's, and the report
			// is judged when it is stored.
			continue
		}
		n++
		// Judging a device changes of other devices' rows only what their
		// version counts (their cluster's members are judged again): the
		// cached rows but the device's stay (see rowCache), as they do
		// after a report, and a sweep over the silent part of a fleet does
		// not empty the cache for every device it judges.
		err := s.txThen(ctx, func(tx *sql.Tx) error {
			if err := s.lockClusters(ctx, tx); err != nil {
				return err
			}
			facts, err := s.deviceFacts(ctx, wtx{Tx: tx, s: s}, id, now, nil, nil)
			if err != nil {
				return err
			}
			return s.judge(ctx, wtx{Tx: tx, s: s, clusters: true}, facts, s.decide(ctx, ev, facts, nil, now), nil, now, ev, nil)
		}, func(bool) { s.rows.forget(id) })
		if err != nil {
			return 0, fmt.Errorf("sweep device %s: %w", id, err)
		}
	}
	return n, nil
}

// DevicesByHostname lists the devices with a host name (exact, at most
// 10), ordered by id.
func (s *Store) DevicesByHostname(ctx context.Context, hostname string) ([]Device, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices d WHERE d.hostname = ? ORDER BY d.id LIMIT 10`), hostname)
	if err != nil {
		return nil, fmt.Errorf("devices by hostname: %w", err)
	}
	return scanRows(rows, scanDevice)
}
