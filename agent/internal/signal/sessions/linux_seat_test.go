package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The person at the screen is the active graphical session on a seat: not
// the SSH session, not the login screen's greeter.
func TestLinuxSeatUser(t *testing.T) {
	root := fixtureRoot(t, constructedWtmp(t), true)
	u, err := LinuxSeatUser(root)
	if err != nil {
		t.Fatal(err)
	}
	if u != (SeatUser{UID: 1000, Name: "alice", Session: "2"}) {
		t.Fatalf("seat user %+v", u)
	}
	// Switched away (another session in front), or a remote desktop
	// session that logind put on no seat: nobody to notify.
	for _, edit := range []func(string) string{
		func(s string) string { return strings.Replace(s, "STATE=active", "STATE=online", 1) },
		func(s string) string { return strings.Replace(s, "SEAT=seat0\n", "", 1) },
		func(s string) string { return strings.Replace(s, "REMOTE=0", "REMOTE=1", 1) },
		func(s string) string { return strings.Replace(s, "TYPE=wayland", "TYPE=tty", 1) },
		func(s string) string { return strings.Replace(s, "UID=1000", "UID=-1", 1) },
	} {
		if err := os.WriteFile(filepath.Join(root, "run/systemd/sessions/2"), []byte(edit(logindGraphical)), 0o644); err != nil {
			t.Fatal(err)
		}
		if u, err := LinuxSeatUser(root); !errors.Is(err, ErrNoSeatUser) {
			t.Errorf("got %+v, %v; want ErrNoSeatUser", u, err)
		}
	}
	if _, err := LinuxSeatUser(t.TempDir()); err == nil || errors.Is(err, ErrNoSeatUser) {
		t.Errorf("no logind: %v", err)
	}
}
