package network

import (
	"context"
	"net"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	macNetworksetup = "/usr/sbin/networksetup"
	macRoute        = "/sbin/route"
	macARP          = "/usr/sbin/arp"
	macScutil       = "/usr/sbin/scutil"
	macWdutil       = "/usr/bin/wdutil"
	macAirport      = "/System/Library/PrivateFrameworks/Apple80211.framework/Versions/Current/Resources/airport"
)

// readLive lists the interfaces with net.Interfaces, names their kinds from
// networksetup's hardware ports and the BSD name, and runs route, arp,
// scutil and wdutil (airport before macOS 14.4) for the rest. Every
// command is optional: a failing one leaves its part empty.
func readLive(ctx context.Context) (*agentv1.Network, error) {
	nis, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	ports := map[string]string{}
	if out, err := run(ctx, macNetworksetup, "-listallhardwareports"); err == nil {
		ports = macParseHardwarePorts(out)
	}
	n := &agentv1.Network{}
	wifiDev := ""
	for _, ni := range nis {
		if len(n.Interfaces) >= maxInterfaces {
			break
		}
		itf := &agentv1.NetworkInterface{
			Name:        ni.Name,
			Kind:        macKind(ni.Name, ports[ni.Name]),
			Mac:         macBytes(ni.HardwareAddr),
			Up:          ni.Flags&net.FlagUp != 0 && ni.Flags&net.FlagRunning != 0,
			Description: ports[ni.Name],
		}
		if itf.Kind == agentv1.NetworkInterface_KIND_WIFI && wifiDev == "" {
			wifiDev = ni.Name
		}
		if addrs, err := ni.Addrs(); err == nil {
			for _, a := range addrs {
				if p, ok := ipNetPrefix(a); ok {
					itf.Addresses = addAddr(itf.Addresses, p)
				}
			}
		}
		n.Interfaces = append(n.Interfaces, itf)
	}
	if out, err := run(ctx, macRoute, "-n", "get", "default"); err == nil {
		n.DefaultRoute = macParseRouteGet(out)
	}
	if r := n.DefaultRoute; r != nil && r.Gateway != "" {
		if out, err := run(ctx, macARP, "-n", r.Gateway); err == nil {
			r.GatewayMac = macParseARP(out, r.Gateway)
		}
	}
	if out, err := run(ctx, macScutil, "--dns"); err == nil {
		n.DnsServers = macParseScutilDNS(out)
	}
	if out, err := run(ctx, macScutil, "--proxy"); err == nil {
		n.Proxy = macParseScutilProxy(out)
	}
	n.Wifi = macLiveWifi(ctx, wifiDev)
	return n, nil
}

func macLiveWifi(ctx context.Context, dev string) *agentv1.Wifi {
	if dev == "" {
		return &agentv1.Wifi{Available: true} // no Wi-Fi hardware port
	}
	var why string
	if out, err := run(ctx, macWdutil, "info"); err == nil {
		return macParseWdutil(out)
	} else {
		why = "wdutil info failed (needs root): " + err.Error()
	}
	if _, err := os.Stat(macAirport); err == nil {
		if out, err := run(ctx, macAirport, "-I"); err == nil {
			if w := macParseAirport(out, dev); w.Available || w.Reason == reasonRedacted {
				return w
			}
		}
	}
	return &agentv1.Wifi{Reason: why}
}
