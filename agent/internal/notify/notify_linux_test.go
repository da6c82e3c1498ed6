package notify

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions/seattest"
)

// sessionBus is a private D-Bus session bus of a desktop user under a
// machine root: dbus-daemon at root/run/user/UID/bus, a stand-in
// notification server (dbus-test-tool echo owning
// org.freedesktop.Notifications) and dbus-monitor recording every Notify
// call. As root the user is nobody (65534), so that the agent's switch to
// the user is exercised; otherwise the test's own user.
type sessionBus struct {
	uid     uint32
	mu      sync.Mutex
	monitor strings.Builder
}

func startSessionBus(t *testing.T, root string) *sessionBus {
	t.Helper()
	seattest.RequireTools(t, "apt-get install dbus-daemon dbus-bin dbus-tests libglib2.0-bin",
		"dbus-daemon", "dbus-test-tool", "dbus-monitor", "dbus-send", "gdbus")
	b := &sessionBus{}
	var addr string
	b.uid, addr = seattest.Seat(t, root)

	ready := make(chan struct{})
	b.start(t, nil, func(line string) {
		if strings.HasPrefix(line, "unix:") {
			close(ready)
		}
	}, "dbus-daemon", "--session", "--nofork", "--address="+addr, "--print-address")
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("dbus-daemon did not start") // its output is racy to read here; run it by hand
	}
	env := []string{"DBUS_SESSION_BUS_ADDRESS=" + addr}
	b.start(t, env, nil, "dbus-test-tool", "echo", "--name=org.freedesktop.Notifications")
	monitoring := make(chan struct{})
	var once sync.Once
	b.start(t, nil, func(line string) {
		b.mu.Lock()
		b.monitor.WriteString(line + "\n")
		b.mu.Unlock()
		if strings.Contains(line, "member=NameLost") { // it became a monitor
			once.Do(func() { close(monitoring) })
		}
	}, "dbus-monitor", "--address", addr, "type='method_call',interface='org.freedesktop.Notifications'")
	select {
	case <-monitoring:
	case <-time.After(time.Minute):
		t.Fatal("dbus-monitor did not start")
	}
	// Wait for the stand-in to own its name.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		cmd := b.command(env, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
			"org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.Notifications")
		if out, _ := cmd.Output(); strings.Contains(string(out), "boolean true") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the notification stand-in did not take its name")
		}
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// command runs as the bus's user.
func (b *sessionBus) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if b.uid != uint32(os.Getuid()) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: b.uid, Gid: b.uid}}
	}
	return cmd
}

// start starts a process as the bus's user, feeding its output lines to
// line, and stops it when the test ends.
func (b *sessionBus) start(t *testing.T, env []string, line func(string), name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := b.command(env, name, args...)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line != nil {
				line(sc.Text())
			}
		}
		io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return cmd
}

// notifyCall is a Notify call as dbus-monitor printed it.
type notifyCall struct{ App, Icon, Summary, Body string }

// calls parses the Notify calls the monitor saw: each is a "method call"
// line naming member=Notify, then its arguments, one per line.
func (b *sessionBus) calls() []notifyCall {
	b.mu.Lock()
	text := b.monitor.String()
	b.mu.Unlock()
	var out []notifyCall
	var strs []string
	in := false
	flush := func() {
		if in && len(strs) >= 4 {
			out = append(out, notifyCall{App: strs[0], Icon: strs[1], Summary: strs[2], Body: strs[3]})
		}
		in, strs = false, nil
	}
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "method call") || strings.HasPrefix(l, "signal") || strings.HasPrefix(l, "method return"):
			flush()
			in = strings.Contains(l, "member=Notify")
		case in && strings.HasPrefix(strings.TrimSpace(l), `string "`):
			s := strings.TrimPrefix(strings.TrimSpace(l), `string "`)
			strs = append(strs, strings.TrimSuffix(s, `"`))
		}
	}
	flush()
	return out
}

// waitCalls polls until the monitor saw n Notify calls.
func (b *sessionBus) waitCalls(t *testing.T, n int) []notifyCall {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if c := b.calls(); len(c) >= n {
			return c
		}
		if time.Now().After(deadline) {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("want %d Notify calls; the monitor saw:\n%s", n, b.monitor.String())
		}
	}
}

// TestShowLinuxSessionBus delivers a notification for real: the agent
// (root, when the test is) finds the seat's graphical session in logind's
// files under the root, and calls Notify on that user's session bus as
// that user; the bus's monitor sees the call with the cleaned text.
func TestShowLinuxSessionBus(t *testing.T) {
	root := t.TempDir()
	bus := startSessionBus(t, root)
	n := &Notifier{Root: root}
	m := Presence("https://bonafide.example.com", time.Now().Add(10*time.Minute), time.Now())
	if err := n.Show(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := bus.waitCalls(t, 1)[0]
	if got.App != "bonafide" || got.Summary != m.Summary || got.Body != m.Body {
		t.Fatalf("Notify call %+v, want %+v", got, m)
	}
	if !strings.Contains(got.Body, "https://bonafide.example.com/presence/check/") || !strings.Contains(got.Body, "within 10 minutes") {
		t.Fatalf("body %q", got.Body)
	}
	// Hostile text arrives inert: no quote closes the GVariant string.
	if err := n.Show(context.Background(), Message{Summary: `x', 'y`, Body: "<b>a</b> & 'q' \\ \"z\"\n\tend"}); err != nil {
		t.Fatal(err)
	}
	got = bus.waitCalls(t, 2)[1]
	if got.Summary != "x', 'y" || got.Body != "ba/b 'q' z end" {
		t.Fatalf("hostile text delivered as %+v", got)
	}

	// Nobody at the screen: an error, and nothing is sent.
	must(t, os.WriteFile(filepath.Join(root, "run/systemd/sessions/2"), []byte("UID=1000\nSTATE=online\nTYPE=wayland\nSEAT=seat0\n"), 0o644))
	if err := n.Show(context.Background(), m); !errors.Is(err, sessions.ErrNoSeatUser) {
		t.Fatalf("no seat user: %v", err)
	}
}
