package fleet

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestSnapshotKeys(t *testing.T) {
	sn := &agentv1.HostSnapshot{
		Network: &agentv1.Network{
			Interfaces:   []*agentv1.NetworkInterface{{Name: "wlan0", Addresses: []string{"fe80::1/64", "192.168.1.20/24"}}},
			DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "F4:92:BF:01:02:03"},
			Wifi:         &agentv1.Wifi{Bssid: "ff:ff:ff:ff:ff:ff"}, // broadcast: identifies nothing
		},
		RemoteAccess: &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", ClientId: "123456789"}, {ToolId: "teamviewer"}}},
	}
	got := SnapshotKeys(sn, []policies.PeripheralSerial{{Key: "usb 0x413c:0x2113 CN0F4G7M", Device: "1-2"}})
	want := []Key{"gateway_mac f4:92:bf:01:02:03", "lan 192.168.1.0/24 via 192.168.1.1",
		"peripheral usb 0x413c:0x2113 CN0F4G7M", "remote_tool anydesk 123456789"}
	if !slices.Equal(got, want) {
		t.Errorf("SnapshotKeys = %q, want %q", got, want)
	}
	if k := got[0]; k.Kind() != KindGatewayMAC || k.Value() != "f4:92:bf:01:02:03" {
		t.Errorf("kind %q value %q", k.Kind(), k.Value())
	}
	for _, mac := range []string{"00:00:00:00:00:00", "01:00:5e:00:00:fb", "f4:92:bf:01:02", "f4:92:bf:01:02:zz", "f4-92-bf-01-02-03", ""} {
		if _, ok := normMAC(mac); ok {
			t.Errorf("normMAC(%q) accepted", mac)
		}
	}
	if SnapshotKeys(nil, nil) != nil {
		t.Error("keys of an empty snapshot")
	}
}

func TestLinking(t *testing.T) {
	for _, c := range []struct {
		kind, class string
		link        bool
	}{
		{KindEgress, policies.NetClassResidential, true},
		{KindEgress, policies.NetClassUnknown, true},
		{KindEgress, policies.NetClassMobile, false},
		{KindEgress, policies.NetClassVPN, false},
		{KindEgress, policies.NetClassHosting, false},
		{KindEgress, policies.NetClassOffice, false},
		{KindEgress, policies.NetClassCoworking, false},
		{KindEgress, policies.NetClassPrivate, false},
		{KindGatewayMAC, policies.NetClassVPN, true}, // the VPN hides the egress, not the router
		{KindGatewayMAC, policies.NetClassOffice, false},
		{KindBSSID, policies.NetClassCoworking, false},
		{KindBSSID, policies.NetClassResidential, true},
		{KindLAN, policies.NetClassResidential, false},
		{KindPeripheral, policies.NetClassOffice, true},
		{KindRemoteTool, policies.NetClassOffice, true},
	} {
		if got := Linking(c.kind, c.class); got != c.link {
			t.Errorf("Linking(%s, %s) = %v", c.kind, c.class, got)
		}
	}
	keys := Keys([]Key{"gateway_mac f4:92:bf:01:02:03", "lan 192.168.1.0/24 via 192.168.1.1"}, "198.51.100.9", policies.NetClassOffice)
	want := []DeviceKey{{"egress_ip 198.51.100.9", false}, {"gateway_mac f4:92:bf:01:02:03", false}, {"lan 192.168.1.0/24 via 192.168.1.1", false}}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("Keys = %v", keys)
	}
	home := Keys([]Key{"gateway_mac f4:92:bf:01:02:03"}, "198.51.100.9", policies.NetClassResidential)
	if Digest(keys) == Digest(home) || Digest(home) != Digest(slices.Clone(home)) {
		t.Error("digest does not follow the key set")
	}
}

