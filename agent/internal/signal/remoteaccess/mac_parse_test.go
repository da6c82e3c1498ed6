package remoteaccess

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseMacPS(t *testing.T) {
	loc := time.FixedZone("test", 3600)
	procs, err := parseMacPS(readTestdata(t, "mac/ps-pid-uid-lstart-comm.constructed.txt"), loc)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 6 {
		t.Fatalf("got %d processes, want 6: %+v", len(procs), procs)
	}
	want := Process{PID: 412, Name: "AnyDesk", Path: "/Applications/AnyDesk.app/Contents/MacOS/AnyDesk", User: "501",
		Started: time.Date(2026, 11, 23, 9, 15, 2, 0, loc)}
	if got := procs[2]; !reflect.DeepEqual(got, want) {
		t.Errorf("procs[2] = %+v, want %+v", got, want)
	}
	chrome := procs[3]
	if chrome.Name != "Google Chrome Helper" || !chrome.Started.Equal(time.Date(2026, 11, 3, 10, 0, 0, 0, loc)) {
		t.Errorf("comm with spaces / padded day: %+v", chrome)
	}
	if bash := procs[5]; bash.Name != "(bash)" || bash.Path != "" {
		t.Errorf("non-path comm: %+v", bash)
	}
}

func TestParseMacPSArgs(t *testing.T) {
	procs, err := parseMacPS(readTestdata(t, "mac/ps-pid-uid-lstart-comm.constructed.txt"), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	args, err := parseMacPSArgs(readTestdata(t, "mac/ps-pid-args.constructed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int32][]string{}
	for _, p := range procs {
		byPID[p.PID] = splitMacArgs(args[p.PID], p.Path)
	}
	if got, want := byPID[412], []string{"/Applications/AnyDesk.app/Contents/MacOS/AnyDesk", "--service", "--backend"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AnyDesk argv = %q, want %q", got, want)
	}
	if got := byPID[845]; len(got) != 3 || got[0] != procs[3].Path || got[1] != "--type=utility" {
		t.Errorf("Chrome helper argv = %q", got)
	}
	if got := byPID[977]; !reflect.DeepEqual(got, []string{"-bash"}) {
		t.Errorf("bash argv = %q", got)
	}
}

func TestSplitMacArgs(t *testing.T) {
	for _, c := range []struct {
		args, exe string
		want      []string
	}{
		{"", "/x", nil},
		{"/a b/c --x", "/a b/c", []string{"/a b/c", "--x"}},
		{"/a b/cd --x", "/a b/c", []string{"/a", "b/cd", "--x"}}, // exe is only a prefix of a longer word
		{"/a b/c", "/a b/c", []string{"/a b/c"}},
		{"  x   y ", "", []string{"x", "y"}},
	} {
		if got := splitMacArgs(c.args, c.exe); !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitMacArgs(%q, %q) = %q, want %q", c.args, c.exe, got, c.want)
		}
	}
}

func TestParseMacNetstatPIDColumn(t *testing.T) {
	socks, err := parseMacNetstat(readTestdata(t, "mac/netstat-anv-tcp-pid.constructed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Protocol: "tcp", LocalAddr: "192.168.1.23", LocalPort: 50512, RemoteAddr: "140.82.112.25", RemotePort: 443, PID: 412},
		{Protocol: "tcp", LocalAddr: "*", LocalPort: 5900, RemoteAddr: "*", Listening: true, PID: 1},
		{Protocol: "tcp", LocalAddr: "fe80::1%lo0", LocalPort: 631, RemoteAddr: "*", Listening: true, PID: 210},
		{Protocol: "tcp", LocalAddr: "*", LocalPort: 3283, RemoteAddr: "*", Listening: true, PID: 901},
	}
	if !reflect.DeepEqual(socks, want) {
		t.Errorf("got\n%+v\nwant\n%+v", socks, want)
	}
}

func TestParseMacNetstatProcessPIDColumn(t *testing.T) {
	socks, err := parseMacNetstat(readTestdata(t, "mac/netstat-anv-tcp-process-pid.constructed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 3 {
		t.Fatalf("got %d sockets, want 3 (CLOSED dropped): %+v", len(socks), socks)
	}
	for i, pid := range []int32{412, 845, 1} {
		if socks[i].PID != pid {
			t.Errorf("socks[%d].PID = %d, want %d", i, socks[i].PID, pid)
		}
	}
	if !socks[2].Listening || socks[2].LocalPort != 5900 {
		t.Errorf("listener = %+v", socks[2])
	}
}

func TestParseMacNetstatNoHeader(t *testing.T) {
	socks, err := parseMacNetstat([]byte("tcp4 0 0 10.0.0.1.22 10.0.0.2.5555 ESTABLISHED 1 2 3\nudp4 0 0 *.5353 *.*\ntcp4 0 0 bad *.* LISTEN\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 1 || socks[0].PID != 0 || socks[0].LocalPort != 22 || socks[0].RemotePort != 5555 {
		t.Errorf("got %+v", socks)
	}
}

func TestSplitMacAddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		addr string
		port uint32
		ok   bool
	}{
		{"127.0.0.1.8080", "127.0.0.1", 8080, true},
		{"*.*", "*", 0, true},
		{"::1.631", "::1", 631, true},
		{"x.99999", "", 0, false},
		{".5", "", 0, false},
		{"5.", "", 0, false},
		{"nodot", "", 0, false},
	} {
		a, p, ok := splitMacAddr(c.in)
		if a != c.addr || p != c.port || ok != c.ok {
			t.Errorf("splitMacAddr(%q) = %q, %d, %v", c.in, a, p, ok)
		}
	}
}

func TestParseLaunchctlDisabled(t *testing.T) {
	d, err := parseLaunchctlDisabled(readTestdata(t, "mac/launchctl-print-disabled-system.constructed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"com.apple.ftpd": true, "com.apple.screensharing": false,
		"com.apple.mdmclient.daemon.runatboot": true, "org.chromium.chromoting.broker": false}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %v, want %v (the login item block must be ignored)", d, want)
	}
	d, err = parseLaunchctlDisabled(readTestdata(t, "mac/launchctl-print-disabled-system-truefalse.constructed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]bool{"com.apple.screensharing": true, "com.apple.ftpd": true, "com.teamviewer.teamviewer_service": false}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("true/false form: got %v, want %v", d, want)
	}
	if _, err := parseLaunchctlDisabled([]byte("Unrecognized subcommand\n")); err == nil {
		t.Error("no block: want an error")
	}
}

func TestParseLaunchdPlist(t *testing.T) {
	for _, c := range []struct{ file, label, program string }{
		{"mac/launchagent-org.chromium.chromoting-chrome-remote-desktop.plist", "org.chromium.chromoting",
			"/Library/PrivilegedHelperTools/@@HOST_BUNDLE_NAME@@/Contents/MacOS/remoting_me2me_host_service"},
		{"mac/launchagent-org.chromium.chromoting-chrome-remote-desktop.DERIVED-binary.plist", "org.chromium.chromoting",
			"/Library/PrivilegedHelperTools/@@HOST_BUNDLE_NAME@@/Contents/MacOS/remoting_me2me_host_service"},
		{"mac/launchdaemon-org.chromium.chromoting.broker-chrome-remote-desktop.plist", "org.chromium.chromoting.broker",
			"/Library/PrivilegedHelperTools/@@HOST_BUNDLE_NAME@@/Contents/MacOS/remoting_agent_process_broker"},
	} {
		j, err := parseLaunchdPlist(readTestdata(t, c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if j.Label != c.label || j.Program != c.program || j.Disabled {
			t.Errorf("%s: got %+v", c.file, j)
		}
	}
	if _, err := parseLaunchdPlist(readTestdata(t, "mac/Info-AnyDesk.constructed.plist")); err == nil {
		t.Error("plist without Label: want an error")
	}
	if _, err := parseLaunchdPlist([]byte("not a plist")); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestParseInfoPlist(t *testing.T) {
	b, err := parseInfoPlist(readTestdata(t, "mac/Info-AnyDesk.constructed.plist"))
	if err != nil || b != (macBundle{ID: "com.philandro.anydesk", Version: "9.0.1", Name: "AnyDesk"}) {
		t.Errorf("XML: %+v, %v", b, err)
	}
	b, err = parseInfoPlist(readTestdata(t, "mac/Info-TeamViewer.constructed-binary.plist"))
	if err != nil || b != (macBundle{ID: "com.teamviewer.TeamViewer", Version: "15.60.3", Name: "TeamViewer"}) {
		t.Errorf("binary, CFBundleVersion fallback: %+v, %v", b, err)
	}
	if _, err := parseInfoPlist(readTestdata(t, "mac/launchdaemon-org.chromium.chromoting.broker-chrome-remote-desktop.plist")); err == nil {
		t.Error("no CFBundleIdentifier: want an error")
	}
}

func TestMacFeatures(t *testing.T) {
	socks := []Socket{{Protocol: "tcp", LocalAddr: "*", LocalPort: 5900, Listening: true}}
	f := macScreenSharingFeature(map[string]bool{"com.apple.screensharing": false}, socks)
	if f.GetKind() != "screen_sharing" || !f.GetEnabled() || !f.GetListening() || f.GetPort() != 5900 {
		t.Errorf("enabled: %v", f)
	}
	if f := macScreenSharingFeature(map[string]bool{}, nil); f.GetEnabled() || f.GetListening() {
		t.Errorf("absent label is disabled: %v", f)
	}
	if f := macScreenSharingFeature(nil, nil); f.GetEnabled() || f.GetSource() != "" {
		t.Errorf("launchctl unavailable: %v", f)
	}
	procs := []Process{{PID: 901, Name: "ARDAgent"}}
	if f := macRemoteManagementFeature(procs, false, nil); !f.GetEnabled() || f.GetKind() != "remote_management" {
		t.Errorf("ARDAgent running: %v", f)
	}
	if f := macRemoteManagementFeature(nil, true, nil); !f.GetEnabled() {
		t.Errorf("RemoteManagement.launchd: %v", f)
	}
	if f := macRemoteManagementFeature(nil, false, nil); f.GetEnabled() {
		t.Errorf("nothing: %v", f)
	}
	if !parseRemoteManagementLaunchd([]byte("enabled\n")) || parseRemoteManagementLaunchd([]byte("disabled")) {
		t.Error("parseRemoteManagementLaunchd")
	}
}

// TestMacFileInventory builds a small macOS tree and reads its launchd
// jobs and app bundles the way readInventory does for any root.
func TestMacFileInventory(t *testing.T) {
	root := t.TempDir()
	put := func(rel string, b []byte) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("Library/LaunchDaemons/org.chromium.chromoting.broker.plist", readTestdata(t, "mac/launchdaemon-org.chromium.chromoting.broker-chrome-remote-desktop.plist"))
	put("Users/alice/Library/LaunchAgents/org.chromium.chromoting.plist", readTestdata(t, "mac/launchagent-org.chromium.chromoting-chrome-remote-desktop.DERIVED-binary.plist"))
	put("Library/LaunchAgents/broken.plist", []byte("<plist"))
	put("Applications/AnyDesk.app/Contents/Info.plist", readTestdata(t, "mac/Info-AnyDesk.constructed.plist"))
	put("Users/alice/Applications/TeamViewer.app/Contents/Info.plist", readTestdata(t, "mac/Info-TeamViewer.constructed-binary.plist"))
	put("Applications/Empty.app/Contents/MacOS/x", nil)

	svcs := macReadLaunchdJobs(root, map[string]bool{"org.chromium.chromoting.broker": true}, nil)
	wantSvcs := []Service{
		{Kind: "launchd", Name: "org.chromium.chromoting.broker", State: "disabled", StartMode: "disabled"},
		{Kind: "launchd", Name: "org.chromium.chromoting", State: "enabled", StartMode: "auto"},
	}
	if !reflect.DeepEqual(svcs, wantSvcs) {
		t.Errorf("services:\n%+v\nwant\n%+v", svcs, wantSvcs)
	}
	svcs = macReadLaunchdJobs(root, nil, map[string]bool{
		"/Library/PrivilegedHelperTools/@@HOST_BUNDLE_NAME@@/Contents/MacOS/remoting_agent_process_broker": true})
	if svcs[0].State != "running" || svcs[0].StartMode != "on_demand" {
		t.Errorf("running broker (MachServices only: on demand): %+v", svcs[0])
	}
	ins := macReadAppBundles(root)
	wantIns := []Install{
		{Kind: "app_bundle", Key: "com.philandro.anydesk", Location: "/Applications/AnyDesk.app", Version: "9.0.1"},
		{Kind: "app_bundle", Key: "com.teamviewer.TeamViewer", Location: "/Users/alice/Applications/TeamViewer.app", Version: "15.60.3"},
	}
	if !reflect.DeepEqual(ins, wantIns) {
		t.Errorf("installs:\n%+v\nwant\n%+v", ins, wantIns)
	}

	put("Applications/RealVNC/VNC Server.app/Contents/Info.plist", nil)
	put("usr/local/bin/piactl", nil)
	put("Library/PrivilegedHelperTools/com.nordvpn.macos.helper", nil)
	var keys []string
	for _, in := range macReadPaths(root) {
		if in.Kind != "path" || in.Location != in.Key {
			t.Errorf("bad path install %+v", in)
		}
		keys = append(keys, in.Key)
	}
	wantKeys := []string{
		"/Applications/RealVNC",
		"/Library/PrivilegedHelperTools/com.nordvpn.macos.helper",
		"/Library/LaunchDaemons/org.chromium.chromoting.broker.plist",
		"/Library/LaunchAgents/broken.plist",
		"/usr/local/bin",
		"/usr/local/bin/piactl",
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("paths:\n%q\nwant\n%q", keys, wantKeys)
	}
}
