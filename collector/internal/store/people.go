package store

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Person is someone a device is issued to, from the HR export.
type Person struct {
	ID           int64  `json:"id"`
	Email        string `json:"email"`
	Name         string `json:"name"`
	Username     string `json:"username"`
	DeviceSerial string `json:"device_serial"`
	Country      string `json:"country"`
	Region       string `json:"region"`
	City         string `json:"city"`
	Timezone     string `json:"timezone"`
	WorkHours    string `json:"work_hours"`
	// HireDate is the ISO date (2006-01-02) the person was hired, "" when
	// the export does not say.
	HireDate  string    `json:"hire_date"`
	UpdatedAt time.Time `json:"updated_at"`
	// Location is "ok" when the declared city was found in the gazetteer
	// (then Latitude and Longitude are set), "country only" when no city
	// was declared, or "" when nothing was declared.
	Location  string  `json:"location"`
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
	// Risk is the person's risk score over all their devices.
	Risk Risk `json:"risk"`
}

// Places locates declared cities (an offline gazetteer).
type Places interface {
	// Locate returns the ISO 3166-1 alpha-2 code of country (a code or an
	// English name) and, when city is not empty, the city's coordinates;
	// an unknown country or city is an error saying so.
	Locate(country, region, city string) (code string, lat, lon float64, err error)
}

// SetPlaces sets the gazetteer people's declared cities are located with.
func (s *Store) SetPlaces(p Places) { s.places = p }

// locate normalises the declared country and locates the declared city.
func (s *Store) locate(p *Person) error {
	p.Location, p.Latitude, p.Longitude = "", 0, 0
	if p.Country == "" && p.City == "" || s.places == nil {
		return nil
	}
	if p.Country == "" {
		return fmt.Errorf("city %q: needs a country", p.City)
	}
	code, lat, lon, err := s.places.Locate(p.Country, p.Region, p.City)
	if err != nil {
		return err
	}
	p.Country = code
	if p.City == "" {
		p.Location = "country only"
		return nil
	}
	p.Location, p.Latitude, p.Longitude = "ok", lat, lon
	return nil
}

// PeopleColumns are the HR export's columns, in order.
var PeopleColumns = []string{"email", "name", "username", "device_serial", "country", "region", "city", "timezone", "work_hours", "hire_date"}

var workHours = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$`)

// Validate checks a person's fields; the error names the field.
func (p *Person) Validate() error {
	p.Email = strings.ToLower(strings.TrimSpace(p.Email))
	if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email {
		return fmt.Errorf("email %q: not an address", p.Email)
	}
	for name, v := range map[string]string{"name": p.Name, "username": p.Username, "device_serial": p.DeviceSerial,
		"country": p.Country, "region": p.Region, "city": p.City} {
		if len(v) > 256 {
			return fmt.Errorf("%s: longer than 256 bytes", name)
		}
	}
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil || p.Timezone == "Local" {
			return fmt.Errorf("timezone %q: not an IANA zone", p.Timezone)
		}
	}
	if p.WorkHours != "" && !workHours.MatchString(p.WorkHours) {
		return fmt.Errorf("work_hours %q: want HH:MM-HH:MM", p.WorkHours)
	}
	if p.HireDate != "" {
		if _, err := ParseHireDate(p.HireDate); err != nil {
			return err
		}
	}
	return nil
}

// ParseHireDate parses an ISO hire date (2006-01-02) between 1950 and
// 2100, as midnight UTC.
func ParseHireDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 1950 || t.Year() > 2100 {
		return time.Time{}, fmt.Errorf("hire_date %q: want an ISO date (YYYY-MM-DD) between 1950 and 2100", s)
	}
	return t, nil
}

// UpsertPerson stores a person, replacing the one with the same email.
func (s *Store) UpsertPerson(ctx context.Context, p Person, actor string) (Person, error) {
	if err := p.Validate(); err != nil {
		return Person{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.locate(&p); err != nil {
		return Person{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.upsertPerson(ctx, tx, &p, actor)
	})
	return p, err
}

func (s *Store) upsertPerson(ctx context.Context, tx *sql.Tx, p *Person, actor string) error {
	p.UpdatedAt = time.Now().UTC()
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO people (email, name, username, username_key, device_serial, country, region, city,
		timezone, work_hours, hire_date, latitude, longitude, location, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET name = excluded.name,
		username = excluded.username, username_key = excluded.username_key,
		device_serial = excluded.device_serial, country = excluded.country, region = excluded.region, city = excluded.city,
		timezone = excluded.timezone, work_hours = excluded.work_hours, hire_date = excluded.hire_date, latitude = excluded.latitude, longitude = excluded.longitude,
		location = excluded.location, updated_at = excluded.updated_at RETURNING id`),
		p.Email, p.Name, p.Username, UsernameKey(p.Username), p.DeviceSerial, p.Country, p.Region, p.City, p.Timezone, p.WorkHours, p.HireDate,
		p.Latitude, p.Longitude, p.Location, micros(p.UpdatedAt)).Scan(&p.ID)
	if err != nil {
		return fmt.Errorf("store person: %w", err)
	}
	return s.audit(ctx, tx, actor, "upsert", "person", p.Email, nil)
}

// RowError is one refused row of a people import.
type RowError struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

