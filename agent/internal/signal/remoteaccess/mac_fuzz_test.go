package remoteaccess

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseMacPS(f *testing.F) {
	f.Add(readTestdata(f, "mac/ps-pid-uid-lstart-comm.constructed.txt"))
	f.Add([]byte("1 0 Mon Nov 23 08:01:12 2026 /a b\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		procs, _ := parseMacPS(b, time.UTC)
		for _, p := range procs {
			if p.PID < 0 || p.Name == "" || strings.ContainsAny(p.Name, "\n") {
				t.Fatalf("bad process %+v", p)
			}
			if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
				t.Fatalf("relative path %+v", p)
			}
		}
		args, _ := parseMacPSArgs(b)
		for pid, a := range args {
			if pid < 0 {
				t.Fatalf("pid %d", pid)
			}
			for _, w := range splitMacArgs(a, "/a b") {
				if w == "" {
					t.Fatalf("empty argv word from %q", a)
				}
			}
		}
	})
}

func FuzzParseMacNetstat(f *testing.F) {
	f.Add(readTestdata(f, "mac/netstat-anv-tcp-pid.constructed.txt"))
	f.Add(readTestdata(f, "mac/netstat-anv-tcp-process-pid.constructed.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, _ := parseMacNetstat(b)
		for _, s := range socks {
			if s.Protocol != "tcp" || s.LocalPort > 65535 || s.RemotePort > 65535 || s.PID < 0 || s.LocalAddr == "" {
				t.Fatalf("bad socket %+v", s)
			}
		}
	})
}

func FuzzParseLaunchctlDisabled(f *testing.F) {
	f.Add(readTestdata(f, "mac/launchctl-print-disabled-system.constructed.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseLaunchctlDisabled(b)
	})
}

func FuzzParseLaunchdPlist(f *testing.F) {
	f.Add(readTestdata(f, "mac/launchagent-org.chromium.chromoting-chrome-remote-desktop.plist"))
	f.Add(readTestdata(f, "mac/launchagent-org.chromium.chromoting-chrome-remote-desktop.DERIVED-binary.plist"))
	f.Add(readTestdata(f, "mac/Info-TeamViewer.constructed-binary.plist"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if j, err := parseLaunchdPlist(b); err == nil && j.Label == "" {
			t.Fatal("job without a label")
		}
		if bd, err := parseInfoPlist(b); err == nil && bd.ID == "" {
			t.Fatal("bundle without an id")
		}
	})
}

func FuzzClientID(f *testing.F) {
	for _, name := range []string{
		"clientid/anydesk-system.constructed.conf",
		"clientid/teamviewer-global.constructed.conf",
		"clientid/rustdesk.constructed.toml",
		"clientid/teamviewer-preferences.constructed.plist",
	} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("id = '1' # x\n[t]\nid = '2'\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []struct{ format, key string }{
			{"key_value", "ad.anynet.id"}, {"teamviewer_conf", "ClientID"}, {"toml", "id"}, {"plist", "ClientID"},
		} {
			id := parseClientID(b, c.format, c.key)
			if id == "" {
				continue
			}
			if !validClientID(id) {
				t.Fatalf("%s: invalid id %q", c.format, id)
			}
			// A text format only ever returns bytes of the file itself.
			if c.format != "plist" && !strings.Contains(string(b), id) {
				t.Fatalf("%s: id %q is not in the input", c.format, id)
			}
		}
	})
}
