// Package geo looks up where an IP address is and which network (AS) it
// belongs to, in one or more MaxMind-format (MMDB) databases.
//
// It reads the schemas that matter in practice:
//
//   - MaxMind GeoLite2/GeoIP2 City and Country, and DB-IP Lite City and
//     Country (the same nested schema): country.iso_code, city.names.en,
//     subdivisions[0].names.en / iso_code, location.latitude / longitude /
//     accuracy_radius;
//   - MaxMind GeoLite2 ASN, DB-IP Lite ASN and ip-location-db's asn-mmdb:
//     autonomous_system_number, autonomous_system_organization;
//   - ip-location-db's flat City and Country schemas: country_code, state1,
//     city, latitude, longitude;
//   - IPinfo-style flat ASN fields: asn (a number or "AS15169"), as_name.
//
// Each file may hold any subset of these fields. A lookup asks every file
// in the order given to Open and merges the answers: the first file that
// knows a field wins. Region, city and coordinates are taken only from a
// file whose country agrees with the country already chosen, so that one
// answer never mixes one database's country with another's city; the AS
// organisation is taken from the file that gave the AS number.
package geo

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/zone"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is what the databases know about one address.
type Location struct {
	CountryCode         string // ISO 3166-1 alpha-2, upper case
	Region              string // first subdivision (state, province), English name or code
	City                string
	Latitude, Longitude float64
	HasCoordinates      bool
	AccuracyKm          uint16 // 0 when the database does not say
	ASN                 uint32
	ASOrg               string
	// TimeZone is the IANA zone of the place (MaxMind location.time_zone,
	// ip-location-db timezone); "" when unknown or not a zone Go knows.
	TimeZone string
	Sources  []string // names (DBInfo.Name) of the files that knew the address
}

// DBInfo describes one opened database file.
type DBInfo struct {
	Path         string    `json:"path"`
	Name         string    `json:"name"` // base name of Path, as used in Location.Sources
	DatabaseType string    `json:"database_type"`
	Description  string    `json:"description,omitempty"`
	BuildTime    time.Time `json:"build_time"`
	NodeCount    uint      `json:"node_count"`
	IPVersion    uint      `json:"ip_version"`
}

// DB is a set of opened databases. Its methods are safe for concurrent use;
// Lookup after Close reports no answer.
type DB struct {
	mu    sync.RWMutex
	files []dbFile
}

type dbFile struct {
	info   DBInfo
	reader *maxminddb.Reader
}

var errClosed = errors.New("geo: database closed")

// Open opens the given MMDB files. With no paths it returns a DB that knows
// no address. On error every file opened so far is closed again.
func Open(paths ...string) (*DB, error) {
	d := &DB{}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("geo: open %s: %w", p, err)
		}
		m := r.Metadata
		info := DBInfo{
			Path:         p,
			Name:         filepath.Base(p),
			DatabaseType: m.DatabaseType,
			Description:  m.Description["en"],
			BuildTime:    m.BuildTime().UTC(),
			NodeCount:    m.NodeCount,
			IPVersion:    m.IPVersion,
		}
		d.files = append(d.files, dbFile{info: info, reader: r})
	}
	return d, nil
}

// Close closes every database file.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, f := range d.files {
		if err := f.reader.Close(); err != nil {
			errs = append(errs, fmt.Errorf("geo: close %s: %w", f.info.Path, err))
		}
	}
	d.files = nil
	return errors.Join(errs...)
}

// Info describes the opened files, in lookup order.
func (d *DB) Info() []DBInfo {
	if d == nil {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]DBInfo, len(d.files))
	for i, f := range d.files {
		out[i] = f.info
	}
	return out
}

// Lookup merges what every database knows about ip. It returns false when
// none of them knows the address (or ip is invalid).
func (d *DB) Lookup(ip netip.Addr) (Location, bool) {
	var loc Location
	if d == nil || !ip.IsValid() {
		return loc, false
	}
	ip = ip.Unmap().WithZone("")
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, f := range d.files {
		a, err := f.lookup(ip)
		if err != nil || a.empty() {
			continue
		}
		loc.Sources = append(loc.Sources, f.info.Name)
		loc.merge(a)
	}
	return loc, len(loc.Sources) > 0
}

// answer is one file's normalised answer.
type answer struct {
	country, region, city string
	lat, lon              float64
	hasCoords             bool
	accuracy              uint16
	asn                   uint32
	asOrg                 string
	timeZone              string
}

func (a answer) empty() bool {
	return a.country == "" && a.region == "" && a.city == "" && !a.hasCoords && a.asn == 0 && a.asOrg == ""
}

func (l *Location) merge(a answer) {
	if l.CountryCode == "" {
		l.CountryCode = a.country
	}
	// Place fields only from a file that agrees on the country (or names
	// none while none is chosen yet).
	if a.country == l.CountryCode {
		if l.Region == "" {
			l.Region = a.region
		}
		if l.City == "" {
			l.City = a.city
		}
		if l.TimeZone == "" {
			l.TimeZone = a.timeZone
		}
		if !l.HasCoordinates && a.hasCoords {
			l.Latitude, l.Longitude, l.HasCoordinates = a.lat, a.lon, true
			l.AccuracyKm = a.accuracy
		}
	}
	switch {
	case l.ASN == 0 && a.asn != 0:
		l.ASN = a.asn
		if a.asOrg != "" {
			l.ASOrg = a.asOrg
		}
	case l.ASOrg == "" && a.asOrg != "" && (a.asn == 0 && l.ASN == 0 || a.asn == l.ASN):
		l.ASOrg = a.asOrg
	}
}

