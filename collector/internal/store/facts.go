package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/zone"
)

// activityFacts adds reported hours to the device's histogram and to its
// person's, and summarises both against the declared work hours and zone.
// A stored histogram that does not decode starts afresh. It reads and
// writes nothing: the histograms to store are kept in r.
func activityFacts(r *factsRead, now time.Time, hours []activity.Hour, workHours string) {
	f := r.facts
	h := deviceActivity(r.deviceHist, now, hours)
	r.hours = len(hours) > 0
	if r.hours {
		r.deviceHist, _ = h.MarshalBinary()
	}
	var work activity.WorkHours
	if loc, err := zone.Load(f.Declared.Timezone); err == nil && f.Declared.Timezone != "" {
		work, _ = activity.ParseWorkHours(loc, workHours)
	}
	f.Activity = h.Compute(work)
	if f.Person == "" {
		return
	}
	var p activity.Histogram
	if r.personHistRead != nil && p.UnmarshalBinary(r.personHistRead) != nil {
		p = activity.Histogram{}
	}
	p.Merge(now, hours)
	if r.hours {
		r.personHist, _ = p.MarshalBinary()
	}
	f.PersonActivity = p.Compute(work)
}

// deviceActivity is a device's stored activity histogram with reported
// hours added. A stored histogram that does not decode starts afresh.
// Adding the same hours again changes nothing (Update sets each hour's
// counts).
func deviceActivity(stored []byte, now time.Time, hours []activity.Hour) activity.Histogram {
	var h activity.Histogram
	if stored != nil && h.UnmarshalBinary(stored) != nil {
		h = activity.Histogram{}
	}
	h.Update(now, hours)
	return h
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

// maxConflictDevices bounds the other devices listed per conflict.
const maxConflictDevices = 50

// usernameConflicts lists the people whose user name the device reports
// and other active devices report too (not those HR declared for someone
// else).
func (s *Store) usernameConflicts(ctx context.Context, tx querier, deviceID string) ([]detect.UsernameConflict, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT p.email, u.username, o.device_id, od.hostname
		FROM device_users u
		JOIN people p ON p.username_key = u.username AND p.username_key <> ''
		JOIN device_users o ON o.username = u.username AND o.device_id <> u.device_id
		JOIN devices od ON od.id = o.device_id AND od.revoked_at = 0
		WHERE u.device_id = ? AND NOT `+declaredOther+` ORDER BY p.email, o.device_id LIMIT 1000`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("username conflicts: %w", err)
	}
	defer rows.Close()
	var out []detect.UsernameConflict
	for rows.Next() {
		var email, user, other, host string
		if err := rows.Scan(&email, &user, &other, &host); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].Person != email {
			out = append(out, detect.UsernameConflict{Person: email, Username: user})
		}
		if c := &out[len(out)-1]; len(c.Devices) < maxConflictDevices {
			c.Devices = append(c.Devices, other)
			c.Hostnames = append(c.Hostnames, host)
		}
	}
	return out, rows.Err()
}

// factsRead is a device's facts as read, with what building them changed:
// the device's person binding and the activity histograms.
type factsRead struct {
	facts *detect.DeviceFacts
	// storedPerson is the person kept on the device row.
	storedPerson string
	// hours says whether activity was reported: then deviceHist and
	// personHist are the histograms to store. personHistRead is the
	// person's histogram as read (nil when none). deviceStored says the
	// report's UPDATE of the device stored deviceHist already.
	hours, deviceStored                    bool
	deviceHist, personHist, personHistRead []byte
}

// overlay is a report's write of the device row (see ingestOne), applied
// to the row as read, so that the facts of a report can be built before
// the writer stores it.
type overlay struct {
	agentID                 string
	identity                DeviceIdentity
	ip                      string
	egress                  detect.Egress // as the row keeps it (IngestBatch.egressRow)
	interval, dropped, skew int64
	// panelActive: the report stores a snapshot with the internal
	// display active.
	panelActive bool
}

// deviceFacts builds the facts rules see about a device inside the write
// transaction, adding reported activity hours (nil from the sweep) to its
// histograms, and stores what that changed. Its cluster is taken from
// views when they hold it, else read (and kept there when views is not
// nil).
func (s *Store) deviceFacts(ctx context.Context, tx wtx, deviceID string, now time.Time, hours []activity.Hour, views clusterViews) (*detect.DeviceFacts, error) {
	r, err := s.readFactsIn(ctx, tx, deviceID, now, hours, nil, views)
	if err != nil {
		return nil, err
	}
	return r.facts, s.writeFacts(ctx, tx, deviceID, r)
}

// A person's activity histogram, followed by its VALUES or SELECT (the
// person and the histogram).
const (
	personActivitySQL    = `INSERT INTO person_activity (email, histogram)`
	personActivityEndSQL = ` ON CONFLICT (email) DO UPDATE SET histogram = excluded.histogram`
)

// deviceActivitySQL sets a device's activity histogram (writeFacts).
const deviceActivitySQL = `UPDATE devices SET activity = ? WHERE id = ?`

// writeFacts stores what building a device's facts changed: the person
// bound to it (kept on the device for clusters and person scores) and the
// activity histograms.
func (s *Store) writeFacts(ctx context.Context, tx wtx, deviceID string, r *factsRead) error {
	if r.facts.Person != r.storedPerson {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET person = ?, version = version + 1 WHERE id = ?`), r.facts.Person, deviceID); err != nil {
			return fmt.Errorf("device person: %w", err)
		}
	}
	if !r.hours {
		return nil
	}
	// On the device's row, which the report rewrote: no page more
	// (migration 00043).
	if !r.deviceStored {
		if _, err := tx.ExecContext(ctx, s.q(deviceActivitySQL), r.deviceHist, deviceID); err != nil {
			return fmt.Errorf("activity: %w", err)
		}
	}
	if r.facts.Person == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(personActivitySQL+` VALUES (?, ?)`+personActivityEndSQL), r.facts.Person, r.personHist); err != nil {
		return fmt.Errorf("person activity: %w", err)
	}
	return nil
}

