package posture

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

var catalogPackages = map[string]string{"anydesk": "anydesk", "teamviewer": "teamviewer", "rustdesk": "rustdesk"}

func TestCollectLinuxRoot(t *testing.T) {
	p, err := Collect(context.Background(), "testdata/root-linux", catalogPackages)
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
	if p, _ := Collect(context.Background(), "testdata/root-linux", nil); len(p.GetToolInstalls()) != 0 {
		t.Errorf("installs without a catalog: %v", p.GetToolInstalls())
	}
}

func TestCollectMacRoot(t *testing.T) {
	p, err := Collect(context.Background(), "testdata/root-mac", catalogPackages)
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
