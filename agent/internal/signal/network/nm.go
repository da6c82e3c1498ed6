package network

import (
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// nmColumns are the fields the live reader asks nmcli for.
var nmColumns = []string{"ACTIVE", "SSID", "BSSID", "DEVICE"}

// nmSplitTerse splits one line of nmcli --terse output: fields are
// separated by ':', and ':' and '\' inside values are escaped with '\'.
func nmSplitTerse(l string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case c == '\\' && i+1 < len(l):
			i++
			b.WriteByte(l[i])
		case c == ':':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
		if len(out) > 64 {
			return nil
		}
	}
	return append(out, b.String())
}

// nmParseWifi reads `nmcli -t -f <cols> device wifi list` output and returns
// the active connection (ACTIVE "yes"). cols names the fields in order
// (case-insensitive); ACTIVE, SSID, BSSID and DEVICE are used.
func nmParseWifi(b []byte, cols []string) *agentv1.Wifi {
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToUpper(c)] = i
	}
	get := func(f []string, col string) string {
		if i, ok := idx[col]; ok && i < len(f) {
			return f[i]
		}
		return ""
	}
	for _, l := range lines(b) {
		f := nmSplitTerse(l)
		if len(f) != len(cols) || get(f, "ACTIVE") != "yes" {
			continue
		}
		return &agentv1.Wifi{
			Available: true,
			Interface: get(f, "DEVICE"),
			Ssid:      get(f, "SSID"),
			Bssid:     normMAC(get(f, "BSSID")),
		}
	}
	return &agentv1.Wifi{Available: true} // no active network
}

// iwParseLink reads `iw dev <iface> link`: "Connected to <bssid> (on
// <iface>)" then a tab-indented "SSID: <ssid>" line; "Not connected." when
// not associated.
func iwParseLink(b []byte, iface string) *agentv1.Wifi {
	w := &agentv1.Wifi{Available: true}
	for _, l := range lines(b) {
		if rest, ok := strings.CutPrefix(l, "Connected to "); ok {
			mac, _, _ := strings.Cut(rest, " ")
			w.Bssid = normMAC(mac)
			w.Interface = iface
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimLeft(l, " \t"), "SSID: "); ok && w.Interface != "" && w.Ssid == "" {
			w.Ssid = rest
		}
	}
	return w
}