func TestComponents(t *testing.T) {
	keys := [][]Key{
		{"egress_ip a"},                 // 0: farm, by egress
		{"egress_ip a", "bssid x"},      // 1: farm
		{"bssid x"},                     // 2: farm, through 1
		{"egress_ip b"},                 // 3: alone
		{"peripheral k", "egress_ip c"}, // 4: with 5 by a keyboard
		{"peripheral k"},                // 5
		nil,                             // 6: no keys
	}
	got := Components(keys, nil)
	if want := [][]int{{0, 1, 2}, {4, 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Components = %v, want %v", got, want)
	}
	// A key crowded past MaxHolders links only its most senior holders:
	// a farm of eight keeps its router when 300 fake laptops report it
	// after them, and the fakes past the limit join nothing.
	crowd := make([][]Key, 8+300)
	for i := range crowd {
		crowd[i] = []Key{"gateway_mac farm"}
	}
	got = Components(crowd, nil)
	if len(got) != 1 || len(got[0]) != MaxHolders || got[0][0] != 0 || got[0][7] != 7 || got[0][MaxHolders-1] != MaxHolders-1 {
		t.Errorf("a crowded key linked %d groups (first of %d), want its %d most senior holders", len(got), len(got[0]), MaxHolders)
	}
	// Holders that do not take part (silent, revoked) count towards the
	// limit but are never linked.
	live := make([]bool, len(crowd))
	for i := range live {
		live[i] = i%2 == 0
	}
	got = Components(crowd, live)
	if len(got) != 1 || len(got[0]) != MaxHolders/2 || got[0][1] != 2 || slices.ContainsFunc(got[0], func(i int) bool { return !live[i] || i >= MaxHolders }) {
		t.Errorf("crowded key with silent holders: %v", got)
	}
	ids := AssignIDs([][]int{{0, 1, 2}, {3, 4}, {5, 6}}, []string{"c-a", "c-a", "c-b", "c-a", "c-a", "", ""},
		func() string { return "c-new" })
	if want := []string{"c-a", "c-new", "c-new"}; !reflect.DeepEqual(ids, want) {
		// the second group also voted c-a, but the larger first group keeps it
		t.Errorf("AssignIDs = %v, want %v", ids, want)
	}
}

func TestScores(t *testing.T) {
	score, contrib := Risk([]Contribution{
		{RuleID: "kvm", Severity: "high"}, {RuleID: "kvm", Severity: "high", Device: "d2"},
		{RuleID: "farm", Severity: "critical"}, {RuleID: "info", Severity: "none"},
	})
	if score != 74 || len(contrib) != 2 || contrib[0].RuleID != "farm" || contrib[0].Points != 60 || contrib[1].Points != 35 {
		t.Errorf("Risk = %d %+v", score, contrib)
	}
	if s, c := Risk(nil); s != 0 || len(c) != 0 {
		t.Errorf("Risk(nil) = %d %v", s, c)
	}
	// The README's examples.
	for _, c := range []struct {
		people, signals int
		shared          bool
		want            int
	}{{2, 0, true, 40}, {8, 0, true, 84}, {8, 2, true, 90}, {1, 0, false, 0}} {
		if got := FarmScore(c.people, c.shared, c.signals); got != c.want {
			t.Errorf("FarmScore(%d, %v, %d) = %d, want %d", c.people, c.shared, c.signals, got, c.want)
		}
	}
}

func FuzzSnapshotKeys(f *testing.F) {
	f.Add("F4:92:BF:01:02:03", "192.168.1.1", "192.168.1.20/24", "a4:2b:b0:11:22:33")
	f.Add("", "fe80::1", "fe80::2/64", "zz")
	f.Fuzz(func(t *testing.T, mac, gw, addr, bssid string) {
		sn := &agentv1.HostSnapshot{Network: &agentv1.Network{
			Interfaces:   []*agentv1.NetworkInterface{{Name: "e", Addresses: []string{addr}}},
			DefaultRoute: &agentv1.DefaultRoute{Interface: "e", Gateway: gw, GatewayMac: mac},
			Wifi:         &agentv1.Wifi{Bssid: bssid},
		}}
		for _, k := range SnapshotKeys(sn, nil) {
			if k.Kind() == "" || k.Value() == "" {
				t.Errorf("empty key part in %q", k)
			}
		}
	})
}

// fleetOf builds a synthetic fleet of n devices: a third alone at home,
// offices (no linking keys), households of two, farms of eight, every
// device with a keyboard serial of its own, and an alert on one device in
// ten.
func fleetOf(n int) (keys [][]Key, alerts [][]Contribution, person []int) {
	keys = make([][]Key, n)
	alerts = make([][]Contribution, n)
	person = make([]int, n)
	for i := range n {
		person[i] = i
		ks := []Key{NewKey(KindPeripheral, fmt.Sprintf("usb 0x046d:0xc52b K%07d", i))}
		switch i % 10 {
		case 0, 1, 2: // alone at home
			ks = append(ks, NewKey(KindEgress, fmt.Sprintf("e%d", i)), NewKey(KindGatewayMAC, fmt.Sprintf("g%d", i)))
		case 3, 4: // households of two
			ks = append(ks, NewKey(KindEgress, fmt.Sprintf("h%d", i/10)), NewKey(KindGatewayMAC, fmt.Sprintf("hg%d", i/10)))
		case 5: // farms of eight (every 80 devices)
			ks = append(ks, NewKey(KindEgress, fmt.Sprintf("f%d", i/80)), NewKey(KindBSSID, fmt.Sprintf("fb%d", i/80)))
			alerts[i] = []Contribution{{RuleID: "remote_session_active", Severity: "high"}, {RuleID: "laptop_farm_suspected", Severity: "high"}}
		}
		if i%10 == 9 {
			alerts[i] = append(alerts[i], Contribution{RuleID: "vpn_client_running", Severity: "low"})
			person[i] = i - 1 // a second laptop of the previous person
		}
		keys[i] = ks
	}
	return keys, alerts, person
}

// BenchmarkRecompute measures the in-memory part of a full recompute of
// 100,000 devices: clusters (union-find over the linking keys) and the
// risk scores of every device and person.
func BenchmarkRecompute(b *testing.B) {
	keys, alerts, person := fleetOf(100_000)
	b.ReportAllocs()
	for b.Loop() {
		groups := Components(keys, nil)
		ids := AssignIDs(groups, make([]string, len(keys)), func() string { return "c" })
		if len(ids) == 0 {
			b.Fatal("no clusters")
		}
		byPerson := make(map[int][]Contribution, len(keys))
		for i, a := range alerts {
			_, contrib := Risk(a)
			byPerson[person[i]] = append(byPerson[person[i]], contrib...)
		}
		for _, c := range byPerson {
			Risk(c)
		}
	}
}
