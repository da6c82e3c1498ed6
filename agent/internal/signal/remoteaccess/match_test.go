package remoteaccess

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
)

// testCatalog is a small catalog written for the tests, independent of the
// shipped catalog's content.
func testCatalog() *policies.RemoteAccessCatalog {
	return &policies.RemoteAccessCatalog{
		Version: "test-version",
		Tools: []policies.Tool{
			{
				ID: "anydesk", Name: "AnyDesk", Category: policies.CategoryRemoteDesktop,
				Windows: policies.OSMatch{
					Processes:      []string{"AnyDesk.exe"},
					Services:       []string{"AnyDesk"},
					Paths:          []string{`%ProgramFiles(x86)%\AnyDesk\AnyDesk.exe`},
					UninstallNames: []string{"AnyDesk*"},
				},
				MacOS: policies.OSMatch{Processes: []string{"AnyDesk"}, BundleIDs: []string{"com.philandro.anydesk"}, Paths: []string{"/Applications/AnyDesk.app"}},
				Linux: policies.OSMatch{
					Processes: []string{"anydesk"}, Services: []string{"anydesk.service"},
					Packages: []string{"anydesk"}, DesktopFiles: []string{"anydesk.desktop"},
				},
				Ports: []policies.Port{{Protocol: "tcp", Port: 7070, Listen: true}},
			},
			{
				ID: "chrome_remote_desktop", Name: "Chrome Remote Desktop", Category: policies.CategoryRemoteDesktop,
				Linux:       policies.OSMatch{Processes: []string{"chrome-remote-desktop-host"}, Paths: []string{"/opt/google/chrome-remote-desktop"}},
				Windows:     policies.OSMatch{Processes: []string{"remoting_host.exe"}, SessionProcesses: []string{"remoting_desktop.exe"}},
				Ports:       []policies.Port{{Protocol: "tcp", Port: 443}},
				NotableArgs: []string{"--pin", "--size"},
			},
			{
				ID: "teamviewer", Name: "TeamViewer", Category: policies.CategoryRemoteDesktop,
				Linux:   policies.OSMatch{Processes: []string{"teamviewerd"}, Paths: []string{"/opt/teamviewer"}},
				Windows: policies.OSMatch{Processes: []string{"TeamViewer.exe"}, SessionProcesses: []string{"TeamViewer_Desktop.exe"}, UninstallNames: []string{"TeamViewer [0-9]*"}},
				Ports:   []policies.Port{{Protocol: "tcp", Port: 5938}, {Protocol: "tcp", Port: 5939, Listen: true}},
			},
			{
				ID: "xrdp_tool", Name: "unused on windows", Category: policies.CategoryRemoteDesktop,
				Linux: policies.OSMatch{Services: []string{"nosuch"}},
			},
		},
	}
}

func toolIDs(ra *agentv1.RemoteAccess) []string {
	var ids []string
	for _, t := range ra.GetTools() {
		ids = append(ids, t.ToolId)
	}
	return ids
}

func findTool(ra *agentv1.RemoteAccess, id string) *agentv1.RemoteTool {
	for _, t := range ra.GetTools() {
		if t.ToolId == id {
			return t
		}
	}
	return nil
}

func TestMatchNames(t *testing.T) {
	for _, c := range []struct {
		name string
		goos string
		proc Process
		want []string
	}{
		{"exact linux", "linux", Process{PID: 1, Name: "anydesk"}, []string{"anydesk"}},
		{"suffix look-alike", "linux", Process{PID: 1, Name: "anydesk-helper"}, nil},
		{"prefix look-alike", "linux", Process{PID: 1, Name: "myanydesk"}, nil},
		{"digit look-alike", "linux", Process{PID: 1, Name: "anydesk2", Path: "/tmp/anydesk2"}, nil},
		{"name from path", "linux", Process{PID: 1, Path: "/usr/bin/anydesk"}, []string{"anydesk"}},
		{"renamed but path matches", "linux", Process{PID: 1, Name: "kworker", Path: "/usr/bin/anydesk"}, []string{"anydesk"}},
		{"windows case and .exe", "windows", Process{PID: 1, Name: "ANYDESK.EXE"}, []string{"anydesk"}},
		{"windows without .exe", "windows", Process{PID: 1, Name: "AnyDesk"}, []string{"anydesk"}},
		{"windows backslash path", "windows", Process{PID: 1, Path: `C:\Program Files (x86)\AnyDesk\AnyDesk.exe`}, []string{"anydesk"}},
		{"windows look-alike", "windows", Process{PID: 1, Name: "AnyDesk.exe.bak"}, nil},
		{"darwin bundle dir", "darwin", Process{PID: 1, Name: "AnyDesk", Path: "/Applications/AnyDesk.app/Contents/MacOS/AnyDesk"}, []string{"anydesk"}},
		{"other OS per-OS list", "darwin", Process{PID: 1, Name: "anydesk-helper"}, nil},
		{"unknown goos", "plan9", Process{PID: 1, Name: "anydesk"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ra := Match(testCatalog(), c.goos, &Inventory{Processes: []Process{c.proc}})
			if got := toolIDs(ra); !slices.Equal(got, c.want) {
				t.Fatalf("tools %v, want %v", got, c.want)
			}
			if ra.CatalogVersion != "test-version" {
				t.Fatalf("catalog version %q", ra.CatalogVersion)
			}
		})
	}
}

