package main

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"go.yaml.in/yaml/v3"
)

var (
	fleetsimOnce sync.Once
	fleetsimBin  string
	fleetsimErr  error
)

// fleetsimBinary builds bonafide-fleetsim once per test run, beside the other
// binaries.
func fleetsimBinary(t *testing.T) string {
	t.Helper()
	binaries(t) // skips in -short mode; makes binDir
	fleetsimOnce.Do(func() {
		fleetsimBin = filepath.Join(binDir, "bonafide-fleetsim")
		out, err := exec.Command("go", "build", "-o", fleetsimBin, "github.com/bonafide-sec/bonafide/agent/fleetsim").CombinedOutput()
		if err != nil {
			fleetsimErr = fmt.Errorf("build fleetsim: %v\n%s", err, out)
		}
	})
	if fleetsimErr != nil {
		t.Fatal(fleetsimErr)
	}
	return fleetsimBin
}

// fleetRuleIDs lists the ids of the rules in a policies rule file.
func fleetRuleIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Rules []struct {
			ID string `yaml:"id"`
		} `yaml:"rules"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ids []string
	for _, r := range f.Rules {
		ids = append(ids, r.ID)
	}
	return ids
}

// fleetListAll fetches every page of an API listing (limit 1000, next_cursor).
func fleetListAll(t *testing.T, s *server, path, key, token string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		resp := s.api(t, "GET", path+"?"+q.Encode(), token, "", 200)
		items, _ := resp[key].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any))
		}
		next, _ := resp["next_cursor"].(string)
		if next == "" || len(items) == 0 {
			return out
		}
		cursor = next
	}
}

// TestFleetSimulator runs bonafide-fleetsim against a real collector: the
// simulated world's GeoIP databases, policies (offices declared) and HR
// export, then ~300 laptops enrolling and reporting over mTLS from the
// loopback addresses of their simulated networks. Every device must
// arrive, bound to its person, with the network class its scenario
// intends; the farm's laptops must raise remote-access alerts (and
// peripheral alerts for the three with a PiKVM), and no laptop at an
// office, the coworking space or the household may raise any
// remote-access or peripheral alert.
//
// Exactly the farm is flagged by the fleet rules, found as a suspected
// farm by GET /api/v1/farms and ranked riskiest (assertOnlyFarmFlagged).
func TestFleetSimulator(t *testing.T) {
	_, collector := binaries(t)
	sim := fleetsimBinary(t)
	world := t.TempDir()
	if out, err := exec.Command(sim, "world", "--out", world, "--seed", "42").CombinedOutput(); err != nil {
		t.Fatalf("fleetsim world: %v\n%s", err, out)
	}
	manifest := fleetReadManifest(t, filepath.Join(world, "devices.csv"))
	pol := filepath.Join(world, "policies")
	remoteRules := fleetRuleIDs(t, filepath.Join(pol, "rules", "remote_access.yaml"))
	peripheralRules := fleetRuleIDs(t, filepath.Join(pol, "rules", "peripherals.yaml"))

	storetest.Engines(t, func(t *testing.T, dsn string) {
		args := []string{"--policies", pol, "--geoip", filepath.Join(world, "city.mmdb"), "--geoip", filepath.Join(world, "asn.mmdb")}
		if strings.HasPrefix(dsn, "postgres") {
			args = append(args, "--db", dsn)
		}
		s := startServerArgs(t, collector, t.TempDir(), args...)
		s.admin(t, "people", "import", filepath.Join(world, "people.csv"))
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")

		state := t.TempDir()
		run := func() string {
			out, err := exec.Command(sim, "run", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp,
				"--state", state, "--seed", "42", "--rounds", "1").CombinedOutput()
			if err != nil {
				t.Fatalf("fleetsim run: %v\n%s\ncollector log:\n%s", err, out, s.log)
			}
			return string(out)
		}
		out := run()
		t.Logf("fleetsim run:\n%s", out)
		if !strings.Contains(out, "THE FARM") {
			t.Errorf("the summary does not name the farm:\n%s", out)
		}
		run() // a second run reuses the enrollments: no new devices

		devices := fleetListAll(t, s, "/api/v1/devices", "devices", viewer)
		if len(devices) != len(manifest) {
			t.Errorf("%d devices at the collector, %d simulated", len(devices), len(manifest))
		}
		byID := map[string]string{}
		for _, d := range devices {
			host, _ := d["hostname"].(string)
			byID[d["id"].(string)] = host
			m, ok := manifest[host]
			if !ok {
				t.Errorf("unexpected device %s", host)
				continue
			}
			eg, _ := d["egress"].(map[string]any)
			if eg["ip"] != m.egress || eg["network_class"] != m.class {
				t.Errorf("%s (%s): egress %v class %v, want %s class %s", host, m.scenario, eg["ip"], eg["network_class"], m.egress, m.class)
			}
			if d["person"] != m.email || d["person_binding"] != "device_serial" {
				t.Errorf("%s: person %v bound by %v, want %s by device_serial", host, d["person"], d["person_binding"], m.email)
			}
			m.seen = true
		}
		for host, m := range manifest {
			if !m.seen {
				t.Errorf("%s (%s) never arrived", host, m.scenario)
			}
		}

		alerts := map[string][]string{}
		for _, a := range fleetListAll(t, s, "/api/v1/alerts", "alerts", viewer) {
			host := byID[a["device_id"].(string)]
			alerts[host] = append(alerts[host], a["rule_id"].(string))
		}
		for host, m := range manifest {
			got := alerts[host]
			has := func(ids ...string) bool {
				return slices.ContainsFunc(got, func(r string) bool { return slices.Contains(ids, r) })
			}
			switch {
			case m.scenario == "farm":
				if !has("remote_session_active") {
					t.Errorf("farm laptop %s (%s): alerts %v, want remote_session_active", host, m.tool, got)
				}
				if m.kvm != "" && !has("kvm_usb_identity", "composite_hid_gadget") {
					t.Errorf("farm laptop %s with a PiKVM: alerts %v, want kvm_usb_identity or composite_hid_gadget", host, got)
				}
				if m.kvm == "" && has(peripheralRules...) {
					t.Errorf("farm laptop %s without a KVM: peripheral alerts %v", host, got)
				}
			case m.scenario == "vpn":
				if has(peripheralRules...) {
					t.Errorf("%s (vpn): peripheral alerts %v", host, got)
				}
			default:
				// Offices, the coworking space, the household, remote
				// workers and travellers: nothing remote-access or
				// peripheral.
				if has(remoteRules...) || has(peripheralRules...) {
					t.Errorf("%s (%s): remote-access or peripheral alerts %v", host, m.scenario, got)
				}
			}
		}
		assertOnlyFarmFlagged(t, s, viewer, manifest, alerts, fleetRuleIDs(t, filepath.Join(pol, "rules", "fleet.yaml")))
	})
}

// assertOnlyFarmFlagged checks the fleet-level judgement: the fleet rules
// fire on the eight farm laptops and nowhere else (offices, coworking
// space, household, travellers sharing a mobile address, a VPN exit or a
// hotel); GET /api/v1/farms lists exactly one suspected farm, holding the
// eight laptops of eight people linked by the egress address, the router
// and two laptops' cloned AnyDesk id,
// with remote access and KVM co-signals; the household is a cluster that
// is not suspected; and the farm's laptops are the riskiest devices.
func assertOnlyFarmFlagged(t *testing.T, s *server, token string, manifest map[string]*fleetSimDevice, alerts map[string][]string, fleetRules []string) {
	t.Helper()
	var farm []string
	for host, m := range manifest {
		if m.scenario == "farm" {
			farm = append(farm, host)
		}
		var got []string
		for _, r := range alerts[host] {
			if slices.Contains(fleetRules, r) {
				got = append(got, r)
			}
		}
		slices.Sort(got)
		want := []string(nil)
		if m.scenario == "farm" {
			want = []string{"laptop_farm_escalated", "laptop_farm_suspected", "linked_to_flagged_device"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s (%s): fleet alerts %v, want %v", host, m.scenario, got, want)
		}
	}
	slices.Sort(farm)

	suspected := s.api(t, "GET", "/api/v1/farms?suspected=true", token, "", 200)["farms"].([]any)
	if len(suspected) != 1 {
		t.Fatalf("%d suspected farms, want 1: %v", len(suspected), suspected)
	}
	f := suspected[0].(map[string]any)
	var members []string
	for _, m := range f["members"].([]any) {
		members = append(members, m.(map[string]any)["hostname"].(string))
	}
	slices.Sort(members)
	links := fmt.Sprint(f["links"])
	signals := fmt.Sprint(f["co_signals"])
	if !slices.Equal(members, farm) || f["people"] != 8.0 || f["shared_network"] != true || f["network_class"] != "residential" ||
		!strings.Contains(links, "egress_ip") || !strings.Contains(links, "gateway_mac") || !strings.Contains(links, "remote_tool") ||
		!strings.Contains(signals, "remote_access") || !strings.Contains(signals, "peripherals") || f["score"].(float64) < 90 {
		t.Errorf("suspected farm: members %v, people %v, links %v, co-signals %v, score %v", members, f["people"], links, signals, f["score"])
	}
	// The timeline: formed by the first two laptops, then six joined.
	detail := s.api(t, "GET", "/api/v1/farms/"+f["id"].(string), token, "", 200)
	tl, _ := detail["timeline"].([]any)
	arrived := 0
	for i, e := range tl {
		e := e.(map[string]any)
		d, _ := e["detail"].(map[string]any)
		switch {
		case i == 0 && e["kind"] == "formed":
			founders, _ := d["devices"].([]any)
			arrived += len(founders)
		case e["kind"] == "joined":
			arrived++
		}
	}
	if arrived != 8 {
		t.Errorf("farm timeline shows %d arrivals: %v", arrived, tl)
	}
	// A farm laptop's person carries the risk, with its history.
	email := f["members"].([]any)[0].(map[string]any)["person"].(string)
	p := s.api(t, "GET", "/api/v1/people/"+url.PathEscape(email), token, "", 200)
	if r := p["risk"].(map[string]any); r["score"].(float64) < 90 || len(r["contributors"].([]any)) < 3 || len(p["risk_history"].([]any)) == 0 {
		t.Errorf("person %s: risk %v, history %v", email, p["risk"], p["risk_history"])
	}

	// Every cluster that is not the farm is one of the household or the
	// hotels' guests, none suspected.
	for _, c := range s.api(t, "GET", "/api/v1/farms", token, "", 200)["farms"].([]any) {
		c := c.(map[string]any)
		if c["id"] == f["id"] {
			continue
		}
		for _, m := range c["members"].([]any) {
			host := m.(map[string]any)["hostname"].(string)
			if sc := manifest[host].scenario; sc != "household" && sc != "traveller-hotel" || c["suspected"] != false {
				t.Errorf("cluster %v: %s (%s), suspected %v", c["id"], host, sc, c["suspected"])
			}
		}
	}

	// The farm's laptops are the eight riskiest devices.
	var top []string
	for _, d := range s.api(t, "GET", "/api/v1/devices?sort=risk&limit=8", token, "", 200)["devices"].([]any) {
		top = append(top, d.(map[string]any)["hostname"].(string))
	}
	slices.Sort(top)
	if !slices.Equal(top, farm) {
		t.Errorf("riskiest devices %v, want the farm %v", top, farm)
	}
}

// fleetSimDevice is one row of the simulator's devices.csv.
type fleetSimDevice struct {
	scenario, email, egress, class, tool, kvm string
	seen                                      bool
}

func fleetReadManifest(t *testing.T, path string) map[string]*fleetSimDevice {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %v (%d rows)", path, err, len(rows))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := map[string]*fleetSimDevice{}
	for _, r := range rows[1:] {
		out[r[col["hostname"]]] = &fleetSimDevice{scenario: r[col["scenario"]], email: r[col["email"]], egress: r[col["egress"]],
			class: r[col["network_class"]], tool: r[col["remote_tool"]], kvm: r[col["kvm"]]}
	}
	farm := 0
	for _, d := range out {
		if d.scenario == "farm" {
			farm++
		}
	}
	if farm != 8 {
		t.Fatalf("%s: %d farm devices, want 8", path, farm)
	}
	return out
}
