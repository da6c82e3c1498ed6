package policies

import (
	"io/fs"
)

// RemoteAccessFile is the remote-access catalog's path in the policies tree.
const RemoteAccessFile = "catalog/remote_access.yaml"

// Tool categories.
const (
	CategoryRemoteDesktop = "remote_desktop"
	CategoryRMM           = "rmm"
	CategoryTunnel        = "tunnel"
	CategoryVPN           = "vpn"
	CategoryStayAwake     = "stay_awake"
)

// RemoteAccessCatalog lists remote-control software, tunnels, VPN clients
// and stay-awake tools with what identifies each on every OS. The agent
// matches it locally; the collector sends it at CheckIn.
type RemoteAccessCatalog struct {
	// Version is the hex SHA-256 of the file (set by the loader).
	Version string `yaml:"-"`
	Tools   []Tool `yaml:"tools"`
}

// Tool is one catalog entry. Names are matched exactly after normalisation
// (lower case, directory and a trailing ".exe"/".app" removed), never as
// substrings; globs are allowed only where a field says so.
type Tool struct {
	ID       string `yaml:"id"`       // ^[a-z0-9_]+$, unique
	Name     string `yaml:"name"`     // display name
	Vendor   string `yaml:"vendor"`   // publisher
	Category string `yaml:"category"` // one of the Category constants
	// Sources are the public references for the facts in this entry (URLs).
	Sources []string `yaml:"sources"`
	Windows OSMatch  `yaml:"windows"`
	MacOS   OSMatch  `yaml:"macos"`
	Linux   OSMatch  `yaml:"linux"`
	// Ports the tool listens on or connects to by default.
	Ports []Port `yaml:"ports"`
	// Domains of the vendor's relay / broker service (may start with "*.").
	Domains []string `yaml:"domains"`
	// NotableArgs are command-line flags worth reporting when present
	// (e.g. "--pin" for Chrome Remote Desktop's headless host); only these
	// are ever reported, never the rest of a command line.
	NotableArgs []string `yaml:"notable_args"`
	// Adapters are network adapter name globs of a VPN or tunnel
	// (e.g. "astrill*"), for the network signal.
	Adapters []string `yaml:"adapters"`
}

// OSMatch is what identifies a tool on one OS.
type OSMatch struct {
	// Processes are executable names (exact after normalisation).
	Processes []string `yaml:"processes"`
	// SessionProcesses run only while someone is connected.
	SessionProcesses []string `yaml:"session_processes"`
	// Services are Windows service names, launchd labels or systemd units.
	Services []string `yaml:"services"`
	// BundleIDs are macOS CFBundleIdentifiers.
	BundleIDs []string `yaml:"bundle_ids"`
	// Paths are install locations (files or directories). Windows paths
	// may start with %ProgramFiles%, %ProgramFiles(x86)%, %ProgramData%.
	Paths []string `yaml:"paths"`
	// UninstallNames are Windows uninstall DisplayName globs ("AnyDesk*").
	UninstallNames []string `yaml:"uninstall_names"`
	// Packages are Linux package names (dpkg / rpm).
	Packages []string `yaml:"packages"`
	// DesktopFiles are Linux .desktop file names.
	DesktopFiles []string `yaml:"desktop_files"`
	// ClientID says where the tool keeps its own client ID (the address
	// shown in its UI) on this OS, tried in order; the agent reports the
	// first valid ID it finds, for a tool found by the lists above. It is
	// not itself evidence that the tool is installed.
	ClientID []ClientIDSpec `yaml:"client_id"`
}

// Client ID file formats. Only the named key is read; every other line of
// the file (passwords, keys, settings) is skipped unparsed.
const (
	// ClientIDKeyValue is a "key=value" line file (AnyDesk system.conf).
	ClientIDKeyValue = "key_value"
	// ClientIDTeamViewerConf is TeamViewer's "[type] Key = value" line
	// file (global.conf on Linux).
	ClientIDTeamViewerConf = "teamviewer_conf"
	// ClientIDTOML is a top-level "key = 'value'" line of a TOML file, before
	// any [table] header (RustDesk.toml).
	ClientIDTOML = "toml"
	// ClientIDPlist is a top-level string or integer key of an XML or
	// binary property list (macOS preferences).
	ClientIDPlist = "plist"
)

// ClientIDFormats are the formats a ClientIDSpec may name.
var ClientIDFormats = []string{ClientIDKeyValue, ClientIDTeamViewerConf, ClientIDTOML, ClientIDPlist}

// ClientIDSpec is one place a tool stores its client ID: a file (File,
// Format, Key) or, on Windows, a registry value (Registry, Value).
type ClientIDSpec struct {
	// File is an absolute path on linux and macos, read under the scanned
	// root; a "*" may stand for one whole path element ("/home/*/…"). On
	// windows it starts with %ProgramData%, %SystemRoot% or %SystemDrive%
	// and may use "*" the same way.
	File   string `yaml:"file"`
	Format string `yaml:"format"` // one of ClientIDFormats
	Key    string `yaml:"key"`    // the key holding the ID in File
	// Registry is an HKLM key ("HKLM\SOFTWARE\TeamViewer"), read in the
	// 64-bit view; Value is its REG_DWORD, REG_QWORD or REG_SZ value.
	Registry string `yaml:"registry"`
	Value    string `yaml:"value"`
	// Source is the public reference for this location and format (URL).
	Source string `yaml:"source"`
}

// Port is a default port of a tool.
type Port struct {
	Protocol string `yaml:"protocol"` // tcp or udp
	Port     uint16 `yaml:"port"`
	// Listen is true when the tool accepts connections on it (an inbound
	// remote-desktop port), false when it only connects out.
	Listen bool `yaml:"listen"`
}

// GetTools returns the catalog's tools; nil-safe.
func (c *RemoteAccessCatalog) GetTools() []Tool {
	if c == nil {
		return nil
	}
	return c.Tools
}

// ParseRemoteAccess decodes a remote-access catalog strictly (unknown keys
// are errors) and checks it (see Validate).
func ParseRemoteAccess(b []byte) (*RemoteAccessCatalog, error) {
	var c RemoteAccessCatalog
	if err := decodeCatalog(b, "remote-access catalog", &c); err != nil {
		return nil, err
	}
	c.Version = catalogVersion(b)
	return &c, nil
}

// RemoteAccess loads the remote-access catalog from a policies tree.
func RemoteAccess(fsys fs.FS) (*RemoteAccessCatalog, error) {
	b, err := fs.ReadFile(fsys, RemoteAccessFile)
	if err != nil {
		return nil, err
	}
	return ParseRemoteAccess(b)
}
