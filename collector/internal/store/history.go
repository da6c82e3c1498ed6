package store

// What the web UI's device and person pages read: device and people
// listings searched by prefix and paged by cursor, a device's snapshot and
// egress history, activity histograms, and the alerts of a person's
// devices. Every query is bounded (LIMIT) and served by an index.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// maxRune ends a prefix range: every string starting with the prefix
// sorts (bytewise) at or after the prefix and before prefix+maxRune.
const maxRune = "\U0010FFFF"

// keepEgress is how many egress changes are kept per device.
const keepEgress = 500

// collateC is the collation prefix searches and text keysets compare in:
// bytes, so that a prefix is a range (SQLite's default; PostgreSQL's
// depends on the database's locale unless told).
func (s *Store) collateC(expr string) string {
	if s.dialect == Postgres {
		return expr + ` COLLATE "C"`
	}
	return expr
}

// DeviceQuery selects a page of devices for the UI's device list.
type DeviceQuery struct {
	// Search is a prefix (case-insensitive) of the host name, the serial
	// number or the bound person's email, as Field says: "host", "serial",
	// "person", or "" for any of the three.
	Search string
	Field  string
	// Sort is "risk" (highest first, the default) or "last_seen" (most
	// recent first).
	Sort string
	// Cursor continues a listing (DevicePage.Next of the previous page).
	Cursor string
	Limit  int
}

// DevicePage is one page of devices; Next is the cursor of the next page,
// "" on the last.
type DevicePage struct {
	Devices []Device
	Next    string
}

// SearchDevices lists a page of devices. A malformed cursor or an unknown
// field or sort is ErrInvalid.
func (s *Store) SearchDevices(ctx context.Context, q DeviceQuery) (DevicePage, error) {
	var where []string
	var args []any
	if q.Search = strings.TrimSpace(q.Search); q.Search != "" {
		prefix := func(col string) string {
			c := s.collateC(col)
			args = append(args, q.Search, q.Search, maxRune)
			return "(" + c + " >= lower(CAST(? AS TEXT)) AND " + c + " < lower(CAST(? AS TEXT)) || CAST(? AS TEXT))"
		}
		var or []string
		switch q.Field {
		case "host":
			or = append(or, prefix("lower(d.hostname)"))
		case "serial":
			or = append(or, prefix("lower(d.serial_number)"))
		case "person":
			or = append(or, prefix("d.person"))
		case "":
			or = append(or, prefix("lower(d.hostname)"), prefix("lower(d.serial_number)"), prefix("d.person"))
		default:
			return DevicePage{}, fmt.Errorf("search field %q: %w", q.Field, ErrInvalid)
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	col := "d.risk_score"
	switch q.Sort {
	case "", "risk":
	case "last_seen":
		col = "d.last_seen"
	default:
		return DevicePage{}, fmt.Errorf("sort %q: %w", q.Sort, ErrInvalid)
	}
	// The page is sorted by col, then id; its ids are found by seeking the
	// index on (seek, seekID) from the cursor, in from.
	seek, seekID, from := col, "d.id", "devices d"
	if q.Sort == "last_seen" && s.dialect == Postgres {
		// last_seen's index is on device_seen (migration 00048).
		seek, seekID, from = "ls.last_seen", "ls.device_id", "device_seen ls JOIN devices d ON d.id = ls.device_id"
	}
	if q.Cursor != "" {
		key, id, err := parseCursor(q.Cursor)
		if err != nil {
			return DevicePage{}, err
		}
		// Row values: both engines seek the index to the cursor.
		where = append(where, "("+seek+", "+seekID+") < (?, ?)")
		args = append(args, key, id)
	}
	// The page's ids first, then their rows: sorting ids is cheap, sorting
	// whole rows would look up the person of every match.
	ids := `SELECT d.id FROM ` + from
	if len(where) > 0 {
		ids += " WHERE " + strings.Join(where, " AND ")
	}
	ids += " ORDER BY " + seek + " DESC, " + seekID + " DESC"
	query := `SELECT ` + deviceColumns + ` FROM devices d WHERE d.id IN (` + ids + ` LIMIT ?) ORDER BY ` + col + ` DESC, d.id DESC`
	limit := PageLimit(q.Limit)
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return DevicePage{}, fmt.Errorf("search devices: %w", err)
	}
	devices, err := scanRows(rows, scanDevice)
	if err != nil {
		return DevicePage{}, err
	}
	p := DevicePage{Devices: devices}
	if len(p.Devices) > limit {
		p.Devices = p.Devices[:limit]
		last := p.Devices[limit-1]
		key := int64(last.Risk.Score)
		if q.Sort == "last_seen" {
			key = micros(last.LastSeen)
		}
		p.Next = strconv.FormatInt(key, 10) + "," + last.ID
	}
	return p, nil
}

// parseCursor splits a "number,text" cursor.
func parseCursor(c string) (int64, string, error) {
	n, rest, ok := strings.Cut(c, ",")
	key, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || rest == "" {
		return 0, "", fmt.Errorf("cursor %q: %w", c, ErrInvalid)
	}
	return key, rest, nil
}

// PeopleQuery selects a page of people for the UI's people list.
type PeopleQuery struct {
	// Search is a prefix (case-insensitive) of the email or the name, or
	// the user name (as UsernameKey).
	Search string
	// Sort is "email" (the default) or "risk" (highest first).
	Sort   string
	Cursor string
	Limit  int
}

// PeoplePage is one page of people; Next is the cursor of the next page,
// "" on the last.
type PeoplePage struct {
	People []Person
	Next   string
}

// SearchPeople lists a page of people.
func (s *Store) SearchPeople(ctx context.Context, q PeopleQuery) (PeoplePage, error) {
	var where []string
	var args []any
	email := s.collateC("email")
	if q.Search = strings.TrimSpace(q.Search); q.Search != "" {
		name := s.collateC("lower(name)")
		lo, hi := "lower(CAST(? AS TEXT))", "lower(CAST(? AS TEXT)) || CAST(? AS TEXT)"
		where = append(where, "(("+email+" >= "+lo+" AND "+email+" < "+hi+") OR ("+
			name+" >= "+lo+" AND "+name+" < "+hi+") OR username_key = ?)")
		args = append(args, q.Search, q.Search, maxRune, q.Search, q.Search, maxRune, UsernameKey(q.Search))
	}
	order := email
	switch q.Sort {
	case "", "email":
		if q.Cursor != "" {
			where = append(where, email+" > ?")
			args = append(args, q.Cursor)
		}
	case "risk":
		order = "risk_score DESC, " + email
		if q.Cursor != "" {
			score, after, err := parseCursor(q.Cursor)
			if err != nil {
				return PeoplePage{}, err
			}
			// Score descending, email ascending: not one row value; the
			// first term lets the index seek.
			where = append(where, "risk_score <= ? AND (risk_score < ? OR "+email+" > ?)")
			args = append(args, score, score, after)
		}
	default:
		return PeoplePage{}, fmt.Errorf("sort %q: %w", q.Sort, ErrInvalid)
	}
	query := `SELECT ` + personColumns + ` FROM people`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := PageLimit(q.Limit)
	query += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return PeoplePage{}, fmt.Errorf("search people: %w", err)
	}
	people, err := scanRows(rows, scanPerson)
	if err != nil {
		return PeoplePage{}, err
	}
	p := PeoplePage{People: people}
	if len(p.People) > limit {
		p.People = p.People[:limit]
		last := p.People[limit-1]
		p.Next = last.Email
		if q.Sort == "risk" {
			p.Next = strconv.Itoa(last.Risk.Score) + "," + last.Email
		}
	}
	return p, nil
}