// readFacts builds the facts rules see about a device from what q reads,
// with the reported activity hours added (see activityFacts). With an
// overlay, the device row is read as the report will leave it. It writes
// nothing.
func (s *Store) readFacts(ctx context.Context, q querier, deviceID string, now time.Time, hours []activity.Hour, o *overlay) (*factsRead, error) {
	return s.readFactsIn(ctx, q, deviceID, now, hours, o, nil)
}

// readFactsIn is readFacts with the device's cluster taken from views
// when they hold it (see reevaluateClusters), and its row too (see
// applyPipelined); nil views read them afresh.
func (s *Store) readFactsIn(ctx context.Context, q querier, deviceID string, now time.Time, hours []activity.Hour, o *overlay, views clusterViews) (*factsRead, error) {
	d, ok := views.row(deviceID)
	if !ok {
		var err error
		if d, err = s.readDevice(ctx, q, deviceID, nil); err != nil {
			return nil, err
		}
	}
	if o != nil {
		d = d.after(o, now)
	}
	return s.factsFrom(ctx, q, d, now, hours, views)
}

// deviceRow is a device's row as readDevice reads it, with what it reads
// beside it. It is a value, never changed in place (after returns a new
// one), so that one read can serve several reports (see rowCache).
type deviceRow struct {
	id, hostname, hardwareUUID, serial, claims, osFamily, agentID, agentVersion, lastIP string
	sameAddress, sameSecret                                                             int64
	first, last, interval, dropped, skew, panel, since, prevAt, clusterCreated          int64
	bySerial, byUser, person, clusterID                                                 string
	// egress and prevEgress are decoded from the row's JSON once, when it
	// is read (the rowCache carries them to the next report).
	egress, prevEgress detect.Egress
	// hist is the device's activity histogram (empty when none).
	hist []byte
	// agents are the device's agents not revoked.
	agents        []agentRow
	shares, named bool
}

// agentRow is one of a device's agents, as readDevice reads them (a JSON
// array: id, enrolled_at and last_seen as "id", "en" and "ls").
type agentRow struct {
	ID       string `json:"id"`
	Enrolled int64  `json:"en"`
	LastSeen int64  `json:"ls"`
}

// after is the row as a report leaves it: ingestOne's UPDATE devices (a
// new egress address moves the current egress to the previous one) and
// its UPDATE agents, applied to the row as read, so that the facts of a
// report can be built before the writer stores it.
func (d deviceRow) after(o *overlay, now time.Time) deviceRow {
	at := micros(now)
	d.hostname, d.osFamily, d.agentID, d.agentVersion = o.identity.Hostname, o.identity.OSFamily, o.agentID, o.identity.AgentVersion
	if d.lastIP != o.ip && d.lastIP != "" {
		d.prevEgress, d.prevAt = d.egress, d.last
	}
	if d.lastIP != o.ip {
		d.since = at
	}
	d.lastIP, d.egress, d.last = o.ip, o.egress, at
	d.interval, d.dropped, d.skew = o.interval, o.dropped, o.skew
	if o.panelActive {
		d.panel = at
	}
	agents := make([]agentRow, len(d.agents))
	for i, a := range d.agents {
		if a.ID == o.agentID {
			a.LastSeen = at
		}
		agents[i] = a
	}
	d.agents = agents
	return d
}

