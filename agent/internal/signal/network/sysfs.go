package network

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The Linux reader works on files only, so that it runs on fixture roots:
//
//   - /sys/class/net/<if>/{type,address,operstate,flags,uevent,tun_flags},
//     the wireless/ and device/ entries (Documentation/ABI/testing/
//     sysfs-class-net in the kernel tree); device/uevent gives the driver;
//   - /proc/net/if_inet6 (IPv6 addresses), /proc/net/fib_trie (local IPv4
//     addresses: the "/32 host LOCAL" leaves), /proc/net/route and
//     /proc/net/ipv6_route (routes), /proc/net/arp (IPv4 neighbours);
//   - /etc/resolv.conf, or /run/systemd/resolve/resolv.conf behind the
//     systemd-resolved stub 127.0.0.53;
//   - /etc/environment for http_proxy, https_proxy and no_proxy.
//
// fib_trie does not say which interface holds an address: it is given to
// the interface of the longest directly connected route in /proc/net/route
// that contains it, with that route's prefix length (127.0.0.0/8 addresses
// go to the loopback device). An address without such a route (e.g. a
// point-to-point tunnel address whose only route is to its peer) is left
// out; the live reader takes IPv4 addresses from the kernel instead.

const (
	sysNet       = "sys/class/net"
	procIfInet6  = "proc/net/if_inet6"
	procFibTrie  = "proc/net/fib_trie"
	procRoute    = "proc/net/route"
	procRoute6   = "proc/net/ipv6_route"
	procARP      = "proc/net/arp"
	etcResolv    = "etc/resolv.conf"
	resolvedConf = "run/systemd/resolve/resolv.conf"
	etcEnv       = "etc/environment"

	linuxIFFUp       = 0x1 // IFF_UP
	linuxRTFUp       = 0x1 // RTF_UP
	linuxRTFGateway  = 0x2 // RTF_GATEWAY
	linuxRTFReject   = 0x200
	linuxATFComplete = 0x2 // ATF_COM
)

// readLinuxFS reads everything but the Wi-Fi connection from fsys.
func readLinuxFS(fsys fs.FS) (*agentv1.Network, error) {
	ifs, err := linuxInterfaces(fsys)
	if err != nil {
		return nil, err
	}
	routes := linuxParseRoute(readOrNil(fsys, procRoute))
	byName := map[string]*agentv1.NetworkInterface{}
	for _, itf := range ifs {
		byName[itf.Name] = itf
	}
	for _, a := range linuxParseFibTrie(readOrNil(fsys, procFibTrie)) {
		if name, p := linuxOwner(a, routes, ifs); name != "" {
			byName[name].Addresses = addAddr(byName[name].Addresses, p)
		}
	}
	for _, a := range linuxParseIfInet6(readOrNil(fsys, procIfInet6)) {
		if itf := byName[a.iface]; itf != nil {
			itf.Addresses = addAddr(itf.Addresses, a.prefix)
		}
	}
	n := &agentv1.Network{Interfaces: ifs}
	n.DefaultRoute = linuxDefaultRoute(routes, linuxParseIPv6Route(readOrNil(fsys, procRoute6)))
	if r := n.DefaultRoute; r != nil && r.Gateway != "" {
		r.GatewayMac = linuxParseARP(readOrNil(fsys, procARP)).lookup(r.Gateway, r.Interface)
	}
	n.DnsServers = linuxDNS(fsys)
	if b, err := readCapped(fsys, etcEnv, maxFile); err == nil {
		n.Proxy = linuxParseEnvironment(b)
	}
	return n, nil
}

func readOrNil(fsys fs.FS, name string) []byte {
	b, _ := readCapped(fsys, name, maxFile)
	return b
}

