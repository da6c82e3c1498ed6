package main

import (
	"encoding/csv"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bonafide-sec/bonafide/policies"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"go.yaml.in/yaml/v3"
)

// WriteFiles writes the world's supporting files into dir: city.mmdb,
// asn.mmdb, policies/ (with allowlist/offices.yaml), people.csv and
// devices.csv (what each device is meant to be).
func (w *World) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sites := w.geoSites()
	if err := writeMMDB(filepath.Join(dir, "city.mmdb"), "GeoLite2-City", sites, cityRecord); err != nil {
		return err
	}
	if err := writeMMDB(filepath.Join(dir, "asn.mmdb"), "GeoLite2-ASN", sites, asnRecord); err != nil {
		return err
	}
	if err := writePolicies(filepath.Join(dir, "policies")); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "people.csv"), w.PeopleRows()); err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "devices.csv"), w.ManifestRows())
}

// geoSites are the networks the GeoIP databases know: every shared site
// and each home city's /22.
func (w *World) geoSites() []site {
	out := homeNetworks()
	seen := map[string]bool{}
	for _, s := range out {
		seen[s.CIDR] = true
	}
	for _, d := range w.Devices {
		if !seen[d.Site.CIDR] {
			seen[d.Site.CIDR] = true
			out = append(out, d.Site)
		}
	}
	// The scenario's shared sites even when --devices leaves them empty.
	for _, g := range scenario {
		for _, s := range g.Sites {
			if !seen[s.CIDR] {
				seen[s.CIDR] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// cityRecord is a GeoLite2-City record as the collector reads it.
func cityRecord(s site) mmdbtype.Map {
	p := s.Place
	loc := mmdbtype.Map{"latitude": mmdbtype.Float64(p.Lat), "longitude": mmdbtype.Float64(p.Lon),
		"time_zone": mmdbtype.String(p.TZ), "accuracy_radius": mmdbtype.Uint16(20)}
	m := mmdbtype.Map{
		"country":  mmdbtype.Map{"iso_code": mmdbtype.String(p.Country), "names": mmdbtype.Map{"en": mmdbtype.String("United States")}},
		"location": loc,
	}
	if p.City == "" { // a mobile carrier: the country only
		loc["accuracy_radius"] = mmdbtype.Uint16(1000)
		return m
	}
	m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(p.City)}}
	m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(p.Region)}}
	return m
}

// asnRecord is a GeoLite2-ASN record.
func asnRecord(s site) mmdbtype.Map {
	return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(s.ASN), "autonomous_system_organization": mmdbtype.String(s.ASOrg)}
}

// writeMMDB writes one MaxMind-format database with a record per site,
// broader networks first so that narrower ones win.
func writeMMDB(path, dbType string, sites []site, record func(site) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType, Description: map[string]string{"en": "bonafide-fleetsim simulated " + dbType},
		Languages: []string{"en"}, IncludeReservedNetworks: true, RecordSize: 28,
	})
	if err != nil {
		return err
	}
	type entry struct {
		n    *net.IPNet
		bits int
		s    site
	}
	var entries []entry
	for _, s := range sites {
		_, n, err := net.ParseCIDR(s.CIDR)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		bits, _ := n.Mask.Size()
		entries = append(entries, entry{n, bits, s})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.bits - b.bits })
	for _, e := range entries {
		if err := tree.Insert(e.n, record(e.s)); err != nil {
			return fmt.Errorf("%s: insert %s: %w", path, e.s.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// officesFile is policies/allowlist/offices.yaml's schema (a networks
// catalog holding only offices and ranges).
type officesFile struct {
	Offices []officeEntry `yaml:"offices"`
	Ranges  []rangeEntry  `yaml:"ranges"`
}

type officeEntry struct {
	Name  string   `yaml:"name"`
	Kind  string   `yaml:"kind,omitempty"`
	CIDRs []string `yaml:"cidrs,flow"`
	Notes string   `yaml:"notes,omitempty"`
}

type rangeEntry struct {
	CIDR  string `yaml:"cidr"`
	Name  string `yaml:"name"`
	Class string `yaml:"class"`
	Notes string `yaml:"notes"`
}

// OfficesYAML declares the simulated offices and coworking space and
// classifies the simulated ISPs' /16s.
func OfficesYAML() ([]byte, error) {
	var f officesFile
	for _, s := range offices {
		f.Offices = append(f.Offices, officeEntry{Name: s.Name, CIDRs: []string{s.CIDR}})
	}
	for _, s := range coworkings {
		f.Offices = append(f.Offices, officeEntry{Name: s.Name, Kind: policies.NetClassCoworking, CIDRs: []string{s.CIDR},
			Notes: "members of many employers share this network"})
	}
	for _, r := range classRanges {
		f.Ranges = append(f.Ranges, rangeEntry{CIDR: r.CIDR, Name: r.Name, Class: r.Class,
			Notes: "bonafide-fleetsim: simulated network on loopback, no public source"})
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by bonafide-fleetsim world: the simulated organisation's offices\n"+
		"# and the simulated ISPs (the embedded catalog calls all of 127/8 private;\n"+
		"# these more specific ranges win).\n"), b...), nil
}

// writePolicies copies the embedded policies to dir (writable, so users can
// edit them) and adds allowlist/offices.yaml.
func writePolicies(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.CopyFS(dir, policies.FS()); err != nil {
		return fmt.Errorf("copy policies: %w", err)
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		return err
	}
	b, err := OfficesYAML()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(policies.OfficesFile)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, filepath.FromSlash(policies.OfficesFile)), b, 0o644)
}

// peopleHeader is the HR export's header (bonafide-collector people import).
var peopleHeader = []string{"email", "name", "username", "device_serial", "country", "region", "city", "timezone", "work_hours"}

// PeopleRows is the HR export: one person per device, bound by serial.
func (w *World) PeopleRows() [][]string {
	rows := [][]string{peopleHeader}
	for _, d := range w.Devices {
		p := d.Person
		rows = append(rows, []string{p.Email, p.Name, p.Username, d.HW.Serial, p.Declared.Country, p.Declared.Region,
			p.Declared.City, p.Declared.TZ, p.WorkHours})
	}
	return rows
}

// ManifestRows is devices.csv: what each simulated device is meant to be,
// for demo users and tests to compare with what the collector concluded.
func (w *World) ManifestRows() [][]string {
	rows := [][]string{{"hostname", "scenario", "email", "device_serial", "egress", "network_class", "network", "remote_tool", "kvm"}}
	for _, d := range w.Devices {
		kvm := ""
		if d.KVM {
			kvm = "pikvm"
		}
		rows = append(rows, []string{d.Hostname, d.Scenario, d.Person.Email, d.HW.Serial, d.Egress, d.Site.Class, d.Site.Name, d.Tool, kvm})
	}
	return rows
}

func writeCSV(path string, rows [][]string) error {
	var sb strings.Builder
	cw := csv.NewWriter(&sb)
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
