package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkProto(t *testing.T, name string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", name, prototext.Format(got), prototext.Format(want))
	}
}

var nmFixtureColumns = []string{"active", "ssid", "bssid", "mode", "chan", "freq", "signal", "security", "wpa-flags", "rsn-flags"}

func TestWifiParsers(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  *agentv1.Wifi
		want *agentv1.Wifi
	}{
		{"nmcli node-wifi", nmParseWifi(fixture(t, "linux/nmcli-terse-dev-wifi-list-node-wifi.txt"), nmFixtureColumns),
			&agentv1.Wifi{Available: true, Ssid: "Linksys01777_5GHz", Bssid: "31:23:03:1a:9f:1d"}},
		{"nmcli live columns", nmParseWifi([]byte("no:Other:02\\:00\\:00\\:00\\:00\\:01:wlan0\nyes:My\\:Net:02\\:00\\:00\\:00\\:00\\:02:wlp2s0\n"), nmColumns),
			&agentv1.Wifi{Available: true, Interface: "wlp2s0", Ssid: "My:Net", Bssid: "02:00:00:00:00:02"}},
		{"nmcli none active", nmParseWifi([]byte("no:Other:02\\:00\\:00\\:00\\:00\\:01:wlan0\n"), nmColumns), &agentv1.Wifi{Available: true}},
		{"iw connected", iwParseLink(fixture(t, "linux/iw-dev-link-connected.CONSTRUCTED.txt"), "wlp2s0"),
			&agentv1.Wifi{Available: true, Interface: "wlp2s0", Ssid: "Office Guest", Bssid: "02:00:00:00:00:0a"}},
		{"iw not connected", iwParseLink(fixture(t, "linux/iw-dev-link-not-connected.CONSTRUCTED.txt"), "wlp2s0"), &agentv1.Wifi{Available: true}},
		{"wdutil redacted", macParseWdutil(fixture(t, "mac/wdutil-info-macadmins.txt")),
			&agentv1.Wifi{Reason: reasonRedacted, Interface: "en0"}},
		{"wdutil unredacted", macParseWdutil(fixture(t, "mac/wdutil-info-unredacted.DERIVED.txt")),
			&agentv1.Wifi{Available: true, Interface: "en0", Ssid: "Cafe Wifi", Bssid: "02:00:00:00:00:20"}},
		{"wdutil garbage", macParseWdutil([]byte("usage: wdutil\n")), &agentv1.Wifi{Reason: "wdutil printed no WIFI section"}},
		{"airport jc", macParseAirport(fixture(t, "mac/airport-I-osx-10.14.6-jc.txt"), "en0"),
			&agentv1.Wifi{Available: true, Interface: "en0", Ssid: "SnazzleDazzle", Bssid: "02:00:00:00:00:01"}},
		{"airport kolide", macParseAirport(fixture(t, "mac/airport-getinfo-kolide.txt"), "en0"),
			&agentv1.Wifi{Available: true, Interface: "en0", Ssid: "some netwerk", Bssid: "a0:a0:a0:a0:a0:a0"}},
		{"airport node-wifi", macParseAirport(fixture(t, "mac/airport-getinfo-node-wifi.txt"), "en0"),
			&agentv1.Wifi{Available: true, Interface: "en0", Ssid: "Linksys01227_5GHz", Bssid: "31:23:03:1a:9f:1d"}},
		{"airport off", macParseAirport([]byte("AirPort: Off\n"), "en0"), &agentv1.Wifi{Available: true}},
		{"airport init", macParseAirport([]byte("     agrCtlRSSI: 0\n          state: init\n"), "en0"), &agentv1.Wifi{Available: true}},
		{"airport empty", macParseAirport(nil, "en0"), &agentv1.Wifi{Reason: "airport printed no connection state"}},
	} {
		checkProto(t, tc.name, tc.got, tc.want)
		if !tc.got.Available && tc.got.Reason == "" {
			t.Errorf("%s: unavailable without a reason", tc.name)
		}
	}
}