// linuxInterfaces reads /sys/class/net, in name order.
func linuxInterfaces(fsys fs.FS) ([]*agentv1.NetworkInterface, error) {
	ents, err := fs.ReadDir(fsys, sysNet)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*agentv1.NetworkInterface
	for _, e := range ents {
		if len(out) >= maxInterfaces {
			break
		}
		name := e.Name()
		dir := path.Join(sysNet, name)
		typ, err := strconv.Atoi(readAttr(fsys, path.Join(dir, "type")))
		if err != nil {
			continue // not an interface (e.g. bonding_masters)
		}
		uevent := linuxKeyValues(readAttr(fsys, path.Join(dir, "uevent")))
		_, errW := fs.Stat(fsys, path.Join(dir, "wireless"))
		_, errP := fs.Stat(fsys, path.Join(dir, "phy80211"))
		_, errD := fs.Stat(fsys, path.Join(dir, "device"))
		kind := linuxKind(name, typ, uevent["DEVTYPE"], readAttr(fsys, path.Join(dir, "tun_flags")), errW == nil || errP == nil, errD == nil)
		flags, _ := strconv.ParseUint(strings.TrimPrefix(readAttr(fsys, path.Join(dir, "flags")), "0x"), 16, 32)
		oper := readAttr(fsys, path.Join(dir, "operstate"))
		out = append(out, &agentv1.NetworkInterface{
			Name:        name,
			Kind:        kind,
			Mac:         normMAC(readAttr(fsys, path.Join(dir, "address"))),
			Up:          oper == "up" || (oper == "unknown" && flags&linuxIFFUp != 0),
			Description: linuxKeyValues(readAttr(fsys, path.Join(dir, "device", "uevent")))["DRIVER"],
		})
	}
	return out, nil
}

// linuxKeyValues parses uevent-style KEY=value lines.
func linuxKeyValues(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m
}

// Name prefixes of software Ethernet devices made by container and VM
// managers.
var linuxVirtualPrefixes = []string{"veth", "docker", "br-", "virbr", "vnet", "vmnet", "vboxnet", "cni", "flannel", "cali", "lxc", "lxd", "podman", "weave", "vxlan"}

// linuxKind classifies an interface from its ARPHRD type
// (include/uapi/linux/if_arp.h), its uevent DEVTYPE, its tun_flags
// (IFF_TUN 0x1, IFF_TAP 0x2), whether it has a wireless/ or phy80211 entry
// and whether it is backed by a device.
func linuxKind(name string, typ int, devtype, tunFlags string, wireless, device bool) agentv1.NetworkInterface_Kind {
	switch {
	case typ == 772: // ARPHRD_LOOPBACK
		return agentv1.NetworkInterface_KIND_LOOPBACK
	case devtype == "wlan":
		return agentv1.NetworkInterface_KIND_WIFI
	case devtype == "wireguard":
		return agentv1.NetworkInterface_KIND_WIREGUARD
	case devtype == "wwan":
		return agentv1.NetworkInterface_KIND_CELLULAR
	case devtype == "ppp":
		return agentv1.NetworkInterface_KIND_PPP
	}
	if tunFlags != "" {
		f, err := strconv.ParseUint(strings.TrimPrefix(tunFlags, "0x"), 16, 32)
		if err == nil && f&0x2 != 0 {
			return agentv1.NetworkInterface_KIND_TAP
		}
		if err == nil && f&0x1 != 0 {
			return agentv1.NetworkInterface_KIND_TUN
		}
	}
	switch devtype {
	case "bridge", "vlan", "bond", "team", "vxlan", "macvlan", "ipvlan", "geneve", "macsec", "dsa":
		return agentv1.NetworkInterface_KIND_VIRTUAL
	}
	switch typ {
	case 512: // ARPHRD_PPP
		return agentv1.NetworkInterface_KIND_PPP
	case 768, 769, 776, 778, 823: // IPIP, TUNNEL6, SIT, IPGRE, IP6GRE
		return agentv1.NetworkInterface_KIND_TUN
	case 1: // ARPHRD_ETHER
		if wireless {
			return agentv1.NetworkInterface_KIND_WIFI
		}
		for _, p := range linuxVirtualPrefixes {
			if strings.HasPrefix(name, p) {
				return agentv1.NetworkInterface_KIND_VIRTUAL
			}
		}
		if device {
			return agentv1.NetworkInterface_KIND_ETHERNET
		}
		return agentv1.NetworkInterface_KIND_VIRTUAL // dummy, veth, … without hardware
	}
	return agentv1.NetworkInterface_KIND_UNSPECIFIED
}

// linuxRoute is one line of /proc/net/route.
type linuxRoute struct {
	iface        string
	dst, gw, msk netip.Addr
	flags        uint64
	metric       uint64
}

// linuxHexAddr4 decodes the %08X of a __be32 as /proc prints it: the
// address bytes in memory order, read as a native-endian integer.
func linuxHexAddr4(s string) (netip.Addr, bool) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), true
}

