package remoteaccess

import (
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	macScreenSharingLabel = "com.apple.screensharing"
	macVNCPort            = 5900
	macARDPort            = 3283 // Apple Remote Desktop agent (net-assistant)
	macARDAgentName       = "ARDAgent"
	// MacRemoteManagementLaunchd is written by ARD's kickstart on activation.
	macRemoteManagementLaunchd = "Library/Application Support/Apple/Remote Desktop/RemoteManagement.launchd"
)

// macScreenSharingFeature decides Screen Sharing from `launchctl
// print-disabled system` (nil when it could not be run) and the sockets.
// The job ships disabled, so a label absent from the list is disabled.
func macScreenSharingFeature(disabled map[string]bool, socks []Socket) *agentv1.OsRemoteAccess {
	f := &agentv1.OsRemoteAccess{Kind: "screen_sharing", Port: macVNCPort}
	var src []string
	if disabled != nil {
		if d, ok := disabled[macScreenSharingLabel]; ok && !d {
			f.Enabled = true
		}
		src = append(src, "launchctl print-disabled system")
	}
	if f.Listening = osListening(socks, macVNCPort); f.Listening {
		src = append(src, "netstat")
	}
	f.Source = strings.Join(src, "; ")
	return f
}

// macRemoteManagementFeature decides Remote Management (Apple Remote
// Desktop): enabled when ARDAgent runs or kickstart's RemoteManagement.launchd
// says "enabled"; listening when something listens on TCP 3283.
func macRemoteManagementFeature(procs []Process, launchdFileEnabled bool, socks []Socket) *agentv1.OsRemoteAccess {
	f := &agentv1.OsRemoteAccess{Kind: "remote_management", Port: macARDPort}
	var src []string
	for _, p := range procs {
		if p.Name == macARDAgentName {
			f.Enabled = true
			src = append(src, "ARDAgent process")
			break
		}
	}
	if launchdFileEnabled {
		f.Enabled = true
		src = append(src, "/"+macRemoteManagementLaunchd)
	}
	if f.Listening = osListening(socks, macARDPort); f.Listening {
		src = append(src, "netstat")
	}
	f.Source = strings.Join(src, "; ")
	return f
}
