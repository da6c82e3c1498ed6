package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	mathrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/jackc/pgx/v5/pgconn"
)

// Evaluator runs detection rules; *detect.Engine implements it.
type Evaluator interface {
	Evaluate(ctx context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error)
	// AutoResolve lists the rules of scope whose alerts resolve when the
	// condition clears.
	AutoResolve(scope detect.Scope) []string
}

// IngestReport is one validated report, ready to store.
type IngestReport struct {
	ReportID       string
	Sequence       uint64
	CreatedAt      time.Time
	DroppedReports uint64
	Identity       DeviceIdentity
	// Snapshot is nil for a heartbeat.
	Snapshot *agentv1.HostSnapshot
	// Data is the snapshot's deterministic encoding, Digest its hex SHA-256
	// (without scan times) and Sections the digest of each signal family.
	Data     []byte
	Digest   string
	Sections map[string]string
	// PeripheralSerials are the snapshot's peripherals worth correlating
	// across the fleet.
	PeripheralSerials []policies.PeripheralSerial
	// Activity are the reported activity hours (snapshot or heartbeat).
	Activity []activity.Hour
}

// IngestBatch is one Report call of one agent.
type IngestBatch struct {
	Agent Agent
	IP    string
	// Egress is what the collector knows of IP (its Since is ignored).
	Egress     detect.Egress
	ReceivedAt time.Time
	// ReportInterval is how often the agent is told to report.
	ReportInterval time.Duration
	Reports        []IngestReport
}

// Ingest stores a batch of reports and raises alerts for the findings of
// the rules. A report already stored (same agent and report id) is skipped.
// It returns the ids of all reports of the batch now durably stored; on
// error nothing of the batch is stored.
//
// Concurrent calls are committed together (group commit): a writer takes
// every batch waiting, stores each under its own savepoint, so that a failing
// batch is rolled back alone, and commits once. Each call returns only after
// that commit, so an acknowledgement still means durable, while one fsync
// serves many agents.
func (s *Store) Ingest(ctx context.Context, b IngestBatch, ev Evaluator) ([]string, error) {
	req := &ingestReq{ctx: ctx, batch: &b, ev: ev, done: make(chan ingestResult, 1)}
	select {
	case s.ingestQ <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stop:
		return nil, errClosed
	}
	select {
	case r := <-req.done:
		return r.acked, r.err
	case <-ctx.Done():
		// The group may still commit it; a retry is deduplicated.
		return nil, ctx.Err()
	case <-s.stop:
		return nil, errClosed
	}
}

var errClosed = errors.New("store closed")

// maxGroup bounds how many batches one transaction takes.
const maxGroup = 64

type ingestReq struct {
	ctx   context.Context
	batch *IngestBatch
	ev    Evaluator
	done  chan ingestResult
}

type ingestResult struct {
	acked []string
	err   error
}

// startWriters starts n group-commit writers (one on SQLite, which has a
// single writer connection; several on PostgreSQL).
func (s *Store) startWriters(n int) {
	s.ingestQ = make(chan *ingestReq)
	s.stop = make(chan struct{})
	for range n {
		s.writers.Go(s.writer)
	}
}

func (s *Store) writer() {
	for {
		var group []*ingestReq
		select {
		case r := <-s.ingestQ:
			group = append(group, r)
		case <-s.stop:
			return
		}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.ingestQ:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []*ingestReq) {
	// The transaction is shared, so it must not die with one caller's context.
	ctx := context.Background()
	var results []ingestResult
	var err error
	for attempt := 0; ; attempt++ {
		results, err = s.tryGroup(ctx, group)
		if !retryable(err) || attempt == maxGroupRetries {
			break
		}
		// Another writer won a deadlock over rows both touched (devices
		// of one cluster): start again; stored reports are skipped.
		time.Sleep(time.Duration(1+mathrand.IntN(10*(attempt+1))) * time.Millisecond)
	}
	for i, r := range group {
		if err != nil {
			results[i] = ingestResult{err: err}
		}
		r.done <- results[i]
	}
	s.preparePending(ctx)
}

// maxGroupRetries bounds how often a group is tried again after a
// deadlock or serialization failure (PostgreSQL).
const maxGroupRetries = 5

// retryable reports whether err is a PostgreSQL deadlock or serialization
// failure, after which the whole transaction can be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// tryGroup stores a group in one transaction, each batch under its own
// savepoint. A batch that fails for a retryable reason fails the whole
// transaction, which the caller runs again.
func (s *Store) tryGroup(ctx context.Context, group []*ingestReq) ([]ingestResult, error) {
	results := make([]ingestResult, len(group))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, r := range group {
			if err := r.ctx.Err(); err != nil {
				results[i].err = err
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT ingest"); err != nil {
				return err
			}
			acked, err := s.ingestBatch(ctx, wtx{tx, s}, r.batch, r.ev)
			if retryable(err) {
				return err
			}
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT ingest"); rerr != nil {
					return rerr
				}
				results[i].err = err
			}
			results[i].acked = acked
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT ingest"); err != nil {
				return err
			}
		}
		return nil
	})
	return results, err
}

