package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoSoak is `make demo` left running, with the collector's clocks
// sped up: a sweep every second and a 5 s heartbeat interval (an agent is
// silent after 15 s), a fleet recompute every 10 s, and the simulated fleet
// reporting with `run --interval 10s` (a snapshot every 10 s, heartbeats at
// the collector's 5 s in between); no agent of this machine, whose alerts
// depend on the machine. Once every laptop has reported and the farm is
// flagged, 48 sweeps pass; then no alert may have opened, closed or
// changed status, no agent_silent may exist in any status, and the open
// alerts must be the world's: the fleet rules on exactly the farm (the one
// suspected farm, assertOnlyFarmFlagged), and besides the farm only what
// is true of the hotel travellers and the VPN users (worldTrue): nothing
// on the offices, the coworking space, the household, remote workers or
// travellers on a mobile carrier.
func TestDemoSoak(t *testing.T) {
	_, collector := binaries(t)
	sim := fleetsimBinary(t)
	world := t.TempDir()
	if out, err := exec.Command(sim, "world", "--out", world).CombinedOutput(); err != nil {
		t.Fatalf("fleetsim world: %v\n%s", err, out)
	}
	manifest := fleetReadManifest(t, filepath.Join(world, "devices.csv"))
	pol := filepath.Join(world, "policies")
	fleetRules := fleetRuleIDs(t, filepath.Join(pol, "rules", "fleet.yaml"))
	// What the world makes true besides the farm: a traveller on a hotel's
	// Wi-Fi is far from the city they declared; the VPN users run an
	// unsanctioned commercial VPN and egress from its exit in Los Angeles.
	worldTrue := map[string][]string{
		"traveller-hotel": {"egress_far_from_declared_city"},
		"vpn":             {"vpn_client_running", "vpn_adapter_up", "egress_hosting_or_vpn_network", "egress_far_from_declared_city"},
	}

	const (
		sweep = time.Second
		// 300 laptops every 5 s: on a 2-core machine at a load average of
		// 20 (stress-ng and parallel builds) reports took up to 9 s to be
		// stored, which a 3 s heartbeat (silent after 9 s) could not absorb.
		heartbeat = 5 * time.Second
		interval  = 2 * heartbeat
		soak      = 48 * sweep // more than three silence thresholds
	)
	s := startServerArgs(t, collector, t.TempDir(), "--policies", pol,
		"--geoip", filepath.Join(world, "city.mmdb"), "--geoip", filepath.Join(world, "asn.mmdb"),
		"--sweep-interval", sweep.String(), "--heartbeat-interval", heartbeat.String(), "--fleet-recompute-interval", "10s")
	s.admin(t, "people", "import", filepath.Join(world, "people.csv"))
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	viewer := s.admin(t, "token", "create", "--role", "viewer")

	var fleetOut bytes.Buffer
	fleet := exec.Command(sim, "run", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp,
		"--state", t.TempDir(), "--interval", interval.String())
	fleet.Stdout, fleet.Stderr = &fleetOut, &fleetOut
	if err := fleet.Start(); err != nil {
		t.Fatal(err)
	}
	var fleetErr error
	exited := make(chan struct{})
	go func() { fleetErr = fleet.Wait(); close(exited) }()
	stop := func() error {
		fleet.Process.Signal(syscall.SIGTERM)
		<-exited
		return fleetErr
	}
	t.Cleanup(func() { stop() })

	// alerts maps "host rule" to the alert's status, every status.
	hosts := map[string]string{}
	alerts := func() map[string]string {
		out := map[string]string{}
		for _, a := range soakListAlerts(t, s, viewer) {
			id := a["device_id"].(string)
			if hosts[id] == "" {
				for _, d := range fleetListAll(t, s, "/api/v1/devices", "devices", viewer) {
					hosts[d["id"].(string)], _ = d["hostname"].(string)
				}
			}
			out[hosts[id]+" "+a["rule_id"].(string)] = a["status"].(string)
		}
		return out
	}
	// Every laptop reported and the farm is flagged: the demo as it looks
	// a minute after `make demo`.
	farmFlagged := func(al map[string]string) bool {
		for host, m := range manifest {
			if m.scenario == "farm" && al[host+" laptop_farm_escalated"] != "open" {
				return false
			}
		}
		return true
	}
	// Every laptop reported, the farm is flagged and no laptop is silent
	// (under heavy load a laptop's first snapshot can come after the
	// sweep's silence threshold; its next report resolves it).
	settled := func(al map[string]string) bool {
		for k, st := range al {
			if strings.HasSuffix(k, " agent_silent") && st == "open" {
				return false
			}
		}
		return farmFlagged(al)
	}
	var start map[string]string
	for deadline := time.Now().Add(5 * time.Minute); ; {
		select {
		case <-exited:
			t.Fatalf("fleetsim run --interval exited: %v\n%s", fleetErr, &fleetOut)
		case <-time.After(sweep):
		}
		// Reported, not just enrolled: a laptop's first snapshot comes at a
		// random point of the first interval.
		n := 0
		for _, d := range fleetListAll(t, s, "/api/v1/devices", "devices", viewer) {
			if d["snapshot_at"] != nil {
				n++
			}
		}
		if start = alerts(); n == len(manifest) && settled(start) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d laptops, farm flagged and none silent not reached in five minutes; alerts %v\n%s", n, len(manifest), start, s.log)
		}
	}
	began := time.Now()
	select {
	case <-exited:
		t.Fatalf("fleetsim run --interval exited: %v\n%s", fleetErr, &fleetOut)
	case <-time.After(soak):
	}
	end := alerts()
	err := stop()
	t.Logf("fleetsim run --interval %s, alerts compared over %s:\n%s", interval, time.Since(began).Round(time.Second), &fleetOut)
	if err != nil {
		t.Errorf("fleetsim run --interval: %v", err)
	}
	if got, want := fleetTotalSent(t, fleetOut.String()), len(manifest)*int(time.Since(began)/heartbeat); got < want/2 {
		t.Errorf("the fleet sent %d reports, want more than %d", got, want)
	}

	byHost := map[string][]string{}
	for _, k := range slices.Sorted(maps.Keys(end)) {
		host, rule, _ := strings.Cut(k, " ")
		sc := manifest[host].scenario
		switch {
		case rule == "agent_silent":
			t.Errorf("%s (%s): agent_silent (%s) while it reports every %s", host, sc, end[k], heartbeat)
		case start[k] == "":
			t.Errorf("%s (%s): %s opened during the soak (%s)", host, sc, rule, end[k])
		case start[k] != end[k]:
			t.Errorf("%s (%s): %s went from %s to %s during the soak", host, sc, rule, start[k], end[k])
		}
		if end[k] != "open" {
			continue
		}
		byHost[host] = append(byHost[host], rule)
		if sc != "farm" && !slices.Contains(worldTrue[sc], rule) {
			t.Errorf("%s (%s): %s", host, sc, rule)
		}
	}
	for host, m := range manifest {
		if m.scenario == "farm" && !slices.Contains(byHost[host], "remote_session_active") {
			t.Errorf("farm laptop %s: alerts %v, want remote_session_active", host, byHost[host])
		}
	}
	// The fleet rules on exactly the farm, which is the one suspected farm.
	assertOnlyFarmFlagged(t, s, viewer, manifest, byHost, fleetRules)
	if t.Failed() {
		t.Logf("collector log:\n%s", s.log)
	}
}

// fleetTotalSent reads the reports sent from a fleetsim summary.
func fleetTotalSent(t *testing.T, out string) int {
	t.Helper()
	for line := range strings.Lines(out) {
		var devices, enrolled, sent int
		if _, err := fmt.Sscanf(line, "total %d %d %d", &devices, &enrolled, &sent); err == nil {
			return sent
		}
	}
	t.Errorf("no total in the fleetsim summary:\n%s", out)
	return 0
}

// soakListAlerts fetches every alert, in every status.
func soakListAlerts(t *testing.T, s *server, token string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for cursor := ""; ; {
		resp := s.api(t, "GET", "/api/v1/alerts?"+url.Values{"status": {"all"}, "limit": {"1000"}, "cursor": {cursor}}.Encode(), token, "", 200)
		items, _ := resp["alerts"].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any))
		}
		if cursor, _ = resp["next_cursor"].(string); cursor == "" || len(items) == 0 {
			return out
		}
	}
}