// linuxParseRoute parses /proc/net/route (header line, then
// Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT).
func linuxParseRoute(b []byte) []linuxRoute {
	var out []linuxRoute
	for i, l := range lines(b) {
		f := strings.Fields(l)
		if i == 0 || len(f) < 8 || len(out) >= 4096 {
			continue
		}
		dst, ok1 := linuxHexAddr4(f[1])
		gw, ok2 := linuxHexAddr4(f[2])
		msk, ok3 := linuxHexAddr4(f[7])
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.ParseUint(f[6], 10, 32)
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
			continue
		}
		out = append(out, linuxRoute{iface: f[0], dst: dst, gw: gw, msk: msk, flags: flags, metric: metric})
	}
	return out
}

// maskBits returns the prefix length of a contiguous IPv4 netmask, or -1.
func maskBits(m netip.Addr) int {
	b := m.As4()
	v := binary.BigEndian.Uint32(b[:])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// linuxOwner finds the interface and prefix of local IPv4 address a.
func linuxOwner(a netip.Addr, routes []linuxRoute, ifs []*agentv1.NetworkInterface) (string, netip.Prefix) {
	if a.IsLoopback() {
		for _, itf := range ifs {
			if itf.Kind == agentv1.NetworkInterface_KIND_LOOPBACK {
				return itf.Name, netip.PrefixFrom(a, 8)
			}
		}
		return "", netip.Prefix{}
	}
	best, bits := "", -1
	for _, r := range routes {
		n := maskBits(r.msk)
		if r.flags&linuxRTFGateway != 0 || n <= 0 || n <= bits {
			continue
		}
		if p := netip.PrefixFrom(r.dst, n); p.Masked().Addr() == r.dst && p.Contains(a) {
			best, bits = r.iface, n
		}
	}
	if best == "" {
		return "", netip.Prefix{}
	}
	for _, itf := range ifs {
		if itf.Name == best {
			return best, netip.PrefixFrom(a, bits)
		}
	}
	return "", netip.Prefix{}
}

// linuxParseFibTrie returns the local IPv4 addresses of /proc/net/fib_trie:
// the leaves ("|-- a.b.c.d") followed by a "/32 host LOCAL" line. The
// output is in first-seen order without duplicates (an address appears in
// both the Main and the Local table views).
func linuxParseFibTrie(b []byte) []netip.Addr {
	var out []netip.Addr
	var leaf netip.Addr
	for _, l := range lines(b) {
		t := strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(t, "|-- "); ok {
			leaf, _ = netip.ParseAddr(strings.TrimSpace(rest))
			continue
		}
		if !strings.HasPrefix(t, "/") {
			leaf = netip.Addr{} // table heading or internal node ends the leaf
			continue
		}
		f := strings.Fields(t)
		if len(f) >= 3 && f[0] == "/32" && f[1] == "host" && f[2] == "LOCAL" && leaf.Is4() && !slices.Contains(out, leaf) && len(out) < 4096 {
			out = append(out, leaf)
		}
	}
	return out
}

type linuxAddr6 struct {
	iface  string
	prefix netip.Prefix
}

// linuxParseIfInet6 parses /proc/net/if_inet6: address (32 hex digits),
// ifindex, prefix length, scope, flags (hex), device name.
func linuxParseIfInet6(b []byte) []linuxAddr6 {
	var out []linuxAddr6
	for _, l := range lines(b) {
		f := strings.Fields(l)
		if len(f) < 6 || len(out) >= 4096 {
			continue
		}
		a, ok := linuxHexAddr6(f[0])
		bits, err := strconv.ParseUint(f[2], 16, 8)
		if !ok || err != nil || bits > 128 {
			continue
		}
		out = append(out, linuxAddr6{iface: f[5], prefix: netip.PrefixFrom(a, int(bits))})
	}
	return out
}

func linuxHexAddr6(s string) (netip.Addr, bool) {
	if len(s) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(b), true
}

// linuxRoute6 is one line of /proc/net/ipv6_route: destination, its
// length, source, its length, next hop, metric, refcount, use, flags
// (all hex) and the device.
type linuxRoute6 struct {
	iface  string
	dstLen uint64
	gw     netip.Addr
	metric uint64
	flags  uint64
}

func linuxParseIPv6Route(b []byte) []linuxRoute6 {
	var out []linuxRoute6
	for _, l := range lines(b) {
		f := strings.Fields(l)
		if len(f) < 10 || len(out) >= 4096 {
			continue
		}
		dst, ok1 := linuxHexAddr6(f[0])
		gw, ok2 := linuxHexAddr6(f[4])
		dstLen, err1 := strconv.ParseUint(f[1], 16, 8)
		metric, err2 := strconv.ParseUint(f[5], 16, 32)
		flags, err3 := strconv.ParseUint(f[8], 16, 32)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil || !dst.IsUnspecified() {
			continue
		}
		out = append(out, linuxRoute6{iface: f[9], dstLen: dstLen, gw: gw, metric: metric, flags: flags})
	}
	return out
}

// linuxDefaultRoute picks the IPv4 default route with the lowest metric,
// else the IPv6 one.
func linuxDefaultRoute(v4 []linuxRoute, v6 []linuxRoute6) *agentv1.DefaultRoute {
	var best *linuxRoute
	for i := range v4 {
		r := &v4[i]
		if r.dst.IsUnspecified() && r.msk.IsUnspecified() && r.flags&linuxRTFUp != 0 && (best == nil || r.metric < best.metric) {
			best = r
		}
	}
	if best != nil {
		d := &agentv1.DefaultRoute{Interface: best.iface}
		if best.flags&linuxRTFGateway != 0 && !best.gw.IsUnspecified() {
			d.Gateway = best.gw.String()
		}
		return d
	}
	var best6 *linuxRoute6
	for i := range v6 {
		r := &v6[i]
		if r.dstLen == 0 && r.flags&linuxRTFUp != 0 && r.flags&linuxRTFReject == 0 && r.iface != "lo" && (best6 == nil || r.metric < best6.metric) {
			best6 = r
		}
	}
	if best6 == nil {
		return nil
	}
	d := &agentv1.DefaultRoute{Interface: best6.iface}
	if best6.flags&linuxRTFGateway != 0 && !best6.gw.IsUnspecified() {
		d.Gateway = best6.gw.String()
	}
	return d
}

// neighbours is an IP → MAC table; iface may be "" when unknown.
type neighbours []neighbour

type neighbour struct{ ip, mac, iface string }

// lookup returns the MAC of ip, preferring an entry on iface.
func (ns neighbours) lookup(ip, iface string) string {
	mac := ""
	for _, n := range ns {
		if n.ip != ip {
			continue
		}
		if n.iface == iface {
			return n.mac
		}
		if mac == "" {
			mac = n.mac
		}
	}
	return mac
}

// linuxParseARP parses /proc/net/arp (header, then IP address, HW type,
// Flags, HW address, Mask, Device); incomplete entries are skipped.
func linuxParseARP(b []byte) neighbours {
	var out neighbours
	for i, l := range lines(b) {
		f := strings.Fields(l)
		if i == 0 || len(f) < 6 || len(out) >= 4096 {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 32)
		a, errA := netip.ParseAddr(f[0])
		mac := normMAC(f[3])
		if err != nil || errA != nil || flags&linuxATFComplete == 0 || mac == "" {
			continue
		}
		out = append(out, neighbour{ip: a.String(), mac: mac, iface: f[5]})
	}
	return out
}

// linuxDNS reads the nameservers of /etc/resolv.conf; behind the
// systemd-resolved stub it reads the upstream servers resolved uses.
func linuxDNS(fsys fs.FS) []string {
	servers := parseResolvConf(readOrNil(fsys, etcResolv))
	stub := len(servers) > 0
	for _, s := range servers {
		if s != "127.0.0.53" {
			stub = false
		}
	}
	if stub {
		if up := parseResolvConf(readOrNil(fsys, resolvedConf)); len(up) > 0 {
			return up
		}
	}
	return servers
}

// parseResolvConf returns the "nameserver" addresses of a resolv.conf(5),
// in order, without duplicates.
func parseResolvConf(b []byte) []string {
	var out []string
	for _, l := range lines(b) {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = addUnique(out, a.String(), maxDNS)
	}
	return out
}

// linuxParseEnvironment reads http_proxy, https_proxy and no_proxy (lower
// case first, then upper case) from /etc/environment (pam_env: KEY=VALUE,
// optional quotes, optional "export ").
func linuxParseEnvironment(b []byte) *agentv1.Proxy {
	env := map[string]string{}
	for _, l := range lines(b) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		l = strings.TrimPrefix(l, "export ")
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	get := func(k string) string {
		if v := env[k]; v != "" {
			return v
		}
		return env[strings.ToUpper(k)]
	}
	return &agentv1.Proxy{Http: get("http_proxy"), Https: get("https_proxy"), Bypass: splitList(get("no_proxy"))}
}