// ingestBatch stores one Report call inside the group's transaction.
func (s *Store) ingestBatch(ctx context.Context, tx wtx, b *IngestBatch, ev Evaluator) ([]string, error) {
	acked := make([]string, 0, len(b.Reports))
	for i := range b.Reports {
		if err := s.ingestOne(ctx, tx, b, &b.Reports[i], ev); err != nil {
			return nil, fmt.Errorf("report %s: %w", b.Reports[i].ReportID, err)
		}
		acked = append(acked, b.Reports[i].ReportID)
	}
	return acked, nil
}

func (s *Store) ingestOne(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, ev Evaluator) error {
	now := micros(b.ReceivedAt)
	kind := "heartbeat"
	if r.Snapshot != nil {
		kind = "snapshot"
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO reports (agent_id, report_id, device_id, sequence, kind, created_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, report_id) DO NOTHING`),
		b.Agent.ID, r.ReportID, b.Agent.DeviceID, int64(r.Sequence), kind, micros(r.CreatedAt), now)
	if err != nil {
		return fmt.Errorf("insert report: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // stored by an earlier attempt
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET last_seen = ? WHERE id = ?`), now, b.Agent.ID); err != nil {
		return fmt.Errorf("update agent: %w", err)
	}
	if r.Snapshot != nil {
		if err := s.storeSnapshot(ctx, tx, b, r); err != nil {
			return err
		}
	}
	id := r.Identity
	skew := b.ReceivedAt.Sub(r.CreatedAt)
	egress, _ := json.Marshal(b.Egress)
	if err := s.recordEgress(ctx, tx, b.Agent.DeviceID, b.IP, b.Egress, b.ReceivedAt); err != nil {
		return err
	}
	// A new egress address moves the current egress to the previous one,
	// with the last time a report came from it (SET reads the old row).
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET hostname = ?, os_family = ?, os_name = ?, os_version = ?,
		hardware_vendor = ?, hardware_model = ?, agent_id = ?, agent_version = ?, last_seen = ?, last_ip = ?,
		report_interval = ?, dropped_reports = ?, clock_skew = ?,
		prev_egress = CASE WHEN last_ip <> ? AND last_ip <> '' THEN egress ELSE prev_egress END,
		prev_egress_at = CASE WHEN last_ip <> ? AND last_ip <> '' THEN last_seen ELSE prev_egress_at END,
		egress_since = CASE WHEN last_ip <> ? THEN ? ELSE egress_since END,
		egress = ?
		WHERE id = ?`),
		id.Hostname, id.OSFamily, id.OSName, id.OSVersion, id.HardwareVendor, id.HardwareModel, b.Agent.ID, id.AgentVersion,
		now, b.IP, b.ReportInterval.Microseconds(), int64(r.DroppedReports), skew.Microseconds(),
		b.IP, b.IP, b.IP, now, string(egress), b.Agent.DeviceID); err != nil {
		return fmt.Errorf("update device: %w", err)
	}
	moved, err := s.updateKeys(ctx, tx, b.Agent.DeviceID, b.Egress, b.ReceivedAt)
	if err != nil {
		return err
	}
	facts, err := s.deviceFacts(ctx, tx, b.Agent.DeviceID, b.ReceivedAt, r.Activity)
	if err != nil {
		return err
	}
	return s.judge(ctx, tx, facts, r.Snapshot, moved, b.ReceivedAt, ev)
}

// judge evaluates the rules on a device (see evaluate) and then on the
// other members of the clusters in moved and, when the device's alerts
// changed, of its own cluster, whose co-signals changed with them. Every
// path that raises or resolves alerts goes through here, so a cluster's
// stored view (suspected, co-signals) always follows its members' alerts.
func (s *Store) judge(ctx context.Context, tx wtx, facts *detect.DeviceFacts, sn *agentv1.HostSnapshot, moved []string, now time.Time, ev Evaluator) error {
	changed, err := s.evaluate(ctx, tx, facts, sn, now, ev)
	if err != nil {
		return err
	}
	if changed && facts.Cluster.ID != "" && !slices.Contains(moved, facts.Cluster.ID) {
		moved = append(moved, facts.Cluster.ID)
	}
	return s.reevaluateClusters(ctx, tx, moved, facts.ID, now, ev)
}

// evaluate runs the rules on a device (and, with a snapshot, the snapshot
// rules), raises or re-opens alerts, resolves the cleared ones of
// auto-resolving rules and refreshes the risk scores. It reports whether
// any alert was raised, re-opened or resolved.
func (s *Store) evaluate(ctx context.Context, tx wtx, facts *detect.DeviceFacts, sn *agentv1.HostSnapshot, now time.Time, ev Evaluator) (bool, error) {
	// A device that never reported has only its enrollment to judge.
	never := facts.LastSeen.IsZero()
	findings, evalErr := ev.Evaluate(ctx, detect.ScopeDevice, detect.Facts{Device: facts, Now: now, NeverReported: never})
	if sn != nil {
		more, err := ev.Evaluate(ctx, detect.ScopeSnapshot, detect.Facts{Device: facts, Snapshot: sn, Now: now})
		findings = append(findings, more...)
		evalErr = errors.Join(evalErr, err)
	}
	if evalErr != nil {
		// A broken rule must not lose the report: store it, log the rule.
		s.log.Warn("rule evaluation failed", "device", facts.ID, "err", evalErr)
	}
	changed, err := s.upsertAlerts(ctx, tx, facts, findings, now)
	if err != nil {
		return false, err
	}
	// A rule that failed must not resolve anything, nor may the rules
	// that did not run on a device that never reported.
	if evalErr == nil && !never {
		cleared := ev.AutoResolve(detect.ScopeDevice)
		if sn != nil {
			cleared = append(cleared, ev.AutoResolve(detect.ScopeSnapshot)...)
		}
		cleared = slices.DeleteFunc(cleared, func(id string) bool {
			return slices.ContainsFunc(findings, func(f detect.Finding) bool { return f.RuleID == id })
		})
		resolved, err := s.resolveCleared(ctx, tx, facts.ID, cleared, now)
		if err != nil {
			return false, err
		}
		changed = changed || resolved
	}
	if changed {
		return true, s.refreshRisk(ctx, tx, facts.ID, now)
	}
	return false, nil
}

// resolveCleared resolves the device's open or acknowledged alerts of
// rules that were evaluated and no longer fire (rules with auto_resolve),
// each with a timeline entry by the system.
func (s *Store) resolveCleared(ctx context.Context, tx wtx, deviceID string, rules []string, at time.Time) (bool, error) {
	if len(rules) == 0 {
		return false, nil
	}
	// The rule list changes only with the rule set, so the statement
	// caches well.
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE alerts SET status = 'resolved', updated_at = ?
		WHERE device_id = ? AND status IN ('open', 'acknowledged') AND rule_id IN (`+marks(len(rules))+`) RETURNING id`),
		append([]any{micros(at), deviceID}, anys(rules)...)...)
	if err != nil {
		return false, fmt.Errorf("auto-resolve: %w", err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if err := s.audit(ctx, tx.Tx, "system", "resolve", "alert", fmt.Sprint(id), map[string]any{
			"status": map[string]string{"to": StatusResolved}, "note": "the condition cleared"}); err != nil {
			return false, err
		}
	}
	return len(ids) > 0, nil
}

