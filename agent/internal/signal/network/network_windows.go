package network

// The Windows reader: GetAdaptersAddresses for the adapters, their
// addresses and DNS servers; GetIpForwardTable2 for the default route;
// GetIpNetTable (else `arp -a`) for the gateway's MAC; the Native Wifi API
// (wlanapi.dll) for the Wi-Fi connection; the machine-wide WinINet
// registry key, else WinHTTP, for the proxy. The per-user (HKCU) proxy of
// the logged-on user is not read: the agent runs as a service.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var (
	winIphlpapi         = windows.NewLazySystemDLL("iphlpapi.dll")
	winProcGetIPNet     = winIphlpapi.NewProc("GetIpNetTable")
	winWlanapi          = windows.NewLazySystemDLL("wlanapi.dll")
	winProcWlanOpen     = winWlanapi.NewProc("WlanOpenHandle")
	winProcWlanClose    = winWlanapi.NewProc("WlanCloseHandle")
	winProcWlanEnum     = winWlanapi.NewProc("WlanEnumInterfaces")
	winProcWlanQuery    = winWlanapi.NewProc("WlanQueryInterface")
	winProcWlanFree     = winWlanapi.NewProc("WlanFreeMemory")
	winSiteLocalDNS     = []string{"fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3"}
	errWinNoAdapterInfo = errors.New("network: GetAdaptersAddresses returned nothing")
)

const (
	winOpcodeCurrentConnection = 7 // wlan_intf_opcode_current_connection
)

type winAdapter struct {
	itf     *agentv1.NetworkInterface
	index   uint32 // IfIndex (IPv4)
	index6  uint32
	guid    string
	up      bool
	dns     []string
	gw      []netip.Addr
	metric4 uint32
	metric6 uint32
}

func readLive(ctx context.Context) (*agentv1.Network, error) {
	ads, err := winAdapters()
	if err != nil {
		return nil, err
	}
	n := &agentv1.Network{}
	for _, a := range ads {
		n.Interfaces = append(n.Interfaces, a.itf)
	}
	r, ok := winDefaultRoute(ads)
	if def := winDefault(ads, r, ok); def != nil {
		n.DefaultRoute = &agentv1.DefaultRoute{Interface: def.itf.Name}
		if ok && r.nextHop.IsValid() && !r.nextHop.IsUnspecified() {
			n.DefaultRoute.Gateway = r.nextHop.String()
		} else if len(def.gw) > 0 {
			n.DefaultRoute.Gateway = def.gw[0].String()
		}
		if gw := n.DefaultRoute.Gateway; gw != "" {
			idx := strconv.FormatUint(uint64(def.index), 10)
			nb, err := winIPNetTable()
			if err != nil || nb.lookup(gw, idx) == "" {
				if out, err := run(ctx, filepath.Join(winSystemDir(), "ARP.EXE"), "-a"); err == nil {
					nb = winParseArpA(out)
				}
			}
			n.DefaultRoute.GatewayMac = nb.lookup(gw, idx)
		}
		for _, s := range def.dns {
			n.DnsServers = addUnique(n.DnsServers, s, maxDNS)
		}
	}
	for _, a := range ads {
		if a.up {
			for _, s := range a.dns {
				n.DnsServers = addUnique(n.DnsServers, s, maxDNS)
			}
		}
	}
	n.Proxy = winLiveProxy(ctx)
	n.Wifi = winWifi(ads)
	return n, nil
}

func winSystemDir() string {
	d, err := windows.GetSystemDirectory()
	if err != nil {
		return `C:\Windows\System32`
	}
	return d
}

