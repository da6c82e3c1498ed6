package network

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// hex4 prints an IPv4 address the way /proc/net/route does on this host.
func hex4(s string) string {
	a := netip.MustParseAddr(s).As4()
	return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[:]))
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const fibTrie = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.8.0.0/24 2 0 2
        |-- 10.8.0.0
           /24 link UNICAST
        |-- 10.8.0.6
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 172.17.0.0/16 2 0 2
        |-- 172.17.0.1
           /32 host LOCAL
     +-- 192.168.1.0/24 2 0 2
        +-- 192.168.1.0/28 2 0 2
           |-- 192.168.1.0
              /24 link UNICAST
           |-- 192.168.1.10
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 192.168.1.0/24 2 0 2
           |-- 192.168.1.10
              /32 host LOCAL
     |-- 203.0.113.7
        /32 host LOCAL
`

func TestCollectLinuxRoot(t *testing.T) {
	root := t.TempDir()
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	for _, r := range [][6]string{
		{"eth0", "0.0.0.0", "192.168.1.1", "0003", "100", "0.0.0.0"},
		{"wlan0", "0.0.0.0", "192.168.1.1", "0003", "600", "0.0.0.0"},
		{"eth0", "192.168.1.0", "0.0.0.0", "0001", "100", "255.255.255.0"},
		{"astrill0", "10.8.0.0", "0.0.0.0", "0001", "0", "255.255.255.0"},
		{"docker0", "172.17.0.0", "0.0.0.0", "0001", "0", "255.255.0.0"},
	} {
		route += fmt.Sprintf("%s\t%s\t%s\t%s\t0\t0\t%s\t%s\t0\t0\t0\n", r[0], hex4(r[1]), hex4(r[2]), r[3], r[4], hex4(r[5]))
	}
	writeTree(t, root, map[string]string{
		"sys/class/net/bonding_masters":     "\n",
		"sys/class/net/eth0/type":           "1\n",
		"sys/class/net/eth0/address":        "52:54:00:12:34:56\n",
		"sys/class/net/eth0/operstate":      "up\n",
		"sys/class/net/eth0/flags":          "0x1003\n",
		"sys/class/net/eth0/uevent":         "INTERFACE=eth0\nIFINDEX=2\n",
		"sys/class/net/eth0/device/uevent":  "DRIVER=e1000e\nPCI_CLASS=20000\n",
		"sys/class/net/wlan0/type":          "1\n",
		"sys/class/net/wlan0/address":       "02:00:00:AA:BB:01\n",
		"sys/class/net/wlan0/operstate":     "down\n",
		"sys/class/net/wlan0/flags":         "0x1003\n",
		"sys/class/net/wlan0/uevent":        "DEVTYPE=wlan\nINTERFACE=wlan0\nIFINDEX=3\n",
		"sys/class/net/wlan0/device/uevent": "DRIVER=iwlwifi\n",
		"sys/class/net/wlan0/phy80211/name": "phy0\n",
		"sys/class/net/wg0/type":            "65534\n",
		"sys/class/net/wg0/address":         "\n",
		"sys/class/net/wg0/operstate":       "unknown\n",
		"sys/class/net/wg0/flags":           "0x91\n",
		"sys/class/net/wg0/uevent":          "DEVTYPE=wireguard\nINTERFACE=wg0\nIFINDEX=5\n",
		"sys/class/net/astrill0/type":       "65534\n",
		"sys/class/net/astrill0/operstate":  "unknown\n",
		"sys/class/net/astrill0/flags":      "0x1091\n",
		"sys/class/net/astrill0/tun_flags":  "0x1001\n",
		"sys/class/net/astrill0/uevent":     "INTERFACE=astrill0\nIFINDEX=6\n",
		"sys/class/net/tap0/type":           "1\n",
		"sys/class/net/tap0/address":        "02:00:00:00:00:0b\n",
		"sys/class/net/tap0/operstate":      "down\n",
		"sys/class/net/tap0/flags":          "0x1002\n",
		"sys/class/net/tap0/tun_flags":      "0x1002\n",
		"sys/class/net/docker0/type":        "1\n",
		"sys/class/net/docker0/address":     "02:42:ac:11:00:01\n",
		"sys/class/net/docker0/operstate":   "down\n",
		"sys/class/net/docker0/flags":       "0x1003\n",
		"sys/class/net/docker0/uevent":      "DEVTYPE=bridge\nINTERFACE=docker0\n",
		"sys/class/net/veth1a2b/type":       "1\n",
		"sys/class/net/veth1a2b/address":    "02:00:00:00:00:0c\n",
		"sys/class/net/veth1a2b/operstate":  "up\n",
		"sys/class/net/veth1a2b/flags":      "0x1003\n",
		"sys/class/net/wwan0/type":          "1\n",
		"sys/class/net/wwan0/operstate":     "down\n",
		"sys/class/net/wwan0/flags":         "0x1002\n",
		"sys/class/net/wwan0/uevent":        "DEVTYPE=wwan\n",
		"sys/class/net/wwan0/device/uevent": "DRIVER=qmi_wwan\n",
		"sys/class/net/lo/type":             "772\n",
		"sys/class/net/lo/address":          "00:00:00:00:00:00\n",
		"sys/class/net/lo/operstate":        "unknown\n",
		"sys/class/net/lo/flags":            "0x9\n",
		"proc/net/route":                    route,
		"proc/net/fib_trie":                 fibTrie,
		"proc/net/if_inet6": "00000000000000000000000000000001 01 80 10 80       lo\n" +
			"fe80000000000000505400fffe123456 02 40 20 80     eth0\n" +
			"20010db8000000010000000000000010 02 40 00 00     eth0\n" +
			"fd000000000000000000000000000002 05 80 00 80      wg0\n",
		"proc/net/ipv6_route": "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n" +
			"00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n",
		"proc/net/arp": "IP address       HW type     Flags       HW address            Mask     Device\n" +
			"192.168.1.1      0x1         0x2         11:11:11:11:11:11     *        wlan0\n" +
			"192.168.1.1      0x1         0x2         A0:B1:C2:D3:E4:F5     *        eth0\n" +
			"192.168.1.50     0x1         0x0         00:00:00:00:00:00     *        eth0\n",
		"etc/resolv.conf":                 "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
		"run/systemd/resolve/resolv.conf": "nameserver 192.168.1.1\nnameserver 2001:db8::1\nnameserver 192.168.1.1\nsearch lan\n",
		"etc/environment": "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\"\n" +
			"http_proxy=\"http://proxy.example.com:3128/\"\n" +
			"HTTPS_PROXY=http://proxy.example.com:3128/\n" +
			"export no_proxy=localhost,127.0.0.1,.example.com\n",
	})
	adapters := map[string][]string{"astrill": {"Astrill*"}, "wireguard": {"wg[0-9]*"}, "tailscale": {"tailscale*"}}
	got, err := Collect(context.Background(), root, adapters)
	if err != nil {
		t.Fatal(err)
	}
	K := func(k agentv1.NetworkInterface_Kind) agentv1.NetworkInterface_Kind { return k }
	want := &agentv1.Network{
		Interfaces: []*agentv1.NetworkInterface{
			{Name: "astrill0", Kind: K(agentv1.NetworkInterface_KIND_TUN), Up: true, Addresses: []string{"10.8.0.6/24"}, VpnToolId: "astrill"},
			{Name: "docker0", Kind: K(agentv1.NetworkInterface_KIND_VIRTUAL), Mac: "02:42:ac:11:00:01", Addresses: []string{"172.17.0.1/16"}},
			{Name: "eth0", Kind: K(agentv1.NetworkInterface_KIND_ETHERNET), Mac: "52:54:00:12:34:56", Up: true, Description: "e1000e",
				Addresses: []string{"192.168.1.10/24", "fe80::5054:ff:fe12:3456/64", "2001:db8:0:1::10/64"}},
			{Name: "lo", Kind: K(agentv1.NetworkInterface_KIND_LOOPBACK), Up: true, Addresses: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "tap0", Kind: K(agentv1.NetworkInterface_KIND_TAP), Mac: "02:00:00:00:00:0b"},
			{Name: "veth1a2b", Kind: K(agentv1.NetworkInterface_KIND_VIRTUAL), Mac: "02:00:00:00:00:0c", Up: true},
			{Name: "wg0", Kind: K(agentv1.NetworkInterface_KIND_WIREGUARD), Up: true, Addresses: []string{"fd00::2/128"}, VpnToolId: "wireguard"},
			{Name: "wlan0", Kind: K(agentv1.NetworkInterface_KIND_WIFI), Mac: "02:00:00:aa:bb:01", Description: "iwlwifi"},
			{Name: "wwan0", Kind: K(agentv1.NetworkInterface_KIND_CELLULAR), Description: "qmi_wwan"},
		},
		DefaultRoute: &agentv1.DefaultRoute{Interface: "eth0", Gateway: "192.168.1.1", GatewayMac: "a0:b1:c2:d3:e4:f5"},
		Wifi:         &agentv1.Wifi{Reason: "not read under --root"},
		DnsServers:   []string{"192.168.1.1", "2001:db8::1"},
		Proxy: &agentv1.Proxy{
			Http:   "http://proxy.example.com:3128/",
			Https:  "http://proxy.example.com:3128/",
			Bypass: []string{"localhost", "127.0.0.1", ".example.com"},
		},
	}
	if !proto.Equal(got, want) {
		t.Errorf("Collect:\n got %s\nwant %s", prototext.Format(got), prototext.Format(want))
	}
}

func TestCollectLinuxRootEmpty(t *testing.T) {
	got, err := Collect(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &agentv1.Network{Wifi: &agentv1.Wifi{Reason: "not read under --root"}}
	if !proto.Equal(got, want) {
		t.Errorf("got %s", prototext.Format(got))
	}
}

func TestLinuxDefaultRouteIPv6(t *testing.T) {
	v6 := linuxParseIPv6Route([]byte("00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003   wlp2s0\n" +
		"20010db8000000000000000000000000 20 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   wlp2s0\n"))
	got := linuxDefaultRoute(nil, v6)
	want := &agentv1.DefaultRoute{Interface: "wlp2s0", Gateway: "fe80::1"}
	if !proto.Equal(got, want) {
		t.Errorf("got %v", got)
	}
	if linuxDefaultRoute(nil, nil) != nil {
		t.Error("want no default route")
	}
}

func TestLinuxKind(t *testing.T) {
	for _, tc := range []struct {
		name, devtype, tun string
		typ                int
		wireless, device   bool
		want               agentv1.NetworkInterface_Kind
	}{
		{"wlp2s0", "", "", 1, true, true, agentv1.NetworkInterface_KIND_WIFI},
		{"enp0s31f6", "", "", 1, false, true, agentv1.NetworkInterface_KIND_ETHERNET},
		{"dummy0", "", "", 1, false, false, agentv1.NetworkInterface_KIND_VIRTUAL},
		{"virbr0", "", "", 1, false, false, agentv1.NetworkInterface_KIND_VIRTUAL},
		{"ppp0", "", "", 512, false, false, agentv1.NetworkInterface_KIND_PPP},
		{"tailscale0", "", "0x1001", 65534, false, false, agentv1.NetworkInterface_KIND_TUN},
		{"sit0", "", "", 776, false, false, agentv1.NetworkInterface_KIND_TUN},
		{"nordlynx", "wireguard", "", 65534, false, false, agentv1.NetworkInterface_KIND_WIREGUARD},
		{"wwp0s20u4", "wwan", "", 1, false, true, agentv1.NetworkInterface_KIND_CELLULAR},
		{"vlan10", "vlan", "", 1, false, false, agentv1.NetworkInterface_KIND_VIRTUAL},
		{"can0", "", "", 280, false, true, agentv1.NetworkInterface_KIND_UNSPECIFIED},
		{"odd", "", "zz", 65534, false, false, agentv1.NetworkInterface_KIND_UNSPECIFIED},
	} {
		if got := linuxKind(tc.name, tc.typ, tc.devtype, tc.tun, tc.wireless, tc.device); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	got := parseResolvConf([]byte("nameserver 10.0.0.1\r\n#nameserver 9.9.9.9\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver\ndomain x\n"))
	want := []string{"10.0.0.1", "fe80::1%eth0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNormMAC(t *testing.T) {
	for in, want := range map[string]string{
		"AA:BB:CC:DD:EE:FF":       "aa:bb:cc:dd:ee:ff",
		"0:1b:2c:3:4d:5e":         "00:1b:2c:03:4d:5e",
		"6a-d7-9a-29-2b-82":       "6a:d7:9a:29:2b:82",
		"00:00:00:00:00:00":       "",
		"00:11:22:33:44":          "",
		"zz:11:22:33:44:55":       "",
		"(incomplete)":            "",
		"02:00:00:00:00:00:00:01": "02:00:00:00:00:00:00:01",
	} {
		if got := normMAC(in); got != want {
			t.Errorf("normMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTagVPN(t *testing.T) {
	ifs := []*agentv1.NetworkInterface{
		{Name: "Ethernet 3", Description: "TAP-Windows Adapter V9"},
		{Name: "utun4"},
		{Name: "eth0"},
	}
	tagVPN(ifs, map[string][]string{"openvpn": {"tap-windows adapter*"}, "zbad": {"["}, "generic": {"utun*"}})
	if ifs[0].VpnToolId != "openvpn" || ifs[1].VpnToolId != "generic" || ifs[2].VpnToolId != "" {
		t.Errorf("got %q %q %q", ifs[0].VpnToolId, ifs[1].VpnToolId, ifs[2].VpnToolId)
	}
}

func FuzzLinuxParsers(f *testing.F) {
	f.Add([]byte(fibTrie))
	f.Add([]byte("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\nwlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"))
	f.Add([]byte("IP address HW type Flags HW address Mask Device\n192.168.1.1 0x1 0x2 a0:b1:c2:d3:e4:f5 * eth0\n"))
	f.Add([]byte("fe80000000000000505400fffe123456 02 40 20 80 eth0\n"))
	f.Add([]byte("nameserver 1.1.1.1\nhttp_proxy=\"x\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		routes := linuxParseRoute(b)
		ifs := []*agentv1.NetworkInterface{{Name: "lo", Kind: agentv1.NetworkInterface_KIND_LOOPBACK}, {Name: "eth0"}}
		for _, a := range linuxParseFibTrie(b) {
			linuxOwner(a, routes, ifs)
		}
		linuxParseIfInet6(b)
		linuxDefaultRoute(routes, linuxParseIPv6Route(b))
		linuxParseARP(b).lookup("192.168.1.1", "eth0")
		parseResolvConf(b)
		linuxParseEnvironment(b)
		linuxKeyValues(string(b))
	})
}
