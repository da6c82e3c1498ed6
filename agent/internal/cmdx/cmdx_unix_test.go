//go:build unix

package cmdx

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The deadline kills the command's children too: a shell's background
// sleep does not survive it.
func TestRunKillsTheProcessGroup(t *testing.T) {
	need(t, "sh", "sleep")
	start := time.Now()
	out, err := Run(context.Background(), 300*time.Millisecond, 1<<10, "sh", "-c", "sleep 30 & echo $!; wait")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if perr != nil {
		t.Fatalf("no child pid in %q", out)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// Gone, or a zombie of init's: signal 0 fails once it is reaped.
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if b, _ := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output(); strings.HasPrefix(strings.TrimSpace(string(b)), "Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running", pid)
		}
	}
}

// RunAs runs the command as the user, without the agent's groups and
// environment (root only: elsewhere it cannot switch users).
func TestRunAs(t *testing.T) {
	need(t, "id", "sh")
	if syscall.Geteuid() != 0 {
		t.Skip("RunAs needs root")
	}
	t.Setenv("BONAFIDE_SECRET_TEST", "agent-only")
	out, err := RunAs(context.Background(), User{UID: 65534, GID: 65534}, []string{"EXTRA=1"}, 30*time.Second, 1<<10,
		"sh", "-c", `echo "$(id -u) $(id -g) $(id -G) ${BONAFIDE_SECRET_TEST:-none} $EXTRA"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "65534 65534 65534 none 1" {
		t.Fatalf("ran as %q, want uid, gid and groups 65534, no inherited environment, EXTRA=1", got)
	}
}