func (s *Store) storeSnapshot(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport) error {
	var prevDigest, prevSections string
	err := tx.QueryRowContext(ctx, s.q(`SELECT digest, section_digests FROM snapshots WHERE device_id = ?`), b.Agent.DeviceID).
		Scan(&prevDigest, &prevSections)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("load snapshot: %w", err)
	}
	if prevDigest == r.Digest {
		return nil // same content: nothing changed since the stored snapshot
	}
	var prev map[string]string
	json.Unmarshal([]byte(prevSections), &prev)
	var changed []string
	for name, d := range r.Sections {
		if prev[name] != d {
			changed = append(changed, name)
		}
	}
	for name := range prev {
		if _, ok := r.Sections[name]; !ok && name != "users" {
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	// The set of user names is kept as a pseudo-section, so that the users
	// table is written only when it changes.
	_, r.Sections["users"] = deviceUsers(r.Snapshot)
	sections, _ := json.Marshal(r.Sections)
	now := micros(b.ReceivedAt)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO snapshots (device_id, report_id, created_at, received_at, digest, section_digests, data)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET report_id = excluded.report_id,
		created_at = excluded.created_at, received_at = excluded.received_at, digest = excluded.digest,
		section_digests = excluded.section_digests, data = excluded.data`),
		b.Agent.DeviceID, r.ReportID, micros(r.CreatedAt), now, r.Digest, string(sections), r.Data); err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO snapshot_history (device_id, report_id, created_at, received_at, digest, changed, data)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), b.Agent.DeviceID, r.ReportID, micros(r.CreatedAt), now, r.Digest,
		strings.Join(changed, ","), r.Data); err != nil {
		return fmt.Errorf("snapshot history: %w", err)
	}
	panelActive := slices.ContainsFunc(r.Snapshot.GetDisplays().GetDisplays(), func(d *agentv1.Display) bool { return d.GetInternal() && d.GetActive() })
	keys, _ := json.Marshal(fleet.SnapshotKeys(r.Snapshot, r.PeripheralSerials))
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET snapshot_digest = ?, snapshot_at = ?, snapshot_keys = ?,
		internal_display_active_at = CASE WHEN ? THEN ? ELSE internal_display_active_at END WHERE id = ?`),
		r.Digest, now, string(keys), panelActive, now, b.Agent.DeviceID); err != nil {
		return fmt.Errorf("update device: %w", err)
	}
	if users, key := deviceUsers(r.Snapshot); prev["users"] != key {
		if err := s.storeDeviceUsers(ctx, tx, b.Agent.DeviceID, users); err != nil {
			return err
		}
	}
	// The serials derive from these sections (the peripherals section
	// carries the catalog version): unchanged sections, unchanged serials.
	if slices.ContainsFunc([]string{"usb", "displays", "peripherals"}, func(name string) bool { return prev[name] != r.Sections[name] }) {
		return s.storePeripheralSerials(ctx, tx, b.Agent.DeviceID, r.PeripheralSerials)
	}
	return nil
}

