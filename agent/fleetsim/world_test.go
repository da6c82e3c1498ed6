package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
	"google.golang.org/protobuf/proto"
)

func TestWorldDeterministic(t *testing.T) {
	a, b := NewWorld(7, 0), NewWorld(7, 0)
	if !reflect.DeepEqual(a.Devices, b.Devices) {
		t.Fatal("the same seed gave different worlds")
	}
	c := NewWorld(8, 0)
	if a.Devices[0].HW.Serial == c.Devices[0].HW.Serial && a.Devices[0].HW.MAC == c.Devices[0].HW.MAC {
		t.Error("another seed gave the same first device")
	}
	now := time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC)
	cat, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Devices {
		if !proto.Equal(a.Devices[i].Snapshot(cat, "x", "v", now), b.Devices[i].Snapshot(cat, "x", "v", now)) {
			t.Fatalf("%s: snapshots differ", a.Devices[i].Hostname)
		}
	}
}

func TestWorldShape(t *testing.T) {
	w := NewWorld(1, 0)
	if n := len(w.Devices); n < 250 || n > 350 {
		t.Errorf("default fleet has %d devices, want ~300", n)
	}
	hosts, serials, uuids, macs, emails := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	egressBySite := map[string]string{}
	sitesByEgress := map[string]string{}
	for _, d := range w.Devices {
		for what, m := range map[string]map[string]bool{d.Hostname: hosts, d.HW.Serial: serials, d.HW.UUID: uuids, d.HW.MAC: macs, d.Person.Email: emails} {
			if m[what] {
				t.Errorf("%s: %q is not unique", d.Hostname, what)
			}
			m[what] = true
		}
		if _, err := netip.ParseAddr(d.Egress); err != nil || !netip.MustParsePrefix("127.0.0.0/8").Contains(netip.MustParseAddr(d.Egress)) {
			t.Errorf("%s: egress %q is not a loopback address", d.Hostname, d.Egress)
		}
		if e, ok := egressBySite[d.Site.Name]; ok && e != d.Egress {
			t.Errorf("site %s has two egress addresses", d.Site.Name)
		}
		egressBySite[d.Site.Name] = d.Egress
		if s, ok := sitesByEgress[d.Egress]; ok && s != d.Site.Name {
			t.Errorf("address %s is shared by networks %s and %s", d.Egress, s, d.Site.Name)
		}
		sitesByEgress[d.Egress] = d.Site.Name
		if !netip.MustParsePrefix(d.Site.CIDR).Contains(netip.MustParseAddr(d.Egress)) {
			t.Errorf("%s: egress %s outside its network %s", d.Hostname, d.Egress, d.Site.CIDR)
		}
	}

	farm := w.Farm()
	if len(farm) != 8 {
		t.Fatalf("%d farm devices, want 8", len(farm))
	}
	cities, people, kvms := map[string]bool{}, map[string]bool{}, 0
	for _, d := range farm {
		if d.Egress != farm[0].Egress || d.GatewayMAC != farm[0].GatewayMAC || d.BSSID != farm[0].BSSID {
			t.Errorf("%s: not in the farm's house (%s %s %s)", d.Hostname, d.Egress, d.GatewayMAC, d.BSSID)
		}
		if !strings.HasPrefix(d.LANAddress, "192.168.1.") {
			t.Errorf("%s: LAN address %s", d.Hostname, d.LANAddress)
		}
		cities[d.Person.Declared.City], people[d.Person.Email] = true, true
		if d.KVM {
			kvms++
		}
	}
	if len(cities) != 8 || len(people) != 8 || kvms != farmKVMs {
		t.Errorf("farm: %d cities, %d people, %d KVMs", len(cities), len(people), kvms)
	}
	for _, d := range w.Devices {
		if !d.Farm && d.Egress == farm[0].Egress {
			t.Errorf("%s (%s) shares the farm's address", d.Hostname, d.Scenario)
		}
	}

	// --devices scales the offices and remote workers only.
	small, big := NewWorld(1, 100), NewWorld(1, 1000)
	if n := len(small.Devices); n != 100 {
		t.Errorf("--devices 100 gave %d", n)
	}
	if n := len(big.Devices); n != 1000 {
		t.Errorf("--devices 1000 gave %d", n)
	}
	if len(small.Farm()) != 8 || len(big.Farm()) != 8 {
		t.Error("the farm must not scale")
	}
}

