package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

// show notifies the console user, the owner of /dev/console (root while
// nobody is logged in at the screen).
func show(ctx context.Context, root string, m Message) error {
	fi, err := os.Stat(filepath.Join(root, "dev/console"))
	if err != nil {
		return fmt.Errorf("notify: console user: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return errors.New("notify: nobody is logged in at the console")
	}
	if _, err := cmdx.Run(ctx, timeout, 4<<10, "/bin/launchctl", launchctlArgs(st.Uid, m)...); err != nil {
		return fmt.Errorf("notify the console user: %w", err)
	}
	return nil
}