// ImportPeople reads the HR CSV (a header naming PeopleColumns, in any
// order; unknown columns are an error) and stores every valid row. Bad rows
// are reported with their line and keep no data; good rows are kept.
func (s *Store) ImportPeople(ctx context.Context, r io.Reader, actor string) (imported int, rowErrs []RowError, err error) {
	parsed, rowErrs, err := ParsePeopleCSV(r)
	if err != nil {
		return 0, rowErrs, err
	}
	var people []Person
	for _, p := range parsed {
		if err := s.locate(&p.Person); err != nil {
			rowErrs = append(rowErrs, RowError{Line: p.Line, Err: err.Error()})
			continue
		}
		people = append(people, p.Person)
	}
	slices.SortStableFunc(rowErrs, func(a, b RowError) int { return a.Line - b.Line })
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for i := range people {
			if err := s.upsertPerson(ctx, tx, &people[i], actor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, rowErrs, err
	}
	return len(people), rowErrs, nil
}

// ListPeople lists people ordered by email.
func (s *Store) ListPeople(ctx context.Context, afterEmail string, limit int) ([]Person, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+personColumns+` FROM people WHERE email > ? ORDER BY email LIMIT ?`), afterEmail, PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	return scanRows(rows, scanPerson)
}

const personColumns = `id, email, name, username, device_serial, country, region, city, timezone, work_hours, hire_date, updated_at,
	location, latitude, longitude, risk_score, risk_contributors`

func scanPerson(sc interface{ Scan(...any) error }) (Person, error) {
	var p Person
	var up int64
	var risk string
	if err := sc.Scan(&p.ID, &p.Email, &p.Name, &p.Username, &p.DeviceSerial, &p.Country, &p.Region, &p.City, &p.Timezone, &p.WorkHours, &p.HireDate, &up,
		&p.Location, &p.Latitude, &p.Longitude, &p.Risk.Score, &risk); err != nil {
		return Person{}, err
	}
	p.UpdatedAt = fromMicros(up)
	json.Unmarshal([]byte(risk), &p.Risk.Contributors)
	return p, nil
}

// GetPerson loads one person by email.
func (s *Store) GetPerson(ctx context.Context, email string) (Person, error) {
	p, err := scanPerson(s.r.QueryRowContext(ctx, s.q(`SELECT `+personColumns+` FROM people WHERE email = ?`), email))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, ErrNotFound
	}
	return p, err
}

// personBySerial is the subquery naming the person whose device_serial is
// device d's hardware serial (not for a device that claimed another's
// hardware identity: its serial is a claim); personByUser the one whose user name was seen
// on d; personOfDevice the first of the two.
//
// The agent reports the user names, so a user name binds only when that is
// unambiguous: the device's user names that are some person's name no
// other active device reports (devices HR declared for someone else aside),
// and they name exactly one person. A user
// name on several devices binds none of them (username_conflicts shows it
// to the rules instead); so laptops reporting a colleague's name cannot
// merge into that colleague.
const (
	personBySerial = `(SELECT p.email FROM people p WHERE p.device_serial <> '' AND lower(p.device_serial) = lower(d.serial_number)
		AND d.claims_device = '' ORDER BY p.id LIMIT 1)`
	personByUser = `(SELECT MIN(p.email) FROM people p JOIN device_users u ON u.device_id = d.id AND u.username = p.username_key
		WHERE p.username_key <> '' AND NOT EXISTS (SELECT 1 FROM device_users o JOIN devices od ON od.id = o.device_id
			WHERE o.username = u.username AND o.device_id <> d.id AND od.revoked_at = 0 AND NOT ` + declaredOther + `)
		HAVING COUNT(DISTINCT p.email) = 1)`
	// declaredOther: device od's serial is declared for a person other than
	// p (its user names are a guest's there, not a claim on p).
	declaredOther  = `EXISTS (SELECT 1 FROM people q WHERE q.device_serial <> '' AND lower(q.device_serial) = lower(od.serial_number) AND q.email <> p.email)`
	personOfDevice = `COALESCE(` + personBySerial + `, ` + personByUser + `)`
)

// ParsedPerson is one valid row of the HR export and its line.
type ParsedPerson struct {
	Person
	Line int
}

// ParsePeopleCSV reads the HR export: the header, then one person a row,
// each validated (Person.Validate). Rows that are not valid, or not CSV,
// are returned as row errors and skipped; err is a header that is not the
// export's, or a read that cannot go on. It never panics, whatever the
// bytes (FuzzParsePeopleCSV).
func ParsePeopleCSV(r io.Reader) (people []ParsedPerson, rowErrs []RowError, err error) {
	cr := csv.NewReader(io.LimitReader(r, 64<<20))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("people CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(PeopleColumns, h) {
			return nil, nil, fmt.Errorf("people CSV header: unknown column %q (want %s)", h, strings.Join(PeopleColumns, ","))
		}
		col[h] = i
	}
	if _, ok := col["email"]; !ok {
		return nil, nil, errors.New("people CSV header: no email column")
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The line of a row that is not CSV is the parse error's: the
			// reader has no record to ask for positions.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			rowErrs = append(rowErrs, RowError{Line: line, Err: err.Error()})
			if errors.Is(err, csv.ErrFieldCount) || errors.Is(err, csv.ErrQuote) || errors.Is(err, csv.ErrBareQuote) {
				continue
			}
			return nil, rowErrs, fmt.Errorf("people CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		p := Person{Email: get("email"), Name: get("name"), Username: get("username"), DeviceSerial: get("device_serial"),
			Country: get("country"), Region: get("region"), City: get("city"), Timezone: get("timezone"), WorkHours: get("work_hours"),
			HireDate: get("hire_date")}
		if err := p.Validate(); err != nil {
			rowErrs = append(rowErrs, RowError{Line: line, Err: err.Error()})
			continue
		}
		people = append(people, ParsedPerson{p, line})
	}
	return people, rowErrs, nil
}

// UsernameKey is how user names are compared between the HR export and
// devices: lower case, without a Windows domain ("CORP\\ana") or a UPN
// suffix ("ana@corp.example").
func UsernameKey(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	if i := strings.LastIndexByte(u, '\\'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.IndexByte(u, '@'); i >= 0 {
		u = u[:i]
	}
	return u
}
