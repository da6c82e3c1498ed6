package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf16"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Pure helpers of the Windows reader, testable on any OS.

// IANA ifType values (ipifcons.h) that GetAdaptersAddresses reports.
const (
	winIfEthernet = 6
	winIfPPP      = 23
	winIfLoopback = 24
	winIfPropVirt = 53
	winIfWifi     = 71
	winIfTunnel   = 131
	winIfWWANPP   = 243
	winIfWWANPP2  = 244
)

// winKind classifies an adapter from its ifType and description. VPN
// drivers often register as Ethernet (TAP-Windows) or as proprietary
// virtual (Wintun, WireGuard), so the description decides first.
func winKind(ifType uint32, desc string) agentv1.NetworkInterface_Kind {
	d := strings.ToLower(desc)
	switch {
	case strings.Contains(d, "tap-windows") || strings.Contains(d, "tap-win32"):
		return agentv1.NetworkInterface_KIND_TAP
	case strings.Contains(d, "wireguard"):
		return agentv1.NetworkInterface_KIND_WIREGUARD
	case strings.Contains(d, "wintun"):
		return agentv1.NetworkInterface_KIND_TUN
	case strings.Contains(d, "hyper-v virtual"), strings.Contains(d, "virtualbox"),
		strings.Contains(d, "vmware virtual"), strings.Contains(d, "wi-fi direct virtual"),
		strings.Contains(d, "kernel debug network"):
		return agentv1.NetworkInterface_KIND_VIRTUAL
	}
	switch ifType {
	case winIfEthernet:
		return agentv1.NetworkInterface_KIND_ETHERNET
	case winIfWifi:
		return agentv1.NetworkInterface_KIND_WIFI
	case winIfLoopback:
		return agentv1.NetworkInterface_KIND_LOOPBACK
	case winIfPPP:
		return agentv1.NetworkInterface_KIND_PPP
	case winIfWWANPP, winIfWWANPP2:
		return agentv1.NetworkInterface_KIND_CELLULAR
	case winIfPropVirt, winIfTunnel:
		return agentv1.NetworkInterface_KIND_VIRTUAL
	}
	return agentv1.NetworkInterface_KIND_UNSPECIFIED
}

// winRoute is one default-route candidate from GetIpForwardTable2.
type winRoute struct {
	ifIndex uint32
	nextHop netip.Addr
	metric  uint32 // route metric plus the interface metric
}

// winPickDefault returns the IPv4 route with the lowest metric, else the
// IPv6 one; ok is false when there is none.
func winPickDefault(routes []winRoute) (winRoute, bool) {
	for _, v4 := range []bool{true, false} {
		var best winRoute
		found := false
		for _, r := range routes {
			if r.nextHop.Is4() != v4 {
				continue
			}
			if !found || r.metric < best.metric {
				best, found = r, true
			}
		}
		if found {
			return best, true
		}
	}
	return winRoute{}, false
}

// winParseArpA reads `arp -a`: "Interface: <ip> --- 0x<index>" headings,
// then "<ip>  <mac>  <type>" rows. The neighbour's iface is the decimal
// interface index.
func winParseArpA(b []byte) neighbours {
	var out neighbours
	iface := ""
	for _, l := range lines(b) {
		f := strings.Fields(l)
		if len(f) >= 4 && f[0] == "Interface:" && f[2] == "---" {
			iface = ""
			if v, err := strconv.ParseUint(strings.TrimPrefix(f[3], "0x"), 16, 32); err == nil {
				iface = strconv.FormatUint(v, 10)
			}
			continue
		}
		if len(f) != 3 || len(out) >= 4096 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		mac := normMAC(f[1])
		if err != nil || mac == "" || mac == "ff:ff:ff:ff:ff:ff" {
			continue
		}
		out = append(out, neighbour{ip: a.String(), mac: mac, iface: iface})
	}
	return out
}

