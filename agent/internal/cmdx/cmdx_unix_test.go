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
