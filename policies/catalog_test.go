package policies

import (
	"os"
	"strings"
	"testing"
)

func loadCatalog(t *testing.T) *RemoteAccessCatalog {
	t.Helper()
	c, err := RemoteAccess(FS())
	if err != nil {
		t.Fatalf("embedded remote-access catalog: %v", err)
	}
	return c
}

func TestRemoteAccessCatalog(t *testing.T) {
	c := loadCatalog(t)
	if len(c.Version) != 64 {
		t.Errorf("Version = %q, want a hex SHA-256", c.Version)
	}
	count := map[string]int{}
	ids := map[string]bool{}
	firstVPN := ""
	for _, tool := range c.Tools {
		count[tool.Category]++
		ids[tool.ID] = true
		if tool.Category == CategoryVPN && firstVPN == "" {
			firstVPN = tool.ID
		}
		https := false
		for _, s := range tool.Sources {
			https = https || strings.HasPrefix(s, "https://")
		}
		if !https {
			t.Errorf("%s: no https source", tool.ID)
		}
	}
	t.Logf("tools per category: %v (total %d)", count, len(c.Tools))
	if n := count[CategoryRemoteDesktop] + count[CategoryRMM]; n < 80 {
		t.Errorf("%d remote_desktop+rmm tools, want >= 80", n)
	}
	if count[CategoryVPN] < 15 {
		t.Errorf("%d vpn tools, want >= 15", count[CategoryVPN])
	}
	if firstVPN != "astrill" {
		t.Errorf("first vpn is %q, want astrill", firstVPN)
	}
	must := []string{
		// Remote desktop / RMM tools named in the DPRK IT-worker reporting.
		"anydesk", "teamviewer", "chrome_remote_desktop", "rustdesk", "jump_desktop_connect",
		"anyviewer", "logmein", "gotomypc", "screenconnect", "splashtop",
		// Tunnels (threat-signals §3.3).
		"ngrok", "cloudflared", "tailscale", "zerotier", "frp", "chisel", "netbird",
		"vscode_dev_tunnels", "localxpose", "tmate", "pitunnel", "dataplicity", "remoteit",
		"teleport_connect", "twingate",
		// Stay-awake tools (§2.3).
		"caffeine", "mouse_jiggle", "mouse_jiggler", "move_mouse", "amphetamine",
		"keepingyouawake", "dont_sleep", "jiggler_mac",
	}
	for _, id := range must {
		if !ids[id] {
			t.Errorf("catalog lacks %q", id)
		}
	}
	for _, tool := range c.Tools {
		if tool.ID == "chrome_remote_desktop" {
			for _, a := range []string{"--pin", "--code", "--redirect-url", "--name"} {
				if !strings.Contains(strings.Join(tool.NotableArgs, " "), a) {
					t.Errorf("chrome_remote_desktop lacks notable arg %s", a)
				}
			}
		}
	}
}