// prejudgeRow is what prejudge checks before it trusts facts read outside
// the writer: the device's version, its keys and its stored snapshot's
// digests; on PostgreSQL, the fact stamp the row was read under (see
// rowCache). openAlerts is the device's open_alerts at version, -1 when
// not known (see guardedUpdate).
type prejudgeRow struct {
	version, stamp                int64
	snapKeys, keysDigest, signins string
	snapshot                      storedDigests
	openAlerts                    int64
}

// The device row of the facts; with the live agents as a JSON array
// (see agentRow) rather than by a query of their own; with
// prejudgeColumns, what prejudge checks, read in the same statement (so
// from the same state of the database).
const (
	factsColumns = `SELECT d.hostname, d.hardware_uuid, d.serial_number, d.claims_device,
		d.enrolled_same_address, d.enrolled_same_secret, d.os_family, d.agent_id, d.agent_version,
		d.first_seen, d.last_seen, d.report_interval, d.dropped_reports, d.clock_skew, d.last_ip,
		COALESCE(` + personBySerial + `, ''), COALESCE(` + personByUser + `, ''),
		d.internal_display_active_at, d.egress, d.egress_since, d.prev_egress, d.prev_egress_at,
		EXISTS (SELECT 1 FROM peripheral_shares sh WHERE sh.device_id = d.id),
		EXISTS (SELECT 1 FROM device_users u JOIN people p ON p.username_key = u.username WHERE u.device_id = d.id AND p.username_key <> ''),
		d.activity, d.person, d.cluster_id,
		COALESCE((SELECT c.created_at FROM clusters c WHERE c.id = d.cluster_id), 0),`
	liveAgentsSQLite = `
		(SELECT json_group_array(json_object('id', a.id, 'en', a.enrolled_at, 'ls', a.last_seen))
		FROM agents a WHERE a.device_id = d.id AND a.revoked_at = 0)`
	liveAgentsPostgres = `
		COALESCE((SELECT json_agg(json_build_object('id', a.id, 'en', a.enrolled_at, 'ls', a.last_seen))::text
		FROM agents a WHERE a.device_id = d.id AND a.revoked_at = 0), '[]')`
	prejudgeColumns = `, d.version, d.snapshot_keys, d.keys_digest, d.signin_keys,
		COALESCE(sn.digest, ''), COALESCE(sn.section_digests, ''), d.open_alerts`
	prejudgeFrom = ` FROM devices d LEFT JOIN snapshots sn ON sn.device_id = d.id WHERE d.id = ?`
	// factStampSQL is PostgreSQL's fact stamp (migration 00046).
	factStampSQL       = `(SELECT sum(n)::bigint FROM fact_stamp)`
	factsQuerySQLite   = factsColumns + liveAgentsSQLite + ` FROM devices d WHERE d.id = ?`
	factsQueryPostgres = factsColumns + liveAgentsPostgres + ` FROM devices d WHERE d.id = ?`
	// The rows of a cluster's first members by id, with their ids.
	membersWhere         = ` FROM devices d WHERE d.cluster_id = ? ORDER BY d.id LIMIT ?`
	membersQuerySQLite   = factsColumns + ` d.id,` + liveAgentsSQLite + membersWhere
	membersQueryPostgres = factsColumns + ` d.id,` + liveAgentsPostgres + membersWhere
	// The rows of some devices (rowsStatement), to be followed by a test
	// of membership.
	rowsQuerySQLite          = factsColumns + ` d.id,` + liveAgentsSQLite + ` FROM devices d WHERE d.id `
	rowsQueryPostgres        = factsColumns + ` d.id,` + liveAgentsPostgres + ` FROM devices d WHERE d.id `
	factsPrejudgeQuerySQLite = factsColumns + liveAgentsSQLite + prejudgeColumns + prejudgeFrom
	factsPrejudgeQueryPG     = factsColumns + liveAgentsPostgres + prejudgeColumns + `, ` + factStampSQL + prejudgeFrom
)

