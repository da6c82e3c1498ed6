package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
)

// locationRules are the rules of policies/rules/location.yaml and
// activity.yaml.
var locationRules = []string{"egress_location_unknown", "egress_country_mismatch", "egress_far_from_declared_city",
	"egress_hosting_or_vpn_network", "vpn_adapter_up", "timezone_offset_mismatch", "input_method_watchlist",
	"impossible_travel", "egress_country_changed",
	"activity_outside_declared_hours", "activity_offset_mismatch", "activity_around_the_clock", "remote_logon_from_outside"}

// seoulWorkdays writes an agent activity state file (the recorder's
// format) with 45 active minutes in each hour of 09:00–17:00 Korea time on
// the ten days before now.
func seoulWorkdays(t *testing.T, path string, now time.Time) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	var hours []string
	for d := 10; d >= 1; d-- {
		day := now.In(seoul).AddDate(0, 0, -d)
		for h := 9; h < 17; h++ {
			start := time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, seoul)
			hours = append(hours, fmt.Sprintf(`{"hour":%d,"sampled":%d,"active":%d}`, start.Unix(), uint64(1)<<60-1, uint64(1)<<45-1))
		}
	}
	os.WriteFile(path, []byte(`{"version":1,"threshold_seconds":300,"hours":[`+strings.Join(hours, ",")+`]}`), 0o600)
}

