package activity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

// cmdTimeout bounds one loginctl call.
const cmdTimeout = 5 * time.Second

// maxOutput caps the loginctl output parsed.
const maxOutput = 1 << 20

// Readers returns the idle readers of the machine under root (see Run):
// the desktop's own idle time of the person at the screen when their
// desktop answers it (GNOME, KDE on X11; see desktop.go), for the minute
// samples and the jiggler rhythm. On the live system the minute samples
// fall back, when no desktop answers, to logind's idle hint (LiveIdle);
// the rhythm then stays unmeasured (ok=false), as logind's hint is not the
// last input. Under a fixture root only the desktop is asked: loginctl
// would read the live system.
func Readers(root string) (idle, rhythm IdleFunc) {
	d := newDesktopIdle(root)
	if root != "" && root != "/" {
		return d.idle, d.idle
	}
	idle = func(ctx context.Context) (time.Duration, bool, error) {
		v, ok, err := d.idle(ctx)
		if ok || ctx.Err() != nil {
			return v, ok, err
		}
		lv, lok, lerr := LiveIdle(ctx)
		if lok {
			return lv, true, nil
		}
		return 0, false, errors.Join(err, lerr)
	}
	return idle, d.idle
}

// LiveIdle is logind's idle reader: the least idle active local user
// session known to systemd-logind (see loginctl.go). ok=false, with no
// error, when loginctl is absent or no local session can tell.
func LiveIdle(ctx context.Context) (time.Duration, bool, error) {
	bin, err := exec.LookPath("loginctl")
	if err != nil {
		return 0, false, nil
	}
	// sd_booted(3): without systemd as init there is no logind to ask
	// (containers, other init systems).
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return 0, false, nil
	}
	out, err := runCapped(ctx, bin, "list-sessions", "--no-legend", "--no-pager")
	if err != nil {
		return 0, false, fmt.Errorf("activity: loginctl list-sessions: %w", err)
	}
	var sessions []loginSession
	var errs []error
	for _, id := range parseSessionList(out) {
		out, err := runCapped(ctx, bin, "show-session", "--no-pager", id,
			"-p", "IdleHint", "-p", "IdleSinceHint", "-p", "Active",
			"-p", "Remote", "-p", "Type", "-p", "Class")
		if err != nil {
			// A session can end between the two calls.
			errs = append(errs, fmt.Errorf("activity: loginctl show-session %s: %w", id, err))
			continue
		}
		sessions = append(sessions, parseShowSession(out))
	}
	if d, ok := leastIdle(sessions, time.Now()); ok {
		return d, true, nil
	}
	if len(sessions) == 0 && len(errs) > 0 {
		return 0, false, errors.Join(errs...)
	}
	return 0, false, nil
}

// runCapped runs a loginctl command under cmdTimeout and maxOutput.
func runCapped(ctx context.Context, name string, args ...string) ([]byte, error) {
	return cmdx.RunEnv(ctx, []string{"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}, cmdTimeout, maxOutput, name, args...)
}
