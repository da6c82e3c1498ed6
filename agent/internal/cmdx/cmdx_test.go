package cmdx

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func need(t *testing.T, names ...string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs Unix tools")
	}
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

func TestRunPassesOutputThrough(t *testing.T) {
	need(t, "sh")
	out, err := RunEnv(context.Background(), []string{"TZ=UTC"}, 10*time.Second, 1<<10, "sh", "-c", "echo hello; echo $LC_ALL $TZ")
	if err != nil || string(out) != "hello\nC UTC\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestRunReportsStderrOfAFailure(t *testing.T) {
	need(t, "sh")
	out, err := Run(context.Background(), 10*time.Second, 1<<10, "sh", "-c", "echo part; echo oops >&2; exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(err.Error(), "oops") || string(out) != "part\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestRunKillsAHungCommand(t *testing.T) {
	need(t, "sleep")
	start := time.Now()
	_, err := Run(context.Background(), 200*time.Millisecond, 1<<10, "sleep", "30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRunCapsOutput(t *testing.T) {
	need(t, "head")
	out, err := Run(context.Background(), 30*time.Second, 1<<20, "head", "-c", "10485760", "/dev/zero")
	if !errors.Is(err, ErrTruncated) || len(out) != 1<<20 {
		t.Fatalf("%d bytes, %v", len(out), err)
	}
}

// `yes` never stops by itself: the cap stops it, and memory stays bounded.
func TestRunStopsEndlessOutput(t *testing.T) {
	need(t, "yes")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	out, err := Run(context.Background(), time.Minute, 64<<10, "yes")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) || len(out) != 64<<10 {
		t.Fatalf("%d bytes, %v", len(out), err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes for a 64 KiB cap", grew)
	}
}

func TestRunMissingCommand(t *testing.T) {
	if _, err := Run(context.Background(), time.Second, 10, "/nonexistent/tool"); err == nil {
		t.Fatal("no error")
	}
}
