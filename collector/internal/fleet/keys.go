// Package fleet links devices into clusters and scores risk. It has no
// store of its own: the store keeps each device's keys and cluster, and
// calls this package to derive keys, decide which of them link devices,
// find clusters over the whole fleet and compute scores.
//
// A key is something a device shares with others when they are in one
// place or hold one piece of hardware: the egress address, the gateway's
// MAC, the Wi-Fi BSSID, the LAN (subnet and gateway address), the serial
// of a keyboard, mouse, KVM or monitor, a remote-access tool's own id.
// Keys that link put devices into one cluster (connected components);
// the others are shown as evidence only. See Linking.
package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Key kinds.
const (
	KindEgress     = "egress_ip"   // the public address reports come from
	KindGatewayMAC = "gateway_mac" // the default gateway's MAC: the router
	KindBSSID      = "bssid"       // the Wi-Fi access point
	KindLAN        = "lan"         // subnet and gateway address of the default route
	KindPeripheral = "peripheral"  // a HID device's or external display's serial
	KindRemoteTool = "remote_tool" // a remote-access tool's own id
	// KindSignin is an address the device's person signed in to the
	// identity provider from (collector/internal/idp): operators who
	// sign in from one house link their people's laptops even when the
	// laptops sit in different places.
	KindSignin = "signin_ip"
)

// NetworkKinds are the kinds that say devices share a network.
var NetworkKinds = []string{KindEgress, KindGatewayMAC, KindBSSID, KindLAN}

// Key is one shared thing, "kind value", e.g. "gateway_mac f4:92:bf:01:02:03".
type Key string

// NewKey makes a key of a kind and value.
func NewKey(kind, value string) Key { return Key(kind + " " + value) }

// Kind is the key's kind.
func (k Key) Kind() string { kind, _, _ := strings.Cut(string(k), " "); return kind }

// Value is the key's value.
func (k Key) Value() string { _, v, _ := strings.Cut(string(k), " "); return v }

