package policies

import (
	"net/netip"
	"strings"
	"testing"
)

func loadNetworks(t *testing.T) *NetworksCatalog {
	t.Helper()
	c, err := Networks(FS())
	if err != nil {
		t.Fatalf("embedded networks catalog: %v", err)
	}
	return c
}

func TestNetworksCatalog(t *testing.T) {
	c := loadNetworks(t)
	if len(c.Version) != 64 {
		t.Errorf("Version = %q, want a hex SHA-256", c.Version)
	}
	count := map[string]int{}
	for _, a := range c.ASNs {
		count[a.Class]++
		if !hasHTTPS(a.Sources) {
			t.Errorf("AS%d: no https source", a.ASN)
		}
	}
	for _, r := range c.Ranges {
		if !hasHTTPS(r.Sources) {
			t.Errorf("%s: no https source", r.CIDR)
		}
	}
	for _, p := range c.OrgPatterns {
		if len(p.Sources) == 0 || strings.TrimSpace(p.Notes) == "" {
			t.Errorf("pattern %q: needs sources and notes", p.Pattern)
		}
	}
	t.Logf("asns per class: %v; %d patterns, %d ranges", count, len(c.OrgPatterns), len(c.Ranges))
	for _, asn := range []uint32{16509, 14618, 396982, 15169, 8075, 14061, 16276, 24940, 63949, 20473,
		51167, 31898, 45102, 132203, 60781, 9009, 60068, 13335, 21928} {
		if class, _, _ := c.Classify(netip.Addr{}, asn, ""); class == NetClassUnknown {
			t.Errorf("AS%d not classified", asn)
		}
	}
	tests := []struct {
		ip    string
		asn   uint32
		org   string
		class string
	}{
		{"10.1.2.3", 0, "", NetClassPrivate},
		{"172.31.255.255", 0, "", NetClassPrivate},
		{"192.168.1.1", 0, "", NetClassPrivate},
		{"100.100.100.100", 0, "", NetClassPrivate},
		{"127.0.0.1", 0, "", NetClassPrivate},
		{"169.254.169.254", 16509, "", NetClassPrivate},
		{"::1", 0, "", NetClassPrivate},
		{"fe80::1", 0, "", NetClassPrivate},
		{"fd00::1", 0, "", NetClassPrivate},
		{"::ffff:10.0.0.1", 0, "", NetClassPrivate},
		{"3.5.140.2", 16509, "AMAZON-02", NetClassHosting},
		{"104.28.0.1", 13335, "CLOUDFLARENET", NetClassVPN},
		{"172.58.0.1", 21928, "T-MOBILE-AS21928", NetClassMobile},
		{"198.51.100.1", 64500, "Example Hosting Ltd", NetClassHosting},
		{"198.51.100.1", 64500, "SuperFast VPN Inc", NetClassVPN},
		{"198.51.100.1", 64500, "ASTRILL-VPN", NetClassVPN},
		{"198.51.100.1", 7922, "Comcast Cable Communications, LLC", NetClassUnknown},
		{"198.51.100.1", 0, "", NetClassUnknown},
	}
	for _, tc := range tests {
		class, name, reason := c.Classify(netip.MustParseAddr(tc.ip), tc.asn, tc.org)
		if class != tc.class {
			t.Errorf("Classify(%s, %d, %q) = %s (%s: %s), want %s", tc.ip, tc.asn, tc.org, class, name, reason, tc.class)
		}
		if class != NetClassUnknown && (name == "" || reason == "") {
			t.Errorf("Classify(%s): empty name or reason", tc.ip)
		}
	}
	if _, _, reason := c.Classify(netip.Addr{}, 0, "my vps host"); !strings.Contains(reason, "low confidence") {
		t.Errorf("pattern reason %q lacks confidence", reason)
	}
}

func hasHTTPS(sources []string) bool {
	for _, s := range sources {
		if strings.HasPrefix(s, "https://") {
			return true
		}
	}
	return false
}