// TestLocationEndToEnd: agents dial the collector from distinct loopback
// addresses (source_address), which a GeoIP database generated here places
// in New York, Seoul, Dallas and an AWS data centre; people declared in the
// HR export are bound by serial or by user name; the collector raises
// exactly the expected location alerts for people whose location matches
// and for those whose does not.
func TestLocationEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	place := func(cc, name string, lat, lon float64) map[string]any {
		return map[string]any{"country": map[string]any{"iso_code": cc}, "city": map[string]any{"names": map[string]any{"en": name}},
			"location": map[string]any{"latitude": lat, "longitude": lon, "accuracy_radius": uint16(20)}}
	}
	geotest.Write(t, city, "GeoLite2-City", map[string]map[string]any{
		"127.0.1.0/24": place("US", "New York", 40.7128, -74.0060),
		"127.0.2.0/24": place("KR", "Seoul", 37.5665, 126.9780),
		"127.0.3.0/24": place("US", "Ashburn", 39.0438, -77.4874),
		"127.0.4.0/24": place("US", "Dallas", 32.7767, -96.7970),
	})
	geotest.Write(t, asn, "GeoLite2-ASN", map[string]map[string]any{
		"127.0.1.0/24": {"autonomous_system_number": uint32(7922), "autonomous_system_organization": "COMCAST-7922"},
		"127.0.3.0/24": {"autonomous_system_number": uint32(16509), "autonomous_system_organization": "AMAZON-02"},
	})
	// The embedded policies, with a networks catalog that does not call
	// 127/8 private (this test's "internet" is loopback).
	pol := filepath.Join(dir, "policies")
	if err := os.CopyFS(pol, policies.FS()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(pol, policies.NetworksFile), 0o644)
	if err := os.WriteFile(filepath.Join(pol, policies.NetworksFile), []byte(
		"asns:\n  - {asn: 16509, name: Amazon AWS, class: hosting, sources: [https://bgp.he.net/AS16509]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	const roots = "../agent/internal/scan/testdata/roots"
	csv := filepath.Join(dir, "hr.csv")
	os.WriteFile(csv, []byte("email,name,username,device_serial,country,region,city,timezone,work_hours\n"+
		"ana@example.com,Ana,ana,5ZK2LM3,US,NY,New York,America/New_York,09:00-17:00\n"+
		"min@example.com,Min,CORP\\mkim,,United States,NY,New York,America/New_York,09:00-17:00\n"+
		"bo@example.com,Bo,bo,3YK2LM3,US,NY,New York,America/New_York,09:00-17:00\n"+
		"cy@example.com,Cy,cy,PF0H0M3D,US,NY,New York,America/New_York,09:00-17:00\n"+
		"di@example.com,Di,di,1YK2LM3,US,NY,New York,America/New_York,09:00-17:00\n"+
		"ed@example.com,Ed,ed,2YK2LM3,US,NY,New York,America/New_York,09:00-17:00\n"+
		"fay@example.com,Fay,fay,,US,,Springfeld,America/Chicago,09:00-17:00\n"), 0o644)

	storetest.Engines(t, func(t *testing.T, dsn string) {
		args := []string{"--policies", pol, "--geoip", city, "--geoip", asn}
		if strings.HasPrefix(dsn, "postgres") {
			args = append(args, "--db", dsn)
		}
		s := startServerArgs(t, collector, t.TempDir(), args...)
		imp := []string{"people", "import", csv, "--data-dir", s.dataDir}
		if s.db != "" {
			imp = append(imp, "--db", s.db)
		}
		out, err := exec.Command(collector, imp...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), `hr.csv:8: city "Springfeld" not found in US; did you mean Springfield?`) ||
			!strings.Contains(string(out), "imported 6 people, 1 rows refused") {
			t.Fatalf("people import: %v\n%s", err, out)
		}
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")

		// run enrolls by itself (enroll_secret in its configuration), as
		// installers deploy it.
		run := func(root, source, state string) {
			cfg := filepath.Join(state, "agent.yaml")
			os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nsource_address: %s\n",
				s.grpc, secret, fp, state, source), 0o600)
			runAgent(t, agent, "run", "--once", "--config", cfg, "--root", filepath.Join(roots, root))
		}
		for _, a := range []struct{ root, source string }{
			{"remote-ny", "127.0.1.2"},         // Ana: New York, as declared
			{"seoul-clock", "127.0.1.3"},       // Min (bound by user name): New York egress, Seoul clock, Hangul, Astrill
			{"office-dock", "127.0.4.2"},       // Bo: Dallas
			{"home-desk", "127.0.3.2"},         // Cy: AWS Ashburn
			{"aten-dongle", "127.0.1.4"},       // Di: New York first …
			{"digispark-jiggler", "127.0.0.1"}, // Ed: an address no database knows
		} {
			state := t.TempDir()
			if a.root == "seoul-clock" {
				seoulWorkdays(t, filepath.Join(state, "activity.json"), time.Now())
			}
			run(a.root, a.source, state)
			if a.root == "seoul-clock" {
				run(a.root, a.source, state) // the login history goes once
			}
			if a.root == "aten-dongle" {
				run(a.root, "127.0.2.2", state) // … then Seoul a moment later
			}
		}

		want := map[string][]string{
			"lat-ny": nil,
			"tp-seoul": {"activity_offset_mismatch", "activity_outside_declared_hours", "input_method_watchlist",
				"remote_logon_from_outside", "timezone_offset_mismatch", "vpn_adapter_up"},
			"lat-office": {"egress_far_from_declared_city"},
			"tp-home":    {"egress_hosting_or_vpn_network"},
			"lat-aten":   {"egress_country_changed", "egress_country_mismatch", "egress_far_from_declared_city", "impossible_travel"},
			"lat-jiggle": {"egress_location_unknown"},
		}
		got, byID := map[string][]string{}, map[string]string{}
		for _, d := range s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any) {
			m := d.(map[string]any)
			host := m["hostname"].(string)
			byID[m["id"].(string)] = host
			got[host] = nil
			eg := m["egress"].(map[string]any)
			switch host {
			case "tp-seoul":
				if m["person"] != "min@example.com" || m["person_binding"] != "username" {
					t.Errorf("tp-seoul bound to %v by %v", m["person"], m["person_binding"])
				}
				// The second snapshot carries no login history: it was sent.
				d := s.api(t, "GET", "/api/v1/devices/"+m["id"].(string), viewer, "", 200)
				sn := d["snapshot"].(map[string]any)
				if ss, _ := sn["sessions"].(map[string]any); ss == nil || ss["history"] != nil || ss["historyCursor"] == "" {
					t.Errorf("tp-seoul sessions in the latest snapshot: %v", ss)
				}
			case "lat-ny":
				if m["person_binding"] != "device_serial" || eg["country"] != "US" || eg["city"] != "New York" || eg["asn"] != 7922.0 {
					t.Errorf("lat-ny: %v", m)
				}
			case "lat-jiggle":
				if eg["status"] != "address not in the GeoIP databases" {
					t.Errorf("lat-jiggle egress %v", eg)
				}
			}
		}
		for _, a := range s.api(t, "GET", "/api/v1/alerts?limit=500", viewer, "", 200)["alerts"].([]any) {
			m := a.(map[string]any)
			if id := m["rule_id"].(string); slices.Contains(locationRules, id) {
				host := byID[m["device_id"].(string)]
				got[host] = append(got[host], id)
			}
		}
		for host, rules := range want {
			g := got[host]
			slices.Sort(g)
			if _, ok := got[host]; !ok || !slices.Equal(g, rules) {
				t.Errorf("%s: location alerts %v, want %v", host, g, rules)
			}
		}
		people := s.api(t, "GET", "/api/v1/people", viewer, "", 200)["people"].([]any)
		for _, p := range people {
			m := p.(map[string]any)
			if m["email"] == "min@example.com" && (m["country"] != "US" || m["location"] != "ok" || m["latitude"].(float64) < 40) {
				t.Errorf("min located as %v", m)
			}
		}
	})
}
