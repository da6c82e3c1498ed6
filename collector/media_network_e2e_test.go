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

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestVirtualCameraTravelRouterEndToEnd delivers, with `run --once
// --root`, three laptops of three hires built from the fixture root
// agent/internal/signal/media/testdata/root-laptop-vcam: OBS Virtual
// Camera through v4l2loopback, and a default route through a GL.iNet
// travel router (the same router for all three, as in one facilitator's
// house). A fourth, ordinary laptop of a fourth hire (hostid's
// root-debian) is in another house. Each hire declared a home city in the
// HR export.
//
// Each farm laptop must raise virtual_camera_or_voice_tool (low) and
// travel_router_gateway (medium); the farm must count both as co-signals
// (media despite its low severity, through its co-signal tag) and be
// escalated on every laptop; the ordinary laptop raises none of these.
//
// The HR export also gives hire dates: the first hire started 10 days ago
// and has TeamViewer installed (its Debian package), the second started 10
// days ago with nothing installed, the ordinary laptop's person two years
// ago. Only the first raises new_hire_remote_access (high) next to
// remote_tool_installed (medium). The second also carries three people's
// accounts and an AnyDesk install by one of them (the posture fixture):
// only it raises remote_tool_installed_by_local_admin and
// several_accounts_on_laptop.
func TestVirtualCameraTravelRouterEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	const fixture = "../agent/internal/signal/media/testdata/root-laptop-vcam"
	base := t.TempDir()
	type laptop struct{ host, serial, root string }
	var farm []laptop
	for i := 1; i <= 3; i++ {
		l := laptop{host: fmt.Sprintf("hire-%d-laptop", i), serial: fmt.Sprintf("VCAM%03d", i), root: filepath.Join(base, fmt.Sprintf("farm-%d", i))}
		if out, err := exec.Command("cp", "-r", fixture, l.root).CombinedOutput(); err != nil {
			t.Fatalf("copy fixture root: %v %s", err, out)
		}
		id := fmt.Sprintf("%032x", 0xabc0+i)
		for f, v := range map[string]string{
			"etc/hostname": l.host, "proc/sys/kernel/hostname": l.host,
			"etc/machine-id": id, "var/lib/dbus/machine-id": id,
			"sys/class/dmi/id/product_serial": l.serial, "sys/class/dmi/id/board_serial": "/" + l.serial + "/",
			"sys/class/dmi/id/product_uuid": fmt.Sprintf("4C4C4544-0058-4B10-8032-B7C04F4C4D%02d", 40+i),
		} {
			if err := os.WriteFile(filepath.Join(l.root, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		farm = append(farm, l)
	}
	// TeamViewer's Debian package, as dpkg records it.
	dpkg := filepath.Join(farm[0].root, "var/lib/dpkg")
	if err := os.MkdirAll(dpkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dpkg, "status"), []byte("Package: teamviewer\nStatus: install ok installed\nArchitecture: amd64\nVersion: 15.50.5\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The second hire's laptop also carries the posture fixture: three
	// people's accounts, AnyDesk installed by one of them through sudo.
	if out, err := exec.Command("cp", "-r", "../agent/internal/signal/posture/testdata/root-linux/.", farm[1].root).CombinedOutput(); err != nil {
		t.Fatalf("copy posture fixture: %v %s", err, out)
	}
	recent := time.Now().UTC().AddDate(0, 0, -10).Format(time.DateOnly)
	old := time.Now().UTC().AddDate(-2, 0, 0).Format(time.DateOnly)
	people := filepath.Join(base, "people.csv")
	csv := "email,name,username,device_serial,country,region,city,timezone,work_hours,hire_date\n"
	for i, l := range farm {
		hired := recent
		if i == 2 {
			hired = "" // the export may leave it out
		}
		csv += fmt.Sprintf("hire%d@example.com,Hire %d,,%s,US,TX,Austin,America/Chicago,09:00-17:00,%s\n", i+1, i+1, l.serial, hired)
	}
	csv += "ana@example.com,Ana,,7XK2LM3,US,NY,New York,America/New_York,09:00-17:00," + old + "\n"
	if err := os.WriteFile(people, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	ordinary := laptop{host: "deb-laptop-042", root: "../agent/internal/hostid/testdata/root-debian"}

	storetest.Engines(t, func(t *testing.T, dsn string) {
		db := ""
		if strings.HasPrefix(dsn, "postgres") {
			db = dsn
		}
		s := startServer(t, collector, t.TempDir(), db, "127.0.0.1:0")
		s.admin(t, "people", "import", people)
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		states := map[string]string{}
		deliver := func(l laptop) {
			st, ok := states[l.host]
			if !ok {
				st = t.TempDir()
				states[l.host] = st
				runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", st, "--root", l.root)
			}
			runAgent(t, agent, "run", "--once", "--state-dir", st, "--root", l.root)
		}
		for _, l := range append(farm, ordinary) {
			deliver(l)
		}
		// The laptops that reported before the last one joined see the
		// whole farm at their next report.
		for _, l := range farm {
			deliver(l)
		}

		byID, got := map[string]string{}, map[string][]string{}
		for _, d := range s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any) {
			m := d.(map[string]any)
			byID[m["id"].(string)] = m["hostname"].(string)
		}
		sev := map[string]string{}
		for _, a := range s.api(t, "GET", "/api/v1/alerts?limit=500", viewer, "", 200)["alerts"].([]any) {
			m := a.(map[string]any)
			host := byID[m["device_id"].(string)]
			got[host] = append(got[host], m["rule_id"].(string))
			sev[m["rule_id"].(string)] = m["severity"].(string)
		}
		for _, l := range farm {
			for _, r := range []string{"virtual_camera_or_voice_tool", "travel_router_gateway", "laptop_farm_suspected", "laptop_farm_escalated"} {
				if !slices.Contains(got[l.host], r) {
					t.Errorf("%s: alerts %v, want %s among them", l.host, got[l.host], r)
				}
			}
		}
		if sev["virtual_camera_or_voice_tool"] != "low" || sev["travel_router_gateway"] != "medium" || sev["laptop_farm_escalated"] != "critical" {
			t.Errorf("severities %v", sev)
		}
		for i, l := range farm {
			if has := slices.Contains(got[l.host], "new_hire_remote_access"); has != (i == 0) {
				t.Errorf("%s: alerts %v: new_hire_remote_access %v, want %v", l.host, got[l.host], has, i == 0)
			}
		}
		if !slices.Contains(got[farm[0].host], "remote_tool_installed") || sev["new_hire_remote_access"] != "high" {
			t.Errorf("%s: alerts %v, severities %v: want remote_tool_installed and new_hire_remote_access (high)", farm[0].host, got[farm[0].host], sev)
		}
		for i, l := range farm {
			for _, r := range []string{"remote_tool_installed_by_local_admin", "several_accounts_on_laptop"} {
				if has := slices.Contains(got[l.host], r); has != (i == 1) {
					t.Errorf("%s: alerts %v: %s %v, want %v", l.host, got[l.host], r, has, i == 1)
				}
			}
		}
		for _, r := range got[ordinary.host] {
			if slices.Contains([]string{"virtual_camera_or_voice_tool", "travel_router_gateway", "laptop_farm_suspected", "laptop_farm_escalated"}, r) {
				t.Errorf("ordinary laptop: alert %s", r)
			}
		}
		// The farm, as GET /api/v1/farms shows it, counts both kinds.
		found := false
		for _, f := range s.api(t, "GET", "/api/v1/farms", viewer, "", 200)["farms"].([]any) {
			m := f.(map[string]any)
			var co []string
			for _, c := range m["co_signals"].([]any) {
				co = append(co, c.(string))
			}
			if n, _ := m["people"].(float64); n == 3 {
				found = true
				if !slices.Contains(co, "media") || !slices.Contains(co, "network") {
					t.Errorf("farm co-signals %v, want media and network", co)
				}
			}
		}
		if !found {
			t.Errorf("no farm of three people:\n%v", s.api(t, "GET", "/api/v1/farms", viewer, "", 200))
		}
	})
}