func TestMatchNotableArgsWithoutValues(t *testing.T) {
	inv := &Inventory{Processes: []Process{{
		PID: 7, Name: "chrome-remote-desktop-host", User: "alice", Started: time.Unix(1700000000, 0),
		Args: []string{"/opt/google/chrome-remote-desktop/chrome-remote-desktop-host", "--pin=123456", "--size", "1920x1080", "--secret-token=abc", "--pin"},
	}}}
	tool := findTool(Match(testCatalog(), "linux", inv), "chrome_remote_desktop")
	if tool == nil || len(tool.Processes) != 1 {
		t.Fatalf("not matched: %v", tool)
	}
	pe := tool.Processes[0]
	if !slices.Equal(pe.NotableArgs, []string{"--pin", "--size"}) {
		t.Fatalf("notable args %q", pe.NotableArgs)
	}
	if pe.Pid != 7 || pe.User != "alice" || pe.StartedAt.AsTime().Unix() != 1700000000 {
		t.Fatalf("process evidence %v", pe)
	}
	// argv[0] is never reported, even when it starts with a flag.
	if got := notableArgs([]string{"--pin"}, []string{"--pin"}, "linux"); got != nil {
		t.Fatalf("argv[0] reported: %q", got)
	}
	if got := notableArgs([]string{"x", "--PIN=1"}, []string{"--pin"}, "windows"); !slices.Equal(got, []string{"--pin"}) {
		t.Fatalf("windows case-insensitive flag: %q", got)
	}
	if got := notableArgs([]string{"x", "--PIN=1"}, []string{"--pin"}, "linux"); got != nil {
		t.Fatalf("linux flag matched case-insensitively: %q", got)
	}
}

func TestMatchInstallsAndServices(t *testing.T) {
	for _, c := range []struct {
		name string
		goos string
		inv  Inventory
		want []string
	}{
		{"uninstall glob", "windows", Inventory{Installs: []Install{{Kind: "uninstall_key", Key: "AnyDesk (Beta)", Location: `HKLM\...\AnyDesk`}}}, []string{"anydesk"}},
		{"uninstall glob case", "windows", Inventory{Installs: []Install{{Kind: "uninstall_key", Key: "anydesk"}}}, []string{"anydesk"}},
		{"uninstall glob no match", "windows", Inventory{Installs: []Install{{Kind: "uninstall_key", Key: "My AnyDesk"}}}, nil},
		{"uninstall character class", "windows", Inventory{Installs: []Install{{Kind: "uninstall_key", Key: "TeamViewer 15"}, {Kind: "uninstall_key", Key: "TeamViewer Meeting"}}}, []string{"teamviewer"}},
		{"windows path expanded", "windows", Inventory{Installs: []Install{{Kind: "path", Key: `c:\program files (x86)\anydesk\anydesk.exe`}}}, []string{"anydesk"}},
		{"windows path unexpanded", "windows", Inventory{Installs: []Install{{Kind: "path", Key: `%PROGRAMFILES(X86)%\AnyDesk\AnyDesk.exe`}}}, []string{"anydesk"}},
		{"windows path prefix only", "windows", Inventory{Installs: []Install{{Kind: "path", Key: `C:\Program Files (x86)\AnyDesk`}}}, nil},
		{"windows service case", "windows", Inventory{Services: []Service{{Kind: "windows_service", Name: "anydesk"}}}, []string{"anydesk"}},
		{"windows service look-alike", "windows", Inventory{Services: []Service{{Kind: "windows_service", Name: "AnyDeskMSI"}}}, nil},
		{"darwin bundle id", "darwin", Inventory{Installs: []Install{{Kind: "app_bundle", Key: "com.philandro.AnyDesk", Location: "/Users/a/Applications/AnyDesk.app"}}}, []string{"anydesk"}},
		{"darwin path case", "darwin", Inventory{Installs: []Install{{Kind: "path", Key: "/applications/anydesk.app/"}}}, []string{"anydesk"}},
		{"darwin bundle location", "darwin", Inventory{Installs: []Install{{Kind: "app_bundle", Key: "com.other", Location: "/Applications/AnyDesk.app"}}}, []string{"anydesk"}},
		{"linux path case-sensitive", "linux", Inventory{Installs: []Install{{Kind: "path", Key: "/opt/TeamViewer"}}}, nil},
		{"linux path", "linux", Inventory{Installs: []Install{{Kind: "path", Key: "/opt/teamviewer"}}}, []string{"teamviewer"}},
		{"linux package look-alike", "linux", Inventory{Installs: []Install{{Kind: "package", Key: "anydesk-tools"}}}, nil},
		{"linux desktop file", "linux", Inventory{Installs: []Install{{Kind: "desktop_file", Key: "anydesk.desktop"}}}, []string{"anydesk"}},
		{"linux unit without suffix in catalog", "linux", Inventory{Services: []Service{{Kind: "systemd", Name: "nosuch.service"}}}, []string{"xrdp_tool"}},
		{"unknown install kind", "linux", Inventory{Installs: []Install{{Kind: "rumour", Key: "anydesk"}}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := toolIDs(Match(testCatalog(), c.goos, &c.inv)); !slices.Equal(got, c.want) {
				t.Fatalf("tools %v, want %v", got, c.want)
			}
		})
	}
}