const testNetworks = `
asns:
  - {asn: 64500, name: Example Cloud, class: hosting, sources: [https://example.com/a]}
  - {asn: 64501, name: Example Mobile, class: mobile}
org_patterns:
  - {pattern: cloud, class: hosting, confidence: low}
  - {pattern: mobile, class: mobile, confidence: medium}
ranges:
  - {cidr: 198.51.100.0/24, name: Example Range, class: residential}
  - {cidr: 198.51.100.128/25, name: Example VPN Range, class: vpn}
  - {cidr: "2001:db8::/32", name: Example v6, class: hosting}
offices:
  - name: HQ
    cidrs: [198.51.100.192/28, "2001:db8:1::/48"]
  - name: Hub
    kind: coworking
    cidrs: [198.51.100.240/29]
`

func TestClassifyPrecedence(t *testing.T) {
	c, err := ParseNetworks([]byte(testNetworks))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip          string
		asn         uint32
		org         string
		class, name string
	}{
		// Ranges beat ASNs and patterns; the most specific range wins.
		{"198.51.100.1", 64500, "Example Cloud", NetClassResidential, "Example Range"},
		{"198.51.100.130", 64500, "", NetClassVPN, "Example VPN Range"},
		{"198.51.100.200", 64500, "", NetClassOffice, "HQ"},
		{"2001:db8:1::9", 64500, "", NetClassOffice, "HQ"},
		{"198.51.100.241", 64500, "", NetClassCoworking, "Hub"},
		{"2001:db8:2::9", 0, "", NetClassHosting, "Example v6"},
		// ASNs beat patterns.
		{"192.0.2.1", 64501, "Some Cloud Mobile", NetClassMobile, "Example Mobile"},
		{"192.0.2.1", 64500, "mobile", NetClassHosting, "Example Cloud"},
		// Patterns in file order, case-insensitive.
		{"192.0.2.1", 1, "MEGA CLOUD MOBILE", NetClassHosting, "MEGA CLOUD MOBILE"},
		{"192.0.2.1", 1, "Mobile Co", NetClassMobile, "Mobile Co"},
		{"192.0.2.1", 1, "Plain ISP", NetClassUnknown, ""},
		{"", 0, "", NetClassUnknown, ""},
	}
	for _, tc := range tests {
		var ip netip.Addr
		if tc.ip != "" {
			ip = netip.MustParseAddr(tc.ip)
		}
		class, name, reason := c.Classify(ip, tc.asn, tc.org)
		if class != tc.class || name != tc.name {
			t.Errorf("Classify(%s, %d, %q) = %s, %q (%s); want %s, %q", tc.ip, tc.asn, tc.org, class, name, reason, tc.class, tc.name)
		}
	}
	// A hand-built catalog (no index) classifies the same way.
	hand := &NetworksCatalog{ASNs: c.ASNs, Ranges: c.Ranges}
	if class, _, _ := hand.Classify(netip.MustParseAddr("198.51.100.130"), 0, ""); class != NetClassVPN {
		t.Errorf("hand-built catalog: %s", class)
	}
	var nilCat *NetworksCatalog
	if class, _, _ := nilCat.Classify(netip.MustParseAddr("10.0.0.1"), 1, "x"); class != NetClassUnknown {
		t.Errorf("nil catalog: %s", class)
	}
}

func TestNetworksMerge(t *testing.T) {
	base, err := ParseNetworks([]byte(testNetworks))
	if err != nil {
		t.Fatal(err)
	}
	offices, err := ParseNetworks([]byte(`
asns:
  - {asn: 64500, name: Our Cloud Tenant, class: office}
offices:
  - {name: Lab, cidrs: [203.0.113.0/24, 198.51.100.0/24]}
`))
	if err != nil {
		t.Fatal(err)
	}
	v := base.Version
	base.Merge(offices)
	if base.Version == v || len(base.Version) != 64 {
		t.Errorf("Version not updated: %q", base.Version)
	}
	for _, tc := range []struct {
		ip          string
		asn         uint32
		class, name string
	}{
		{"203.0.113.5", 0, NetClassOffice, "Lab"},
		{"198.51.100.1", 0, NetClassOffice, "Lab"},              // office wins the tie with the base range
		{"198.51.100.130", 0, NetClassVPN, "Example VPN Range"}, // the more specific range still wins
		{"192.0.2.1", 64500, NetClassOffice, "Our Cloud Tenant"},
		{"192.0.2.1", 64501, NetClassMobile, "Example Mobile"},
	} {
		if class, name, _ := base.Classify(netip.MustParseAddr(tc.ip), tc.asn, ""); class != tc.class || name != tc.name {
			t.Errorf("merged Classify(%s, %d) = %s %q, want %s %q", tc.ip, tc.asn, class, name, tc.class, tc.name)
		}
	}
	base.Merge(nil) // no-op
}

func TestParseNetworksEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "{}"} {
		c, err := ParseNetworks([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if class, _, _ := c.Classify(netip.MustParseAddr("10.0.0.1"), 16509, "hosting"); class != NetClassUnknown {
			t.Errorf("%q: empty catalog classified as %s", in, class)
		}
	}
}

func TestNetworksValidate(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []string // substrings of the error
	}{
		"bad class":         {"asns: [{asn: 1, name: x, class: evil}]", []string{`class "evil"`}},
		"unknown class":     {"ranges: [{cidr: 10.0.0.0/8, class: unknown}]", []string{`class "unknown"`}},
		"bad cidr":          {"ranges: [{cidr: 10.0.0.0/33, class: private}]", []string{"cidr"}},
		"host bits":         {"ranges: [{cidr: 10.0.0.1/8, class: private}]", []string{"host bits"}},
		"mapped cidr":       {`ranges: [{cidr: "::ffff:10.0.0.0/104", class: private}]`, []string{"IPv4"}},
		"duplicate asn":     {"asns: [{asn: 1, name: a, class: vpn}, {asn: 1, name: b, class: vpn}]", []string{"duplicate asn"}},
		"asn zero":          {"asns: [{asn: 0, name: a, class: vpn}]", []string{"asn missing"}},
		"asn too big":       {"asns: [{asn: 4294967296, name: a, class: vpn}]", []string{"networks catalog"}},
		"no name":           {"asns: [{asn: 5, class: vpn}]", []string{"no name"}},
		"unknown key":       {"asns: [{asn: 5, name: a, class: vpn, colour: red}]", []string{"colour"}},
		"unknown top key":   {"networks: []", []string{"networks"}},
		"duplicate cidr":    {"ranges: [{cidr: 10.0.0.0/8, class: private}]\noffices: [{name: o, cidrs: [10.0.0.0/8]}]", []string{"already listed"}},
		"bad office kind":   {"offices: [{name: o, kind: home, cidrs: [10.0.0.0/8]}]", []string{`kind "home" is not office or coworking`}},
		"short pattern":     {"org_patterns: [{pattern: ab, class: vpn}]", []string{"shorter than 3"}},
		"duplicate pattern": {"org_patterns: [{pattern: VPN, class: vpn}, {pattern: vpn, class: vpn}]", []string{"duplicate pattern"}},
		"bad confidence":    {"org_patterns: [{pattern: vpns, class: vpn, confidence: sure}]", []string{"confidence"}},
		"empty source":      {"asns: [{asn: 7, name: a, class: vpn, sources: ['']}]", []string{"empty source"}},
		"office no cidrs":   {"offices: [{name: HQ}]", []string{"no cidrs"}},
		"office no name":    {"offices: [{cidrs: [192.0.2.0/24]}]", []string{"no name"}},
		"all errors joined": {"asns: [{asn: 1, name: a, class: x}, {asn: 1, name: b, class: y}]", []string{`class "x"`, `class "y"`, "duplicate asn"}},
		"not yaml":          {"asns: [", []string{"networks catalog"}},
	}
	for name, tc := range tests {
		_, err := ParseNetworks([]byte(tc.in))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", name, err, w)
			}
		}
	}
}

func FuzzParseNetworks(f *testing.F) {
	f.Add([]byte(testNetworks))
	f.Add([]byte("ranges: [{cidr: 10.0.0.0/8, class: private}]"))
	f.Add([]byte("asns: [{asn: 1, name: a, class: vpn}]\norg_patterns: [{pattern: vpn, class: vpn}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseNetworks(b)
		if err != nil {
			return
		}
		for _, ip := range []string{"10.0.0.1", "198.51.100.130", "2001:db8::1", "::ffff:1.2.3.4"} {
			class, _, _ := c.Classify(netip.MustParseAddr(ip), 64500, "Some Cloud VPN")
			if class == "" {
				t.Fatal("empty class")
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed catalog fails Validate: %v", err)
		}
	})
}