// good returns a minimal valid tool.
func good(id string) Tool {
	return Tool{
		ID: id, Name: "Tool " + id, Vendor: "V", Category: CategoryRemoteDesktop,
		Sources: []string{"https://example.com/" + id},
		Windows: OSMatch{Processes: []string{id + ".exe"}},
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name  string
		tools func() []Tool
		want  string
	}{
		{"duplicate id", func() []Tool {
			a := good("aa")
			b := good("aa")
			b.Windows.Processes = []string{"bb.exe"}
			return []Tool{a, b}
		}, "duplicate id"},
		{"bad id", func() []Tool { return []Tool{good("Bad-ID")} }, "id must match"},
		{"unknown category", func() []Tool { a := good("aa"); a.Category = "remote"; return []Tool{a} }, "category"},
		{"no source", func() []Tool { a := good("aa"); a.Sources = nil; return []Tool{a} }, "no source"},
		{"source not a URL", func() []Tool { a := good("aa"); a.Sources = []string{"LOLRMM anydesk.yaml"}; return []Tool{a} }, "not an http(s) URL"},
		{"nothing to match", func() []Tool { a := good("aa"); a.Windows = OSMatch{}; return []Tool{a} }, "nothing to match"},
		{"name missing", func() []Tool { a := good("aa"); a.Name = ""; return []Tool{a} }, "name missing"},
		{"system process svchost.exe", func() []Tool { a := good("aa"); a.Windows.Processes = []string{"svchost.exe"}; return []Tool{a} }, "common system process"},
		{"system process SVCHOST.EXE", func() []Tool { a := good("aa"); a.Windows.Processes = []string{"SVCHOST.EXE"}; return []Tool{a} }, "common system process"},
		{"system process path", func() []Tool { a := good("aa"); a.Linux.Processes = []string{"/usr/bin/sshd"}; return []Tool{a} }, "common system process"},
		{"system session process", func() []Tool { a := good("aa"); a.MacOS.SessionProcesses = []string{"WindowServer"}; return []Tool{a} }, "common system process"},
		{"system service", func() []Tool { a := good("aa"); a.Linux.Services = []string{"sshd.service"}; return []Tool{a} }, "common system service"},
		{"system app", func() []Tool { a := good("aa"); a.MacOS.Processes = []string{"Finder.app"}; return []Tool{a} }, "common system process"},
		{"path separator in process", func() []Tool { a := good("aa"); a.Windows.Processes = []string{`C:\Tools\x.exe`}; return []Tool{a} }, "path separator"},
		{"empty process", func() []Tool { a := good("aa"); a.Windows.Processes = []string{""}; return []Tool{a} }, "empty string"},
		{"blank service", func() []Tool { a := good("aa"); a.Windows.Services = []string{"  "}; return []Tool{a} }, "empty string"},
		{"padded process", func() []Tool { a := good("aa"); a.Windows.Processes = []string{" aa.exe"}; return []Tool{a} }, "white space"},
		{"glob in processes", func() []Tool { a := good("aa"); a.Windows.Processes = []string{"rustdesk*.exe"}; return []Tool{a} }, "globs are not allowed"},
		{"glob in paths", func() []Tool { a := good("aa"); a.Windows.Paths = []string{`C:\Program Files\X\*`}; return []Tool{a} }, "globs are not allowed"},
		{"glob in bundle id", func() []Tool { a := good("aa"); a.MacOS.BundleIDs = []string{"com.x.?"}; return []Tool{a} }, "globs are not allowed"},
		{"bad uninstall glob", func() []Tool { a := good("aa"); a.Windows.UninstallNames = []string{"X[*"}; return []Tool{a} }, "not a valid glob"},
		{"glob inside domain", func() []Tool { a := good("aa"); a.Domains = []string{"relay-*.example.com"}; return []Tool{a} }, "glob is only allowed"},
		{"empty domain", func() []Tool { a := good("aa"); a.Domains = []string{""}; return []Tool{a} }, "bad domain"},
		{"duplicate process in tool", func() []Tool { a := good("aa"); a.Windows.Processes = []string{"aa.exe", "AA.EXE"}; return []Tool{a} }, "listed twice"},
		{"process and session process", func() []Tool { a := good("aa"); a.Windows.SessionProcesses = []string{"aa.exe"}; return []Tool{a} }, "listed twice"},
		{"duplicate service", func() []Tool { a := good("aa"); a.Windows.Services = []string{"X", "x"}; return []Tool{a} }, "listed twice"},
		{"process claimed twice", func() []Tool {
			a := good("aa")
			b := good("bb")
			b.Linux.Processes = []string{"aa"}
			return []Tool{a, b}
		}, "also claimed by aa"},
		{"bad port", func() []Tool { a := good("aa"); a.Ports = []Port{{Protocol: "sctp", Port: 1}}; return []Tool{a} }, "bad port"},
		{"zero port", func() []Tool { a := good("aa"); a.Ports = []Port{{Protocol: "tcp"}}; return []Tool{a} }, "bad port"},
		{"empty adapter", func() []Tool { a := good("aa"); a.Adapters = []string{""}; return []Tool{a} }, "empty string"},
		{"empty notable arg", func() []Tool { a := good("aa"); a.NotableArgs = []string{""}; return []Tool{a} }, "empty string"},
		{"client_id file and registry", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidReg(`HKLM\SOFTWARE\X`, "ID")}
			a.Windows.ClientID[0].File = `%ProgramData%\x`
			return []Tool{a}
		}, "both file and registry"},
		{"client_id empty", func() []Tool { a := good("aa"); a.Linux.ClientID = []ClientIDSpec{{Source: srcURL}}; return []Tool{a} }, "neither file nor registry"},
		{"client_id unknown format", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidFile("/etc/x.conf", "ini", "id")}
			return []Tool{a}
		}, "format"},
		{"client_id bad key", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidFile("/etc/x.conf", ClientIDKeyValue, "a key")}
			return []Tool{a}
		}, "key"},
		{"client_id relative", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidFile("etc/x.conf", ClientIDKeyValue, "id")}
			return []Tool{a}
		}, "clean absolute path"},
		{"client_id dotdot", func() []Tool {
			a := good("aa")
			a.MacOS.ClientID = []ClientIDSpec{cidFile("/etc/../x.conf", ClientIDKeyValue, "id")}
			return []Tool{a}
		}, "clean absolute path"},
		{"client_id partial glob", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidFile("/home/a*/x.conf", ClientIDKeyValue, "id")}
			return []Tool{a}
		}, "whole"},
		{"client_id windows prefix", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidFile(`C:\ProgramData\x.conf`, ClientIDKeyValue, "id")}
			return []Tool{a}
		}, "must start with"},
		{"client_id windows dotdot", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidFile(`%ProgramData%\..\x.conf`, ClientIDKeyValue, "id")}
			return []Tool{a}
		}, ".. element"},
		{"client_id windows slash", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidFile(`%ProgramData%\a/b.conf`, ClientIDKeyValue, "id")}
			return []Tool{a}
		}, "separator"},
		{"client_id plist on windows", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidFile(`%ProgramData%\x.plist`, ClientIDPlist, "id")}
			return []Tool{a}
		}, "macOS format"},
		{"client_id registry on linux", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidReg(`HKLM\SOFTWARE\X`, "ID")}
			return []Tool{a}
		}, "windows only"},
		{"client_id registry hive", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidReg(`HKCU\SOFTWARE\X`, "ID")}
			return []Tool{a}
		}, "key under HKLM"},
		{"client_id registry value", func() []Tool {
			a := good("aa")
			a.Windows.ClientID = []ClientIDSpec{cidReg(`HKLM\SOFTWARE\X`, "")}
			return []Tool{a}
		}, "value"},
		{"client_id no source", func() []Tool {
			a := good("aa")
			a.Linux.ClientID = []ClientIDSpec{cidFile("/etc/x.conf", ClientIDKeyValue, "id")}
			a.Linux.ClientID[0].Source = ""
			return []Tool{a}
		}, "not an http(s) URL"},
		{"client_id only", func() []Tool {
			a := good("aa")
			a.Windows = OSMatch{ClientID: []ClientIDSpec{cidReg(`HKLM\SOFTWARE\X`, "ID")}}
			return []Tool{a}
		}, "nothing to match"},
		{"first vpn not astrill", func() []Tool {
			n := good("nordvpn")
			n.Category = CategoryVPN
			a := good("astrill")
			a.Category = CategoryVPN
			return []Tool{good("aa"), n, a}
		}, "first vpn entry must be Astrill"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &RemoteAccessCatalog{Tools: tc.tools()}
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	a := good("astrill_vpn")
	a.Category = CategoryVPN
	a.Adapters = []string{"astrill*"}
	b := good("bb")
	b.Domains = []string{"*.example.com", "example.org"}
	b.Windows.UninstallNames = []string{"BB*"}
	b.Windows.Services = []string{"BB Service"}
	b.MacOS.Processes = []string{"bb"} // same tool on another OS is fine
	b.Ports = []Port{{Protocol: "tcp", Port: 5900, Listen: true}}
	c := &RemoteAccessCatalog{Tools: []Tool{good("aa"), a, b}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateJoinsAllErrors(t *testing.T) {
	a := good("aa")
	a.Sources = nil
	a.Windows.Processes = []string{"svchost.exe", "x*.exe"}
	err := (&RemoteAccessCatalog{Tools: []Tool{a}}).Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"no source", "common system process", "globs are not allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestCommonSystemNames(t *testing.T) {
	if len(commonSystemNames) < 80 {
		t.Fatalf("%d common system names, want >= 80", len(commonSystemNames))
	}
	for n := range commonSystemNames {
		if n != normalizeName(n) {
			t.Errorf("commonSystemNames entry %q is not normalised", n)
		}
	}
	for _, n := range []string{"svchost", "explorer", "lsass", "csrss", "winlogon", "services", "spoolsv",
		"conhost", "dllhost", "rundll32", "taskhostw", "searchindexer", "msedge", "chrome", "firefox",
		"systemd", "sshd", "dbus-daemon", "gnome-shell", "xorg", "pipewire", "kernel_task", "launchd",
		"windowserver", "finder", "dock", "loginwindow", "mds", "coreaudiod", "bash", "zsh", "python3",
		"java", "node"} {
		if !commonSystemNames[n] {
			t.Errorf("commonSystemNames lacks %q", n)
		}
	}
}

func TestParseRemoteAccessStrict(t *testing.T) {
	if _, err := ParseRemoteAccess([]byte("tools:\n  - id: aa\n    nmae: x\n")); err == nil {
		t.Error("unknown key accepted")
	}
}

func FuzzParseRemoteAccess(f *testing.F) {
	b, err := os.ReadFile(RemoteAccessFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("tools: []\n"))
	f.Add([]byte("tools:\n  - id: aa\n    name: A\n    category: vpn\n    sources: [https://x.y/]\n    windows: {processes: [a.exe]}\n"))
	f.Add([]byte("tools: [{id: x, ports: [{protocol: tcp, port: 70000}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseRemoteAccess(data)
		if err == nil && c.Validate() != nil {
			t.Fatal("parsed catalog does not validate")
		}
	})
}

const srcURL = "https://example.com/source"

func cidFile(file, format, key string) ClientIDSpec {
	return ClientIDSpec{File: file, Format: format, Key: key, Source: srcURL}
}

func cidReg(key, value string) ClientIDSpec {
	return ClientIDSpec{Registry: key, Value: value, Source: srcURL}
}

func TestValidateAcceptsClientIDs(t *testing.T) {
	a := good("aa")
	a.Windows.ClientID = []ClientIDSpec{
		cidReg(`HKLM\SOFTWARE\WOW6432Node\X`, "ClientID"),
		cidFile(`%ProgramData%\X\*\system.conf`, ClientIDKeyValue, "ad.anynet.id"),
		cidFile(`%SystemDrive%\Users\*\AppData\Roaming\X\config\X.toml`, ClientIDTOML, "id"),
	}
	a.MacOS.ClientID = []ClientIDSpec{cidFile("/Library/Preferences/x.plist", ClientIDPlist, "ClientID")}
	a.Linux.ClientID = []ClientIDSpec{cidFile("/home/*/.config/x/X.toml", ClientIDTOML, "id"), cidFile("/opt/x/global.conf", ClientIDTeamViewerConf, "ClientID")}
	if err := (&RemoteAccessCatalog{Tools: []Tool{a}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