func TestMatchSockets(t *testing.T) {
	listen := Socket{Protocol: "tcp", LocalAddr: "0.0.0.0", LocalPort: 7070, Listening: true}
	inbound := Socket{Protocol: "tcp", LocalAddr: "10.0.0.2", LocalPort: 7070, RemoteAddr: "203.0.113.5", RemotePort: 50000}
	outbound := Socket{Protocol: "tcp", LocalAddr: "10.0.0.2", LocalPort: 50001, RemoteAddr: "198.51.100.1", RemotePort: 5938}
	web := Socket{Protocol: "tcp", LocalAddr: "10.0.0.2", LocalPort: 50002, RemoteAddr: "198.51.100.1", RemotePort: 443}
	with := func(s Socket, pid int32) Socket { s.PID = pid; return s }
	anydesk := Process{PID: 10, Name: "anydesk"}
	other := Process{PID: 11, Name: "nginx"}

	for _, c := range []struct {
		name          string
		inv           Inventory
		tool          string
		listening     int
		connections   int
		activeSession bool
	}{
		{"listener owned by the tool", Inventory{Processes: []Process{anydesk}, Sockets: []Socket{with(listen, 10)}}, "anydesk", 1, 0, false},
		{"listener owned by another process", Inventory{Processes: []Process{anydesk, other}, Sockets: []Socket{with(listen, 11)}}, "anydesk", 0, 0, false},
		{"listener owner unknown, tool installed", Inventory{Installs: []Install{{Kind: "package", Key: "anydesk"}}, Sockets: []Socket{listen}}, "anydesk", 1, 0, false},
		{"listener owner unknown, tool absent", Inventory{Sockets: []Socket{listen, inbound}}, "", 0, 0, false},
		{"inbound connection: active session", Inventory{Processes: []Process{anydesk}, Sockets: []Socket{with(listen, 10), with(inbound, 10)}}, "anydesk", 1, 1, true},
		{"inbound, owner unknown", Inventory{Processes: []Process{anydesk}, Sockets: []Socket{inbound}}, "anydesk", 0, 1, true},
		{"inbound owned by another process", Inventory{Processes: []Process{anydesk}, Sockets: []Socket{with(inbound, 11)}}, "anydesk", 0, 0, false},
		{"outbound to tool port, owner unknown", Inventory{Installs: []Install{{Kind: "path", Key: "/opt/teamviewer"}}, Sockets: []Socket{outbound}}, "teamviewer", 0, 1, false},
		{"outbound to 443, owner unknown", Inventory{Installs: []Install{{Kind: "path", Key: "/opt/chrome-remote-desktop"}}, Processes: []Process{{PID: 3, Name: "chrome-remote-desktop-host"}}, Sockets: []Socket{web}}, "chrome_remote_desktop", 0, 0, false},
		{"outbound to 443 owned by the tool", Inventory{Processes: []Process{{PID: 3, Name: "chrome-remote-desktop-host"}}, Sockets: []Socket{with(web, 3)}}, "chrome_remote_desktop", 0, 1, false},
		{"socket alone is no tool", Inventory{Sockets: []Socket{with(listen, 10)}}, "", 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ra := Match(testCatalog(), "linux", &c.inv)
			if c.tool == "" {
				if len(ra.Tools) != 0 {
					t.Fatalf("tools %v", toolIDs(ra))
				}
				return
			}
			tool := findTool(ra, c.tool)
			if tool == nil {
				t.Fatalf("%s not found: %v", c.tool, toolIDs(ra))
			}
			if len(tool.Listening) != c.listening || len(tool.Connections) != c.connections || tool.ActiveSession != c.activeSession {
				t.Fatalf("listening %v connections %v active %v", tool.Listening, tool.Connections, tool.ActiveSession)
			}
			for _, l := range tool.Listening {
				if l.RemoteAddress != "" || l.RemotePort != 0 {
					t.Fatalf("listener with a peer %v", l)
				}
			}
		})
	}
}

