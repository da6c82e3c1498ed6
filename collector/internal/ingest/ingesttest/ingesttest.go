// Package ingesttest holds the realistic snapshots the ingest benchmarks
// send, for the benchmarks of the packages a report goes through.
package ingesttest

import (
	"fmt"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshot is a realistic snapshot of device i: identity, eight signal
// statuses, three remote-access tools, ten USB devices with interfaces, two
// displays with 256-byte EDIDs, four network interfaces, locale, twenty
// login sessions and a day of activity hours.
func Snapshot(i int, agentID string) *agentv1.HostSnapshot {
	now := time.Now().Truncate(time.Hour)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	serial := fmt.Sprintf("5CG%07d", i)
	sn := &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{
			AgentId: agentID, HardwareUuid: fmt.Sprintf("4c4c4544-0042-3510-8052-%012x", i), SerialNumber: serial,
			MachineId: fmt.Sprintf("%032x", i+1), Hostname: fmt.Sprintf("laptop-%03d", i),
			Os: &agentv1.OperatingSystem{Family: "windows", Name: "Windows 11 Pro", Version: "10.0.26100", Build: "26100.2605",
				Kernel: "10.0.26100", Arch: "amd64"},
			HardwareVendor: "Dell Inc.", HardwareModel: "Latitude 7440", BootTime: ts(-36 * time.Hour), AgentVersion: "1.4.2",
		},
		ScanStartedAt: ts(-2 * time.Second), ScanFinishedAt: ts(0),
	}
	for _, name := range []string{"identity", "remoteaccess", "usb", "display", "network", "locale", "sessions", "activity"} {
		sn.Signals = append(sn.Signals, &agentv1.SignalStatus{Name: name, State: agentv1.SignalStatus_STATE_OK})
	}
	sn.RemoteAccess = &agentv1.RemoteAccess{CatalogVersion: "3f2a9c1d",
		Tools: []*agentv1.RemoteTool{
			{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
				Installs:  []*agentv1.InstallEvidence{{Kind: "uninstall_key", Location: `HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\AnyDesk`, Version: "8.0.14"}},
				Services:  []*agentv1.ServiceEvidence{{Kind: "windows_service", Name: "AnyDesk", State: "running", StartMode: "auto"}},
				Processes: []*agentv1.ProcessEvidence{{Name: "AnyDesk.exe", Path: `C:\Program Files (x86)\AnyDesk\AnyDesk.exe`, Pid: 4312, User: `NT AUTHORITY\SYSTEM`, StartedAt: ts(-35 * time.Hour)}},
				Listening: []*agentv1.SocketEvidence{{Protocol: "tcp", LocalAddress: "0.0.0.0", LocalPort: 7070, Pid: 4312}},
				Connections: []*agentv1.SocketEvidence{{Protocol: "tcp", LocalAddress: "192.168.1.23", LocalPort: 51234,
					RemoteAddress: "195.181.174.20", RemotePort: 443, Pid: 4312}},
				ActiveSession: true},
			{ToolId: "chrome_remote_desktop", Name: "Chrome Remote Desktop", Category: "remote_desktop",
				Installs: []*agentv1.InstallEvidence{{Kind: "uninstall_key", Location: `HKLM\SOFTWARE\Google\Chrome Remote Desktop`, Version: "128.0.6613.27"}},
				Services: []*agentv1.ServiceEvidence{{Kind: "windows_service", Name: "chromoting", State: "stopped", StartMode: "manual"}}},
			{ToolId: "astrill", Name: "Astrill VPN", Category: "vpn",
				Installs:  []*agentv1.InstallEvidence{{Kind: "path", Location: `C:\Program Files (x86)\Astrill\astrill.exe`}},
				Processes: []*agentv1.ProcessEvidence{{Name: "astrill.exe", Path: `C:\Program Files (x86)\Astrill\astrill.exe`, Pid: 7720, User: "jdoe", StartedAt: ts(-8 * time.Hour)}}},
		},
		OsFeatures: []*agentv1.OsRemoteAccess{
			{Kind: "rdp", Enabled: true, Listening: true, Port: 3389, Source: `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`},
			{Kind: "ssh", Source: "sshd service"},
		},
	}
	usb := &agentv1.Usb{}
	for d := range 10 {
		dev := &agentv1.UsbDevice{Location: fmt.Sprintf("1-%d.%d", d/4+1, d%4+1), VendorId: uint32(0x046d + d), ProductId: uint32(0xc52b + d),
			BcdDevice: 0x1201, Manufacturer: "Logitech", Product: fmt.Sprintf("USB Receiver %d", d), Serial: fmt.Sprintf("%X%08d", d, i),
			SpeedMbps: 12}
		for n := range 1 + d%3 {
			dev.Interfaces = append(dev.Interfaces, &agentv1.UsbInterface{Number: uint32(n), Class: 3, Subclass: 1, Protocol: uint32(1 + n%2), Driver: "usbhid"})
		}
		if d%3 == 0 {
			dev.Hid = &agentv1.HidSummary{Keyboard: true, RelativeMouse: true, ConsumerControl: true}
		}
		if d == 7 {
			dev.MassStorage = &agentv1.MassStorage{Vendor: "SanDisk", Product: "Ultra Fit", Revision: "1.00"}
		}
		usb.Devices = append(usb.Devices, dev)
	}
	sn.Usb = usb
	displays := &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN}
	for d := range 2 {
		edid := make([]byte, 256)
		copy(edid, []byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00})
		for k := 8; k < len(edid); k++ {
			edid[k] = byte(k*7 + d*13 + i)
		}
		displays.Displays = append(displays.Displays, &agentv1.Display{
			Connector: fmt.Sprintf("DISPLAY%d", d+1), Edid: edid, EdidChecksumOk: true, ManufacturerId: []string{"AUO", "DEL"}[d],
			ProductCode: uint32(0x40a0 + d), SerialNumber: uint32(1000 + i), SerialString: fmt.Sprintf("CN0%06d", i),
			MonitorName: []string{"", "DELL U2723QE"}[d], ManufactureWeek: 12, ManufactureYear: 2023, WidthMm: uint32(310 + 300*d),
			HeightMm: uint32(174 + 160*d), ExtensionCount: uint32(d), ExtensionTags: []uint32{2}[:d], Internal: d == 0, Active: true,
		})
	}
	sn.Displays = displays
	sn.Network = &agentv1.Network{
		Interfaces: []*agentv1.NetworkInterface{
			{Name: "Wi-Fi", Kind: agentv1.NetworkInterface_KIND_WIFI, Mac: fmt.Sprintf("3c:22:fb:%02x:10:01", i), Up: true,
				Addresses: []string{"192.168.1.23/24", "fe80::1c2d:3e4f:5a6b:7c8d/64"}, Description: "Intel(R) Wi-Fi 6E AX211 160MHz"},
			{Name: "Ethernet", Kind: agentv1.NetworkInterface_KIND_ETHERNET, Mac: fmt.Sprintf("3c:22:fb:%02x:10:02", i),
				Description: "Intel(R) Ethernet Connection (16) I219-LM"},
			{Name: "Astrill", Kind: agentv1.NetworkInterface_KIND_TAP, Mac: "00:ff:1a:2b:3c:4d", Up: true,
				Addresses: []string{"10.8.0.6/24"}, Description: "TAP-Windows Adapter V9", VpnToolId: "astrill"},
			{Name: "Loopback Pseudo-Interface 1", Kind: agentv1.NetworkInterface_KIND_LOOPBACK, Up: true, Addresses: []string{"127.0.0.1/8", "::1/128"}},
		},
		DefaultRoute: &agentv1.DefaultRoute{Interface: "Astrill", Gateway: "10.8.0.1"},
		Wifi:         &agentv1.Wifi{Available: true, Interface: "Wi-Fi", Ssid: "HomeNet-5G", Bssid: fmt.Sprintf("a4:2b:b0:11:22:%02x", i)},
		DnsServers:   []string{"10.8.0.1", "192.168.1.1"},
		Proxy:        &agentv1.Proxy{},
	}
	sn.Locale = &agentv1.Locale{Timezone: "America/Chicago", UtcOffsetSeconds: -6 * 3600, SystemLocale: "en_US.UTF-8",
		KeyboardLayouts: []*agentv1.KeyboardLayout{
			{User: "jdoe", Layout: "00000409", Source: `HKCU\Keyboard Layout\Preload`},
			{User: "jdoe", Layout: "00000412", InputMethod: true, Source: `HKCU\Keyboard Layout\Preload`},
		}}
	sessions := &agentv1.Sessions{HistoryCursor: "wtmp:1000"}
	for s := range 20 {
		ls := &agentv1.LoginSession{User: "jdoe", Type: agentv1.LoginSession_TYPE_CONSOLE, Terminal: "console",
			StartedAt: ts(time.Duration(-20+s) * time.Hour)}
		if s%4 == 1 {
			ls.Type, ls.SourceAddress, ls.Terminal = agentv1.LoginSession_TYPE_REMOTE_DESKTOP, "10.8.0.1", "RDP-Tcp#3"
		}
		if s < 18 {
			ls.EndedAt = ts(time.Duration(-20+s)*time.Hour + 40*time.Minute)
			sessions.History = append(sessions.History, ls)
		} else {
			sessions.Current = append(sessions.Current, ls)
		}
	}
	sn.Sessions = sessions
	activity := &agentv1.Activity{IdleThresholdSeconds: 60}
	for h := range 24 {
		activity.Hours = append(activity.Hours, &agentv1.ActivityHour{Hour: ts(time.Duration(h-24) * time.Hour),
			ActiveMinutes: uint32((h * 17) % 61), SampledMinutes: 60})
	}
	sn.Activity = activity
	return sn
}

// Quiet makes sn a snapshot on which no snapshot rule fires, as most of a
// fleet reports: no remote-access tools, no VPN, remote logons from the
// LAN only, a working day's activity.
func Quiet(sn *agentv1.HostSnapshot) {
	sn.RemoteAccess = nil
	for _, i := range sn.GetNetwork().GetInterfaces() {
		i.VpnToolId = ""
	}
	for _, l := range append(sn.GetSessions().GetCurrent(), sn.GetSessions().GetHistory()...) {
		l.SourceAddress = "192.168.1.40"
	}
	if h := sn.GetActivity().GetHours(); len(h) > 8 {
		sn.Activity.Hours = h[len(h)-8:] // a working day, not around the clock
	}
}