func TestMacParsers(t *testing.T) {
	ports := macParseHardwarePorts(fixture(t, "mac/networksetup-listallhardwareports-macos15-getmac.txt"))
	if fmt.Sprint(ports) != "map[en0:Ethernet en1:Ethernet Adapter (en1)]" {
		t.Errorf("ports: %v", ports)
	}
	ports = macParseHardwarePorts(fixture(t, "mac/networksetup-listallhardwareports-laptop.CONSTRUCTED.txt"))
	for dev, want := range map[string]agentv1.NetworkInterface_Kind{
		"en0": agentv1.NetworkInterface_KIND_WIFI, "bridge0": agentv1.NetworkInterface_KIND_VIRTUAL,
		"en1": agentv1.NetworkInterface_KIND_ETHERNET, "en7": agentv1.NetworkInterface_KIND_ETHERNET,
		"utun3": agentv1.NetworkInterface_KIND_UTUN, "ipsec0": agentv1.NetworkInterface_KIND_TUN,
		"ppp0": agentv1.NetworkInterface_KIND_PPP, "lo0": agentv1.NetworkInterface_KIND_LOOPBACK,
		"awdl0": agentv1.NetworkInterface_KIND_VIRTUAL, "en9": agentv1.NetworkInterface_KIND_UNSPECIFIED,
		"utunX": agentv1.NetworkInterface_KIND_UNSPECIFIED,
	} {
		if got := macKind(dev, ports[dev]); got != want {
			t.Errorf("macKind(%s, %q) = %v, want %v", dev, ports[dev], got, want)
		}
	}
	checkProto(t, "route", macParseRouteGet(fixture(t, "mac/route-n-get-default-macos10.12.6-getmac.txt")),
		&agentv1.DefaultRoute{Interface: "en0", Gateway: "10.0.2.2"})
	checkProto(t, "route utun", macParseRouteGet(fixture(t, "mac/route-get-default-utun.CONSTRUCTED.txt")),
		&agentv1.DefaultRoute{Interface: "utun4"})
	if r := macParseRouteGet([]byte("route: writing to routing socket: not in table\n")); r != nil {
		t.Errorf("no route: got %v", r)
	}
	for file, want := range map[string]string{
		"mac/arp-198.51.100.1-macos15.7.9-getmac.txt": "12:34:56:00:a0:20", // one-digit octet
		"mac/arp-198.51.100.1-macos26.6.2-getmac.txt": "12:34:56:26:a0:20",
	} {
		if got := macParseARP(fixture(t, file), "198.51.100.1"); got != want {
			t.Errorf("arp %s: %q", file, got)
		}
	}
	if got := macParseARP(fixture(t, "mac/arp-n-incomplete.CONSTRUCTED.txt"), "192.168.1.1"); got != "" {
		t.Errorf("arp incomplete: %q", got)
	}
	if got := macParseScutilDNS(fixture(t, "mac/scutil-dns.CONSTRUCTED.txt")); fmt.Sprint(got) != "[192.168.1.1 2001:db8::53]" {
		t.Errorf("dns: %q", got)
	}
	checkProto(t, "proxy", macParseScutilProxy(fixture(t, "mac/scutil-proxy.CONSTRUCTED.txt")), &agentv1.Proxy{
		Http: "proxy.example.com:3128", PacUrl: "http://wpad.example.com/wpad.dat", Bypass: []string{"*.local", "169.254/16"},
	})
	checkProto(t, "proxy none", macParseScutilProxy(fixture(t, "mac/scutil-proxy-none.CONSTRUCTED.txt")), &agentv1.Proxy{
		Bypass: []string{"*.local", "169.254/16"},
	})
}

