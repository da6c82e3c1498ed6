package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/geo"
)

// Lines in the format of @ip-location-db/asn's asn-ipv4.csv / asn-ipv6.csv.
const sample = `1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
3.0.0.0,3.0.255.255,16509,AMAZON-02
2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64500,Example IPv6 Net
`

func TestConvert(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "asn.csv"), filepath.Join(dir, "asn.mmdb")
	os.WriteFile(in, []byte(sample), 0o644)
	if err := run(out, []string{in}); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]struct {
		asn uint32
		org string
	}{
		"1.0.0.7": {13335, "Cloudflare, Inc."}, "3.0.200.1": {16509, "AMAZON-02"}, "2001:db8::5": {64500, "Example IPv6 Net"},
	} {
		loc, ok := db.Lookup(netip.MustParseAddr(ip))
		if !ok || loc.ASN != want.asn || loc.ASOrg != want.org {
			t.Errorf("%s: %+v %v", ip, loc, ok)
		}
	}
	if _, ok := db.Lookup(netip.MustParseAddr("9.9.9.9")); ok {
		t.Error("9.9.9.9 found")
	}
}

func TestConvertRefusesMalformed(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bad.csv")
	os.WriteFile(in, []byte("1.0.0.0,1.0.0.255,13335,ok\n5.0.0.9,5.0.0.1,1,backwards\n"), 0o644)
	if err := run(filepath.Join(dir, "x.mmdb"), []string{in}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err %v", err)
	}
}