// readDevice reads a device's row for its facts and, when pre is not nil,
// what prejudge checks into pre.
func (s *Store) readDevice(ctx context.Context, q querier, deviceID string, pre *prejudgeRow) (deviceRow, error) {
	d := deviceRow{id: deviceID}
	var agents []byte
	dest := append(d.factsDest(), &agents)
	query := factsQuerySQLite
	switch {
	case pre != nil && s.dialect == Postgres:
		query = factsPrejudgeQueryPG
	case pre != nil:
		query = factsPrejudgeQuerySQLite
	case s.dialect == Postgres:
		query = factsQueryPostgres
	}
	if pre != nil {
		dest = append(dest, &pre.version, &pre.snapKeys, &pre.keysDigest, &pre.signins, &pre.snapshot.digest, &pre.snapshot.sections, &pre.openAlerts)
		if s.dialect == Postgres {
			dest = append(dest, &pre.stamp)
		}
	}
	if err := q.QueryRowContext(ctx, s.q(query), deviceID).Scan(dest...); err != nil {
		return d, fmt.Errorf("load device facts: %w", err)
	}
	if err := json.Unmarshal(agents, &d.agents); err != nil {
		return d, fmt.Errorf("load agents: %w", err)
	}
	return d, nil
}

// factsDest are the destinations of factsColumns.
func (d *deviceRow) factsDest() []any {
	return []any{&d.hostname, &d.hardwareUUID, &d.serial, &d.claims, &d.sameAddress, &d.sameSecret, &d.osFamily, &d.agentID, &d.agentVersion,
		&d.first, &d.last, &d.interval, &d.dropped, &d.skew, &d.lastIP, &d.bySerial, &d.byUser, &d.panel,
		egressJSON{&d.egress}, &d.since, egressJSON{&d.prevEgress}, &d.prevAt, &d.shares, &d.named, &d.hist, &d.person, &d.clusterID, &d.clusterCreated}
}

// egressJSON scans a device row's egress column (JSON) into the Egress it
// points to, decoded once as the row is read. Since is left zero: the
// row's egress_since and prev_egress_at say since when (factsFrom).
type egressJSON struct{ e *detect.Egress }

func (j egressJSON) Scan(src any) error {
	*j.e = detect.Egress{}
	switch v := src.(type) {
	case string:
		json.Unmarshal([]byte(v), j.e)
	case []byte:
		json.Unmarshal(v, j.e)
	case nil:
	default:
		return fmt.Errorf("egress: unexpected %T", src)
	}
	j.e.Since = time.Time{}
	return nil
}

// readMembers reads the rows of the first n devices of a cluster by id
// (all its devices, revoked or silent ones included), as readDevice
// does, in one statement: judging a cluster's members again read each
// member's row in a statement of its own.
func (s *Store) readMembers(ctx context.Context, q querier, clusterID string, n int) ([]deviceRow, error) {
	query, args := s.membersStatement(clusterID, n)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cluster members: %w", err)
	}
	defer rows.Close()
	return scanMembers(rows)
}

// rowsStatement reads the rows of the devices ids as readMembers does.
func (s *Store) rowsStatement(ids []string) (string, []any) {
	query := rowsQuerySQLite
	if s.dialect == Postgres {
		query = rowsQueryPostgres
	}
	in, args := s.inList(ids)
	return s.q(query + in), args
}

// membersStatement is readMembers' statement.
func (s *Store) membersStatement(clusterID string, n int) (string, []any) {
	query := membersQuerySQLite
	if s.dialect == Postgres {
		query = membersQueryPostgres
	}
	return s.q(query), []any{clusterID, n}
}

