package policies

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

var toolID = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{1,63}$`)

var categories = []string{CategoryRemoteDesktop, CategoryRMM, CategoryTunnel, CategoryVPN, CategoryStayAwake}

// commonSystemNames are processes and services present on every (or
// nearly every) Windows, macOS or Linux machine, or generic interpreters
// and browsers. A catalog entry naming one of them as a process, session
// process or service would match everywhere, so Validate refuses them.
// Names are stored normalised (see normalizeName).
var commonSystemNames = func() map[string]bool {
	names := []string{
		// Windows processes.
		"system", "registry", "smss", "csrss", "wininit", "winlogon", "services",
		"lsass", "lsaiso", "svchost", "explorer", "spoolsv", "conhost", "dllhost",
		"rundll32", "regsvr32", "taskhostw", "taskhost", "taskmgr", "sihost", "ctfmon",
		"dwm", "fontdrvhost", "searchindexer", "searchhost", "searchapp",
		"searchprotocolhost", "searchfilterhost", "runtimebroker",
		"startmenuexperiencehost", "shellexperiencehost", "textinputhost",
		"applicationframehost", "audiodg", "wmiprvse", "msmpeng", "nissrv",
		"securityhealthservice", "securityhealthsystray", "smartscreen", "wudfhost",
		"dashost", "lsm", "mmc", "cmd", "powershell", "pwsh", "wscript", "cscript",
		"msiexec", "trustedinstaller", "tiworker", "backgroundtaskhost",
		"compattelrunner", "werfault", "consent", "userinit", "logonui", "notepad",
		"msedge", "msedgewebview2", "iexplore", "chrome", "firefox", "opera", "brave",
		"safari", "onedrive", "teams", "outlook", "winword", "excel",
		// Windows services.
		"termservice", "winmgmt", "eventlog", "schedule", "dhcp", "dnscache", "bits",
		"wuauserv", "lanmanserver", "lanmanworkstation", "rpcss", "plugplay",
		"windefend", "mpssvc", "bfe", "cryptsvc", "sens", "themes", "audiosrv",
		"winrm", "w32time", "netlogon", "sessionenv", "umrdpservice",
		// Linux.
		"init", "systemd", "systemd-journald", "systemd-logind", "systemd-udevd",
		"systemd-resolved", "systemd-networkd", "systemd-timesyncd", "sshd", "ssh",
		"cron", "crond", "rsyslogd", "dbus-daemon", "dbus", "networkmanager",
		"wpa_supplicant", "avahi-daemon", "cupsd", "polkitd", "udisksd", "upowerd",
		"gdm", "gdm3", "lightdm", "sddm", "gnome-shell", "gnome-session",
		"plasmashell", "kwin_x11", "kwin_wayland", "xorg", "xwayland", "pipewire",
		"pipewire-pulse", "wireplumber", "pulseaudio", "kthreadd", "agetty", "login",
		"sudo", "su",
		// macOS.
		"kernel_task", "launchd", "windowserver", "finder", "dock", "loginwindow",
		"systemuiserver", "controlcenter", "mds", "mds_stores", "mdworker",
		"mdworker_shared", "coreaudiod", "cfprefsd", "distnoted", "securityd",
		"trustd", "opendirectoryd", "configd", "mdnsresponder", "bluetoothd",
		"airportd", "hidd", "powerd", "syslogd", "logd", "notifyd", "usernoted",
		"spotlight", "corespotlightd", "sharingd", "rapportd", "screencapture",
		"caffeinate",
		// Shells, interpreters and runtimes.
		"sh", "bash", "zsh", "fish", "dash", "python", "python3", "perl", "ruby",
		"java", "javaw", "node", "electron", "dotnet", "osascript", "wine",
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}()

// normalizeName is how the agent compares process and service names: lower
// case, any directory removed, then a trailing ".exe" or ".app" removed.
func normalizeName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(s, ".exe")
	s = strings.TrimSuffix(s, ".app")
	return s
}

// normalizeService is normalizeName plus a trailing systemd ".service"
// removed, so that "sshd.service" counts as the system service "sshd".
func normalizeService(s string) string {
	return strings.TrimSuffix(normalizeName(s), ".service")
}

const globChars = "*?["

// Validate checks the catalog: ids well formed and unique, known
// categories, an http(s) source for every entry and at least one way to
// recognise the tool; no empty or whitespace-padded strings; no globs
// outside uninstall_names and adapters (domains may only start with "*.");
// no directories in process names; no name listed twice in one tool; no
// process or service that is a common system one (commonSystemNames); no
// process name claimed by two tools; and Astrill as the first VPN entry.
// It returns every problem found, joined.
func (c *RemoteAccessCatalog) Validate() error {
	var errs []error
	seen := map[string]bool{}
	procOwner := map[string]string{} // normalised process name -> tool id
	firstVPN := true
	for i, t := range c.Tools {
		where := fmt.Sprintf("tools[%d] (%s)", i, t.ID)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
		}
		if !toolID.MatchString(t.ID) {
			bad("id must match %s", toolID)
		}
		if seen[t.ID] {
			bad("duplicate id")
		}
		seen[t.ID] = true
		if strings.TrimSpace(t.Name) == "" {
			bad("name missing")
		} else if strings.TrimSpace(t.Name) != t.Name {
			bad("name %q has leading or trailing white space", t.Name)
		}
		if t.Vendor != strings.TrimSpace(t.Vendor) {
			bad("vendor %q has leading or trailing white space", t.Vendor)
		}
		if !slices.Contains(categories, t.Category) {
			bad("category %q not one of %v", t.Category, categories)
		}
		if t.Category == CategoryVPN {
			if firstVPN && !strings.HasPrefix(t.ID, "astrill") {
				bad("the first vpn entry must be Astrill (id starting with \"astrill\")")
			}
			firstVPN = false
		}
		if len(t.Sources) == 0 {
			bad("no source")
		}
		for _, s := range t.Sources {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.TrimSpace(s) != s {
				bad("source %q is not an http(s) URL", s)
			}
		}
		if t.Windows.empty() && t.MacOS.empty() && t.Linux.empty() {
			bad("nothing to match on any OS")
		}
		toolProcs := map[string]bool{}
		for _, o := range []struct {
			name string
			m    OSMatch
		}{{"windows", t.Windows}, {"macos", t.MacOS}, {"linux", t.Linux}} {
			for _, e := range o.m.check(o.name) {
				bad("%v", e)
			}
			osProcs := map[string]bool{}
			for _, p := range slices.Concat(o.m.Processes, o.m.SessionProcesses) {
				n := normalizeName(p)
				if n == "" {
					continue
				}
				if osProcs[n] {
					bad("%s: process %q listed twice", o.name, p)
				}
				osProcs[n] = true
				toolProcs[n] = true
			}
		}
		for n := range toolProcs {
			if owner, ok := procOwner[n]; ok && owner != t.ID {
				bad("process %q is also claimed by %s", n, owner)
			} else {
				procOwner[n] = t.ID
			}
		}
		for _, p := range t.Ports {
			if p.Protocol != "tcp" && p.Protocol != "udp" || p.Port == 0 {
				bad("bad port %+v", p)
			}
		}
		if len(dups(t.Ports)) > 0 {
			bad("port listed twice")
		}
		for _, d := range t.Domains {
			rest := strings.TrimPrefix(d, "*.")
			switch {
			case strings.TrimSpace(d) == "" || strings.TrimSpace(d) != d || strings.ContainsAny(d, " \t/:"):
				bad("bad domain %q", d)
			case strings.ContainsAny(rest, globChars) || rest == "":
				bad("domain %q: a glob is only allowed as a leading \"*.\"", d)
			}
		}
		errs = append(errs, checkStrings(where+": notable_args", t.NotableArgs, false)...)
		errs = append(errs, checkStrings(where+": adapters", t.Adapters, true)...)
		for _, s := range [][]string{t.Domains, t.Sources} {
			for _, d := range dups(lower(s)) {
				bad("%q listed twice", d)
			}
		}
	}
	return errors.Join(errs...)
}

// check returns the problems of one OS's match lists.
func (m OSMatch) check(osName string) []error {
	var errs []error
	lists := []struct {
		field string
		vals  []string
		glob  bool // globs allowed
		seps  bool // path separators allowed
	}{
		{"processes", m.Processes, false, false},
		{"session_processes", m.SessionProcesses, false, false},
		{"services", m.Services, false, false},
		{"bundle_ids", m.BundleIDs, false, false},
		{"paths", m.Paths, false, true},
		{"uninstall_names", m.UninstallNames, true, true},
		{"packages", m.Packages, false, false},
		{"desktop_files", m.DesktopFiles, false, false},
	}
	for _, l := range lists {
		where := osName + ": " + l.field
		errs = append(errs, checkStrings(where, l.vals, l.glob)...)
		for _, v := range l.vals {
			if !l.seps && strings.ContainsAny(v, `/\`) {
				errs = append(errs, fmt.Errorf("%s: %q contains a path separator", where, v))
			}
		}
		switch l.field {
		case "processes", "session_processes":
			for _, v := range l.vals {
				if n := normalizeName(v); commonSystemNames[n] {
					errs = append(errs, fmt.Errorf("%s: %q is a common system process", where, v))
				}
			}
		case "services":
			for _, v := range l.vals {
				if n := normalizeService(v); commonSystemNames[n] {
					errs = append(errs, fmt.Errorf("%s: %q is a common system service", where, v))
				}
			}
		}
	}
	for i, c := range m.ClientID {
		for _, e := range c.check(osName) {
			errs = append(errs, fmt.Errorf("%s: client_id[%d]: %w", osName, i, e))
		}
	}
	return errs
}

// clientIDWinPrefixes are the folders a windows client_id file may start
// with; the agent expands them itself.
var clientIDWinPrefixes = []string{`%ProgramData%\`, `%SystemRoot%\`, `%SystemDrive%\`}

// clientIDKey is what a client_id key or registry value may look like.
var clientIDKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// check returns the problems of one client_id spec: a file (absolute
// path, "*" only as a whole element, no "..", a known format and a plain
// key) or, on windows only, an HKLM registry key and value name, and an
// http(s) source.
func (c ClientIDSpec) check(osName string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.File != "" && c.Registry != "":
		bad("both file and registry")
	case c.File == "" && c.Registry == "":
		bad("neither file nor registry")
	case c.File != "":
		if !slices.Contains(ClientIDFormats, c.Format) {
			bad("format %q not one of %v", c.Format, ClientIDFormats)
		}
		if !clientIDKey.MatchString(c.Key) {
			bad("key %q must match %s", c.Key, clientIDKey)
		}
		if c.Value != "" {
			bad("value is for registry entries")
		}
		if osName == "windows" && c.Format == ClientIDPlist {
			bad("plist is a macOS format")
		}
		p, sep := c.File, "/"
		if osName == "windows" {
			sep = `\`
			rest, ok := "", false
			for _, pre := range clientIDWinPrefixes {
				if r, found := strings.CutPrefix(p, pre); found {
					rest, ok = r, true
				}
			}
			if !ok {
				bad("file %q must start with one of %v", p, clientIDWinPrefixes)
			}
			p = rest
			if strings.Contains(p, "/") {
				bad("file %q: use \\ as the separator", c.File)
			}
		} else {
			if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
				bad("file %q must be a clean absolute path", p)
			}
			p = strings.TrimPrefix(p, "/")
		}
		for _, el := range strings.Split(p, sep) {
			switch {
			case el == "" || el == "." || el == "..":
				bad("file %q: empty, . or .. element", c.File)
			case el != "*" && strings.ContainsAny(el, globChars):
				bad("file %q: a glob is only allowed as a whole \"*\" element", c.File)
			case el != strings.TrimSpace(el):
				bad("file %q: element with leading or trailing white space", c.File)
			}
		}
	default: // registry
		if osName != "windows" {
			bad("registry is for windows only")
		}
		if rest, ok := strings.CutPrefix(c.Registry, `HKLM\`); !ok || rest == "" || strings.ContainsAny(rest, "/*?[") ||
			strings.Contains(rest, `\\`) || strings.HasSuffix(rest, `\`) {
			bad("registry %q must be a key under HKLM\\", c.Registry)
		}
		if !clientIDKey.MatchString(c.Value) {
			bad("value %q must match %s", c.Value, clientIDKey)
		}
		if c.Format != "" || c.Key != "" {
			bad("format and key are for files")
		}
	}
	if u, err := url.Parse(c.Source); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.TrimSpace(c.Source) != c.Source {
		bad("source %q is not an http(s) URL", c.Source)
	}
	return errs
}

// checkStrings refuses empty and white-space padded strings, globs unless
// allowed, and duplicates (compared case-insensitively).
func checkStrings(where string, vals []string, glob bool) []error {
	var errs []error
	for _, v := range vals {
		switch {
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Errorf("%s: empty string", where))
		case strings.TrimSpace(v) != v:
			errs = append(errs, fmt.Errorf("%s: %q has leading or trailing white space", where, v))
		case !glob && strings.ContainsAny(v, globChars):
			errs = append(errs, fmt.Errorf("%s: %q: globs are not allowed here", where, v))
		case glob && !validGlob(v):
			errs = append(errs, fmt.Errorf("%s: %q is not a valid glob", where, v))
		}
	}
	for _, d := range dups(lower(vals)) {
		errs = append(errs, fmt.Errorf("%s: %q listed twice", where, d))
	}
	return errs
}

func validGlob(p string) bool {
	_, err := path.Match(p, "")
	return err == nil
}

func lower(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.ToLower(v)
	}
	return out
}

// dups returns the values that occur more than once, each once.
func dups[T comparable](vals []T) []T {
	seen := map[T]int{}
	var out []T
	for _, v := range vals {
		seen[v]++
		if seen[v] == 2 {
			out = append(out, v)
		}
	}
	return out
}

func (m OSMatch) empty() bool {
	return len(m.Processes)+len(m.SessionProcesses)+len(m.Services)+len(m.BundleIDs)+len(m.Paths)+
		len(m.UninstallNames)+len(m.Packages)+len(m.DesktopFiles) == 0
}
