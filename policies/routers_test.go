package policies

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoutersCatalogLoads(t *testing.T) {
	c, err := Routers(FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Makers {
		if len(m.Sources) == 0 {
			t.Errorf("%s: no source", m.ID)
		}
	}
}

// ieeeAssignments reads the IEEE registry's CSV files (oui.csv, mam.csv,
// oui36.csv: "Registry,Assignment,Organization Name,Organization
// Address") in dir into lower-case assignment hex -> organisation, runs of
// spaces as one.
func ieeeAssignments(t *testing.T, dir string) map[string]string {
	t.Helper()
	orgs := map[string]string{}
	for _, name := range []string{"oui.csv", "mam.csv", "oui36.csv"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		r.LazyQuotes = true
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(rec) < 3 || rec[0] == "Registry" {
				continue
			}
			orgs[strings.ToLower(rec[1])] = strings.Join(strings.Fields(rec[2]), " ")
		}
		f.Close()
	}
	return orgs
}

// TestRoutersCatalogIEEE checks the routers catalog against the IEEE
// registry where it is installed (Debian: apt-get install ieee-data; or
// $IEEE_DATA, a directory holding oui.csv, mam.csv and oui36.csv): every
// prefix is assigned to its maker's ieee_name, and every assignment of
// that organisation is in the catalog (a maker is listed whole).
func TestRoutersCatalogIEEE(t *testing.T) {
	dir := os.Getenv("IEEE_DATA")
	if dir == "" {
		dir = "/usr/share/ieee-data"
	}
	if _, err := os.Stat(filepath.Join(dir, "oui.csv")); err != nil {
		msg := "no IEEE registry installed to check the routers catalog against (apt-get install ieee-data): " + err.Error()
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	orgs := ieeeAssignments(t, dir)
	if len(orgs) < 30000 {
		t.Fatalf("%s: %d assignments, want the whole registry", dir, len(orgs))
	}
	c, err := Routers(FS())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range c.Makers {
		var listed []string
		for _, p := range m.Prefixes {
			h, _ := macHex(p)
			listed = append(listed, h)
			if got, ok := orgs[h]; got != m.IEEEName {
				t.Errorf("%s %s: ieee_name %q, the registry says %q (assigned: %v)", m.ID, p, m.IEEEName, got, ok)
			}
			checked++
		}
		for h, org := range orgs {
			if org == m.IEEEName && !slices.Contains(listed, h) {
				t.Errorf("%s: the registry assigns %s to %q; not in the catalog", m.ID, h, org)
			}
		}
	}
	t.Logf("%d prefixes of %d makers match the registry in %s (%d assignments)", checked, len(c.Makers), dir, len(orgs))
}

func TestRoutersCatalogValidateRejects(t *testing.T) {
	for name, y := range map[string]string{
		"upper case":   `makers: [{id: a, name: A, category: travel_router, ieee_name: A, sources: [x], prefixes: ["94:83:C4"]}]`,
		"short prefix": `makers: [{id: a, name: A, category: travel_router, ieee_name: A, sources: [x], prefixes: ["94:83"]}]`,
		"8 digits":     `makers: [{id: a, name: A, category: travel_router, ieee_name: A, sources: [x], prefixes: ["94:83:c4:12"]}]`,
		"not hex":      `makers: [{id: a, name: A, category: travel_router, ieee_name: A, sources: [x], prefixes: ["94:83:g4"]}]`,
		"duplicate":    `makers: [{id: a, name: A, category: travel_router, ieee_name: A, sources: [x], prefixes: ["94:83:c4"]}, {id: b, name: B, category: router_vpn, ieee_name: B, sources: [x], prefixes: ["94-83-c4"]}]`,
		"category":     `makers: [{id: a, name: A, category: router, ieee_name: A, sources: [x], prefixes: ["94:83:c4"]}]`,
		"no source":    `makers: [{id: a, name: A, category: travel_router, ieee_name: A, prefixes: ["94:83:c4"]}]`,
		"no ieee_name": `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83:c4"]}]`,
	} {
		if _, err := ParseRouters([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMatchGateway(t *testing.T) {
	c, err := ParseRouters([]byte(`makers:
  - {id: glinet, name: GL.iNet, category: travel_router, ieee_name: G, sources: [x], prefixes: ["94:83:c4"]}
  - {id: sub, name: Sub, category: router_vpn, ieee_name: S, sources: [x], prefixes: ["70:b3:d5:1", "70:b3:d5:12:3"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for mac, want := range map[string]string{
		"94:83:c4:a4:78:82":    "glinet",
		"94-83-C4-A4-78-82":    "glinet",
		"70:b3:d5:1f:00:01":    "sub",
		"70:b3:d5:12:34:56":    "sub",
		"70:b3:d5:2f:00:01":    "",
		"94:83:c5:a4:78:82":    "",
		"96:83:c4:a4:78:82":    "", // locally administered
		"94:83:c4":             "", // not a MAC
		"":                     "",
		"94:83:c4:a4:78:8g":    "",
		"94:83:c4:a4:78:82:00": "",
	} {
		got := MatchGateway(c, mac)
		if got.GetId() != want {
			t.Errorf("%q: %v, want %q", mac, got, want)
		}
	}
	if got := MatchGateway(c, "70:b3:d5:12:34:56"); got.GetPrefix() != "70:b3:d5:12:3" {
		t.Errorf("longest prefix: %v", got)
	}
	if MatchGateway(nil, "94:83:c4:a4:78:82") != nil {
		t.Error("nil catalog matched")
	}
	real, _ := Routers(FS())
	for mac, want := range map[string]string{
		"94:83:c4:01:42:27": "glinet",
		"9c:41:7c:12:34:56": "hame",
		"04:ee:e8:9a:bc:de": "privacyhero",
		"04:ee:e8:8a:bc:de": "", // MA-M 04:ee:e8:8 is another company's
	} {
		if got := MatchGateway(real, mac).GetId(); got != want {
			t.Errorf("embedded catalog: %s matched %q, want %q", mac, got, want)
		}
	}
}

func FuzzMatchGateway(f *testing.F) {
	f.Add("94:83:c4:a4:78:82")
	f.Add("94-83-C4-A4-78-82")
	f.Add("::::::")
	f.Add("9")
	c, err := Routers(FS())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mac string) {
		if m := MatchGateway(c, mac); m != nil {
			if h, ok := macHex(mac); !ok || len(h) != 12 {
				t.Fatalf("%q matched but is not a MAC", mac)
			}
		}
	})
}
