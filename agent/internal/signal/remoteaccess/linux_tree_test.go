package remoteaccess

import (
	"context"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
)

// fixtureLinks are the links of testdata/root-linux that git and every
// GOOS cannot be trusted to keep: executables and socket descriptors.
func fixtureLinks() map[string]string {
	return map[string]string{
		"proc/100/exe":  "/usr/bin/anydesk",
		"proc/100/fd/0": "/dev/null",
		"proc/100/fd/3": "socket:[5001]",
		"proc/100/fd/4": "socket:[5002]",
		"proc/100/fd/5": "socket:[5005]",
		"proc/200/exe":  "/usr/bin/anydesk-helper",
		"proc/300/exe":  "/home/alice/myanydesk (deleted)",
		"proc/400/exe":  "/opt/google/chrome-remote-desktop/chrome-remote-desktop-host",
		"proc/400/fd/7": "socket:[5006]",
		"proc/500/fd/3": "socket:[5003]",
	}
}

// fixtureFS is testdata/root-linux as an fstest.MapFS with fixtureLinks.
func fixtureFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	root := filepath.Join("testdata", "root-linux")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range fixtureLinks() {
		m[name] = &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
	}
	return m
}

func procByPID(inv *Inventory, pid int32) *Process {
	for i := range inv.Processes {
		if inv.Processes[i].PID == pid {
			return &inv.Processes[i]
		}
	}
	return nil
}

func checkFixtureInventory(t *testing.T, inv *Inventory) {
	t.Helper()
	if len(inv.Processes) != 6 {
		t.Fatalf("%d processes, want 6: %+v", len(inv.Processes), inv.Processes)
	}
	p := procByPID(inv, 100)
	boot := time.Unix(1763888400, 0).UTC()
	if p.Name != "anydesk" || p.Path != "/usr/bin/anydesk" || p.User != "root" ||
		!p.Started.Equal(boot.Add(120*time.Second)) || !slices.Equal(p.Args, []string{"/usr/bin/anydesk", "--service"}) {
		t.Errorf("anydesk process %+v", *p)
	}
	if p := procByPID(inv, 300); p.Path != "/home/alice/myanydesk" || p.User != "alice" {
		t.Errorf("myanydesk process %+v", *p)
	}
	if p := procByPID(inv, 400); p.Name != "chrome-remote-desktop-host" {
		t.Errorf("truncated comm not completed from exe: %q", p.Name)
	}
	if p := procByPID(inv, 600); p.Name != "weird ) name" || !p.Started.Equal(boot.Add(170*time.Second)) {
		t.Errorf("process with ')' in comm %+v", *p)
	}

	wantSockets := []Socket{
		{Protocol: "tcp", LocalAddr: "0.0.0.0", LocalPort: 7070, Listening: true, PID: 100},
		{Protocol: "tcp", LocalAddr: "192.168.1.10", LocalPort: 7070, RemoteAddr: "203.0.113.5", RemotePort: 50000, PID: 100},
		{Protocol: "tcp", LocalAddr: "127.0.0.1", LocalPort: 5901, Listening: true, PID: 500},
		{Protocol: "tcp", LocalAddr: "192.168.1.10", LocalPort: 54322, RemoteAddr: "142.186.216.34", RemotePort: 443, PID: 400},
		{Protocol: "tcp", LocalAddr: "::", LocalPort: 22, Listening: true},
		{Protocol: "tcp", LocalAddr: "127.0.0.1", LocalPort: 7070, RemoteAddr: "127.0.0.1", RemotePort: 50001, PID: 100},
		{Protocol: "udp", LocalAddr: "0.0.0.0", LocalPort: 5353, Listening: true},
	}
	if !slices.Equal(inv.Sockets, wantSockets) {
		t.Errorf("sockets\n got %+v\nwant %+v", inv.Sockets, wantSockets)
	}

	wantServices := []Service{
		{Kind: "systemd", Name: "anydesk.service", StartMode: "enabled"},
		{Kind: "systemd", Name: "xrdp.service", StartMode: "installed"},
	}
	if !slices.Equal(inv.Services, wantServices) {
		t.Errorf("services %+v", inv.Services)
	}
	wantInstalls := []Install{
		{Kind: "package", Key: "anydesk", Location: "/var/lib/dpkg/status", Version: "6.3.2"},
		{Kind: "package", Key: "xrdp", Location: "/var/lib/dpkg/status", Version: "0.9.21.1-1"},
		{Kind: "desktop_file", Key: "anydesk.desktop", Location: "/usr/share/applications/anydesk.desktop"},
		{Kind: "desktop_file", Key: "myanydesk.desktop", Location: "/usr/share/applications/myanydesk.desktop"},
	}
	if !slices.Equal(inv.Installs, wantInstalls) {
		t.Errorf("installs\n got %+v\nwant %+v", inv.Installs, wantInstalls)
	}
	var kinds []string
	for _, f := range inv.OSFeatures {
		kinds = append(kinds, f.Kind)
		switch f.Kind {
		case "xrdp":
			if f.Enabled || f.Listening || f.Source != "systemd:xrdp.service" {
				t.Errorf("xrdp %v", f)
			}
		case "vnc":
			if !f.Enabled || !f.Listening || f.Port != 5901 || f.Source != "process:x11vnc" {
				t.Errorf("vnc %v", f)
			}
		}
	}
	if !slices.Equal(kinds, []string{"vnc", "xrdp"}) {
		t.Errorf("os features %v", inv.OSFeatures)
	}
}