// winParseIPNetTable reads a MIB_IPNETTABLE (GetIpNetTable): a DWORD
// count, then 24-byte MIB_IPNETROWs {dwIndex, dwPhysAddrLen,
// bPhysAddr[8], dwAddr (network order), dwType}. Invalid (2) entries are
// skipped.
func winParseIPNetTable(b []byte) neighbours {
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	var out neighbours
	for i := 0; i < n && i < 4096; i++ {
		off := 4 + 24*i
		if off+24 > len(b) {
			break
		}
		row := b[off : off+24]
		plen := binary.LittleEndian.Uint32(row[4:])
		typ := binary.LittleEndian.Uint32(row[20:])
		if plen > 8 || typ == 2 {
			continue
		}
		mac := macBytes(row[8 : 8+plen])
		if mac == "" {
			continue
		}
		ip := netip.AddrFrom4([4]byte(row[16:20]))
		out = append(out, neighbour{ip: ip.String(), mac: mac, iface: strconv.FormatUint(uint64(binary.LittleEndian.Uint32(row)), 10)})
	}
	return out
}

// winGUIDString formats a GUID in memory layout as "{XXXXXXXX-XXXX-XXXX-
// XXXX-XXXXXXXXXXXX}", the form of IP_ADAPTER_ADDRESSES.AdapterName.
func winGUIDString(g [16]byte) string {
	return fmt.Sprintf("{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
}

// winWlanIf is one WLAN_INTERFACE_INFO.
type winWlanIf struct {
	guid  [16]byte
	desc  string
	state uint32
}

const (
	winWlanIfSize      = 532 // GUID + WCHAR[256] + WLAN_INTERFACE_STATE
	winWlanConnected   = 1   // wlan_interface_state_connected
	winWlanConnAttrLen = 588 // WLAN_CONNECTION_ATTRIBUTES through the association attributes
)

// winParseWlanIfList reads a WLAN_INTERFACE_INFO_LIST: dwNumberOfItems,
// dwIndex, then WLAN_INTERFACE_INFO entries.
func winParseWlanIfList(b []byte) []winWlanIf {
	if len(b) < 8 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	var out []winWlanIf
	for i := 0; i < n && i < 64; i++ {
		off := 8 + winWlanIfSize*i
		if off+winWlanIfSize > len(b) {
			break
		}
		e := b[off : off+winWlanIfSize]
		out = append(out, winWlanIf{
			guid:  [16]byte(e[:16]),
			desc:  winUTF16(e[16:528]),
			state: binary.LittleEndian.Uint32(e[528:]),
		})
	}
	return out
}

// winUTF16 decodes a NUL-terminated little-endian UTF-16 buffer.
func winUTF16(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// winParseConnAttrs reads a WLAN_CONNECTION_ATTRIBUTES (WlanQueryInterface
// wlan_intf_opcode_current_connection): isState at 0, the DOT11_SSID
// {uSSIDLength, ucSSID[32]} at 520, the BSSID at 560. ok is false when the
// buffer is short or the interface is not connected.
func winParseConnAttrs(b []byte) (ssid, bssid string, ok bool) {
	if len(b) < winWlanConnAttrLen || binary.LittleEndian.Uint32(b) != winWlanConnected {
		return "", "", false
	}
	n := min(binary.LittleEndian.Uint32(b[520:]), 32)
	return string(b[524 : 524+n]), macBytes(b[560:566]), true
}

// winProxy builds the proxy from the WinINet values of an Internet
// Settings key: ProxyEnable, ProxyServer ("host:port" for every protocol,
// or "http=host:port;https=host:port;…"), ProxyOverride ("a;b;<local>")
// and AutoConfigURL.
func winProxy(enable uint32, server, override, pac string) *agentv1.Proxy {
	p := &agentv1.Proxy{PacUrl: strings.TrimSpace(pac)}
	if enable == 0 {
		return p
	}
	server = strings.TrimSpace(server)
	if !strings.Contains(server, "=") {
		p.Http, p.Https = server, server
	} else {
		for _, part := range strings.Split(server, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "http":
				p.Http = strings.TrimSpace(v)
			case "https":
				p.Https = strings.TrimSpace(v)
			}
		}
	}
	p.Bypass = splitList(override)
	return p
}

// winParseNetshWinHTTP reads `netsh winhttp show proxy` (English): either
// "Direct access (no proxy server)." or "Proxy Server(s) : <list>" and
// "Bypass List : <list>". It returns nil for direct access or output it
// does not recognise.
func winParseNetshWinHTTP(b []byte) *agentv1.Proxy {
	server, bypass := "", ""
	for _, l := range lines(b) {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Proxy Server(s)":
			server = strings.TrimSpace(v)
		case "Bypass List":
			bypass = strings.TrimSpace(v)
		}
	}
	if server == "" {
		return nil
	}
	if bypass == "(none)" {
		bypass = ""
	}
	return winProxy(1, server, bypass, "")
}
