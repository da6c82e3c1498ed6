package remoteaccess

import (
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Registry locations read for RDP, as strings so the pure logic below can
// name them in Source.
const (
	winTerminalServerKey = `SYSTEM\CurrentControlSet\Control\Terminal Server`
	winRDPTcpKey         = `SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp`
	winRDPDefaultPort    = 3389
)

// winRDPSettings are the registry values that decide RDP; a nil pointer
// means the value could not be read.
type winRDPSettings struct {
	DenyTSConnections *uint32 // fDenyTSConnections: 0 = connections allowed
	PortNumber        *uint32 // RDP-Tcp PortNumber
}

// winRDPFeature decides the RDP OsRemoteAccess from the registry values
// and the TCP table. RDP is enabled only when fDenyTSConnections is read
// and is 0. The port is PortNumber when it is a valid port, else 3389.
func winRDPFeature(s winRDPSettings, socks []Socket) *agentv1.OsRemoteAccess {
	f := &agentv1.OsRemoteAccess{Kind: "rdp", Port: winRDPDefaultPort}
	var src []string
	if s.DenyTSConnections != nil {
		f.Enabled = *s.DenyTSConnections == 0
		src = append(src, `HKLM\`+winTerminalServerKey+`\fDenyTSConnections`)
	}
	if s.PortNumber != nil && *s.PortNumber >= 1 && *s.PortNumber <= 65535 {
		f.Port = *s.PortNumber
		src = append(src, `HKLM\`+winRDPTcpKey+`\PortNumber`)
	}
	f.Listening = osListening(socks, f.Port)
	if f.Listening {
		src = append(src, "GetExtendedTcpTable")
	}
	f.Source = strings.Join(src, "; ")
	return f
}

// osListening reports whether a listening TCP socket has local port port.
func osListening(socks []Socket, port uint32) bool {
	for _, s := range socks {
		if s.Listening && s.Protocol == "tcp" && s.LocalPort == port {
			return true
		}
	}
	return false
}

// winStartMode names a service StartType (SERVICE_BOOT_START 0 …
// SERVICE_DISABLED 4) the way Service.StartMode expects.
func winStartMode(startType uint32, delayed bool) string {
	switch startType {
	case 0:
		return "boot"
	case 1:
		return "system"
	case 2:
		if delayed {
			return "auto_delayed"
		}
		return "auto"
	case 3:
		return "manual"
	case 4:
		return "disabled"
	}
	return "unknown"
}

// winServiceState names a SERVICE_STATUS CurrentState (1 … 7).
func winServiceState(state uint32) string {
	switch state {
	case 1:
		return "stopped"
	case 2:
		return "start_pending"
	case 3:
		return "stop_pending"
	case 4:
		return "running"
	case 5:
		return "continue_pending"
	case 6:
		return "pause_pending"
	case 7:
		return "paused"
	}
	return "unknown"
}