func TestReadLinuxTreeFixture(t *testing.T) {
	inv, err := readLinuxTree(context.Background(), fixtureFS(t), binary.LittleEndian, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureInventory(t, inv)
}

func TestProbeLinuxPaths(t *testing.T) {
	cat := &policies.RemoteAccessCatalog{Tools: []policies.Tool{
		{ID: "a", Linux: policies.OSMatch{Paths: []string{"/opt/teamviewer", "/opt/teamviewer/", "/opt/nosuch", "/", "../../etc/passwd"}}},
		{ID: "b", Linux: policies.OSMatch{Paths: []string{"/opt/teamviewer/tv_bin/TeamViewer", "/etc/passwd"}}},
	}}
	got := probeLinuxPaths(fixtureFS(t), cat)
	want := []Install{
		{Kind: "path", Key: "/opt/teamviewer", Location: "/opt/teamviewer"},
		{Kind: "path", Key: "/etc/passwd", Location: "/etc/passwd"},
		{Kind: "path", Key: "/opt/teamviewer/tv_bin/TeamViewer", Location: "/opt/teamviewer/tv_bin/TeamViewer"},
	}
	slices.SortFunc(got, func(a, b Install) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(want, func(a, b Install) int { return strings.Compare(a.Key, b.Key) })
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if probeLinuxPaths(fixtureFS(t), nil) != nil {
		t.Fatal("nil catalog probed")
	}
}

func TestReadLinuxTreeEmpty(t *testing.T) {
	if _, err := readLinuxTree(context.Background(), fstest.MapFS{}, binary.LittleEndian, nil); err == nil {
		t.Fatal("empty tree read without error")
	}
	inv, err := readLinuxTree(context.Background(), fstest.MapFS{"etc/hostname": {Data: []byte("x")}}, binary.LittleEndian, nil)
	if err != nil || len(inv.Processes)+len(inv.Sockets)+len(inv.Installs)+len(inv.Services) != 0 {
		t.Fatalf("%+v, %v", inv, err)
	}
}

func TestReadLinuxTreeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readLinuxTree(ctx, fixtureFS(t), binary.LittleEndian, nil); err == nil {
		t.Fatal("cancelled read succeeded")
	}
}

func TestParseLinuxHexAddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		addr string
		port uint32
		ok   bool
	}{
		{"0100007F:1B9E", "127.0.0.1", 7070, true},
		{"00000000:0016", "0.0.0.0", 22, true},
		{"00000000000000000000000001000000:0016", "::1", 22, true},
		{"B80D0120000000000000000001000000:01BB", "2001:db8::1", 443, true},
		{"0100007F", "", 0, false},
		{"0100007:1B9E", "", 0, false},
		{"0100007G:1B9E", "", 0, false},
		{"0100007F:1B9E0", "", 0, false},
	} {
		addr, port, ok := parseLinuxHexAddr([]byte(c.in), binary.LittleEndian)
		if addr != c.addr || port != c.port || ok != c.ok {
			t.Errorf("%s: %s %d %v", c.in, addr, port, ok)
		}
	}
}

