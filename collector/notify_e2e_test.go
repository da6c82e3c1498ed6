//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// desktopBus gives a machine root a person at the screen: logind's state
// file of an active graphical session on seat0 and that user's session
// bus at root/run/user/UID/bus (a private dbus-daemon), with a stand-in
// notification server (dbus-test-tool echo owning
// org.freedesktop.Notifications) and dbus-monitor recording the Notify
// calls. As root the user is nobody (65534), so that the agent's switch
// to the user is exercised. It skips when a D-Bus tool is missing (fails
// under BONAFIDE_REQUIRE_ALL=1). The agent package's own test does the
// same in more detail; the two cannot share code (agent/internal and
// collector/internal stay apart).
type desktopBus struct {
	uid     int
	mu      sync.Mutex
	monitor strings.Builder
}

func startDesktopBus(t *testing.T, root string) *desktopBus {
	t.Helper()
	for _, tool := range []string{"dbus-daemon", "dbus-test-tool", "dbus-monitor", "dbus-send", "gdbus"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found (apt-get install dbus-daemon dbus-bin dbus-tests libglib2.0-bin)"
			if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	b := &desktopBus{uid: os.Getuid()}
	if b.uid == 0 {
		b.uid = 65534
		for d := root; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(filepath.Base(d), strings.SplitN(t.Name(), "/", 2)[0]) {
				break
			}
		}
	}
	dir := filepath.Join(root, "run/user", strconv.Itoa(b.uid))
	os.MkdirAll(filepath.Join(root, "run/systemd/sessions"), 0o755)
	os.MkdirAll(filepath.Dir(dir), 0o755)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, b.uid, b.uid); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run/systemd/sessions/2"), fmt.Appendf(nil,
		"UID=%d\nUSER=alice\nACTIVE=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\nSEAT=seat0\nSERVICE=gdm-password\n", b.uid), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "unix:path=" + filepath.Join(dir, "bus")
	env := []string{"DBUS_SESSION_BUS_ADDRESS=" + addr}
	b.start(t, nil, "^unix:", "dbus-daemon", "--session", "--nofork", "--address="+addr, "--print-address")
	b.start(t, env, "", "dbus-test-tool", "echo", "--name=org.freedesktop.Notifications")
	b.start(t, nil, "member=NameLost", "dbus-monitor", "--address", addr, "type='method_call',interface='org.freedesktop.Notifications'")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, _ := b.command(env, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
			"org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.Notifications").Output()
		if strings.Contains(string(out), "boolean true") {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatal("the notification stand-in did not take its name")
		}
	}
}

func (b *desktopBus) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if b.uid != os.Getuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(b.uid), Gid: uint32(b.uid)}}
	}
	return cmd
}

// start starts a process as the bus's user and, when ready is not empty,
// waits for an output line containing it (a leading ^: starting with
// it); dbus-monitor's lines are kept.
func (b *desktopBus) start(t *testing.T, env []string, ready, name string, args ...string) {
	t.Helper()
	cmd := b.command(env, name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if name == "dbus-monitor" {
				b.mu.Lock()
				b.monitor.WriteString(l + "\n")
				b.mu.Unlock()
			}
			if ready != "" && (strings.HasPrefix(ready, "^") && strings.HasPrefix(l, ready[1:]) || strings.Contains(l, ready)) {
				close(seen)
				ready = ""
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-done; cmd.Wait() })
	if ready == "" {
		return
	}
	select {
	case <-seen:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not start", name)
	}
}

// notifications are the summary and body of each Notify call the monitor
// saw (its 3rd and 4th string arguments).
func (b *desktopBus) notifications() [][2]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][2]string
	var strs []string
	in := false
	for _, l := range strings.Split(b.monitor.String()+"method call end\n", "\n") {
		if !strings.HasPrefix(l, " ") {
			if in && len(strs) >= 4 {
				out = append(out, [2]string{strs[2], strs[3]})
			}
			in, strs = strings.Contains(l, "member=Notify"), nil
		} else if s, ok := strings.CutPrefix(strings.TrimSpace(l), `string "`); ok && in {
			strs = append(strs, strings.TrimSuffix(s, `"`))
		}
	}
	return out
}

// unitCapabilities runs cmd, when the test is root, as the agent's systemd
// unit does: within its CapabilityBoundingSet and with no_new_privs
// (setpriv), so that what the agent does there (switching to the desktop
// user for a notification) is proven to be allowed by the unit.
func unitCapabilities(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return cmd
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal("setpriv not found (apt-get install util-linux)")
		}
		t.Log("setpriv not found: the agent runs with all capabilities")
		return cmd
	}
	unit, err := os.ReadFile("../installers/linux/bonafide-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the agent's unit sets no CapabilityBoundingSet")
	}
	bset := "-all"
	for _, c := range strings.Fields(string(m[1])) {
		bset += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return exec.Command(setpriv, append([]string{"--bounding-set=" + bset, "--inh-caps=-all", "--no-new-privs"}, cmd.Args...)...)
}
