package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
)

// show notifies the user of the active graphical session on the seat over
// their session bus, root/run/user/UID/bus, with gdbus run as that user
// (a session bus accepts only its own user, not even root). The user's
// group is the group of their runtime directory, which logind creates.
func show(ctx context.Context, root string, m Message) error {
	u, err := sessions.LinuxSeatUser(root)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	dir := filepath.Join(root, "run/user", strconv.FormatUint(uint64(u.UID), 10))
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("notify: %s's runtime directory: %w", u.Name, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != u.UID {
		return fmt.Errorf("notify: %s is not owned by %s (uid %d)", dir, u.Name, u.UID)
	}
	env := []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "bus"), "XDG_RUNTIME_DIR=" + dir}
	args := gdbusArgs(m)
	if uint32(os.Geteuid()) == u.UID {
		_, err = cmdx.RunEnv(ctx, env, timeout, 4<<10, "gdbus", args...)
	} else {
		_, err = cmdx.RunAs(ctx, cmdx.User{UID: u.UID, GID: st.Gid}, env, timeout, 4<<10, "gdbus", args...)
	}
	if err != nil {
		return fmt.Errorf("notify %s over their session bus: %w", u.Name, err)
	}
	return nil
}