// scanMembers reads the rows of membersStatement (none: an empty slice).
func scanMembers(rows resultRows) ([]deviceRow, error) {
	members := []deviceRow{}
	for rows.Next() {
		var d deviceRow
		var agents []byte
		if err := rows.Scan(append(d.factsDest(), &d.id, &agents)...); err != nil {
			return nil, fmt.Errorf("cluster members: %w", err)
		}
		if err := json.Unmarshal(agents, &d.agents); err != nil {
			return nil, fmt.Errorf("cluster members: load agents: %w", err)
		}
		members = append(members, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster members: %w", err)
	}
	return members, nil
}

// factsFrom builds the facts of a device from its row (see readDevice),
// with the reported activity hours added (see activityFacts).
func (s *Store) factsFrom(ctx context.Context, q querier, d deviceRow, now time.Time, hours []activity.Hour, views clusterViews) (*factsRead, error) {
	deviceID := d.id
	f := &detect.DeviceFacts{ID: deviceID, Hostname: d.hostname, HardwareUUID: d.hardwareUUID, SerialNumber: d.serial, ClaimsDevice: d.claims,
		OSFamily: d.osFamily, AgentID: d.agentID, AgentVersion: d.agentVersion, EgressIP: d.lastIP}
	f.EnrolledWith.SameAddress, f.EnrolledWith.SameSecret = d.sameAddress, d.sameSecret
	f.Declared.DaysSinceHire = -1
	r := &factsRead{facts: f, storedPerson: d.person, deviceHist: d.hist}
	var workHours string
	var err error
	switch {
	case d.bySerial != "":
		f.Person, f.Declared.Binding = d.bySerial, "device_serial"
	case d.byUser != "":
		f.Person, f.Declared.Binding = d.byUser, "username"
	}
	if d.clusterID != "" {
		c, err := views.view(ctx, s, q, d.clusterID, now)
		if err != nil {
			return nil, err
		}
		f.Cluster = clusterFacts(c, deviceID)
		if d.clusterCreated > 0 {
			f.Cluster.AgeHours = math.Round(now.Sub(fromMicros(d.clusterCreated)).Hours()*10) / 10
		}
	}
	f.Egress, f.PreviousEgress = d.egress, d.prevEgress
	f.Egress.Since, f.PreviousEgress.Since = fromMicros(d.since), fromMicros(d.prevAt)
	for _, e := range []*detect.Egress{&f.Egress, &f.PreviousEgress} {
		if loc, err := zone.Load(e.TimeZone); err == nil && e.TimeZone != "" {
			_, off := now.In(loc).Zone()
			e.UTCOffsetSeconds = int64(off)
		}
	}
	if f.Person != "" {
		var work, hireDate, located string // scanned into: on the heap, so declared here
		d := &f.Declared
		d.Email = f.Person
		if err := q.QueryRowContext(ctx, s.q(`SELECT p.country, p.region, p.city, p.timezone, p.work_hours, p.hire_date, p.location, p.latitude, p.longitude,
			(SELECT a.histogram FROM person_activity a WHERE a.email = p.email)
			FROM people p WHERE p.email = ?`), f.Person).
			Scan(&d.Country, &d.Region, &d.City, &d.Timezone, &work, &hireDate, &located, &d.Latitude, &d.Longitude, &r.personHistRead); err != nil {
			return nil, fmt.Errorf("load person: %w", err)
		}
		if t, err := ParseHireDate(hireDate); err == nil {
			d.HireDate, d.DaysSinceHire = t, max(0, int64(now.Sub(t)/(24*time.Hour)))
		}
		workHours, d.Located = work, located == "ok"
		if loc, err := zone.Load(d.Timezone); err == nil && d.Timezone != "" {
			_, off := now.In(loc).Zone()
			d.UTCOffsetSeconds = int64(off)
		}
	}
	if f.Person != "" {
		if f.PersonFacts, err = s.personFacts(ctx, q, f.Person, deviceID, f.Egress, now); err != nil {
			return nil, err
		}
	}
	activityFacts(r, now, hours, workHours)
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
	f.FirstSeen, f.LastSeen = fromMicros(d.first), fromMicros(d.last)
	if d.panel > 0 {
		f.InternalDisplayLastActive = fromMicros(d.panel)
	}
	if d.shares {
		if f.SharedPeripherals, err = s.sharedPeripherals(ctx, q, deviceID, now); err != nil {
			return nil, err
		}
	}
	if d.named { // the device reports some person's user name
		if f.UsernameConflicts, err = s.usernameConflicts(ctx, q, deviceID); err != nil {
			return nil, err
		}
	}
	f.ReportInterval = time.Duration(d.interval) * time.Microsecond
	f.DroppedReports = d.dropped
	f.ClockSkew = time.Duration(d.skew) * time.Microsecond
	var buf [4]liveAgent // on the stack: a device has one agent, or a few
	agents := buf[:0]
	for _, a := range d.agents {
		if a.LastSeen == 0 {
			continue // never reported
		}
		agents = append(agents, liveAgent{id: a.ID, enrolled: fromMicros(a.Enrolled), lastSeen: fromMicros(a.LastSeen)})
	}
	f.LiveAgentIDs = liveAgents(agents, now, livenessWindow(f.ReportInterval))
	return r, nil
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
	var buf [4]liveAgent // on the stack, as are the agents filtered in place below
	cand := buf[:0]
	for _, a := range agents {
		if now.Sub(a.lastSeen) <= window {
			cand = append(cand, a)
		}
	}
	if len(cand) == 0 {
		return []string{}
	}
	newest := slices.MaxFunc(cand, func(a, b liveAgent) int { return a.enrolled.Compare(b.enrolled) })
	out := cand[:0]
	for _, a := range cand {
		if a.id == newest.id || a.lastSeen.After(newest.enrolled) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b liveAgent) int { return b.lastSeen.Compare(a.lastSeen) }) // the most recent first
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.id
	}
	return ids
}
