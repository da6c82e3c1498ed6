package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestPeripheralsEndToEnd delivers every fixture root of
// agent/internal/scan/testdata/roots (laptops with IP-KVMs, HID impostors
// and ordinary peripherals) with `run --once --root` and checks that the
// collector raises exactly the expected alerts on each laptop: every KVM
// caught, no ordinary peripheral flagged, and the same disguised KVM on two
// laptops caught fleet-wide.
//
// Two laptops also bring the activity their agent recorded (its state
// file, as the recorder keeps it; TestRhythmDesktopBus in
// agent/internal/signal/activity produces such hours through the Linux
// desktop reader): on lat-pikvm two hours of input resuming every 60 s
// ±25 % after idleness, PiKVM's jiggler, which must raise jiggler_rhythm;
// on lat-office a person's irregular resumptions, which must not.
func TestPeripheralsEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	const roots = "../agent/internal/scan/testdata/roots"
	ip := []string{"kvm_usb_identity", "kvm_edid", "composite_hid_gadget", "preset_peripheral_serial", "hid_identity_mismatch"}
	// JetKVM's defaults have no preset serial: an empty USB serial, and the
	// bridge EDID's 0x88888800 is also on ordinary displays (a Logitech Rally
	// Bar ...), so it counts only inside kvm_edid's capture shape.
	jetDefault := []string{"kvm_usb_identity", "kvm_edid", "composite_hid_gadget", "hid_identity_mismatch"}
	want := map[string][]string{
		"lat-pikvm":     append(slices.Clone(ip), "jiggler_rhythm"),
		"lat-tinypilot": ip,
		"lat-jetkvm":    jetDefault,
		"tp-jetkvm":     ip,
		"lat-nanokvm":   ip,
		"lat-blikvm":    ip,
		"tp-comet":      {"kvm_usb_identity", "composite_hid_gadget", "preset_peripheral_serial", "hid_identity_mismatch"},
		"tp-pico":       {"kvm_usb_identity", "kvm_edid", "composite_hid_gadget", "hid_identity_mismatch"},
		"lat-ch9329":    {"kvm_usb_identity", "kvm_edid", "composite_hid_gadget"},
		"lat-aten":      {"kvm_usb_identity"},
		"lat-jiggle":    {"jiggler_hardware", "hid_identity_mismatch"},
		"tp-farm-07":    {"composite_hid_gadget", "linked_to_flagged_device", "peripheral_shared_across_devices"},
		"tp-farm-08":    {"composite_hid_gadget", "linked_to_flagged_device", "peripheral_shared_across_devices"},
		"lat-office":    nil,
		"tp-home":       nil,
		"lat-ny":        nil,
		"tp-seoul":      {"remote_logon_from_outside", "vpn_adapter_up"}, // SSH from abroad, Astrill; see also the location test
	}
	ents, err := os.ReadDir(roots)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Fatalf("%d fixture roots, %d expectations", len(ents), len(want))
	}
	storetest.Engines(t, func(t *testing.T, dsn string) {
		db := ""
		if strings.HasPrefix(dsn, "postgres") {
			db = dsn
		}
		s := startServer(t, collector, t.TempDir(), db, "127.0.0.1:0")
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		states := map[string]string{}
		for _, e := range ents {
			root, st := filepath.Join(roots, e.Name()), t.TempDir()
			states[e.Name()] = st
			runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", st, "--root", root)
			switch e.Name() {
			case "pikvm-v3":
				writeActivity(t, st, []float64{45, 52, 60, 68, 75}, 60)
			case "office-dock":
				writeActivity(t, st, []float64{12, 40, 300, 25, 600, 18, 90}, 25)
			}
			runAgent(t, agent, "run", "--once", "--state-dir", st, "--root", root)
		}
		// The first of the two farm laptops reported before the second one
		// existed; its next report sees the shared KVM.
		runAgent(t, agent, "run", "--once", "--state-dir", states["pikvm-disguised-a"], "--root", filepath.Join(roots, "pikvm-disguised-a"))

		got, byID := map[string][]string{}, map[string]string{}
		for _, d := range s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any) {
			m := d.(map[string]any)
			byID[m["id"].(string)] = m["hostname"].(string)
			got[m["hostname"].(string)] = nil
		}
		var shared []any
		for _, a := range s.api(t, "GET", "/api/v1/alerts?limit=500", viewer, "", 200)["alerts"].([]any) {
			m := a.(map[string]any)
			host := byID[m["device_id"].(string)]
			got[host] = append(got[host], m["rule_id"].(string))
			if m["rule_id"] == "peripheral_shared_across_devices" {
				shared = append(shared, m["evidence"])
			}
		}
		for host, rules := range want {
			slices.Sort(rules)
			g := got[host]
			slices.Sort(g)
			if _, ok := got[host]; !ok || !slices.Equal(g, rules) {
				t.Errorf("%s: alerts %v, want %v", host, g, rules)
			}
		}
		// The fleet-wide alert names the shared keyboard and monitor and
		// the other laptop.
		for _, ev := range shared {
			b, _ := json.Marshal(ev)
			s := strings.Join(strings.Fields(strings.ReplaceAll(string(b), `"`, "")), "")
			for _, w := range []string{"usb0x413c:0x2113CN0F4G7M", "displayDEL0xa0c4HX4TQ93", "also_on:[tp-farm-0"} {
				if !strings.Contains(s, w) {
					t.Errorf("shared-peripheral evidence lacks %q: %s", w, s)
				}
			}
		}
	})
}

// writeActivity writes the agent's activity state file (agent/internal/
// signal/activity's format) into stateDir with the two hours before the
// last one fully sampled and active, and in each n resumptions of input
// after idle gaps cycling through gaps (seconds).
func writeActivity(t *testing.T, stateDir string, gaps []float64, n int) {
	t.Helper()
	type hour struct {
		Hour     int64   `json:"hour"`
		Sampled  uint64  `json:"sampled"`
		Active   uint64  `json:"active"`
		Resumes  int     `json:"resumes"`
		GapSum   float64 `json:"gap_sum"`
		GapSumSq float64 `json:"gap_sum_sq"`
	}
	var hours []hour
	cur := time.Now().UTC().Truncate(time.Hour)
	for _, ago := range []time.Duration{3 * time.Hour, 2 * time.Hour} {
		h := hour{Hour: cur.Add(-ago).Unix(), Sampled: 1<<60 - 1, Active: 1<<60 - 1, Resumes: n}
		for i := range n {
			g := gaps[i%len(gaps)]
			h.GapSum += g
			h.GapSumSq += g * g
		}
		hours = append(hours, h)
	}
	b, err := json.Marshal(map[string]any{"version": 1, "threshold_seconds": 300, "hours": hours})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "activity.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