func TestWinParsers(t *testing.T) {
	nb := winParseArpA(fixture(t, "win/arp-a-win10-getmac.txt"))
	if got := nb.lookup("10.0.0.1", "5"); got != "6a:d7:9a:29:2b:82" {
		t.Errorf("arp -a: %q", got)
	}
	if got := nb.lookup("10.0.0.255", "5"); got != "" {
		t.Errorf("broadcast kept: %q", got)
	}
	if n := len(nb); n != 4+6*5+5 {
		t.Errorf("arp -a: %d entries", n)
	}

	// A constructed MIB_IPNETTABLE: one dynamic row, one invalid row.
	tbl := make([]byte, 4+2*24)
	binary.LittleEndian.PutUint32(tbl, 2)
	row := func(i int, idx uint32, mac []byte, ip string, typ uint32) {
		r := tbl[4+24*i:]
		binary.LittleEndian.PutUint32(r, idx)
		binary.LittleEndian.PutUint32(r[4:], uint32(len(mac)))
		copy(r[8:], mac)
		a := netip.MustParseAddr(ip).As4()
		copy(r[16:], a[:])
		binary.LittleEndian.PutUint32(r[20:], typ)
	}
	row(0, 12, []byte{0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5}, "192.168.1.1", 3)
	row(1, 12, []byte{1, 2, 3, 4, 5, 6}, "192.168.1.9", 2)
	if nb := winParseIPNetTable(tbl); len(nb) != 1 || nb.lookup("192.168.1.1", "12") != "a0:b1:c2:d3:e4:f5" {
		t.Errorf("ipnettable: %v", nb)
	}
	if nb := winParseIPNetTable(tbl[:30]); len(nb) != 1 {
		t.Errorf("short ipnettable: %v", nb)
	}

	for _, tc := range []struct {
		typ  uint32
		desc string
		want agentv1.NetworkInterface_Kind
	}{
		{6, "Intel(R) Ethernet Connection (7) I219-LM", agentv1.NetworkInterface_KIND_ETHERNET},
		{6, "TAP-Windows Adapter V9", agentv1.NetworkInterface_KIND_TAP},
		{53, "Wintun Userspace Tunnel", agentv1.NetworkInterface_KIND_TUN},
		{53, "WireGuard Tunnel", agentv1.NetworkInterface_KIND_WIREGUARD},
		{71, "Intel(R) Wi-Fi 6 AX201 160MHz", agentv1.NetworkInterface_KIND_WIFI},
		{71, "Microsoft Wi-Fi Direct Virtual Adapter #2", agentv1.NetworkInterface_KIND_VIRTUAL},
		{6, "Hyper-V Virtual Ethernet Adapter", agentv1.NetworkInterface_KIND_VIRTUAL},
		{24, "Software Loopback Interface 1", agentv1.NetworkInterface_KIND_LOOPBACK},
		{243, "Generic Mobile Broadband Adapter", agentv1.NetworkInterface_KIND_CELLULAR},
		{23, "WAN Miniport (PPTP)", agentv1.NetworkInterface_KIND_PPP},
		{131, "Teredo Tunneling Pseudo-Interface", agentv1.NetworkInterface_KIND_VIRTUAL},
		{144, "1394 Net Adapter", agentv1.NetworkInterface_KIND_UNSPECIFIED},
	} {
		if got := winKind(tc.typ, tc.desc); got != tc.want {
			t.Errorf("winKind(%d, %q) = %v, want %v", tc.typ, tc.desc, got, tc.want)
		}
	}

	r, ok := winPickDefault([]winRoute{
		{ifIndex: 7, nextHop: netip.MustParseAddr("fe80::1"), metric: 1},
		{ifIndex: 5, nextHop: netip.MustParseAddr("10.0.0.1"), metric: 35},
		{ifIndex: 9, nextHop: netip.MustParseAddr("192.168.1.1"), metric: 25},
	})
	if !ok || r.ifIndex != 9 {
		t.Errorf("winPickDefault: %v %v", r, ok)
	}
	if r, ok := winPickDefault([]winRoute{{ifIndex: 7, nextHop: netip.MustParseAddr("fe80::1")}}); !ok || r.ifIndex != 7 {
		t.Errorf("winPickDefault v6: %v %v", r, ok)
	}

	g := [16]byte{0x72, 0xe9, 0x36, 0x4d, 0x25, 0xe3, 0xce, 0x11, 0xbf, 0xc1, 0x08, 0x00, 0x2b, 0xe1, 0x03, 0x18}
	if s := winGUIDString(g); s != "{4D36E972-E325-11CE-BFC1-08002BE10318}" {
		t.Errorf("guid: %s", s)
	}
	list := make([]byte, 8+winWlanIfSize)
	binary.LittleEndian.PutUint32(list, 1)
	copy(list[8:], g[:])
	for i, c := range "Intel(R) Wi-Fi 6 AX201" {
		binary.LittleEndian.PutUint16(list[8+16+2*i:], uint16(c))
	}
	binary.LittleEndian.PutUint32(list[8+528:], winWlanConnected)
	if ifs := winParseWlanIfList(list); len(ifs) != 1 || ifs[0].desc != "Intel(R) Wi-Fi 6 AX201" || ifs[0].guid != g || ifs[0].state != 1 {
		t.Errorf("wlan list: %+v", ifs)
	}
	attrs := make([]byte, 604)
	binary.LittleEndian.PutUint32(attrs, winWlanConnected)
	binary.LittleEndian.PutUint32(attrs[520:], 7)
	copy(attrs[524:], "HomeNet")
	copy(attrs[560:], []byte{2, 0, 0, 0, 0, 0x30})
	if ssid, bssid, ok := winParseConnAttrs(attrs); !ok || ssid != "HomeNet" || bssid != "02:00:00:00:00:30" {
		t.Errorf("conn attrs: %q %q %v", ssid, bssid, ok)
	}
	binary.LittleEndian.PutUint32(attrs[520:], 99) // clamped to 32
	if ssid, _, _ := winParseConnAttrs(attrs); len(ssid) != 32 {
		t.Errorf("ssid length %d", len(ssid))
	}
	if _, _, ok := winParseConnAttrs(attrs[:100]); ok {
		t.Error("short attrs accepted")
	}

	checkProto(t, "winProxy all", winProxy(1, "proxy:8080", "<local>;*.corp", "http://wpad/wpad.dat"),
		&agentv1.Proxy{Http: "proxy:8080", Https: "proxy:8080", PacUrl: "http://wpad/wpad.dat", Bypass: []string{"<local>", "*.corp"}})
	checkProto(t, "winProxy disabled", winProxy(0, "proxy:8080", "<local>", ""), &agentv1.Proxy{})
	checkProto(t, "netsh", winParseNetshWinHTTP(fixture(t, "win/netsh-winhttp-show-proxy.CONSTRUCTED.txt")),
		&agentv1.Proxy{Http: "proxy.example.com:8080", Https: "proxy.example.com:8443", Bypass: []string{"<local>", "*.example.com"}})
	if p := winParseNetshWinHTTP(fixture(t, "win/netsh-winhttp-show-proxy-direct.CONSTRUCTED.txt")); p != nil {
		t.Errorf("direct: %v", p)
	}
}