func TestMatchSessionProcess(t *testing.T) {
	inv := &Inventory{Processes: []Process{{PID: 5, Name: "TeamViewer_Desktop.exe"}}}
	tool := findTool(Match(testCatalog(), "windows", inv), "teamviewer")
	if tool == nil || !tool.ActiveSession || len(tool.Processes) != 1 {
		t.Fatalf("session process: %v", tool)
	}
	inv = &Inventory{Processes: []Process{{PID: 5, Name: "TeamViewer.exe"}}}
	if tool := findTool(Match(testCatalog(), "windows", inv), "teamviewer"); tool == nil || tool.ActiveSession {
		t.Fatalf("main process alone is not a session: %v", tool)
	}
}

func TestMatchDeterministicAndPassThrough(t *testing.T) {
	feat := &agentv1.OsRemoteAccess{Kind: "rdp", Enabled: true, Port: 3389, Source: "registry"}
	inv := &Inventory{
		Processes: []Process{{PID: 30, Name: "anydesk"}, {PID: 10, Name: "anydesk"}, {PID: 20, Name: "teamviewerd"}},
		Installs: []Install{
			{Kind: "package", Key: "anydesk", Location: "/var/lib/dpkg/status"},
			{Kind: "desktop_file", Key: "anydesk.desktop", Location: "/usr/share/applications/anydesk.desktop"},
			{Kind: "package", Key: "anydesk", Location: "/var/lib/dpkg/status"},
		},
		OSFeatures: []*agentv1.OsRemoteAccess{feat},
	}
	a := Match(testCatalog(), "linux", inv)
	slices.Reverse(inv.Processes)
	slices.Reverse(inv.Installs)
	b := Match(testCatalog(), "linux", inv)
	if !proto.Equal(a, b) {
		t.Fatalf("order of the inventory changed the result:\n%v\n%v", a, b)
	}
	if got := toolIDs(a); !slices.Equal(got, []string{"anydesk", "teamviewer"}) {
		t.Fatalf("tools %v", got)
	}
	ad := a.Tools[0]
	if ad.Processes[0].Pid != 10 || ad.Processes[1].Pid != 30 || len(ad.Installs) != 2 || ad.Installs[0].Kind != "desktop_file" {
		t.Fatalf("evidence order %v", ad)
	}
	if len(a.OsFeatures) != 1 || !proto.Equal(a.OsFeatures[0], feat) {
		t.Fatalf("os features %v", a.OsFeatures)
	}
	if ra := Match(nil, "linux", nil); ra == nil || len(ra.Tools) != 0 {
		t.Fatalf("nil catalog and inventory: %v", ra)
	}
}