func TestSnapshotSignals(t *testing.T) {
	w := NewWorld(1, 0)
	cat, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, d := range w.Devices {
		sn := d.Snapshot(cat, "agent", agentVersion, now)
		var kvm, composite bool
		for _, f := range sn.GetPeripherals().GetFindings() {
			kvm = kvm || f.GetKind() == policies.FindingUSBIdentity && f.GetFamily() == "pikvm"
			composite = composite || f.GetKind() == policies.FindingCompositeHID
		}
		if kvm != d.KVM || composite != d.KVM {
			t.Errorf("%s: KVM %v, catalog finds pikvm %v, composite %v", d.Hostname, d.KVM, kvm, composite)
		}
		if !d.KVM && len(sn.GetPeripherals().GetFindings()) > 0 {
			t.Errorf("%s: peripheral findings %v", d.Hostname, sn.GetPeripherals().GetFindings())
		}
		active := false
		for _, tool := range sn.GetRemoteAccess().GetTools() {
			active = active || tool.GetActiveSession()
		}
		if active != d.Farm {
			t.Errorf("%s: farm %v, active remote session %v", d.Hostname, d.Farm, active)
		}
		if n := len(sn.GetActivity().GetHours()); n == 0 || n > activityDays*24 {
			t.Errorf("%s: %d activity hours", d.Hostname, n)
		}
		for _, ds := range sn.GetDisplays().GetDisplays() {
			var sum byte
			for _, b := range ds.GetEdid() {
				sum += b
			}
			if len(ds.GetEdid()) != 128 || sum != 0 || !bytes.HasPrefix(ds.GetEdid(), []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}) {
				t.Errorf("%s: bad EDID for %s", d.Hostname, ds.GetConnector())
			}
		}
	}
}

// TestFiles writes the world and checks the HR export against the
// devices and the offices file against the intended network classes.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	w := NewWorld(3, 0)
	if err := w.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"city.mmdb", "asn.mmdb", "policies/rules/remote_access.yaml", "policies/catalog/networks.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// Writable: users edit it, and a second world run overwrites it.
	if err := w.WriteFiles(dir); err != nil {
		t.Fatalf("second write: %v", err)
	}

	f, err := os.Open(filepath.Join(dir, "people.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "email,name,username,device_serial,country,region,city,timezone,work_hours" {
		t.Errorf("header %s", got)
	}
	if len(rows)-1 != len(w.Devices) {
		t.Fatalf("%d people for %d devices", len(rows)-1, len(w.Devices))
	}
	for i, d := range w.Devices {
		r := rows[i+1]
		if r[0] != d.Person.Email || r[3] != d.HW.Serial || r[6] != d.Person.Declared.City || r[7] != d.Person.Declared.TZ {
			t.Errorf("row %d %v does not match %s", i+1, r, d.Hostname)
		}
	}

	// The embedded catalog with offices.yaml merged on top, as the
	// collector loads them.
	fsys := os.DirFS(filepath.Join(dir, "policies"))
	base, err := policies.Networks(fsys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "policies", policies.OfficesFile))
	if err != nil {
		t.Fatal(err)
	}
	offices, err := policies.ParseNetworks(b)
	if err != nil {
		t.Fatalf("offices.yaml: %v\n%s", err, b)
	}
	base.Merge(offices)
	want := map[string]string{scHQ: "office", scAustin: "office", scCowork: "coworking", scHousehold: "residential", scRemote: "residential",
		scMobile: "mobile", scHotel: "residential", scVPN: "vpn", scFarm: "residential"}
	for _, d := range w.Devices {
		class, _, _ := base.Classify(netip.MustParseAddr(d.Egress), d.Site.ASN, d.Site.ASOrg)
		if class != want[d.Scenario] || class != d.Site.Class {
			t.Errorf("%s (%s) at %s classifies as %s, want %s", d.Hostname, d.Scenario, d.Egress, class, want[d.Scenario])
		}
	}
	if class, _, _ := base.Classify(netip.MustParseAddr("127.0.0.1"), 0, ""); class != "private" {
		t.Errorf("127.0.0.1 classifies as %s, want private", class)
	}
}

func TestCLIUsage(t *testing.T) {
	if err := cli(context.Background(), []string{"world"}, io.Discard, io.Discard); err == nil {
		t.Error("world without --out accepted")
	}
	if err := cli(context.Background(), []string{"run", "--collector", "127.0.0.1:1"}, io.Discard, io.Discard); err == nil {
		t.Error("run without a secret accepted")
	}
	if err := cli(context.Background(), []string{"fly"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
}
