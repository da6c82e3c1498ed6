package remoteaccess

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Match keeps from inv what the catalog names for goos ("windows",
// "darwin" or "linux"; any other value matches no tool) and returns it as
// the RemoteAccess section of a snapshot. It is pure: the same catalog and
// inventory always give the same, deterministically ordered, result.
//
// Names (processes, services, bundle ids, packages, .desktop files) are
// compared exactly after normalisation — lower case, directory removed
// (both / and \), a trailing ".exe" or ".app" removed — never as
// substrings, so "anydesk-helper" and "myanydesk" are not "anydesk".
// Uninstall names are path.Match globs, compared case-insensitively.
// Paths are compared exactly; on windows and darwin case-insensitively,
// and on windows after expanding %ProgramFiles%, %ProgramFiles(x86)%,
// %ProgramData%, %SystemRoot%, %windir% and %SystemDrive% to their default
// values (C:\Program Files …), so a reader may report either form.
//
// Of a process's command line only the tool's notable_args are reported,
// and only as the catalog spells them: "--pin=1234" and "--pin" followed by
// "1234" are both reported as "--pin", never with their value.
//
// Sockets: a listening socket on one of the tool's listen ports is
// reported when a matched process of the tool owns it, or, when the owner
// is unknown (PID 0), when the tool has other evidence (process, service
// or install). An established connection is reported when a matched
// process owns it or, owner unknown and the tool otherwise present, when
// its local port is a listen port of the tool (inbound) or its remote port
// is one of the tool's ports other than 80 and 443 (outbound; web ports
// say nothing about which program connected). An inbound connection on a
// listen port, or a running session process, sets active_session.
func Match(cat *policies.RemoteAccessCatalog, goos string, inv *Inventory) *agentv1.RemoteAccess {
	out := &agentv1.RemoteAccess{}
	if cat != nil {
		out.CatalogVersion = cat.Version
	}
	if inv == nil {
		return out
	}
	out.OsFeatures = inv.OSFeatures
	if cat == nil {
		return out
	}
	names := make([][]string, len(inv.Processes))
	for i := range inv.Processes {
		names[i] = processNames(&inv.Processes[i])
	}
	for i := range cat.Tools {
		if t := matchTool(&cat.Tools[i], goos, inv, names); t != nil {
			out.Tools = append(out.Tools, t)
		}
	}
	slices.SortFunc(out.Tools, func(a, b *agentv1.RemoteTool) int { return strings.Compare(a.ToolId, b.ToolId) })
	return out
}

// osMatchFor returns the part of a tool that applies to goos.
func osMatchFor(t *policies.Tool, goos string) (policies.OSMatch, bool) {
	switch goos {
	case "windows":
		return t.Windows, true
	case "darwin":
		return t.MacOS, true
	case "linux":
		return t.Linux, true
	}
	return policies.OSMatch{}, false
}

// matchTool returns the evidence for one tool, or nil. names[i] are the
// normalised names of inv.Processes[i].
func matchTool(t *policies.Tool, goos string, inv *Inventory, names [][]string) *agentv1.RemoteTool {
	m, ok := osMatchFor(t, goos)
	if !ok {
		return nil
	}
	rt := &agentv1.RemoteTool{ToolId: t.ID, Name: t.Name, Category: t.Category}

	procNames := normalizedSet(m.Processes)
	sessionNames := normalizedSet(m.SessionProcesses)
	pids := map[int32]bool{}
	for i := range inv.Processes {
		p := &inv.Processes[i]
		main, session := false, false
		for _, n := range names[i] {
			main = main || procNames[n]
			session = session || sessionNames[n]
		}
		if !main && !session {
			continue
		}
		if session {
			rt.ActiveSession = true
		}
		if p.PID != 0 {
			pids[p.PID] = true
		}
		pe := &agentv1.ProcessEvidence{
			Name:        p.Name,
			Path:        p.Path,
			Pid:         p.PID,
			User:        p.User,
			NotableArgs: notableArgs(p.Args, t.NotableArgs, goos),
		}
		if pe.Name == "" {
			pe.Name = baseName(p.Path)
		}
		if !p.Started.IsZero() {
			pe.StartedAt = timestamppb.New(p.Started)
		}
		rt.Processes = append(rt.Processes, pe)
	}

	for _, s := range inv.Services {
		if serviceMatches(s, m.Services) {
			rt.Services = append(rt.Services, &agentv1.ServiceEvidence{Kind: s.Kind, Name: s.Name, State: s.State, StartMode: s.StartMode})
		}
	}

	for _, in := range inv.Installs {
		if installMatches(in, m, goos) {
			loc := in.Location
			if loc == "" {
				loc = in.Key
			}
			rt.Installs = append(rt.Installs, &agentv1.InstallEvidence{Kind: in.Kind, Location: loc, Version: in.Version})
		}
	}

	present := len(rt.Processes)+len(rt.Services)+len(rt.Installs) > 0
	for _, s := range inv.Sockets {
		owned := s.PID != 0 && pids[s.PID]
		unknown := s.PID == 0 && present
		if !owned && !unknown {
			continue
		}
		ev := &agentv1.SocketEvidence{
			Protocol:      s.Protocol,
			LocalAddress:  s.LocalAddr,
			LocalPort:     s.LocalPort,
			RemoteAddress: s.RemoteAddr,
			RemotePort:    s.RemotePort,
			Pid:           s.PID,
		}
		inbound := toolPort(t, s.Protocol, s.LocalPort, true)
		if s.Listening {
			if inbound {
				ev.RemoteAddress, ev.RemotePort = "", 0
				rt.Listening = append(rt.Listening, ev)
			}
			continue
		}
		outbound := toolPort(t, s.Protocol, s.RemotePort, false) && s.RemotePort != 80 && s.RemotePort != 443
		if owned || inbound || outbound {
			rt.Connections = append(rt.Connections, ev)
			if inbound {
				rt.ActiveSession = true
			}
		}
	}

	if len(rt.Processes)+len(rt.Services)+len(rt.Installs)+len(rt.Listening)+len(rt.Connections) == 0 {
		return nil
	}
	sortEvidence(rt)
	return rt
}

// toolPort reports whether port is one of the tool's ports for protocol;
// with listenOnly, only ports the tool listens on count.
func toolPort(t *policies.Tool, protocol string, port uint32, listenOnly bool) bool {
	if port == 0 {
		return false
	}
	for _, p := range t.Ports {
		if uint32(p.Port) == port && strings.EqualFold(p.Protocol, protocol) && (p.Listen || !listenOnly) {
			return true
		}
	}
	return false
}

// normalizeName lower-cases s and removes its directory and a trailing
// ".exe" or ".app".
func normalizeName(s string) string {
	s = strings.ToLower(baseName(strings.TrimRight(s, `/\`)))
	if t, ok := strings.CutSuffix(s, ".exe"); ok && t != "" {
		return t
	}
	if t, ok := strings.CutSuffix(s, ".app"); ok && t != "" {
		return t
	}
	return s
}

// baseName returns the last element of a / or \ separated path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func normalizedSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if n = normalizeName(n); n != "" {
			set[n] = true
		}
	}
	return set
}

// processNames are the normalised names a process is known by: its name
// and its executable's base name.
func processNames(p *Process) []string {
	var names []string
	if n := normalizeName(p.Name); n != "" {
		names = append(names, n)
	}
	if p.Path != "" {
		if n := normalizeName(p.Path); n != "" && (len(names) == 0 || names[0] != n) {
			names = append(names, n)
		}
	}
	return names
}

// notableArgs returns, without values, the notable flags present in args
// (argv[0] excluded): an argument equal to a flag or starting with it
// reports the flag as the catalog spells it. On windows flags compare
// case-insensitively.
func notableArgs(args, notable []string, goos string) []string {
	if len(args) < 2 || len(notable) == 0 {
		return nil
	}
	var out []string
	for _, a := range args[1:] {
		for _, n := range notable {
			if n == "" || slices.Contains(out, n) {
				continue
			}
			hit := strings.HasPrefix(a, n)
			if goos == "windows" && len(a) >= len(n) {
				hit = strings.EqualFold(a[:len(n)], n)
			}
			if hit {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// serviceMatches compares a service name exactly, case-insensitively; a
// systemd unit also matches a catalog name without the ".service" suffix.
func serviceMatches(s Service, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(s.Name, n) {
			return true
		}
		if s.Kind == "systemd" && !strings.Contains(n, ".") && strings.EqualFold(s.Name, n+".service") {
			return true
		}
		// A systemd template unit "name@.service" matches its instances
		// "name@<instance>.service" (e.g. chrome-remote-desktop@alice.service).
		if prefix, suffix, ok := strings.Cut(n, "@."); ok && s.Kind == "systemd" {
			name := strings.ToLower(s.Name)
			prefix, suffix = strings.ToLower(prefix)+"@", "."+strings.ToLower(suffix)
			if len(name) > len(prefix)+len(suffix) && strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) {
				return true
			}
		}
	}
	return false
}

func installMatches(in Install, m policies.OSMatch, goos string) bool {
	switch in.Kind {
	case "app_bundle":
		return containsFold(m.BundleIDs, in.Key) || pathMatches(in.Location, m.Paths, goos) || pathMatches(in.Key, m.Paths, goos)
	case "uninstall_key":
		name := strings.ToLower(in.Key)
		for _, g := range m.UninstallNames {
			if ok, err := path.Match(strings.ToLower(g), name); err == nil && ok {
				return true
			}
		}
		return false
	case "package":
		return containsFold(m.Packages, in.Key)
	case "desktop_file":
		return containsFold(m.DesktopFiles, baseName(in.Key))
	case "path":
		return pathMatches(in.Key, m.Paths, goos)
	}
	return false
}

func containsFold(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// windowsDefaults are the default values of the environment variables a
// catalog path may start with.
func windowsDefaults() [6][2]string {
	return [...][2]string{
		{"%programfiles(x86)%", `c:\program files (x86)`},
		{"%programfiles%", `c:\program files`},
		{"%programdata%", `c:\programdata`},
		{"%systemroot%", `c:\windows`},
		{"%windir%", `c:\windows`},
		{"%systemdrive%", `c:`},
	}
}

// normalizePath puts a path in the form paths are compared in.
func normalizePath(p, goos string) string {
	switch goos {
	case "windows":
		p = strings.ToLower(strings.ReplaceAll(p, "/", `\`))
		for _, d := range windowsDefaults() {
			if rest, ok := strings.CutPrefix(p, d[0]); ok {
				p = d[1] + rest
				break
			}
		}
		return strings.TrimRight(p, `\`)
	case "darwin":
		p = strings.ToLower(p)
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	return p
}

func pathMatches(p string, paths []string, goos string) bool {
	if p == "" {
		return false
	}
	p = normalizePath(p, goos)
	for _, c := range paths {
		if c != "" && normalizePath(c, goos) == p {
			return true
		}
	}
	return false
}

func sortEvidence(rt *agentv1.RemoteTool) {
	slices.SortFunc(rt.Processes, func(a, b *agentv1.ProcessEvidence) int {
		return cmp.Or(cmp.Compare(a.Pid, b.Pid), strings.Compare(a.Name, b.Name), strings.Compare(a.Path, b.Path))
	})
	slices.SortFunc(rt.Services, func(a, b *agentv1.ServiceEvidence) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name), strings.Compare(a.State, b.State), strings.Compare(a.StartMode, b.StartMode))
	})
	slices.SortFunc(rt.Installs, func(a, b *agentv1.InstallEvidence) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Location, b.Location), strings.Compare(a.Version, b.Version))
	})
	rt.Installs = slices.CompactFunc(rt.Installs, func(a, b *agentv1.InstallEvidence) bool {
		return a.Kind == b.Kind && a.Location == b.Location && a.Version == b.Version
	})
	sortSockets(rt.Listening)
	sortSockets(rt.Connections)
}

func sortSockets(s []*agentv1.SocketEvidence) {
	slices.SortFunc(s, func(a, b *agentv1.SocketEvidence) int {
		return cmp.Or(strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.LocalPort, b.LocalPort),
			strings.Compare(a.LocalAddress, b.LocalAddress), strings.Compare(a.RemoteAddress, b.RemoteAddress),
			cmp.Compare(a.RemotePort, b.RemotePort), cmp.Compare(a.Pid, b.Pid))
	})
}
