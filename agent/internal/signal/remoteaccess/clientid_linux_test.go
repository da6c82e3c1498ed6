package remoteaccess

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/policies"
)

// TestCollectClientIDsLinux runs the Linux reader and the embedded catalog
// over a root where AnyDesk, TeamViewer and RustDesk are installed (dpkg)
// with their configuration, and a RustDesk-like config for a tool that is
// not installed.
func TestCollectClientIDsLinux(t *testing.T) {
	root := t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var status strings.Builder
	for _, p := range []string{"anydesk", "teamviewer", "rustdesk"} {
		status.WriteString("Package: " + p + "\nStatus: install ok installed\nVersion: 1.0\n\n")
	}
	write("var/lib/dpkg/status", []byte(status.String()))
	write("etc/anydesk/system.conf", readTestdata(t, "clientid/anydesk-system.constructed.conf"))
	write("opt/teamviewer/config/global.conf", readTestdata(t, "clientid/teamviewer-global.constructed.conf"))
	write("home/alice/.config/rustdesk/RustDesk.toml", readTestdata(t, "clientid/rustdesk-encid.constructed.toml"))
	write("home/bob/.config/rustdesk/RustDesk.toml", readTestdata(t, "clientid/rustdesk.constructed.toml"))

	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	ra, err := (&Collector{Root: root, Catalog: cat}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rt := range ra.GetTools() {
		got[rt.GetToolId()] = rt.GetClientId()
	}
	want := map[string]string{"anydesk": "123456789", "teamviewer": "1234567890", "rustdesk": "123456789"}
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			t.Errorf("%s: client_id %q (found %v), want %q", id, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tools %v, want only %v", got, want)
	}
	if s := ra.String(); strings.Contains(s, "SECRET") {
		t.Errorf("report holds a secret: %s", s)
	}

	// Without the install evidence the configuration alone reports nothing.
	if err := os.Remove(filepath.Join(root, "var", "lib", "dpkg", "status")); err != nil {
		t.Fatal(err)
	}
	ra, err = (&Collector{Root: root, Catalog: cat}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range ra.GetTools() {
		if rt.GetClientId() != "" {
			t.Errorf("%s reported with client_id %q without install evidence", rt.GetToolId(), rt.GetClientId())
		}
	}
}
