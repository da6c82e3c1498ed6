//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// startAs copies exe into dir under name and starts it with args and env;
// the process is killed when the test ends.
func startAs(t *testing.T, exe, dir, name string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, name)
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(f, src)
	f.Close()
	cmd := exec.Command(dst, args...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// TestRemoteAccessEndToEnd runs real processes under catalog names and
// look-alike names, one of them listening on AnyDesk's port and one as a VNC
// server, and checks what `scan --json` reports and which alerts the
// collector raises, with RustDesk sanctioned for this host.
func TestRemoteAccessEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	dir := t.TempDir()
	anydesk := startAs(t, os.Args[0], dir, "anydesk", []string{"BONAFIDE_TEST_LISTEN=127.0.0.1:7070"})
	waitListening(t, "127.0.0.1:7070")
	x11vnc := startAs(t, os.Args[0], dir, "x11vnc", []string{"BONAFIDE_TEST_LISTEN=127.0.0.1:5900"})
	waitListening(t, "127.0.0.1:5900")
	rustdesk := startAs(t, "/bin/sleep", dir, "rustdesk", nil, "120")
	for _, lookalike := range []string{"anydesk2", "xanydesk", "rustdesk.sh", "AnyDeskHelper"} {
		startAs(t, "/bin/sleep", dir, lookalike, nil, "120")
	}

	out, err := exec.Command(agent, "scan", "--json").Output()
	if err != nil {
		t.Fatalf("scan: %v %s", err, exitStderr(err))
	}
	var sn struct {
		RemoteAccess struct {
			Tools []struct {
				ToolID    string `json:"toolId"`
				Processes []struct {
					Name string `json:"name"`
					Pid  int    `json:"pid"`
				} `json:"processes"`
				Listening []struct {
					LocalPort int `json:"localPort"`
				} `json:"listening"`
			} `json:"tools"`
			OsFeatures []struct {
				Kind      string `json:"kind"`
				Listening bool   `json:"listening"`
				Port      int    `json:"port"`
			} `json:"osFeatures"`
		} `json:"remoteAccess"`
	}
	if err := json.Unmarshal(out, &sn); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tool := range sn.RemoteAccess.Tools {
		ids = append(ids, tool.ToolID)
		want := map[string]int{"anydesk": anydesk.Process.Pid, "rustdesk": rustdesk.Process.Pid, "x11vnc": x11vnc.Process.Pid}[tool.ToolID]
		if len(tool.Processes) != 1 || tool.Processes[0].Pid != want {
			t.Errorf("%s: processes %+v, want pid %d", tool.ToolID, tool.Processes, want)
		}
		if tool.ToolID == "anydesk" && (len(tool.Listening) != 1 || tool.Listening[0].LocalPort != 7070) {
			t.Errorf("anydesk listening %+v", tool.Listening)
		}
	}
	if !slices.Equal(ids, []string{"anydesk", "rustdesk", "x11vnc"}) {
		t.Fatalf("tools %v, want exactly anydesk, rustdesk and x11vnc\n%s", ids, out)
	}
	if !slices.ContainsFunc(sn.RemoteAccess.OsFeatures, func(f struct {
		Kind      string `json:"kind"`
		Listening bool   `json:"listening"`
		Port      int    `json:"port"`
	}) bool {
		return f.Kind == "vnc" && f.Listening && f.Port == 5900
	}) {
		t.Fatalf("no listening VNC server in %+v", sn.RemoteAccess.OsFeatures)
	}

	table, err := exec.Command(agent, "scan").Output()
	if err != nil || !regexp.MustCompile(`(?m)^\s+anydesk\s+AnyDesk \(remote_desktop\): running, listening$`).Match(table) {
		t.Fatalf("scan table: %v\n%s", err, table)
	}

	// The collector, with RustDesk sanctioned for this host.
	policyDir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../policies/rules", "../policies/catalog", policyDir).CombinedOutput(); err != nil {
		t.Fatalf("copy policies: %v %s", err, out)
	}
	host, _ := os.Hostname()
	os.MkdirAll(filepath.Join(policyDir, "allowlist"), 0o755)
	os.WriteFile(filepath.Join(policyDir, "allowlist", "sanctioned.yaml"),
		fmt.Appendf(nil, "sanctioned:\n  - {tool: rustdesk, reason: test, devices: [%q]}\n", host), 0o644)
	dataDir := t.TempDir()
	s := startServerArgs(t, collector, dataDir, "--policies", policyDir)
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	state := t.TempDir()
	runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state)
	runAgent(t, agent, "run", "--once", "--state-dir", state)

	alerts := s.api(t, "GET", "/api/v1/alerts", viewer, "", 200)["alerts"].([]any)
	got := map[string]map[string]any{}
	for _, a := range alerts {
		m := a.(map[string]any)
		got[m["rule_id"].(string)] = m
	}
	var rules []string
	for r := range got {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	want := []string{"multiple_remote_tools", "os_remote_access_exposed", "remote_tool_running"}
	if !slices.Equal(rules, want) {
		t.Fatalf("alerts %v, want exactly %v (rustdesk sanctioned)", rules, want)
	}
	for _, r := range []string{"remote_tool_running", "multiple_remote_tools"} {
		ev, _ := json.Marshal(got[r]["evidence"])
		if !strings.Contains(string(ev), "anydesk") || !strings.Contains(string(ev), "x11vnc") || strings.Contains(string(ev), "rustdesk") {
			t.Errorf("%s evidence %s: want anydesk and x11vnc, not the sanctioned rustdesk", r, ev)
		}
	}
}
