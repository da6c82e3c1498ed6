//go:build unix

package sessions

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

// SeatBus is the session D-Bus of the person at the screen (LinuxSeatUser):
// root/run/user/UID/bus, the socket their login's user manager opens. A
// session bus accepts only its own user, not even root, so commands on it
// (gdbus) run as that user; the user's group is the group of their
// runtime directory, which logind creates.
type SeatBus struct {
	User SeatUser
	GID  uint32
	// Env points a command at the bus: DBUS_SESSION_BUS_ADDRESS and
	// XDG_RUNTIME_DIR.
	Env []string
}

// LinuxSeatBus finds the session bus of the user of the active graphical
// session on a local seat under root. The error wraps ErrNoSeatUser when
// nobody is at the screen, and fs.ErrNotExist when the user has no
// runtime directory; a runtime directory that is not the user's own is an
// error (the agent would otherwise talk to someone else's bus as them).
func LinuxSeatBus(root string) (SeatBus, error) {
	if root == "" {
		root = "/"
	}
	u, err := LinuxSeatUser(root)
	if err != nil {
		return SeatBus{}, err
	}
	dir := filepath.Join(root, "run/user", strconv.FormatUint(uint64(u.UID), 10))
	fi, err := os.Stat(dir)
	if err != nil {
		return SeatBus{}, fmt.Errorf("%s's runtime directory: %w", u.Name, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != u.UID || !fi.IsDir() {
		return SeatBus{}, fmt.Errorf("%s is not a directory owned by %s (uid %d)", dir, u.Name, u.UID)
	}
	return SeatBus{
		User: u,
		GID:  st.Gid,
		Env:  []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "bus"), "XDG_RUNTIME_DIR=" + dir},
	}, nil
}

// Run runs name with args on the bus, as the bus's user when the agent is
// someone else (root), under cmdx's deadline and output cap.
func (b SeatBus) Run(ctx context.Context, timeout time.Duration, maxBytes int, name string, args ...string) ([]byte, error) {
	if uint32(os.Geteuid()) == b.User.UID {
		return cmdx.RunEnv(ctx, b.Env, timeout, maxBytes, name, args...)
	}
	return cmdx.RunAs(ctx, cmdx.User{UID: b.User.UID, GID: b.GID}, b.Env, timeout, maxBytes, name, args...)
}