// storePeripheralSerials replaces a device's peripheral serials: one
// delete and one multi-row insert per 500 serials.
func (s *Store) storePeripheralSerials(ctx context.Context, tx wtx, deviceID string, serials []policies.PeripheralSerial) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM peripheral_serials WHERE device_id = ?`), deviceID); err != nil {
		return fmt.Errorf("peripheral serials: %w", err)
	}
	for chunk := range slices.Chunk(serials, 500) {
		var sb strings.Builder
		args := make([]any, 0, 3*len(chunk))
		sb.WriteString(`INSERT INTO peripheral_serials (device_id, key, location) VALUES `)
		for i, p := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?)")
			args = append(args, deviceID, p.Key, p.Device)
		}
		sb.WriteString(` ON CONFLICT (device_id, key) DO NOTHING`)
		if _, err := tx.Tx.ExecContext(ctx, s.q(sb.String()), args...); err != nil {
			return fmt.Errorf("peripheral serials: %w", err)
		}
	}
	// Re-pair this device with every other device holding one of its
	// serials, in both directions.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM peripheral_shares WHERE device_id = ? OR other_id = ?`), deviceID, deviceID); err != nil {
		return fmt.Errorf("peripheral shares: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO peripheral_shares (device_id, key, other_id)
		SELECT p.device_id, p.key, o.device_id FROM peripheral_serials p
		JOIN peripheral_serials o ON o.key = p.key AND o.device_id <> p.device_id WHERE p.device_id = ?
		UNION SELECT o.device_id, o.key, p.device_id FROM peripheral_serials p
		JOIN peripheral_serials o ON o.key = p.key AND o.device_id <> p.device_id WHERE p.device_id = ?`), deviceID, deviceID); err != nil {
		return fmt.Errorf("peripheral shares: %w", err)
	}
	return nil
}

// deviceUsers returns the user names seen in a snapshot (with keyboard
// layouts or logged in, as UsernameKey), sorted, and a key of the set.
func deviceUsers(sn *agentv1.HostSnapshot) ([]string, string) {
	set := map[string]bool{}
	for _, k := range sn.GetLocale().GetKeyboardLayouts() {
		set[UsernameKey(k.GetUser())] = true
	}
	for _, l := range sn.GetSessions().GetCurrent() {
		set[UsernameKey(l.GetUser())] = true
	}
	delete(set, "")
	users := slices.Sorted(maps.Keys(set))
	sum := sha256.Sum256([]byte(strings.Join(users, "\n")))
	return users, hex.EncodeToString(sum[:8])
}

// storeDeviceUsers replaces the user names seen on a device.
func (s *Store) storeDeviceUsers(ctx context.Context, tx wtx, deviceID string, users []string) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM device_users WHERE device_id = ?`), deviceID); err != nil {
		return fmt.Errorf("device users: %w", err)
	}
	for _, u := range users {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO device_users (device_id, username) VALUES (?, ?)`), deviceID, u); err != nil {
			return fmt.Errorf("device users: %w", err)
		}
	}
	return nil
}

// updateActivity adds reported hours to the device's histogram (stored
// back when there were any) and summarises it against the declared work
// hours and zone. A stored histogram that does not decode starts afresh.
func (s *Store) updateActivity(ctx context.Context, tx execQuerier, f *detect.DeviceFacts, deviceID string, now time.Time,
	blob []byte, hours []activity.Hour, workHours string) error {
	var h activity.Histogram
	if blob != nil && h.UnmarshalBinary(blob) != nil {
		h = activity.Histogram{}
	}
	h.Update(now, hours)
	if len(hours) > 0 {
		b, _ := h.MarshalBinary()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO device_activity (device_id, histogram) VALUES (?, ?)
			ON CONFLICT (device_id) DO UPDATE SET histogram = excluded.histogram`), deviceID, b); err != nil {
			return fmt.Errorf("activity: %w", err)
		}
	}
	var work activity.WorkHours
	if loc, err := time.LoadLocation(f.Declared.Timezone); err == nil && f.Declared.Timezone != "" {
		work, _ = activity.ParseWorkHours(loc, workHours)
	}
	f.Activity = h.Compute(work)
	if f.Person == "" {
		return nil
	}
	var p activity.Histogram
	var pblob []byte
	err := tx.QueryRowContext(ctx, s.q(`SELECT histogram FROM person_activity WHERE email = ?`), f.Person).Scan(&pblob)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("person activity: %w", err)
	}
	if pblob != nil && p.UnmarshalBinary(pblob) != nil {
		p = activity.Histogram{}
	}
	p.Merge(now, hours)
	if len(hours) > 0 {
		b, _ := p.MarshalBinary()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO person_activity (email, histogram) VALUES (?, ?)
			ON CONFLICT (email) DO UPDATE SET histogram = excluded.histogram`), f.Person, b); err != nil {
			return fmt.Errorf("person activity: %w", err)
		}
	}
	f.PersonActivity = p.Compute(work)
	return nil
}

// sharedPeripheralWindow is how recently another device must have reported
// for its peripherals to count as shared.
const sharedPeripheralWindow = 7 * 24 * time.Hour

// sharedPeripherals lists the device's peripheral serials that other
// devices reported within the window.
func (s *Store) sharedPeripherals(ctx context.Context, tx querier, deviceID string, now time.Time) ([]detect.SharedPeripheral, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT sh.key, p.location, sh.other_id, d.hostname
		FROM peripheral_shares sh
		JOIN peripheral_serials p ON p.device_id = sh.device_id AND p.key = sh.key
		JOIN devices d ON d.id = sh.other_id
		WHERE sh.device_id = ? AND d.revoked_at = 0 AND d.last_seen > ?
		ORDER BY sh.key, sh.other_id`), deviceID, micros(now.Add(-sharedPeripheralWindow)))
	if err != nil {
		return nil, fmt.Errorf("shared peripherals: %w", err)
	}
	defer rows.Close()
	var out []detect.SharedPeripheral
	for rows.Next() {
		var key, loc, other, host string
		if err := rows.Scan(&key, &loc, &other, &host); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].Key != key {
			out = append(out, detect.SharedPeripheral{Key: key, Location: loc})
		}
		sp := &out[len(out)-1]
		sp.Devices = append(sp.Devices, other)
		sp.Hostnames = append(sp.Hostnames, host)
	}
	return out, rows.Err()
}

