package activity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
)

// noDesktopRetry is how long a session whose desktop answered neither
// source is left alone before it is asked again (XFCE, Plasma on Wayland,
// a desktop still starting): two failed gdbus calls a minute at most.
const noDesktopRetry = time.Minute

// desktopIdle reads the idle time of the person at the screen from their
// desktop, on their session bus, with gdbus run as them (the notification
// path's sessions.LinuxSeatBus): Mutter's IdleMonitor, else KDE's
// kscreenlocker (see desktop.go). Only that duration is read: never which
// input, never pointer positions or keys.
//
// It remembers, per session, the source that answered last (asked first
// next time) or that none did (not asked again for noDesktopRetry).
type desktopIdle struct {
	root string
	now  func() time.Time

	mu      sync.Mutex
	session string    // "ID/UID" of the session the state is about
	source  int       // index in desktopSources that answered last; -1 none
	retryAt time.Time // with source -1: when to ask again
}

func newDesktopIdle(root string) *desktopIdle {
	return &desktopIdle{root: root, now: time.Now, source: -1}
}

// idle is an IdleFunc. ok=false, with no error, when nobody is at the
// screen, the desktop has no session bus, or no source answers; an error
// when the bus is not the user's own or a desktop answers something that
// is not an idle time.
func (d *desktopIdle) idle(ctx context.Context) (time.Duration, bool, error) {
	bus, err := sessions.LinuxSeatBus(d.root)
	switch {
	case errors.Is(err, sessions.ErrNoSeatUser) || errors.Is(err, fs.ErrNotExist):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("activity: %w", err)
	}
	if _, err := exec.LookPath("gdbus"); err != nil {
		return 0, false, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := bus.User.Session + "/" + strconv.FormatUint(uint64(bus.User.UID), 10)
	if key != d.session {
		d.session, d.source, d.retryAt = key, -1, time.Time{}
	}
	if d.source < 0 && d.now().Before(d.retryAt) {
		return 0, false, nil
	}
	order := make([]int, 0, len(desktopSources))
	if d.source >= 0 {
		order = append(order, d.source)
	}
	for i := range desktopSources {
		if i != d.source {
			order = append(order, i)
		}
	}
	for _, i := range order {
		s := desktopSources[i]
		out, err := bus.Run(ctx, desktopCmdTimeout, desktopMaxOutput, "gdbus", s.gdbusArgs()...)
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		if err != nil {
			continue // not this desktop (the name has no owner, NotSupported, …)
		}
		idle, err := parseGdbusIdle(out, s.typ)
		if err != nil {
			d.source = -1
			return 0, false, fmt.Errorf("activity: %s over %s's session bus: %w", s.method, bus.User.Name, err)
		}
		d.source = i
		return idle, true, nil
	}
	d.source, d.retryAt = -1, d.now().Add(noDesktopRetry)
	return 0, false, nil
}
