// Package remoteaccess finds remote-control software, tunnels, VPN clients
// and stay-awake tools from the remote-access catalog, and the operating
// system's own remote access (RDP, Screen Sharing, VNC/xrdp).
//
// Each OS has a reader (remoteaccess_<os>.go) that lists what is installed,
// registered and running into an Inventory; Match, a pure function, keeps
// only what the catalog names. The inventory never leaves the agent: only
// matches are reported, and of a process's command line only the
// arguments the catalog calls notable.
package remoteaccess

import (
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Inventory is what an OS reader found, before matching.
type Inventory struct {
	Processes  []Process
	Services   []Service
	Installs   []Install
	Sockets    []Socket
	OSFeatures []*agentv1.OsRemoteAccess
}

// Process is one running process.
type Process struct {
	PID     int32
	Name    string // executable name as the OS reports it
	Path    string // executable path where readable
	User    string
	Started time.Time
	Args    []string // argv; matched against notable_args, never reported whole
}

// Service is a registered service, launchd job or systemd unit.
type Service struct {
	Kind      string // windows_service, launchd, systemd
	Name      string // service name, launchd label or unit name
	State     string // running, stopped, …
	StartMode string // auto, manual, disabled, …
}

// Install is evidence that software is installed.
type Install struct {
	Kind     string // app_bundle, uninstall_key, package, desktop_file, path
	Key      string // what the catalog matches: bundle id, DisplayName, package name, .desktop file name or path
	Location string // where it was found (bundle path, registry key, package database, file path)
	Version  string
}

// Socket is a TCP or UDP socket.
type Socket struct {
	Protocol   string // tcp or udp
	LocalAddr  string
	LocalPort  uint32
	RemoteAddr string
	RemotePort uint32
	Listening  bool
	PID        int32 // 0 when unknown
}