func TestParseLinuxSmallFiles(t *testing.T) {
	if uid, ok := parseStatusUID([]byte("Name:\tx\nUid:\t1000\t0\t0\t0\n")); !ok || uid != 0 {
		t.Errorf("effective uid %d %v", uid, ok)
	}
	if _, ok := parseStatusUID([]byte("Uid:\n")); ok {
		t.Error("empty Uid line parsed")
	}
	if _, ok := parseStatStartTime([]byte("1 (x) S 1")); ok {
		t.Error("short stat parsed")
	}
	if args := parseCmdline([]byte("a\x00\x00b\x00")); !slices.Equal(args, []string{"a", "", "b"}) {
		t.Errorf("cmdline %q", args)
	}
	if parseCmdline([]byte("\x00")) != nil {
		t.Error("empty cmdline (kernel thread) not nil")
	}
	for in, want := range map[string]uint64{"socket:[42]": 42, "socket:[]": 0, "pipe:[42]": 0, "socket:[0]": 0, "socket:[42": 0} {
		if got, _ := parseSocketLink(in); got != want {
			t.Errorf("%s: %d", in, got)
		}
	}
	users := parsePasswd([]byte("root:x:0:0::/root:/bin/sh\n#c:x:5:5\nbad\nroot2:x:0:0\nbob:x:12:12:\n"))
	if len(users) != 2 || users[0] != "root" || users[12] != "bob" {
		t.Errorf("passwd %v", users)
	}
	if got := linuxProcessName("chrome-remote-d", "", []string{"/opt/x/chrome-remote-desktop-host --flag"}); got != "chrome-remote-desktop-host" {
		t.Errorf("name from argv0 %q", got)
	}
	if got := linuxProcessName("anydesk", "/usr/bin/anydesk-helper", nil); got != "anydesk" {
		t.Errorf("untruncated comm replaced: %q", got)
	}
}

func FuzzParseLinuxProcNet(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp"} {
		b, err := os.ReadFile(filepath.Join("testdata", "root-linux", "proc", "net", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("header\n 0: :0 :0 0A 0 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, proto := range []string{"tcp", "udp"} {
			socks, err := parseLinuxProcNet(b, proto, binary.LittleEndian)
			if err != nil {
				continue
			}
			for _, s := range socks {
				if s.Protocol != proto || s.LocalPort == 0 || s.LocalPort > 65535 || s.RemotePort > 65535 || s.LocalAddr == "" {
					t.Fatalf("bad socket %+v", s)
				}
				if s.Listening != (s.RemotePort == 0) || s.Listening != (s.RemoteAddr == "") {
					t.Fatalf("listening and peer disagree: %+v", s)
				}
			}
		}
	})
}

// FuzzParseLinuxFiles feeds the same bytes to the small /proc, /etc and
// dpkg parsers: none may panic, and what they return must be well formed.
func FuzzParseLinuxFiles(f *testing.F) {
	for _, name := range []string{"proc/100/stat", "proc/600/stat", "proc/100/status", "proc/100/cmdline", "etc/passwd", "var/lib/dpkg/status", "proc/stat"} {
		b, err := os.ReadFile(filepath.Join("testdata", "root-linux", filepath.FromSlash(name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStatStartTime(b)
		parseStatusUID(b)
		parseCmdline(b)
		parseLinuxBootTime(b)
		for uid, name := range parsePasswd(b) {
			if name == "" || strings.Contains(name, ":") {
				t.Fatalf("uid %d name %q", uid, name)
			}
		}
		for _, in := range parseDpkgStatus(b) {
			if in.Kind != "package" || in.Key == "" {
				t.Fatalf("install %+v", in)
			}
		}
		parseSocketLink(string(b))
	})
}