// deviceFacts builds the facts rules see about a device. Reported
// activity hours (nil from the sweep) are added to its histogram first.
func (s *Store) deviceFacts(ctx context.Context, tx execQuerier, deviceID string, now time.Time, hours []activity.Hour) (*detect.DeviceFacts, error) {
	f := &detect.DeviceFacts{ID: deviceID}
	var first, last, interval, dropped, skew, panel, since, prevAt, clusterCreated int64
	var egress, prevEgress, bySerial, byUser, workHours, person, clusterID string
	var shares bool
	var histBlob []byte
	err := tx.QueryRowContext(ctx, s.q(`SELECT d.hostname, d.hardware_uuid, d.serial_number, d.os_family, d.agent_id, d.agent_version,
		d.first_seen, d.last_seen, d.report_interval, d.dropped_reports, d.clock_skew, d.last_ip,
		COALESCE(`+personBySerial+`, ''), COALESCE(`+personByUser+`, ''),
		d.internal_display_active_at, d.egress, d.egress_since, d.prev_egress, d.prev_egress_at,
		EXISTS (SELECT 1 FROM peripheral_shares sh WHERE sh.device_id = d.id),
		(SELECT a.histogram FROM device_activity a WHERE a.device_id = d.id), d.person, d.cluster_id,
		COALESCE((SELECT c.created_at FROM clusters c WHERE c.id = d.cluster_id), 0)
		FROM devices d WHERE d.id = ?`), deviceID).
		Scan(&f.Hostname, &f.HardwareUUID, &f.SerialNumber, &f.OSFamily, &f.AgentID, &f.AgentVersion,
			&first, &last, &interval, &dropped, &skew, &f.EgressIP, &bySerial, &byUser, &panel,
			&egress, &since, &prevEgress, &prevAt, &shares, &histBlob, &person, &clusterID, &clusterCreated)
	if err != nil {
		return nil, fmt.Errorf("load device facts: %w", err)
	}
	switch {
	case bySerial != "":
		f.Person, f.Declared.Binding = bySerial, "device_serial"
	case byUser != "":
		f.Person, f.Declared.Binding = byUser, "username"
	}
	if f.Person != person {
		// Kept on the device for clusters and person scores.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET person = ? WHERE id = ?`), f.Person, deviceID); err != nil {
			return nil, fmt.Errorf("device person: %w", err)
		}
	}
	if clusterID != "" {
		c, err := s.clusterView(ctx, tx, clusterID, now)
		if err != nil {
			return nil, err
		}
		f.Cluster = clusterFacts(c, deviceID)
		if clusterCreated > 0 {
			f.Cluster.AgeHours = math.Round(now.Sub(fromMicros(clusterCreated)).Hours()*10) / 10
		}
	}
	json.Unmarshal([]byte(egress), &f.Egress)
	json.Unmarshal([]byte(prevEgress), &f.PreviousEgress)
	f.Egress.Since, f.PreviousEgress.Since = fromMicros(since), fromMicros(prevAt)
	for _, e := range []*detect.Egress{&f.Egress, &f.PreviousEgress} {
		if loc, err := time.LoadLocation(e.TimeZone); err == nil && e.TimeZone != "" {
			_, off := now.In(loc).Zone()
			e.UTCOffsetSeconds = int64(off)
		}
	}
	if f.Person != "" {
		var located string
		d := &f.Declared
		d.Email = f.Person
		if err := tx.QueryRowContext(ctx, s.q(`SELECT country, region, city, timezone, work_hours, location, latitude, longitude
			FROM people WHERE email = ?`), f.Person).
			Scan(&d.Country, &d.Region, &d.City, &d.Timezone, &workHours, &located, &d.Latitude, &d.Longitude); err != nil {
			return nil, fmt.Errorf("load person: %w", err)
		}
		d.Located = located == "ok"
		if loc, err := time.LoadLocation(d.Timezone); err == nil && d.Timezone != "" {
			_, off := now.In(loc).Zone()
			d.UTCOffsetSeconds = int64(off)
		}
	}
	if err := s.updateActivity(ctx, tx, f, deviceID, now, histBlob, hours, workHours); err != nil {
		return nil, err
	}
	f.EgressDistanceKm, f.TravelKmh = -1, -1
	if f.Egress.HasLocation && f.Declared.Located {
		f.EgressDistanceKm = math.Round(geo.DistanceKm(f.Egress.Latitude, f.Egress.Longitude, f.Declared.Latitude, f.Declared.Longitude))
	}
	if e, p := f.Egress, f.PreviousEgress; e.HasLocation && p.HasLocation && p.IP != "" {
		km := geo.DistanceKm(p.Latitude, p.Longitude, e.Latitude, e.Longitude)
		// Reports are minutes apart; a move within the same hour counts
		// as taking an hour, so that GeoIP noise is not "travel".
		hours := max(e.Since.Sub(p.Since).Hours(), 1)
		if km > 0 {
			f.TravelKmh = math.Round(km / hours)
		}
	}
	f.FirstSeen, f.LastSeen = fromMicros(first), fromMicros(last)
	if panel > 0 {
		f.InternalDisplayLastActive = fromMicros(panel)
	}
	if shares {
		if f.SharedPeripherals, err = s.sharedPeripherals(ctx, tx, deviceID, now); err != nil {
			return nil, err
		}
	}
	f.ReportInterval = time.Duration(interval) * time.Microsecond
	f.DroppedReports = dropped
	f.ClockSkew = time.Duration(skew) * time.Microsecond

	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, enrolled_at, last_seen FROM agents WHERE device_id = ? AND revoked_at = 0 AND last_seen > 0`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	defer rows.Close()
	var agents []liveAgent
	for rows.Next() {
		var a liveAgent
		var en, ls int64
		if err := rows.Scan(&a.id, &en, &ls); err != nil {
			return nil, err
		}
		a.enrolled, a.lastSeen = fromMicros(en), fromMicros(ls)
		agents = append(agents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	f.LiveAgentIDs = liveAgents(agents, now, livenessWindow(f.ReportInterval))
	return f, nil
}

// execQuerier is a transaction, or a plain one seen through wtx.
type execQuerier interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type liveAgent struct {
	id                 string
	enrolled, lastSeen time.Time
}

// livenessWindow is how long after its last report an agent counts as live.
func livenessWindow(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	return 3 * interval
}

// liveAgents returns the agents that are live at the same time for one
// hardware identity, most recent first. An agent is live when it reported
// within the window and after every other live candidate was enrolled: a
// reinstalled agent replaces the old one (which never reports after the new
// enrollment), while a cloned disk or forged identity keeps two agents
// reporting side by side.
func liveAgents(agents []liveAgent, now time.Time, window time.Duration) []string {
	var cand []liveAgent
	for _, a := range agents {
		if now.Sub(a.lastSeen) <= window {
			cand = append(cand, a)
		}
	}
	if len(cand) == 0 {
		return []string{}
	}
	newest := slices.MaxFunc(cand, func(a, b liveAgent) int { return a.enrolled.Compare(b.enrolled) })
	var out []liveAgent
	for _, a := range cand {
		if a.id == newest.id || a.lastSeen.After(newest.enrolled) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lastSeen.After(out[j].lastSeen) })
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.id
	}
	return ids
}
