package network

import (
	"net/netip"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Pure parsers of the macOS command outputs the live reader runs.

// macParseHardwarePorts reads `networksetup -listallhardwareports`:
// blocks of "Hardware Port: <port>", "Device: <dev>", "Ethernet Address:
// <mac>". It returns device → port name.
func macParseHardwarePorts(b []byte) map[string]string {
	out := map[string]string{}
	port := ""
	for _, l := range lines(b) {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Hardware Port":
			port = v
		case "Device":
			if port != "" && v != "" && len(out) < maxInterfaces {
				out[v] = port
			}
			port = ""
		}
	}
	return out
}

// macKind classifies a macOS interface from its BSD name and, for
// hardware ports, the port name networksetup gives it.
func macKind(name, port string) agentv1.NetworkInterface_Kind {
	lp := strings.ToLower(port)
	switch {
	case port == "Wi-Fi" || port == "AirPort":
		return agentv1.NetworkInterface_KIND_WIFI
	case strings.HasPrefix(lp, "thunderbolt bridge"):
		return agentv1.NetworkInterface_KIND_VIRTUAL
	case strings.Contains(lp, "ethernet") || strings.Contains(lp, "lan") || strings.HasPrefix(lp, "thunderbolt"):
		return agentv1.NetworkInterface_KIND_ETHERNET
	}
	prefixes := []struct {
		p string
		k agentv1.NetworkInterface_Kind
	}{
		{"lo", agentv1.NetworkInterface_KIND_LOOPBACK},
		{"utun", agentv1.NetworkInterface_KIND_UTUN},
		{"ipsec", agentv1.NetworkInterface_KIND_TUN},
		{"tun", agentv1.NetworkInterface_KIND_TUN},
		{"tap", agentv1.NetworkInterface_KIND_TAP},
		{"ppp", agentv1.NetworkInterface_KIND_PPP},
		{"bridge", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"awdl", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"llw", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"ap", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"anpi", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"gif", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"stf", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"vmenet", agentv1.NetworkInterface_KIND_VIRTUAL},
		{"feth", agentv1.NetworkInterface_KIND_VIRTUAL},
	}
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(name, p.p); ok && isDigits(rest) {
			return p.k
		}
	}
	return agentv1.NetworkInterface_KIND_UNSPECIFIED
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// macKeyValues reads "key: value" lines (leading spaces trimmed), first
// occurrence wins.
func macKeyValues(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range lines(b) {
		k, v, ok := strings.Cut(l, ":")
		if !ok || len(m) >= 256 {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := m[k]; !seen && k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// macParseRouteGet reads `route -n get default`: "gateway: <ip>" and
// "interface: <name>". It returns nil when there is no interface (no
// default route: route prints "not in table" on stderr).
func macParseRouteGet(b []byte) *agentv1.DefaultRoute {
	m := macKeyValues(b)
	if m["interface"] == "" {
		return nil
	}
	d := &agentv1.DefaultRoute{Interface: m["interface"]}
	if a, err := netip.ParseAddr(m["gateway"]); err == nil {
		d.Gateway = a.String()
	}
	return d
}

// macParseARP reads `arp -n <ip>`: "? (<ip>) at <mac> on <if> …", with
// "(incomplete)" or "-- no entry" when the neighbour is unknown.
func macParseARP(b []byte, ip string) string {
	for _, l := range lines(b) {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == "("+ip+")" && f[2] == "at" {
			return normMAC(f[3])
		}
	}
	return ""
}

// macParseScutilDNS reads `scutil --dns` and returns the nameservers of
// the default resolvers: those of the first "DNS configuration" section
// that have no "domain" (resolvers with a domain are for that domain only,
// e.g. "local" for mDNS or a VPN's split DNS). The scoped section is not
// read.
func macParseScutilDNS(b []byte) []string {
	var out, cur []string
	hasDomain, sections := false, 0
	flush := func() {
		if !hasDomain {
			for _, s := range cur {
				out = addUnique(out, s, maxDNS)
			}
		}
		cur, hasDomain = nil, false
	}
	for _, l := range lines(b) {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "DNS configuration"):
			flush()
			sections++
			continue
		case strings.HasPrefix(t, "resolver #"):
			flush()
			continue
		}
		if sections != 1 {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "domain":
			hasDomain = true
		case strings.HasPrefix(k, "nameserver["):
			if a, err := netip.ParseAddr(v); err == nil && len(cur) < maxDNS {
				cur = append(cur, a.String())
			}
		}
	}
	if sections == 1 {
		flush()
	}
	return out
}

// macParseScutilProxy reads `scutil --proxy`, a "<dictionary> { … }" dump
// of the SCDynamicStore proxy keys (kSCPropNetProxies*): HTTPEnable,
// HTTPProxy, HTTPPort, the same for HTTPS, ProxyAutoConfigEnable,
// ProxyAutoConfigURLString, and the ExceptionsList array.
func macParseScutilProxy(b []byte) *agentv1.Proxy {
	m := map[string]string{}
	var exceptions []string
	inList := false
	for _, l := range lines(b) {
		t := strings.TrimSpace(l)
		if inList {
			if t == "}" {
				inList = false
				continue
			}
			if _, v, ok := strings.Cut(t, " : "); ok {
				exceptions = addUnique(exceptions, strings.TrimSpace(v), maxBypass)
			}
			continue
		}
		k, v, ok := strings.Cut(t, " : ")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "ExceptionsList" && strings.HasPrefix(v, "<array>") {
			inList = true
			continue
		}
		if len(m) < 256 {
			m[k] = v
		}
	}
	hostPort := func(prefix string) string {
		if m[prefix+"Enable"] != "1" || m[prefix+"Proxy"] == "" {
			return ""
		}
		if p := m[prefix+"Port"]; p != "" {
			if _, err := strconv.ParseUint(p, 10, 16); err == nil {
				return joinHostPort(m[prefix+"Proxy"], p)
			}
		}
		return m[prefix+"Proxy"]
	}
	p := &agentv1.Proxy{Http: hostPort("HTTP"), Https: hostPort("HTTPS"), Bypass: exceptions}
	if m["ProxyAutoConfigEnable"] == "1" {
		p.PacUrl = m["ProxyAutoConfigURLString"]
	}
	return p
}

// joinHostPort is host:port, with brackets around an IPv6 literal.
func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// macRedacted is what macOS 14.4+ prints instead of the SSID and BSSID
// for a process without location permission.
const macRedacted = "<redacted>"

// macParseWdutil reads the WIFI section of `wdutil info` (run as root):
// "Interface Name", "SSID", "BSSID" as "key : value" lines.
func macParseWdutil(b []byte) *agentv1.Wifi {
	in := false
	m := map[string]string{}
	for _, l := range lines(b) {
		t := strings.TrimSpace(l)
		if !strings.Contains(t, ":") && t != "" && !strings.HasPrefix(t, "—") && !strings.HasPrefix(t, "-") {
			in = t == "WIFI"
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := m[k]; !seen && len(m) < 256 {
			m[k] = strings.TrimSpace(v)
		}
	}
	if len(m) == 0 {
		return &agentv1.Wifi{Reason: "wdutil printed no WIFI section"}
	}
	return macWifi(m["Interface Name"], m["SSID"], m["BSSID"])
}

// macParseAirport reads `airport -I` (`--getinfo`) output: "SSID",
// "BSSID" and "state" as right-aligned "key: value" lines. The tool does
// not name the interface; iface is the Wi-Fi device.
func macParseAirport(b []byte, iface string) *agentv1.Wifi {
	m := map[string]string{}
	for _, l := range lines(b) {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := m[k]; !seen && len(m) < 256 {
			m[k] = strings.TrimSpace(v)
		}
	}
	if m["state"] == "" && m["SSID"] == "" {
		if strings.Contains(string(b), "AirPort: Off") {
			return &agentv1.Wifi{Available: true} // Wi-Fi off
		}
		return &agentv1.Wifi{Reason: "airport printed no connection state"}
	}
	if m["state"] != "" && m["state"] != "running" {
		return &agentv1.Wifi{Available: true} // not associated
	}
	return macWifi(iface, m["SSID"], m["BSSID"])
}

// macWifi builds the Wifi message from the printed values.
func macWifi(iface, ssid, bssid string) *agentv1.Wifi {
	if ssid == macRedacted || bssid == macRedacted {
		return &agentv1.Wifi{Reason: reasonRedacted, Interface: iface}
	}
	if (ssid == "" || ssid == "None") && (bssid == "" || bssid == "None") {
		return &agentv1.Wifi{Available: true} // not connected
	}
	return &agentv1.Wifi{Available: true, Interface: iface, Ssid: ssid, Bssid: normMAC(bssid)}
}
