package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	_, collector := binaries(t)
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

// winePrefix runs Windows programs in a Wine prefix of the test's own.
type winePrefix struct {
	t   *testing.T
	dir string
}

func (w winePrefix) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	// No display, and no Mono or Gecko download prompts.
	cmd.Env = append(os.Environ(), "WINEPREFIX="+w.dir, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=")
	return cmd
}

// run runs a Windows program (msiexec, sc, reg) and returns its output.
func (w winePrefix) run(args ...string) (string, error) {
	return w.output(w.command("wine", args...))
}

// output runs cmd and returns its output. The output goes through a file,
// not a pipe: the first Wine program of a prefix starts services.exe and
// the other system processes, which inherit its stdout and, with a
// persistent wineserver, never close it.
func (w winePrefix) output(cmd *exec.Cmd) (string, error) {
	f, err := os.CreateTemp("", "wine-output-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	b, _ := os.ReadFile(f.Name())
	return string(b), err
}

// msiexec installs (/i) or removes (/x) a package, failing the test with
// the end of msiexec's log when it fails.
func (w winePrefix) msiexec(op, msi string) {
	w.t.Helper()
	log := msi + "." + op[1:] + ".log"
	if out, err := w.run("msiexec", op, winePath(msi), "/qn", "/l*v", winePath(log)); err != nil {
		b, _ := os.ReadFile(log)
		b = []byte(strings.ReplaceAll(string(b), "\x00", ""))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		w.t.Fatalf("msiexec %s %s: %v\n%s\nlog tail:\n%s", op, filepath.Base(msi), err, out, b)
	}
}

// products lists the DisplayVersion of each installed product.
func (w winePrefix) products() []string {
	out, _ := w.run("reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`, "/s")
	return regexp.MustCompile(`DisplayVersion\s+REG_SZ\s+(\S+)`).FindAllString(out, -1)
}

// agentProcesses lists the Linux processes that run bonafide-agent.exe in
// this prefix.
func (w winePrefix) agentProcesses() []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err1 := os.ReadFile(filepath.Join(d, "cmdline"))
		environ, err2 := os.ReadFile(filepath.Join(d, "environ"))
		if err1 != nil || err2 != nil || !strings.Contains(strings.ToLower(string(cmdline)), "bonafide-agent.exe") {
			continue
		}
		for _, e := range strings.Split(string(environ), "\x00") {
			if e == "WINEPREFIX="+w.dir {
				found = append(found, filepath.Base(d)+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return found
}

// winePath is a Unix path as Wine's Z: drive shows it.
func winePath(p string) string {
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// poll calls f every two seconds until it returns "" or the deadline
// passes, and then fails the test with f's last answer.
func poll(t *testing.T, what string, deadline time.Duration, f func() string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not after %v: %s", what, deadline, msg)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestMSIServiceUnderWine: the MSI that `bonafide-collector package` builds
// installs the real Windows agent as a service under Wine (msiexec /i, the
// service manager, LocalSystem); the service starts with `run --service`,
// moves the MSI's settings out of the registry, enrolls with a collector
// on loopback and delivers a snapshot. A second MSI with a higher version
// replaces it: one product, the service running again, and the same device
// and agent id (the state directory stays) now reporting the new version.
// An older MSI is refused. msiexec /x then stops and deletes the service,
// removes the program and leaves no agent process in the prefix. make
// test-windows runs it; elsewhere it is skipped.
func TestMSIServiceUnderWine(t *testing.T) {
	wa := os.Getenv("BONAFIDE_WINE_AGENT")
	if wa == "" {
		t.Skip("needs Wine: make test-windows runs it (BONAFIDE_WINE_AGENT=scripts/wine-agent.sh)")
	}
	for tool, pkg := range map[string]string{"wixl": "wixl", "msiinfo": "msitools", "msibuild": "msitools", "wineserver": "wine"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the apt package %s", tool, pkg)
		}
	}
	_, collector := binaries(t)
	dir := t.TempDir()
	w := winePrefix{t: t, dir: filepath.Join(dir, "prefix")}
	// The prefix, with the ProcessPrng stand-in the agent needs.
	if out, err := w.output(w.command(wa, "--prepare")); err != nil {
		t.Fatalf("wine-agent.sh --prepare: %v\n%s", err, out)
	}
	// A persistent wineserver keeps services.exe, and so the service,
	// running between the commands below; -k stops it and all it runs.
	// It goes to the background, so its output is not waited for; -w
	// first lets the server that prepared the prefix exit.
	if err := w.command("wineserver", "-w").Run(); err != nil {
		t.Fatalf("wineserver -w: %v", err)
	}
	if err := w.command("wineserver", "-p").Run(); err != nil {
		t.Fatalf("wineserver -p: %v", err)
	}
	t.Cleanup(func() { w.command("wineserver", "-k").Run() })

	s := startServer(t, collector, t.TempDir(), "", "127.0.0.1:0")
	secret := s.admin(t, "secret", "create")
	viewer := s.admin(t, "token", "create", "--role", "viewer")

	// Two releases of the agent, each in a package pre-configured for this
	// collector (the CA fingerprint comes from the data directory).
	msis := map[string]string{}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		agents := filepath.Join(dir, "agents-"+v)
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+v,
			"-o", filepath.Join(agents, "bonafide-agent-windows-amd64.exe"), "github.com/bonafide-sec/bonafide/agent")
		build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the Windows agent %s: %v\n%s", v, err, out)
		}
		msis[v] = filepath.Join(dir, "bonafide-agent-"+v+".msi")
		s.admin(t, "package", "--type", "msi", "--agent-dir", agents, "--collector", s.grpc, "--secret", secret,
			"--version", v, "--out", msis[v])
	}

	const svcKey = `HKLM\SYSTEM\CurrentControlSet\Services\bonafide-agent`
	const cfgKey = `HKLM\SOFTWARE\Bonafide\Agent`
	exe := filepath.Join(w.dir, "drive_c", "Program Files", "Bonafide", "bonafide-agent.exe")
	running := func() string {
		out, _ := w.run("sc", "query", "bonafide-agent")
		if !regexp.MustCompile(`STATE\s*:\s*4\s+RUNNING`).MatchString(out) {
			return "sc query bonafide-agent:\n" + out
		}
		return ""
	}
	// reported waits until the device has delivered a snapshot from agent
	// version v after the time given, and returns it.
	reported := func(v string, after time.Time) map[string]any {
		t.Helper()
		var dev map[string]any
		poll(t, "a snapshot from agent "+v, 4*time.Minute, func() string {
			devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
			if len(devices) != 1 {
				return fmt.Sprintf("devices %v", devices)
			}
			dev = devices[0].(map[string]any)
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(dev["snapshot_at"]))
			if dev["agent_version"] != v || !at.After(after) {
				return fmt.Sprintf("device %v", dev)
			}
			return ""
		})
		return dev
	}

	start := time.Now()
	w.msiexec("/i", msis["1.0.0"])
	poll(t, "the service running after the install", time.Minute, running)
	out, err := w.run("reg", "query", svcKey)
	if err != nil {
		t.Fatalf("service not registered: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		// Windows Installer quotes the executable's path; Wine 8's msi
		// does not.
		regexp.MustCompile(`ImagePath\s+REG_(EXPAND_)?SZ\s+"?C:\\Program Files\\Bonafide\\bonafide-agent.exe"? run --service\r?\n`),
		regexp.MustCompile(`Start\s+REG_DWORD\s+0x2\b`),
		regexp.MustCompile(`ObjectName\s+REG_SZ\s+LocalSystem`),
	} {
		if !want.MatchString(out) {
			t.Errorf("service key lacks %s:\n%s", want, out)
		}
	}
	// The agent moved the settings into its configuration file and
	// deleted them from the registry.
	poll(t, "the MSI's settings moved out of the registry", time.Minute, func() string {
		if out, _ := w.run("reg", "query", cfgKey); strings.Contains(out, "EnrollSecret") {
			return out
		}
		return ""
	})
	v1 := reported("1.0.0", start)
	if v1["os_family"] != "windows" {
		t.Errorf("os_family %v, want windows", v1["os_family"])
	}
	t.Logf("1.0.0 installed as a service: device %v agent %v, %v %v, snapshot at %v", v1["id"], v1["agent_id"], v1["os_name"], v1["os_version"], v1["snapshot_at"])

	// MajorUpgrade: 1.0.1 replaces 1.0.0; the device keeps its identity.
	upgraded := time.Now()
	w.msiexec("/i", msis["1.0.1"])
	if p := w.products(); len(p) != 1 || !strings.HasSuffix(p[0], "1.0.1") {
		t.Errorf("installed products after the upgrade: %q", p)
	}
	poll(t, "the service running after the upgrade", time.Minute, running)
	v2 := reported("1.0.1", upgraded)
	if v2["id"] != v1["id"] || v2["agent_id"] != v1["agent_id"] {
		t.Errorf("after the upgrade: device %v agent %v, want device %v agent %v", v2["id"], v2["agent_id"], v1["id"], v1["agent_id"])
	}
	t.Logf("upgraded to 1.0.1: device %v agent %v, snapshot at %v", v2["id"], v2["agent_id"], v2["snapshot_at"])

	// A downgrade is refused by the launch condition and changes nothing.
	if out, err := w.run("msiexec", "/i", winePath(msis["1.0.0"]), "/qn"); err == nil {
		t.Errorf("downgrade to 1.0.0 accepted:\n%s", out)
	}
	if p := w.products(); len(p) != 1 || !strings.HasSuffix(p[0], "1.0.1") {
		t.Errorf("installed products after a refused downgrade: %q", p)
	}

	w.msiexec("/x", msis["1.0.1"])
	if out, err := w.run("reg", "query", svcKey); err == nil {
		t.Errorf("service still registered after /x:\n%s", out)
	}
	if _, err := os.Stat(exe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("agent still installed after /x: %v", err)
	}
	if p := w.products(); len(p) != 0 {
		t.Errorf("products after /x: %q", p)
	}
	poll(t, "no agent process after /x", time.Minute, func() string {
		if p := w.agentProcesses(); len(p) > 0 {
			return fmt.Sprintf("still running: %q", p)
		}
		return ""
	})
}
