package posture

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var catalogPackages = map[string]string{"anydesk": "anydesk", "teamviewer": "teamviewer", "rustdesk": "rustdesk"}

func TestCollectLinuxRoot(t *testing.T) {
	p, err := Collect(context.Background(), "testdata/root-linux", Tools{Packages: catalogPackages})
	if err != nil {
		t.Fatal(err)
	}
	if !p.GetAdminsRead() || !slices.Equal(p.GetLocalAdmins(), []string{"alice", "carol"}) {
		t.Errorf("admins %v (read %v)", p.GetLocalAdmins(), p.GetAdminsRead())
	}
	if !slices.Equal(p.GetInteractiveAccounts(), []string{"alice", "bob", "carol"}) {
		t.Errorf("accounts %v", p.GetInteractiveAccounts())
	}
	var got []string
	for _, in := range p.GetToolInstalls() {
		got = append(got, in.GetToolId()+" by "+in.GetUser()+" at "+in.GetAt().AsTime().Format(time.DateOnly)+" from "+in.GetSource())
	}
	want := []string{
		"teamviewer by root at 2026-10-02 from /var/log/apt/history.log.2.gz",
		"anydesk by alice at 2026-11-20 from /var/log/apt/history.log",
	}
	if !slices.Equal(got, want) {
		t.Errorf("installs\n got %q\nwant %q", got, want)
	}
	// Without catalog packages, nothing of the logs is reported.
	if p, _ := Collect(context.Background(), "testdata/root-linux", Tools{}); len(p.GetToolInstalls()) != 0 {
		t.Errorf("installs without a catalog: %v", p.GetToolInstalls())
	}
}

func TestCollectMacRoot(t *testing.T) {
	p, err := Collect(context.Background(), "testdata/root-mac", Tools{Packages: catalogPackages})
	if err != nil {
		t.Fatal(err)
	}
	if !p.GetAdminsRead() || !slices.Equal(p.GetLocalAdmins(), []string{"mallory", "root"}) {
		t.Errorf("admins %v", p.GetLocalAdmins())
	}
	if !slices.Equal(p.GetInteractiveAccounts(), []string{"alice", "mallory"}) {
		t.Errorf("accounts %v", p.GetInteractiveAccounts())
	}
}

func TestWinProfileAccounts(t *testing.T) {
	got := WinProfileAccounts(map[string]string{
		"S-1-5-18": `%systemroot%\system32\config\systemprofile`,
		"S-1-5-19": `C:\Windows\ServiceProfiles\LocalService`,
		"S-1-5-21-1004336348-1177238915-682003330-1001":     `C:\Users\alice`,
		"S-1-5-21-1004336348-1177238915-682003330-1002":     `C:\Users\operator2`,
		"S-1-5-21-1004336348-1177238915-682003330-1002.bak": `C:\Users\operator2`,
	})
	if !slices.Equal(got, []string{"alice", "operator2"}) {
		t.Errorf("%v", got)
	}
}

func TestSplitAptPackages(t *testing.T) {
	got := splitAptPackages("anydesk:amd64 (6.3.0-1), libminizip1:amd64 (1.1-8build1, automatic),x (1)")
	if !slices.Equal(got, []string{"anydesk:amd64", "libminizip1:amd64", "x"}) {
		t.Errorf("%q", got)
	}
}

// FuzzParsers: passwd, group, apt history and group plists are outside
// bytes.
func FuzzParsers(f *testing.F) {
	for _, p := range []string{"testdata/root-linux/etc/passwd", "testdata/root-linux/etc/group",
		"testdata/root-linux/var/log/apt/history.log", "testdata/root-mac/var/db/dslocal/nodes/Default/groups/admin.plist"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		users, groups := ParsePasswd(b), ParseGroup(b)
		_ = LinuxAdmins(users, groups)
		for _, in := range ParseAptHistory(b, catalogPackages) {
			if in.GetUser() == "" || catalogPackages[in.GetPackage()] != in.GetToolId() {
				t.Fatalf("install %v", in)
			}
		}
		_, _ = ParseMacGroup(b)
	})
}

