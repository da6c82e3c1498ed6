package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWindowsAgentUnderWine: the Windows agent, run under Wine by
// scripts/wine-agent.sh, enrolls with a collector on loopback (run --once
// with enroll_secret in its config) and delivers its report while a
// Windows program named AnyDesk.exe runs in the same Wine prefix. Through
// the API the device is os_family windows and has the remote_tool_running
// alert for AnyDesk. make test-windows runs it with BONAFIDE_WINE_AGENT
// naming the script; elsewhere it is skipped.
func TestWindowsAgentUnderWine(t *testing.T) {
	wa := os.Getenv("BONAFIDE_WINE_AGENT")
	if wa == "" {
		t.Skip("needs Wine: make test-windows runs it (BONAFIDE_WINE_AGENT=scripts/wine-agent.sh)")
	}
	dir := t.TempDir()
	collector := filepath.Join(dir, "bonafide-collector")
	if out, err := exec.Command("go", "build", "-o", collector, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the collector: %v\n%s", err, out)
	}
	// AnyDesk.exe: a Windows program that waits to be killed.
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(10 * time.Minute) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	anydesk := filepath.Join(dir, "AnyDesk.exe")
	build := exec.Command("go", "build", "-o", anydesk, "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build AnyDesk.exe: %v\n%s", err, out)
	}
	tool := exec.Command(wa, "--run", anydesk)
	if err := tool.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tool.Process.Kill(); tool.Wait() })

	s := startServer(t, collector, t.TempDir(), "", "127.0.0.1:0")
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	// Wine runs the agent with Unix paths as Z:\….
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nstart_delay: 0s\n",
		s.grpc, secret, fp, filepath.Join(dir, "state")), 0o600)

	// The scan sees AnyDesk.exe once Wine has started it.
	var dev, alert map[string]any
	for try := 0; alert == nil; try++ {
		if try == 5 {
			t.Fatalf("no remote_tool_running alert for AnyDesk; device %v", dev)
		}
		if try > 0 {
			time.Sleep(2 * time.Second)
		}
		if out, err := exec.Command(wa, "run", "--once", "--config", cfg).CombinedOutput(); err != nil {
			t.Fatalf("run --once under Wine: %v\n%s", err, out)
		}
		devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
		if len(devices) != 1 {
			t.Fatalf("devices: %v", devices)
		}
		id := devices[0].(map[string]any)["id"].(string)
		dev = s.api(t, "GET", "/api/v1/devices/"+id, viewer, "", 200)
		for _, a := range s.api(t, "GET", "/api/v1/alerts?rule_id=remote_tool_running&device_id="+id, viewer, "", 200)["alerts"].([]any) {
			if strings.Contains(fmt.Sprint(a), "AnyDesk") {
				alert = a.(map[string]any)
			}
		}
	}
	if dev["os_family"] != "windows" {
		t.Errorf("os_family %v, want windows (device %v)", dev["os_family"], dev)
	}
	t.Logf("device %v: os_family %v, %v %v; alert %v: %v", dev["hostname"], dev["os_family"], dev["os_name"], dev["os_version"], alert["rule_id"], alert["title"])
}