// record covers the nested MaxMind schema and the flat ip-location-db /
// IPinfo schemas. Keys whose type differs between schemas ("country" and
// "city" are maps in one and strings in the other; numbers may be stored as
// any numeric type or as strings) are decoded into any and interpreted.
type record struct {
	Country      any `maxminddb:"country"`
	City         any `maxminddb:"city"`
	Subdivisions any `maxminddb:"subdivisions"`
	Location     any `maxminddb:"location"`
	ASNumber     any `maxminddb:"autonomous_system_number"`
	ASOrg        any `maxminddb:"autonomous_system_organization"`

	CountryCode any `maxminddb:"country_code"`
	State1      any `maxminddb:"state1"`
	Latitude    any `maxminddb:"latitude"`
	Longitude   any `maxminddb:"longitude"`
	ASN         any `maxminddb:"asn"`
	ASName      any `maxminddb:"as_name"`
	Timezone    any `maxminddb:"timezone"`
}

func (f dbFile) lookup(ip netip.Addr) (answer, error) {
	if f.reader == nil {
		return answer{}, errClosed
	}
	if ip.Is6() && f.info.IPVersion == 4 {
		return answer{}, nil
	}
	res := f.reader.Lookup(ip)
	if err := res.Err(); err != nil {
		return answer{}, err
	}
	if !res.Found() {
		return answer{}, nil
	}
	var r record
	if err := res.Decode(&r); err != nil {
		return answer{}, err
	}
	return r.answer(), nil
}

func (r *record) answer() answer {
	var a answer
	// Country: nested country.iso_code, else flat country_code (IPinfo's
	// "country" is a name, not a code, and is ignored).
	if m, ok := r.Country.(map[string]any); ok {
		a.country = countryCode(str(m["iso_code"]))
	}
	if a.country == "" {
		a.country = countryCode(str(r.CountryCode))
	}
	// Region: subdivisions[0].names.en, else its iso_code, else state1.
	if s, ok := r.Subdivisions.([]any); ok && len(s) > 0 {
		if m, ok := s[0].(map[string]any); ok {
			a.region = englishName(m["names"])
			if a.region == "" {
				a.region = clean(str(m["iso_code"]))
			}
		}
	}
	if a.region == "" {
		a.region = clean(str(r.State1))
	}
	// City: city.names.en or a flat string.
	switch c := r.City.(type) {
	case map[string]any:
		a.city = englishName(c["names"])
	case string:
		a.city = clean(c)
	}
	// Coordinates: location.* or flat latitude / longitude.
	lat, lok := num(r.Latitude)
	lon, gok := num(r.Longitude)
	var acc float64
	if m, ok := r.Location.(map[string]any); ok {
		if la, ok1 := num(m["latitude"]); ok1 {
			if lo, ok2 := num(m["longitude"]); ok2 {
				lat, lon, lok, gok = la, lo, true, true
			}
		}
		acc, _ = num(m["accuracy_radius"])
		a.timeZone = zoneName(str(m["time_zone"]))
	}
	if a.timeZone == "" {
		a.timeZone = zoneName(str(r.Timezone))
	}
	if lok && gok && validCoords(lat, lon) {
		a.lat, a.lon, a.hasCoords = lat, lon, true
		if acc > 0 && acc <= math.MaxUint16 {
			a.accuracy = uint16(acc)
		}
	}
	// AS number and organisation.
	a.asn = asNumber(r.ASNumber)
	if a.asn == 0 {
		a.asn = asNumber(r.ASN)
	}
	a.asOrg = clean(str(r.ASOrg))
	if a.asOrg == "" {
		a.asOrg = clean(str(r.ASName))
	}
	return a
}

// zoneName keeps an IANA zone name Go can load, else "".
func zoneName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 || s == "Local" {
		return ""
	}
	if _, err := zone.Load(s); err != nil {
		return ""
	}
	return s
}

const maxField = 200 // longest name kept from a database field

// clean trims a name from a database field, replaces what is not valid
// UTF-8 (a database is outside input: PostgreSQL refuses such text, and
// the report would fail to store) and cuts it to maxField bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	if len(s) > maxField {
		s = strings.ToValidUTF8(s[:maxField], "")
	}
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func englishName(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	return clean(str(m["en"]))
}

// countryCode returns s upper-cased when it is two ASCII letters, and ""
// for anything else and for "ZZ" (unknown).
func countryCode(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s == "ZZ" {
		return ""
	}
	return s
}

func validCoords(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// num converts any numeric decoded value, or a decimal string, to float64.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// asNumber reads an AS number stored as an integer or as "AS15169" /
// "15169". Anything out of the 32-bit range or not a whole number is 0.
func asNumber(v any) uint32 {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if len(s) > 2 && strings.EqualFold(s[:2], "AS") {
			s = s[2:]
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0
		}
		return uint32(n)
	}
	f, ok := num(v)
	if !ok || f < 0 || f > math.MaxUint32 || f != math.Trunc(f) {
		return 0
	}
	return uint32(f)
}

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// DistanceKm is the great-circle (haversine) distance between two points
// given in degrees.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	h = math.Min(1, math.Max(0, h))
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(h))
}