// SnapshotKeys returns the keys a snapshot shows: gateway MAC, BSSID and
// LAN of the default route, the peripheral serials worth correlating, and
// remote-access tool ids; sorted, without duplicates. Values are
// normalised (lower-case MACs) and implausible ones skipped: a zero,
// broadcast or multicast MAC identifies nothing.
func SnapshotKeys(sn *agentv1.HostSnapshot, serials []policies.PeripheralSerial) []Key {
	var keys []Key
	net := sn.GetNetwork()
	route := net.GetDefaultRoute()
	if mac, ok := normMAC(route.GetGatewayMac()); ok {
		keys = append(keys, NewKey(KindGatewayMAC, mac))
	}
	if mac, ok := normMAC(net.GetWifi().GetBssid()); ok {
		keys = append(keys, NewKey(KindBSSID, mac))
	}
	if lan := lanOf(net, route); lan != "" {
		keys = append(keys, NewKey(KindLAN, lan))
	}
	for _, p := range serials {
		keys = append(keys, NewKey(KindPeripheral, p.Key))
	}
	for _, t := range sn.GetRemoteAccess().GetTools() {
		if id := strings.TrimSpace(t.GetClientId()); id != "" {
			keys = append(keys, NewKey(KindRemoteTool, t.GetToolId()+" "+id))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// normMAC lower-cases a colon-separated MAC and refuses the ones that do
// not identify one device.
func normMAC(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return "", false
	}
	var b [6]byte
	for i, p := range parts {
		if len(p) != 2 {
			return "", false
		}
		v, ok := hexByte(p)
		if !ok {
			return "", false
		}
		b[i] = v
	}
	if b == [6]byte{} || b == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} || b[0]&1 == 1 {
		return "", false
	}
	return s, true
}

func hexByte(s string) (byte, bool) {
	var v byte
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// lanOf is the default route's subnet and gateway, e.g. "192.168.1.0/24
// via 192.168.1.1", from the route's interface address in the gateway's
// subnet; "" when unknown.
func lanOf(net *agentv1.Network, route *agentv1.DefaultRoute) string {
	gw, err := netip.ParseAddr(route.GetGateway())
	if err != nil {
		return ""
	}
	for _, ifc := range net.GetInterfaces() {
		if ifc.GetName() != route.GetInterface() {
			continue
		}
		for _, a := range ifc.GetAddresses() {
			p, err := netip.ParsePrefix(a)
			if err == nil && p.Masked().Contains(gw) && p.Bits() >= 8 {
				return p.Masked().String() + " via " + gw.String()
			}
		}
	}
	return ""
}

// DeviceKey is one of a device's keys and whether it links.
type DeviceKey struct {
	Key  Key
	Link bool
}

// Linking network classes (policies/networks.go): an egress address
// links devices only on networks where one address means one household:
// residential ISPs and the unlisted ones (most residential ISPs are not
// listed). Offices, coworking spaces, VPN exits, mobile carriers' CGNAT
// and hosting networks put strangers behind one address, and a private
// egress address is the organisation's own network.
//
// A gateway MAC or BSSID names one router or access point wherever the
// traffic then goes (a VPN hides the egress, not the LAN), so it links
// on every network except declared offices and coworking spaces, where
// everyone shares it by design. The LAN (subnet and gateway address) is
// the same in millions of homes (192.168.1.0/24 via 192.168.1.1), so it
// never links on its own; it is evidence. Peripheral serials and
// remote-tool ids link everywhere.
func Linking(kind, egressClass string) bool {
	switch kind {
	case KindEgress, KindSignin:
		return egressClass == policies.NetClassResidential || egressClass == policies.NetClassUnknown
	case KindGatewayMAC, KindBSSID:
		return egressClass != policies.NetClassOffice && egressClass != policies.NetClassCoworking
	case KindPeripheral, KindRemoteTool:
		return true
	}
	return false
}

// Keys is a device's key set: its snapshot keys plus its egress address,
// each marked linking or not for the egress network class, and the
// sign-in keys of its person (SigninKeys) as they are; sorted.
func Keys(snapshot []Key, egressIP, egressClass string, signins ...DeviceKey) []DeviceKey {
	out := make([]DeviceKey, 0, len(snapshot)+1+len(signins))
	for _, k := range snapshot {
		out = append(out, DeviceKey{k, Linking(k.Kind(), egressClass)})
	}
	if egressIP != "" {
		out = append(out, DeviceKey{NewKey(KindEgress, egressIP), Linking(KindEgress, egressClass)})
	}
	out = append(out, signins...)
	slices.SortFunc(out, func(a, b DeviceKey) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return slices.CompactFunc(out, func(a, b DeviceKey) bool { return a.Key == b.Key })
}

// SigninAddr is an address a person signed in from, with the network
// class the collector gave it.
type SigninAddr struct {
	IP, NetworkClass string
}

// SigninKeys are the keys of a person's sign-in addresses, linking under
// the same network-class rules as the egress address (Linking); sorted,
// without duplicates.
func SigninKeys(addrs []SigninAddr) []DeviceKey {
	out := make([]DeviceKey, 0, len(addrs))
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			continue
		}
		out = append(out, DeviceKey{NewKey(KindSignin, ip.Unmap().String()), Linking(KindSignin, a.NetworkClass)})
	}
	slices.SortFunc(out, func(a, b DeviceKey) int { return strings.Compare(string(a.Key), string(b.Key)) })
	// One address seen under two classes (the catalog changed): it links
	// only if every sighting links.
	var uniq []DeviceKey
	for _, k := range out {
		if n := len(uniq); n > 0 && uniq[n-1].Key == k.Key {
			uniq[n-1].Link = uniq[n-1].Link && k.Link
			continue
		}
		uniq = append(uniq, k)
	}
	return uniq
}

// Digest summarises a key set, to see cheaply whether it changed: the
// SHA-256 of each key followed by 1 when it links, else 0. The input is
// gathered on the stack (every report's keys are digested).
func Digest(keys []DeviceKey) string {
	var buf [1024]byte
	in := buf[:0]
	for _, k := range keys {
		link := byte(0)
		if k.Link {
			link = 1
		}
		in = append(append(in, k.Key...), link)
	}
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}