func TestWinAdmins(t *testing.T) {
	got := WinAdmins([]string{`LAPTOP-7\Administrator`, `laptop-7\alice`, `CORP\Domain Admins`, `AzureAD\BobSmith`,
		`NT AUTHORITY\INTERACTIVE`, `LAPTOP-7\alice`, ``}, "LAPTOP-7")
	want := []string{"Administrator", `AzureAD\BobSmith`, `CORP\Domain Admins`, `NT AUTHORITY\INTERACTIVE`, "alice"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestWinAccount(t *testing.T) {
	for in, want := range map[string]string{`LAPTOP-7\alice`: "alice", `NT AUTHORITY\SYSTEM`: "SYSTEM", `CORP\bob`: `CORP\bob`,
		`NT AUTHORITY\LOCAL SERVICE`: `NT AUTHORITY\LOCAL SERVICE`, "carol": "carol"} {
		if got := WinAccount(in, "laptop-7"); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestMsiInstalls reads MsiInstaller events in Event Viewer's XML: the
// real Service Fabric SDK capture (a failed install, status 1603, and no
// catalog product) gives nothing; the AnyDesk MSI install derived from it
// gives AnyDesk installed by the event's account.
func TestMsiInstalls(t *testing.T) {
	real, err := os.ReadFile("testdata/windows/msiinstaller-1033-service-fabric.xml")
	if err != nil {
		t.Fatal(err)
	}
	anydesk, err := os.ReadFile("testdata/windows/msiinstaller-1033-anydesk.DERIVED.xml")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := parseMsiEvent(real)
	if err != nil || ev.ID != 1033 || ev.Product != "Microsoft Azure Service Fabric SDK" || ev.Status != "1603" ||
		ev.SID != "S-1-5-21-2047949552-857980807-821054962-504" || ev.At.Format(time.RFC3339) != "2023-10-11T23:01:44Z" {
		t.Fatalf("real event: %+v, %v", ev, err)
	}
	products := map[string][]string{"anydesk": {"AnyDesk*"}, "azure_sf": {"Microsoft Azure Service Fabric*"}}
	names := map[string]string{"S-1-5-21-2047949552-857980807-821054962-504": "mallory"}
	lookup := func(sid string) string { return names[sid] }
	failed := strings.Replace(string(anydesk), "<Data>0</Data>", "<Data>1603</Data>", 1)
	other := strings.Replace(string(anydesk), "<Data>AnyDesk MSI</Data>", "<Data>Zoom</Data>", 1)
	got := MsiInstalls([][]byte{anydesk, real, []byte(failed), []byte(other), []byte("<Event>"), nil}, products, lookup)
	if len(got) != 1 || got[0].GetToolId() != "anydesk" || got[0].GetPackage() != "AnyDesk MSI" || got[0].GetUser() != "mallory" ||
		got[0].GetSource() != msiSource || got[0].GetAt().AsTime().Format(time.RFC3339) != "2026-11-20T09:30:12Z" {
		t.Errorf("installs %v", got)
	}
	// An unknown SID is kept as the SID.
	if got := MsiInstalls([][]byte{anydesk}, products, func(string) string { return "" }); len(got) != 1 ||
		got[0].GetUser() != "S-1-5-21-2047949552-857980807-821054962-504" {
		t.Errorf("unknown SID: %v", got)
	}
}

func FuzzParseMsiEvent(f *testing.F) {
	for _, p := range []string{"testdata/windows/msiinstaller-1033-service-fabric.xml", "testdata/windows/msiinstaller-1033-anydesk.DERIVED.xml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	products := map[string][]string{"anydesk": {"AnyDesk*"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range MsiInstalls([][]byte{b}, products, func(s string) string { return s }) {
			if in.GetToolId() != "anydesk" || len(in.GetPackage()) > maxProduct || len(in.GetUser()) > 2*maxName {
				t.Fatalf("install %v", in)
			}
		}
	})
}
