package geo

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
)

// BenchmarkLookup looks addresses up in a City and an ASN database of
// 16,384 /24 networks each, the City records with their time zone as
// GeoLite2-City's (the collector does one lookup per Report call).
func BenchmarkLookup(b *testing.B) {
	dir := b.TempDir()
	city, asn := map[string]map[string]any{}, map[string]map[string]any{}
	for i := range 1 << 14 {
		cidr := fmt.Sprintf("10.%d.%d.0/24", i>>8, i&0xff)
		city[cidr] = map[string]any{"country": map[string]any{"iso_code": "US"},
			"city":     map[string]any{"names": map[string]any{"en": fmt.Sprintf("City %d", i)}},
			"location": map[string]any{"latitude": 40.0, "longitude": -74.0, "time_zone": "America/New_York"}}
		asn[cidr] = map[string]any{"autonomous_system_number": uint32(64512 + i%1000), "autonomous_system_organization": "Example"}
	}
	geotest.Write(b, filepath.Join(dir, "city.mmdb"), "GeoLite2-City", city)
	geotest.Write(b, filepath.Join(dir, "asn.mmdb"), "GeoLite2-ASN", asn)
	db, err := Open(filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	i := 0
	for b.Loop() {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 8 & 0x3f), byte(i), 7})
		if _, ok := db.Lookup(ip); !ok {
			b.Fatalf("%s not found", ip)
		}
		i++
	}
}