// HistorySnapshot is one stored snapshot of a device (snapshot_history):
// a row is written only when the content changed, Changed naming the
// signal families that differ from the previous one.
type HistorySnapshot struct {
	ID         int64
	ReportID   string
	CreatedAt  time.Time
	ReceivedAt time.Time
	Changed    []string
	// Data is the snapshot, protobuf-encoded (agentv1.HostSnapshot).
	Data []byte
}

// DeviceSnapshots lists a device's stored snapshots newest first, at most
// limit (at most 200), older than the row beforeID when it is not 0.
func (s *Store) DeviceSnapshots(ctx context.Context, deviceID string, beforeID int64, limit int) ([]HistorySnapshot, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, report_id, created_at, received_at, changed, data FROM snapshot_history
		WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?`), deviceID, beforeID, min(PageLimit(limit), 200))
	if err != nil {
		return nil, fmt.Errorf("snapshot history: %w", err)
	}
	return scanRows(rows, func(sc scanner) (HistorySnapshot, error) {
		var h HistorySnapshot
		var c, r int64
		var changed string
		err := sc.Scan(&h.ID, &h.ReportID, &c, &r, &changed, &h.Data)
		h.CreatedAt, h.ReceivedAt = fromMicros(c), fromMicros(r)
		if changed != "" {
			h.Changed = strings.Split(changed, ",")
		}
		return h, err
	})
}

// EgressChange is one entry of a device's egress history: from At on, its
// reports came from IP, which GeoIP and the network catalog described so.
type EgressChange struct {
	At           time.Time
	IP           string
	Status       string
	Country      string
	Region       string
	City         string
	ASN          int64
	Org          string
	NetworkClass string
	NetworkName  string
	TimeZone     string
}

// recordEgress adds an egress history entry when the report moved the
// device to another address, and keeps the newest keepEgress entries. It
// runs after the report's device update, which returned egress_since (since):
// the report's time when the address changed, an earlier time when it did
// not, so most reports need no statement here. Only an earlier write of the
// same microsecond can also have set it; that write recorded its address
// (every change is recorded, and the newest entry is never pruned in the
// same microsecond), so the entry is added unless the device's newest one
// is already this address at this time.
func (s *Store) recordEgress(ctx context.Context, tx wtx, deviceID, ip string, e detect.Egress, at time.Time, since int64) error {
	if since != micros(at) {
		return nil
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO egress_history (device_id, at, ip, status, country, region, city, asn, org,
		network_class, network_name, timezone, has_location, latitude, longitude) SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT),
		CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT),
		CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION)
		WHERE NOT EXISTS (SELECT 1 FROM egress_history WHERE id = (SELECT MAX(id) FROM egress_history WHERE device_id = ?)
		AND at = ? AND ip = ?)`),
		deviceID, micros(at), ip, e.Status, e.Country, e.Region, e.City, e.ASN, e.Org, e.NetworkClass, e.NetworkName, e.TimeZone,
		boolInt(e.HasLocation), e.Latitude, e.Longitude, deviceID, micros(at), ip)
	if err != nil {
		return fmt.Errorf("egress history: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	// No row at that offset (fewer entries): id <= NULL deletes nothing.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM egress_history WHERE device_id = ? AND id <=
		(SELECT id FROM egress_history WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`), deviceID, deviceID, keepEgress); err != nil {
		return fmt.Errorf("egress history: %w", err)
	}
	return nil
}

// EgressHistory lists a device's egress changes newest first, at most
// limit, those before a time when it is not zero.
func (s *Store) EgressHistory(ctx context.Context, deviceID string, before time.Time, limit int) ([]EgressChange, error) {
	until := int64(1<<63 - 1)
	if !before.IsZero() {
		until = micros(before)
	}
	// The index walks the device's entries newest first; there are at most
	// keepEgress of them.
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT at, ip, status, country, region, city, asn, org, network_class, network_name, timezone
		FROM egress_history WHERE device_id = ? AND at < ? ORDER BY id DESC LIMIT ?`), deviceID, until, PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("egress history: %w", err)
	}
	return scanRows(rows, func(sc scanner) (EgressChange, error) {
		var e EgressChange
		var at int64
		err := sc.Scan(&at, &e.IP, &e.Status, &e.Country, &e.Region, &e.City, &e.ASN, &e.Org, &e.NetworkClass,
			&e.NetworkName, &e.TimeZone)
		e.At = fromMicros(at)
		return e, err
	})
}