// winAdapters calls GetAdaptersAddresses, growing the buffer as asked.
func winAdapters() ([]*winAdapter, error) {
	size := uint32(16 << 10)
	var buf []byte
	for range 4 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC,
			windows.GAA_FLAG_INCLUDE_GATEWAYS|windows.GAA_FLAG_SKIP_ANYCAST|windows.GAA_FLAG_SKIP_MULTICAST,
			0, (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_BUFFER_OVERFLOW) || size > 8<<20 {
			return nil, fmt.Errorf("network: GetAdaptersAddresses: %w", err)
		}
		buf = nil
	}
	if buf == nil {
		return nil, errWinNoAdapterInfo
	}
	var out []*winAdapter
	for aa := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); aa != nil && len(out) < maxInterfaces; aa = aa.Next {
		desc := windows.UTF16PtrToString(aa.Description)
		plen := min(int(aa.PhysicalAddressLength), len(aa.PhysicalAddress))
		a := &winAdapter{
			itf: &agentv1.NetworkInterface{
				Name:        windows.UTF16PtrToString(aa.FriendlyName),
				Kind:        winKind(aa.IfType, desc),
				Mac:         macBytes(aa.PhysicalAddress[:plen]),
				Up:          aa.OperStatus == windows.IfOperStatusUp,
				Description: desc,
			},
			index:   aa.IfIndex,
			index6:  aa.Ipv6IfIndex,
			guid:    windows.BytePtrToString(aa.AdapterName),
			up:      aa.OperStatus == windows.IfOperStatusUp,
			metric4: aa.Ipv4Metric,
			metric6: aa.Ipv6Metric,
		}
		for u := aa.FirstUnicastAddress; u != nil; u = u.Next {
			if ip, ok := winSockaddr(&u.Address); ok {
				a.itf.Addresses = addAddr(a.itf.Addresses, netip.PrefixFrom(ip, int(u.OnLinkPrefixLength)))
			}
		}
		for d := aa.FirstDnsServerAddress; d != nil && len(a.dns) < maxDNS; d = d.Next {
			if ip, ok := winSockaddr(&d.Address); ok {
				s := ip.String()
				if !slices.Contains(winSiteLocalDNS, s) {
					a.dns = append(a.dns, s)
				}
			}
		}
		for g := aa.FirstGatewayAddress; g != nil && len(a.gw) < 16; g = g.Next {
			if ip, ok := winSockaddr(&g.Address); ok {
				a.gw = append(a.gw, ip)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// winSockaddr converts a SOCKET_ADDRESS, dropping the IPv6 zone.
func winSockaddr(sa *windows.SocketAddress) (netip.Addr, bool) {
	ip, ok := netip.AddrFromSlice(sa.IP())
	if !ok {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// winDefaultRoute reads the default routes of GetIpForwardTable2 and picks
// one; the metric adds the interface metric, as Windows does.
func winDefaultRoute(ads []*winAdapter) (winRoute, bool) {
	var t *windows.MibIpForwardTable2
	if err := windows.GetIpForwardTable2(windows.AF_UNSPEC, &t); err != nil || t == nil {
		return winRoute{}, false
	}
	defer windows.FreeMibTable(unsafe.Pointer(t))
	var routes []winRoute
	for _, r := range t.Rows() {
		if r.DestinationPrefix.PrefixLength != 0 {
			continue
		}
		var hop netip.Addr
		var metric uint32
		ok := false
		for _, a := range ads {
			switch r.NextHop.Family {
			case windows.AF_INET:
				if a.index == r.InterfaceIndex && a.up {
					p := (*windows.RawSockaddrInet4)(unsafe.Pointer(&r.NextHop))
					hop, metric, ok = netip.AddrFrom4(p.Addr), r.Metric+a.metric4, true
				}
			case windows.AF_INET6:
				if a.index6 == r.InterfaceIndex && a.up {
					p := (*windows.RawSockaddrInet6)(unsafe.Pointer(&r.NextHop))
					hop, metric, ok = netip.AddrFrom16(p.Addr), r.Metric+a.metric6, true
				}
			}
		}
		if ok {
			routes = append(routes, winRoute{ifIndex: r.InterfaceIndex, nextHop: hop, metric: metric})
		}
	}
	return winPickDefault(routes)
}

// winDefault returns the adapter of the default route, or nil.
func winDefault(ads []*winAdapter, r winRoute, ok bool) *winAdapter {
	for _, a := range ads {
		if ok && ((r.nextHop.Is4() && a.index == r.ifIndex) || (!r.nextHop.Is4() && a.index6 == r.ifIndex)) {
			return a
		}
	}
	for _, a := range ads { // no routing table: the first up adapter with a gateway
		if a.up && len(a.gw) > 0 {
			return a
		}
	}
	return nil
}

// winIPNetTable reads the IPv4 neighbour cache with GetIpNetTable.
func winIPNetTable() (neighbours, error) {
	size := uint32(0)
	winProcGetIPNet.Call(0, uintptr(unsafe.Pointer(&size)), 0)
	if size == 0 || size > 16<<20 {
		return nil, errWinNoAdapterInfo
	}
	buf := make([]byte, size)
	r, _, _ := winProcGetIPNet.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if r != 0 {
		return nil, windows.Errno(r)
	}
	return winParseIPNetTable(buf[:min(int(size), len(buf))]), nil
}

// winLiveProxy reads the machine-wide WinINet settings (used when the
// ProxySettingsPerUser policy is 0), else the WinHTTP proxy.
func winLiveProxy(ctx context.Context) *agentv1.Proxy {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings`, registry.QUERY_VALUE)
	var p *agentv1.Proxy
	if err == nil {
		enable, _, _ := k.GetIntegerValue("ProxyEnable")
		server, _, _ := k.GetStringValue("ProxyServer")
		override, _, _ := k.GetStringValue("ProxyOverride")
		pac, _, _ := k.GetStringValue("AutoConfigURL")
		k.Close()
		p = winProxy(uint32(enable), server, override, pac)
	}
	if p == nil || (p.Http == "" && p.Https == "" && p.PacUrl == "") {
		if out, err := run(ctx, filepath.Join(winSystemDir(), "netsh.exe"), "winhttp", "show", "proxy"); err == nil {
			if w := winParseNetshWinHTTP(out); w != nil {
				return w
			}
		}
	}
	return p
}

// winWifi asks the WLAN AutoConfig service for the current connection of
// each wireless interface.
func winWifi(ads []*winAdapter) *agentv1.Wifi {
	hasWifi := false
	for _, a := range ads {
		hasWifi = hasWifi || a.itf.Kind == agentv1.NetworkInterface_KIND_WIFI
	}
	if err := winWlanapi.Load(); err != nil {
		if !hasWifi {
			return &agentv1.Wifi{Available: true}
		}
		return &agentv1.Wifi{Reason: "wlanapi.dll not available"}
	}
	var negotiated uint32
	var h windows.Handle
	if r, _, _ := winProcWlanOpen.Call(2, 0, uintptr(unsafe.Pointer(&negotiated)), uintptr(unsafe.Pointer(&h))); r != 0 {
		if !hasWifi {
			return &agentv1.Wifi{Available: true}
		}
		return &agentv1.Wifi{Reason: "WLAN AutoConfig service not available: " + windows.Errno(r).Error()}
	}
	defer winProcWlanClose.Call(uintptr(h), 0)
	var list *byte
	if r, _, _ := winProcWlanEnum.Call(uintptr(h), 0, uintptr(unsafe.Pointer(&list))); r != 0 || list == nil {
		return &agentv1.Wifi{Reason: "WlanEnumInterfaces failed: " + windows.Errno(r).Error()}
	}
	defer winProcWlanFree.Call(uintptr(unsafe.Pointer(list)))
	count := min(*(*uint32)(unsafe.Pointer(list)), 64)
	ifs := winParseWlanIfList(unsafe.Slice(list, 8+winWlanIfSize*int(count)))
	denied := false
	for _, wi := range ifs {
		if wi.state != winWlanConnected {
			continue
		}
		guid := [16]byte(wi.guid)
		var size uint32
		var data *byte
		var vtype uint32
		r, _, _ := winProcWlanQuery.Call(uintptr(h), uintptr(unsafe.Pointer(&guid)), winOpcodeCurrentConnection, 0,
			uintptr(unsafe.Pointer(&size)), uintptr(unsafe.Pointer(&data)), uintptr(unsafe.Pointer(&vtype)))
		if r != 0 || data == nil {
			if windows.Errno(r) == windows.ERROR_ACCESS_DENIED {
				denied = true
			}
			continue
		}
		ssid, bssid, ok := winParseConnAttrs(unsafe.Slice(data, min(size, 4096)))
		winProcWlanFree.Call(uintptr(unsafe.Pointer(data)))
		if !ok {
			continue
		}
		name := wi.desc
		for _, a := range ads {
			if strings.EqualFold(a.guid, winGUIDString(wi.guid)) {
				name = a.itf.Name
			}
		}
		if ssid == "" && bssid == "" {
			return &agentv1.Wifi{Interface: name, Reason: "SSID hidden by Windows (no location permission)"}
		}
		return &agentv1.Wifi{Available: true, Interface: name, Ssid: ssid, Bssid: bssid}
	}
	if denied {
		return &agentv1.Wifi{Reason: "WlanQueryInterface: access denied (location permission)"}
	}
	return &agentv1.Wifi{Available: true} // no connected interface
}