// TestMatchFixture runs the Linux fixture root through Match with the test
// catalog: anydesk with its process, unit, package, desktop file, listener
// and inbound session; the look-alikes nowhere.
func TestMatchFixture(t *testing.T) {
	fsys := fixtureFS(t)
	inv, err := readLinuxTree(context.Background(), fsys, binary.LittleEndian, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv.Installs = append(inv.Installs, probeLinuxPaths(fsys, testCatalog())...)
	ra := Match(testCatalog(), "linux", inv)
	if got := toolIDs(ra); !slices.Equal(got, []string{"anydesk", "chrome_remote_desktop", "teamviewer"}) {
		t.Fatalf("tools %v", got)
	}
	ad := ra.Tools[0]
	if len(ad.Processes) != 1 || ad.Processes[0].Pid != 100 || ad.Processes[0].NotableArgs != nil {
		t.Errorf("anydesk processes %v", ad.Processes)
	}
	if len(ad.Services) != 1 || ad.Services[0].StartMode != "enabled" || len(ad.Installs) != 2 {
		t.Errorf("anydesk services %v installs %v", ad.Services, ad.Installs)
	}
	if len(ad.Listening) != 1 || ad.Listening[0].Pid != 100 || ad.Listening[0].LocalPort != 7070 {
		t.Errorf("anydesk listening %v", ad.Listening)
	}
	if len(ad.Connections) != 2 || !ad.ActiveSession {
		t.Errorf("anydesk connections %v active %v", ad.Connections, ad.ActiveSession)
	}
	crd := ra.Tools[1]
	if len(crd.Processes) != 1 || !slices.Equal(crd.Processes[0].NotableArgs, []string{"--pin", "--size"}) || len(crd.Connections) != 1 {
		t.Errorf("chrome remote desktop %v", crd)
	}
	if len(ra.OsFeatures) != 2 {
		t.Errorf("os features %v", ra.OsFeatures)
	}
}

// TestShippedCatalogAnyDesk checks the embedded catalog loads and finds
// AnyDesk in the fixture (the catalog is edited by hand; only its AnyDesk
// entry is relied on here).
func TestShippedCatalogAnyDesk(t *testing.T) {
	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := readLinuxTree(context.Background(), fixtureFS(t), binary.LittleEndian, nil)
	if err != nil {
		t.Fatal(err)
	}
	ra := Match(cat, "linux", inv)
	if ra.CatalogVersion != cat.Version || findTool(ra, "anydesk") == nil {
		t.Fatalf("anydesk not found with the shipped catalog: %v", toolIDs(ra))
	}
	for _, tool := range ra.Tools {
		for _, p := range tool.Processes {
			if p.Pid == 200 || p.Pid == 300 {
				t.Errorf("look-alike pid %d matched as %s", p.Pid, tool.ToolId)
			}
		}
	}
}

// TeamViewer's service starts TeamViewer_Desktop.exe with --IPCport and
// --Module for an incoming session (SigmaHQ); with the shipped catalog that
// is an active session, and only the flag names are reported.
func TestTeamViewerIncomingSessionWindows(t *testing.T) {
	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	inv := &Inventory{Processes: []Process{
		{PID: 100, Name: "TeamViewer_Service.exe", Path: `C:\Program Files\TeamViewer\TeamViewer_Service.exe`},
		{PID: 200, Name: "TeamViewer_Desktop.exe", Path: `C:\Program Files\TeamViewer\TeamViewer_Desktop.exe`,
			Args: []string{`C:\Program Files\TeamViewer\TeamViewer_Desktop.exe`, "--IPCport", "5939", "--Module", "1"}},
	}}
	ra := Match(cat, "windows", inv)
	if len(ra.GetTools()) != 1 || ra.GetTools()[0].GetToolId() != "teamviewer" || !ra.GetTools()[0].GetActiveSession() {
		t.Fatalf("tools %v", ra.GetTools())
	}
	var args []string
	for _, p := range ra.GetTools()[0].GetProcesses() {
		args = append(args, p.GetNotableArgs()...)
	}
	if strings.Join(args, " ") != "--IPCport --Module" {
		t.Fatalf("notable args %v", args)
	}
	// The service alone is no session.
	ra = Match(cat, "windows", &Inventory{Processes: inv.Processes[:1]})
	if ra.GetTools()[0].GetActiveSession() {
		t.Fatal("service alone counted as a session")
	}
}

func TestSystemdTemplateUnitMatchesInstances(t *testing.T) {
	names := []string{"chrome-remote-desktop@.service"}
	for name, want := range map[string]bool{
		"chrome-remote-desktop@alice.service":  true,
		"chrome-remote-desktop@.service":       true,
		"chrome-remote-desktop.service":        false,
		"chrome-remote-desktop@alice.timer":    false,
		"xchrome-remote-desktop@alice.service": false,
	} {
		if got := serviceMatches(Service{Kind: "systemd", Name: name}, names); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if serviceMatches(Service{Kind: "launchd", Name: "chrome-remote-desktop@alice.service"}, names) {
		t.Error("template matched a launchd job")
	}
}
