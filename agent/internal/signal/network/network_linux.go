package network

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive reads the Linux files of the live system, replaces the
// addresses with the kernel's own list (IPv4 is in no /proc file per
// interface) and asks NetworkManager, else iw, for the Wi-Fi connection.
func readLive(ctx context.Context) (*agentv1.Network, error) {
	n, err := readLinuxFS(os.DirFS("/"))
	if err != nil {
		return nil, err
	}
	liveAddresses(n.Interfaces)
	n.Wifi = linuxWifi(ctx, n.Interfaces)
	return n, nil
}

// liveAddresses sets each interface's addresses from net.Interfaces.
func liveAddresses(ifs []*agentv1.NetworkInterface) {
	for _, itf := range ifs {
		ni, err := net.InterfaceByName(itf.Name)
		if err != nil {
			continue
		}
		addrs, err := ni.Addrs()
		if err != nil {
			continue
		}
		itf.Addresses = nil
		for _, a := range addrs {
			if p, ok := ipNetPrefix(a); ok {
				itf.Addresses = addAddr(itf.Addresses, p)
			}
		}
	}
}

func linuxWifi(ctx context.Context, ifs []*agentv1.NetworkInterface) *agentv1.Wifi {
	var wifi []string
	for _, itf := range ifs {
		if itf.Kind == agentv1.NetworkInterface_KIND_WIFI {
			wifi = append(wifi, itf.Name)
		}
	}
	if len(wifi) == 0 {
		return &agentv1.Wifi{Available: true} // no Wi-Fi interface: not connected
	}
	for _, p := range []string{"/usr/bin/nmcli", "/bin/nmcli", "/usr/local/bin/nmcli"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := run(ctx, p, "-t", "-f", "ACTIVE,SSID,BSSID,DEVICE", "device", "wifi", "list", "--rescan", "no")
		if err == nil {
			return nmParseWifi(out, nmColumns)
		}
		break // NetworkManager not running: try iw
	}
	iw, err := exec.LookPath("iw")
	if err != nil {
		for _, p := range []string{"/usr/sbin/iw", "/sbin/iw", "/usr/bin/iw"} {
			if _, e := os.Stat(p); e == nil {
				iw, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return &agentv1.Wifi{Reason: "nmcli not available (NetworkManager not running) and iw not found"}
	}
	for _, name := range wifi {
		out, err := run(ctx, iw, "dev", name, "link")
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				continue
			}
			return &agentv1.Wifi{Reason: "iw failed: " + err.Error()}
		}
		if w := iwParseLink(out, name); w.Ssid != "" || w.Bssid != "" {
			return w
		}
	}
	return &agentv1.Wifi{Available: true}
}