// DeviceActivity loads a device's activity histogram; nil when it has
// none (or the stored one does not decode).
func (s *Store) DeviceActivity(ctx context.Context, deviceID string) (*activity.Histogram, error) {
	return s.histogram(ctx, `SELECT activity FROM devices WHERE id = ?`, deviceID)
}

// PersonActivity loads a person's activity histogram (over all their
// devices); nil when there is none.
func (s *Store) PersonActivity(ctx context.Context, email string) (*activity.Histogram, error) {
	return s.histogram(ctx, `SELECT histogram FROM person_activity WHERE email = ?`, email)
}

func (s *Store) histogram(ctx context.Context, query, key string) (*activity.Histogram, error) {
	var blob []byte
	err := s.r.QueryRowContext(ctx, s.q(query), key).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	var h activity.Histogram
	if h.UnmarshalBinary(blob) != nil {
		return nil, nil
	}
	return &h, nil
}

// maxPersonDevices bounds the devices listed for one person.
const maxPersonDevices = 200

// PersonDevices lists the devices bound to a person (as Device.Person
// says: by the HR export's serial, else by a user name seen on the
// device), ordered by id, at most 200.
func (s *Store) PersonDevices(ctx context.Context, p Person) ([]Device, error) {
	// Candidates by each binding (all indexed); a device bound to someone
	// else first (serial before user name) is dropped below.
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices d WHERE d.person = ?
		OR (CAST(? AS TEXT) <> '' AND lower(d.serial_number) = lower(CAST(? AS TEXT)))
		OR d.id IN (SELECT u.device_id FROM device_users u WHERE CAST(? AS TEXT) <> '' AND u.username = ?)
		ORDER BY d.id LIMIT ?`), p.Email, p.DeviceSerial, p.DeviceSerial, UsernameKey(p.Username), UsernameKey(p.Username), maxPersonDevices)
	if err != nil {
		return nil, fmt.Errorf("person devices: %w", err)
	}
	out, err := scanRows(rows, scanDevice)
	return slices.DeleteFunc(out, func(d Device) bool { return d.Person != p.Email }), err
}

// OpenAlertsOf lists the open and acknowledged alerts of some devices,
// newest first, at most limit.
func (s *Store) OpenAlertsOf(ctx context.Context, deviceIDs []string, limit int) ([]Alert, error) {
	if len(deviceIDs) == 0 {
		return []Alert{}, nil
	}
	return s.queryAlerts(ctx, []string{"a.device_id IN (" + marks(len(deviceIDs)) + ")", "a.status IN ('open', 'acknowledged')"},
		anys(deviceIDs), "a.id DESC", PageLimit(limit))
}
