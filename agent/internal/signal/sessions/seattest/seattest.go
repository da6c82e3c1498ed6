// Package seattest lays out, under a test's machine root, the desktop
// session that the agent's Linux seat lookup (sessions.LinuxSeatBus)
// finds: logind's state file of an active graphical session on seat0 and
// the user's runtime directory, where the test starts the user's session
// bus. Tests of what the agent asks on that bus (notifications, the
// desktop's idle time) share it.
package seattest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RequireTools skips the test when one of tools is missing, or fails it
// when BONAFIDE_REQUIRE_ALL=1; install says how to get them.
func RequireTools(t testing.TB, install string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
				t.Fatalf("%s not found and BONAFIDE_REQUIRE_ALL=1 (%s)", tool, install)
			}
			t.Skipf("%s not found (%s)", tool, install)
		}
	}
}

// Seat writes root/run/systemd/sessions/2 (user alice's active Wayland
// session on seat0) and makes root/run/user/UID, the user's runtime
// directory (0700, the user's). It returns the user and the address of
// its session bus there. As root the user is nobody (65534), so that the
// agent's switch to the user is exercised, and the directories above
// root up to the test's own are opened for it; otherwise the test's own
// user.
func Seat(t testing.TB, root string) (uid uint32, busAddr string) {
	t.Helper()
	uid = uint32(os.Getuid())
	if uid == 0 {
		uid = 65534
		for d := root; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			must(t, os.Chmod(d, 0o755))
			if strings.HasPrefix(filepath.Base(d), strings.SplitN(t.Name(), "/", 2)[0]) {
				break
			}
		}
	}
	u := strconv.FormatUint(uint64(uid), 10)
	dir := filepath.Join(root, "run/user", u)
	must(t, os.MkdirAll(filepath.Join(root, "run/systemd/sessions"), 0o755))
	must(t, os.MkdirAll(filepath.Dir(dir), 0o755))
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chown(dir, int(uid), int(uid)))
	must(t, os.WriteFile(filepath.Join(root, "run/systemd/sessions/2"), fmt.Appendf(nil,
		"UID=%s\nUSER=alice\nACTIVE=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\nSEAT=seat0\nSERVICE=gdm-password\n", u), 0o644))
	return uid, "unix:path=" + filepath.Join(dir, "bus")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
