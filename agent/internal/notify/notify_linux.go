package notify

import (
	"context"
	"fmt"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
)

// show notifies the user of the active graphical session on the seat over
// their session bus, root/run/user/UID/bus, with gdbus run as that user
// (see sessions.LinuxSeatBus: a session bus accepts only its own user, not
// even root).
func show(ctx context.Context, root string, m Message) error {
	bus, err := sessions.LinuxSeatBus(root)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if _, err := bus.Run(ctx, timeout, 4<<10, "gdbus", gdbusArgs(m)...); err != nil {
		return fmt.Errorf("notify %s over their session bus: %w", bus.User.Name, err)
	}
	return nil
}
