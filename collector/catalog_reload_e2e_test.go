package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
	"github.com/bonafide-sec/bonafide/policies"
)

// TestCatalogHotReload edits the running collector's declared offices and
// KVM catalog: a declared office classifies the next report's egress as
// office; a broken offices file is refused (the error is in the API, the
// office stays); fixed, the error clears; a KVM catalog edit changes what
// the collector matches in the next snapshot and reaches the agent at its
// next CheckIn. No catalog edit records a policy version.
func TestCatalogHotReload(t *testing.T) {
	agent, collector := binaries(t)
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	geotest.Write(t, city, "GeoLite2-City", map[string]map[string]any{
		"127.0.5.0/24": {"country": map[string]any{"iso_code": "DE"}, "city": map[string]any{"names": map[string]any{"en": "Berlin"}},
			"location": map[string]any{"latitude": 52.52, "longitude": 13.405, "accuracy_radius": uint16(20)}},
	})
	pol := filepath.Join(dir, "policies")
	if err := os.CopyFS(pol, policies.FS()); err != nil {
		t.Fatal(err)
	}
	// edit writes a policy file and moves its modification time on, so
	// that the collector sees the edit whatever the file system's
	// timestamp granularity and even when the size is unchanged.
	edits := 0
	edit := func(name, content string) {
		t.Helper()
		p := filepath.Join(pol, name)
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		edits++
		mt := time.Now().Add(time.Duration(edits) * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}

	s := startServerArgs(t, collector, t.TempDir(), "--policies", pol, "--geoip", city, "--policy-reload-interval", "100ms")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")

	status := func() map[string]any {
		return s.api(t, "GET", "/api/v1/policies", viewer, "", 200)
	}
	active := func(m map[string]any) (catalogs map[string]any, lastError string) {
		a := m["active"].(map[string]any)
		catalogs, _ = a["catalogs"].(map[string]any)
		lastError, _ = a["last_error"].(string)
		return catalogs, lastError
	}
	until := func(what string, ok func(catalogs map[string]any, lastError string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok(active(status())) {
				return
			}
		}
		t.Fatalf("%s: %v\ncollector log:\n%s", what, status()["active"], s.log)
	}
	cats0, lastErr := active(status())
	if lastErr != "" || cats0["networks"] == nil || cats0["kvm"] == nil || cats0["remote_access"] == nil {
		t.Fatalf("initial status: %v", status()["active"])
	}

	// One laptop with an ATEN KVM dongle, dialling from 127.0.5.2.
	const root = "../agent/internal/scan/testdata/roots/aten-dongle"
	state := t.TempDir()
	cfg := filepath.Join(state, "agent.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nsource_address: 127.0.5.2\n",
		s.grpc, secret, fp, state), 0o600)
	report := func() (agentLog string, egress map[string]any, families []string) {
		t.Helper()
		agentLog = runAgent(t, agent, "run", "--once", "--config", cfg, "--root", root)
		devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
		if len(devices) != 1 {
			t.Fatalf("devices %v", devices)
		}
		d := devices[0].(map[string]any)
		egress = d["egress"].(map[string]any)
		dev := s.api(t, "GET", "/api/v1/devices/"+d["id"].(string), viewer, "", 200)
		per, _ := dev["snapshot"].(map[string]any)["peripherals"].(map[string]any)
		findings, _ := per["findings"].([]any)
		for _, f := range findings {
			fam, _ := f.(map[string]any)["family"].(string)
			families = append(families, fam)
		}
		return agentLog, egress, families
	}
	hasFamily := func(fams []string, id string) bool {
		for _, f := range fams {
			if f == id {
				return true
			}
		}
		return false
	}

	_, eg, fams := report()
	if eg["network_class"] == "office" || eg["city"] != "Berlin" || eg["ip"] != "127.0.5.2" {
		t.Fatalf("egress before any office: %v", eg)
	}
	if !hasFamily(fams, "aten_kvm") {
		t.Fatalf("the ATEN dongle was not matched: %v", fams)
	}

	// Declaring the office takes effect on the next report.
	edit(policies.OfficesFile, "offices:\n  - {name: Berlin Lab, cidrs: [127.0.5.0/24]}\n")
	until("office declared", func(c map[string]any, e string) bool { return e == "" && c["networks"] != cats0["networks"] })
	_, eg, _ = report()
	if eg["network_class"] != "office" || eg["network_name"] != "Berlin Lab" {
		t.Fatalf("egress after declaring the office: %v", eg)
	}
	cats1, _ := active(status())

	// A broken offices file is refused: the error names the file, the
	// office stays.
	edit(policies.OfficesFile, "offices:\n  - {name: Berlin Lab, cidrs: [127.0.5.0/33]}\n")
	until("broken offices reported", func(c map[string]any, e string) bool {
		return strings.Contains(e, policies.OfficesFile+": ") && c["networks"] == cats1["networks"]
	})
	_, eg, _ = report()
	if eg["network_class"] != "office" || eg["network_name"] != "Berlin Lab" {
		t.Fatalf("egress with a broken offices file: %v", eg)
	}
	if !strings.Contains(s.log.String(), "policy edit refused") {
		t.Errorf("the refused edit was not logged:\n%s", s.log)
	}

	// Fixed: the error clears and the new version is active.
	edit(policies.OfficesFile, "offices:\n  - {name: Berlin Lab 2, cidrs: [127.0.5.0/24]}\n")
	until("offices fixed", func(c map[string]any, e string) bool { return e == "" && c["networks"] != cats1["networks"] })
	_, eg, _ = report()
	if eg["network_class"] != "office" || eg["network_name"] != "Berlin Lab 2" {
		t.Fatalf("egress after the fix: %v", eg)
	}

	// The KVM catalog without the ATEN family: the collector no longer
	// matches the dongle, and the agent receives the edited catalog.
	kvm, err := os.ReadFile(filepath.Join(pol, policies.KVMFile))
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(kvm, []byte("  - id: aten_kvm\n")), bytes.Index(kvm, []byte("  - id: raritan_kvm\n"))
	if i < 0 || j < i {
		t.Fatal("aten_kvm family not found in the KVM catalog")
	}
	cats2, _ := active(status())
	edit(policies.KVMFile, string(kvm[:i])+string(kvm[j:]))
	until("KVM catalog edited", func(c map[string]any, e string) bool { return e == "" && c["kvm"] != cats2["kvm"] })
	agentLog, _, fams := report()
	if hasFamily(fams, "aten_kvm") {
		t.Fatalf("the collector still matches the removed ATEN family: %v", fams)
	}
	if !strings.Contains(agentLog, "catalog updated") || !strings.Contains(agentLog, "catalog=kvm") {
		t.Errorf("the agent did not receive the edited KVM catalog:\n%s", agentLog)
	}

	// A broken KVM catalog is refused like the offices file.
	edit(policies.KVMFile, "families: []\n")
	until("broken KVM catalog reported", func(c map[string]any, e string) bool {
		return strings.Contains(e, policies.KVMFile+": ") && strings.Contains(e, "no families")
	})
	if _, _, fams = report(); hasFamily(fams, "aten_kvm") {
		t.Fatalf("a broken KVM catalog changed the matching: %v", fams)
	}

	// Only the rules are versioned: no catalog edit added a version.
	if v := status()["versions"].([]any); len(v) != 1 {
		t.Fatalf("policy versions %v", v)
	}
	if !strings.Contains(s.log.String(), "catalogs reloaded") {
		t.Errorf("no reload was logged:\n%s", s.log)
	}
}
