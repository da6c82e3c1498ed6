//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startAs copies exe into dir under name and starts it with args and env,
// through wrap when wrap is not empty (unshare or nsenter, which exec the
// copy in place: the pid is the copy's). It returns once the process runs
// the copy; the process is killed when the test ends.
func startAs(t *testing.T, exe, dir, name string, env, wrap []string, args ...string) *exec.Cmd {
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
	argv := append(append(wrap, dst), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 500 {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); exe == dst {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran %s", cmd.Process.Pid, dst)
	return nil
}

// waitListeningIn waits until the network namespace of pid has a TCP socket
// listening on port.
func waitListeningIn(t *testing.T, pid, port int) {
	t.Helper()
	local := regexp.MustCompile(fmt.Sprintf(`(?m)^\s*\d+: [0-9A-F]+:%04X [0-9A-F]+:0000 0A `, port))
	for range 500 {
		for _, f := range []string{"tcp", "tcp6"} {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f)); local.Match(b) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d in the network namespace of pid %d", port, pid)
}

// netnsWrap returns the commands that start a process in a new network
// namespace and in that of a running process (util-linux unshare and
// nsenter; without root, inside a user namespace too). Where namespaces
// cannot be made the test is skipped, or fails under BONAFIDE_REQUIRE_ALL=1.
func netnsWrap(t *testing.T) (create []string, join func(pid int) []string) {
	t.Helper()
	create, enter := []string{"unshare", "--net", "--"}, []string{"--net"}
	if os.Geteuid() != 0 {
		create, enter = []string{"unshare", "--user", "--map-root-user", "--net", "--"}, []string{"--user", "--net", "--preserve-credentials"}
	}
	if out, err := exec.Command(create[0], append(create[1:], "true")...).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot create a network namespace (util-linux unshare): %v %s", err, out)
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return create, func(pid int) []string {
		return append(append([]string{"nsenter", "--target", strconv.Itoa(pid)}, enter...), "--")
	}
}

// processRoot makes a machine root for `bonafide-agent --root` that holds
// only the given processes of this machine: proc/<pid> links to the live
// /proc/<pid>, proc/net to the network namespace of netPID, and etc the
// identity of a laptop named hostname.
func processRoot(t *testing.T, hostname string, netPID int, pids ...int) string {
	t.Helper()
	root := t.TempDir()
	links := map[string]string{"proc/net": fmt.Sprintf("/proc/%d/net", netPID), "proc/stat": "/proc/stat"}
	for _, pid := range pids {
		links["proc/"+strconv.Itoa(pid)] = "/proc/" + strconv.Itoa(pid)
	}
	files := map[string]string{"etc/hostname": hostname, "etc/machine-id": "5b1e0c9c3f0d4a7e9d2f6a8b4c1e7f30"}
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRemoteAccessEndToEnd runs real processes under catalog names and
// look-alike names, one of them listening on AnyDesk's port and one as a VNC
// server, and checks what `scan --json` reports and which alerts the
// collector raises, with RustDesk sanctioned for this laptop.
//
// The agent reads a root that holds only the test's processes (see
// processRoot) and the listeners run in a network namespace of their own,
// so AnyDesk's and VNC's fixed ports are free there and nothing else this
// machine runs or listens on changes the result.
func TestRemoteAccessEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	newNet, joinNet := netnsWrap(t)
	dir := t.TempDir()
	anydesk := startAs(t, os.Args[0], dir, "anydesk", []string{"BONAFIDE_TEST_LISTEN=0.0.0.0:7070"}, newNet)
	waitListeningIn(t, anydesk.Process.Pid, 7070)
	x11vnc := startAs(t, os.Args[0], dir, "x11vnc", []string{"BONAFIDE_TEST_LISTEN=0.0.0.0:5900"}, joinNet(anydesk.Process.Pid))
	waitListeningIn(t, anydesk.Process.Pid, 5900)
	rustdesk := startAs(t, "/bin/sleep", dir, "rustdesk", nil, nil, "120")
	pids := []int{anydesk.Process.Pid, x11vnc.Process.Pid, rustdesk.Process.Pid}
	for _, lookalike := range []string{"anydesk2", "xanydesk", "rustdesk.sh", "AnyDeskHelper"} {
		pids = append(pids, startAs(t, "/bin/sleep", dir, lookalike, nil, nil, "120").Process.Pid)
	}
	const host = "lat-remote"
	root := processRoot(t, host, anydesk.Process.Pid, pids...)

	out, err := exec.Command(agent, "scan", "--json", "--root", root).Output()
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

	table, err := exec.Command(agent, "scan", "--root", root).Output()
	if err != nil || !regexp.MustCompile(`(?m)^\s+anydesk\s+AnyDesk \(remote_desktop\): running, listening$`).Match(table) {
		t.Fatalf("scan table: %v\n%s", err, table)
	}

	// The collector, with RustDesk sanctioned for this host.
	policyDir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../policies/rules", "../policies/catalog", policyDir).CombinedOutput(); err != nil {
		t.Fatalf("copy policies: %v %s", err, out)
	}
	os.MkdirAll(filepath.Join(policyDir, "allowlist"), 0o755)
	os.WriteFile(filepath.Join(policyDir, "allowlist", "sanctioned.yaml"),
		fmt.Appendf(nil, "sanctioned:\n  - {tool: rustdesk, reason: test, devices: [%q]}\n", host), 0o644)
	dataDir := t.TempDir()
	s := startServerArgs(t, collector, dataDir, "--policies", policyDir)
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	viewer := s.admin(t, "token", "create", "--role", "viewer")
	state := t.TempDir()
	runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state, "--root", root)
	runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)

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
