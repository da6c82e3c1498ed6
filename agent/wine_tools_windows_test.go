package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/mgr"
	"google.golang.org/protobuf/encoding/protojson"
)

// fakeToolPort, set in its environment, makes this test binary a fake
// remote-access tool: it listens on 127.0.0.1:PORT, says so on stdout,
// and waits to be killed.
const fakeToolPort = "BONAFIDE_FAKE_TOOL_PORT"

func TestMain(m *testing.M) {
	if port := os.Getenv(fakeToolPort); port != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening on", ln.Addr())
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// underWine reports whether this process runs under Wine, whose ntdll
// exports wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// fakeTool is a remote-access tool installed the way its installer leaves
// a machine.
type fakeTool struct {
	id, service, uninstall, version string
	exe                             string // under %ProgramFiles%
	port                            string // it listens on (the catalog's)
	clientID                        string
}

// TestScanFindsFakeToolsUnderWine: scan --json, under Wine, finds AnyDesk
// and TeamViewer from every kind of evidence the Windows readers collect:
// the running process (this test binary, copied under Program Files), the
// install folder, the Uninstall key, the service, the listening port and
// the client ID (AnyDesk's system.conf, TeamViewer's ClientID value). It
// changes the machine (Program Files, HKLM, the service manager, ports
// 7070 and 5938), so it runs only under Wine, where make test-windows
// gives it a prefix of its own.
func TestScanFindsFakeToolsUnderWine(t *testing.T) {
	if !underWine() {
		t.Skip("changes the machine (Program Files, HKLM, services): runs only under Wine (make test-windows)")
	}
	tools := []fakeTool{
		{id: "anydesk", service: "AnyDesk", uninstall: "AnyDesk", version: "9.0.5", exe: `AnyDesk\AnyDesk.exe`, port: "7070", clientID: "123456789"},
		{id: "teamviewer", service: "TeamViewer", uninstall: "TeamViewer", version: "15.71.4", exe: `TeamViewer\TeamViewer_Service.exe`, port: "5938", clientID: "987654321"},
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	scm, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer scm.Disconnect()
	for _, ft := range tools {
		exe := filepath.Join(os.Getenv("ProgramFiles"), ft.exe)
		if err := copyFile(self, exe); err != nil {
			t.Fatal(err)
		}
		setRegistry(t, `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\`+ft.uninstall,
			map[string]string{"DisplayName": ft.uninstall, "DisplayVersion": ft.version}, nil)
		// Demand start: Wine starts automatic services whenever the prefix
		// starts, and this program is no service.
		s, err := scm.CreateService(ft.service, exe, mgr.Config{DisplayName: ft.service, StartType: mgr.StartManual})
		if errors.Is(err, windows.ERROR_SERVICE_EXISTS) { // a prefix used before
			if s, err = scm.OpenService(ft.service); err == nil {
				err = windows.ChangeServiceConfig(s.Handle, windows.SERVICE_NO_CHANGE, windows.SERVICE_DEMAND_START,
					windows.SERVICE_NO_CHANGE, nil, nil, nil, nil, nil, nil, nil)
			}
		}
		if err != nil {
			t.Fatalf("service %s: %v", ft.service, err)
		}
		s.Close()
		startFakeTool(t, exe, ft.port)
	}
	if err := os.MkdirAll(filepath.Join(os.Getenv("ProgramData"), "AnyDesk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(os.Getenv("ProgramData"), "AnyDesk", "system.conf"), []byte("ad.anynet.id="+tools[0].clientID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tvID, _ := strconv.ParseUint(tools[1].clientID, 10, 32)
	setRegistry(t, `SOFTWARE\TeamViewer`, nil, map[string]uint32{"ClientID": uint32(tvID)})

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"scan", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("scan --json: %v: %s", err, errOut.String())
	}
	var sn agentv1.HostSnapshot
	if err := protojson.Unmarshal(out.Bytes(), &sn); err != nil {
		t.Fatal(err)
	}
	if fam := sn.GetIdentity().GetOs().GetFamily(); fam != "windows" {
		t.Errorf("os family %q, want windows", fam)
	}
	for _, ft := range tools {
		i := slices.IndexFunc(sn.GetRemoteAccess().GetTools(), func(rt *agentv1.RemoteTool) bool { return rt.GetToolId() == ft.id })
		if i < 0 {
			t.Errorf("%s not found: %s\nsignals: %v", ft.id, protojson.Format(sn.GetRemoteAccess()), sn.GetSignals())
			continue
		}
		rt := sn.GetRemoteAccess().GetTools()[i]
		exe := filepath.Join(os.Getenv("ProgramFiles"), ft.exe)
		for what, ok := range map[string]bool{
			"process " + exe: slices.ContainsFunc(rt.GetProcesses(), func(p *agentv1.ProcessEvidence) bool { return p.GetPath() == exe }),
			"install folder": slices.ContainsFunc(rt.GetInstalls(), func(in *agentv1.InstallEvidence) bool {
				return in.GetKind() == "path" && in.GetLocation() == filepath.Dir(exe)
			}),
			"Uninstall key " + ft.version: slices.ContainsFunc(rt.GetInstalls(), func(in *agentv1.InstallEvidence) bool {
				return in.GetKind() == "uninstall_key" && in.GetVersion() == ft.version
			}),
			"demand-start service " + ft.service: slices.ContainsFunc(rt.GetServices(), func(s *agentv1.ServiceEvidence) bool {
				return s.GetKind() == "windows_service" && s.GetName() == ft.service && s.GetStartMode() == "manual"
			}),
			"listening on " + ft.port: slices.ContainsFunc(rt.GetListening(), func(s *agentv1.SocketEvidence) bool {
				return fmt.Sprint(s.GetLocalPort()) == ft.port
			}),
			"client id " + ft.clientID: rt.GetClientId() == ft.clientID,
		} {
			if !ok {
				t.Errorf("%s: no %s in %s", ft.id, what, protojson.Format(rt))
			}
		}
	}
}

// startFakeTool runs exe as a fake tool listening on port, and kills it
// when the test ends.
func startFakeTool(t *testing.T, exe, port string) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fakeToolPort+"="+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !bytes.HasPrefix([]byte(line), []byte("listening")) {
		t.Fatalf("%s on port %s: %q %v", exe, port, line, err)
	}
}

// setRegistry sets string and DWORD values of an HKLM key (64-bit view).
func setRegistry(t *testing.T, path string, strs map[string]string, dwords map[string]uint32) {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, path, registry.SET_VALUE|registry.WOW64_64KEY)
	if err != nil {
		t.Fatalf("HKLM\\%s: %v", path, err)
	}
	defer k.Close()
	for n, v := range strs {
		if err := k.SetStringValue(n, v); err != nil {
			t.Fatal(err)
		}
	}
	for n, v := range dwords {
		if err := k.SetDWordValue(n, v); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