// FuzzTextParsers runs every command-output parser on the same input.
func FuzzTextParsers(f *testing.F) {
	for _, name := range []string{
		"linux/nmcli-terse-dev-wifi-list-node-wifi.txt", "linux/iw-dev-link-connected.CONSTRUCTED.txt",
		"mac/wdutil-info-macadmins.txt", "mac/airport-I-osx-10.14.6-jc.txt", "mac/scutil-dns.CONSTRUCTED.txt",
		"mac/scutil-proxy.CONSTRUCTED.txt", "mac/networksetup-listallhardwareports-laptop.CONSTRUCTED.txt",
		"mac/route-n-get-default-macos10.12.6-getmac.txt", "mac/arp-198.51.100.1-macos15.7.9-getmac.txt", "win/arp-a-win10-getmac.txt",
		"win/netsh-winhttp-show-proxy.CONSTRUCTED.txt",
	} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		nmParseWifi(b, nmColumns)
		nmParseWifi(b, nmFixtureColumns)
		iwParseLink(b, "wlan0")
		for dev, port := range macParseHardwarePorts(b) {
			macKind(dev, port)
		}
		macParseRouteGet(b)
		macParseARP(b, "192.168.1.1")
		macParseScutilDNS(b)
		macParseScutilProxy(b)
		if w := macParseWdutil(b); !w.Available && w.Reason == "" {
			t.Fatal("wdutil: unavailable without reason")
		}
		if w := macParseAirport(b, "en0"); !w.Available && w.Reason == "" {
			t.Fatal("airport: unavailable without reason")
		}
		winParseArpA(b).lookup("10.0.0.1", "5")
		winParseNetshWinHTTP(b)
		winKind(6, string(b))
		normMAC(string(b))
		splitList(string(b))
	})
}

// FuzzWinBinary runs the parsers of Windows API buffers.
func FuzzWinBinary(f *testing.F) {
	f.Add(make([]byte, 604))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		winParseIPNetTable(b)
		winParseWlanIfList(b)
		winParseConnAttrs(b)
		winUTF16(b)
		if len(b) >= 16 {
			if s := winGUIDString([16]byte(b)); !strings.HasPrefix(s, "{") {
				t.Fatal(s)
			}
		}
	})
}
