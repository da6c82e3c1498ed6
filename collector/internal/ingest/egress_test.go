package ingest

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
)

// TestEgressLocation: a city's coordinates place a laptop; a country-only
// record, as GeoIP databases give for mobile carriers (the country's
// centroid, accuracy_radius 1000), does not, so that no distance or travel
// speed is measured from it.
func TestEgressLocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	country := map[string]any{"iso_code": "US", "names": map[string]string{"en": "United States"}}
	geotest.Write(t, path, "GeoLite2-City", map[string]map[string]any{
		"127.0.1.0/24": {"country": country, "city": map[string]any{"names": map[string]string{"en": "Chicago"}},
			"location": map[string]any{"latitude": 41.88, "longitude": -87.63, "accuracy_radius": uint16(20), "time_zone": "America/Chicago"}},
		"127.0.2.0/24": {"country": country,
			"location": map[string]any{"latitude": 37.751, "longitude": -97.822, "accuracy_radius": uint16(1000), "time_zone": "America/Chicago"}},
	})
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &Locator{GeoIP: db}
	city := l.Egress(netip.MustParseAddr("127.0.1.9"))
	if city.Status != "ok" || !city.HasLocation || city.City != "Chicago" || city.Latitude != 41.88 {
		t.Errorf("city record: %+v", city)
	}
	mobile := l.Egress(netip.MustParseAddr("127.0.2.9"))
	if mobile.Status != "ok" || mobile.Country != "US" || mobile.HasLocation || mobile.Latitude != 0 {
		t.Errorf("country-only record: %+v, want the country without a location", mobile)
	}
}

// TestEgressIPIsStoredAddress: Report stores the egress's formatted
// address as the report's address, which must be what addrString gives,
// but for an IPv4-mapped IPv6 address (stored unmapped).
func TestEgressIPIsStoredAddress(t *testing.T) {
	for _, s := range []string{"203.0.113.7", "2001:db8::1", "fe80::1%eth0", "::ffff:203.0.113.7", "127.0.0.1"} {
		ip := netip.MustParseAddr(s)
		if got := (&Locator{}).Egress(ip).IP; got != addrString(ip) && !ip.Is4In6() {
			t.Errorf("%s: egress address %q, stored address %q", s, got, addrString(ip))
		}
	}
	if got := (&Locator{}).Egress(netip.Addr{}).IP; got != addrString(netip.Addr{}) {
		t.Errorf("no address: egress address %q, stored address %q", got, addrString(netip.Addr{}))
	}
}
