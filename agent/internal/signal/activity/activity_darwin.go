package activity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"time"
)

const macIoreg = "/usr/sbin/ioreg"

// cmdTimeout bounds one ioreg call.
const cmdTimeout = 10 * time.Second

// LiveIdle is this OS's idle reader: HIDIdleTime of IOHIDSystem (see
// machid.go), system-wide, so it sees the console user from a
// LaunchDaemon. ok=false, with no error, when the property is absent.
func LiveIdle(ctx context.Context) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, macIoreg, "-c", "IOHIDSystem", "-d", "4", "-r", "-a").Output()
	if err != nil {
		return 0, false, fmt.Errorf("activity: ioreg -c IOHIDSystem: %w", err)
	}
	ns, err := macHIDIdleTime(out)
	if errors.Is(err, errMacNoIdle) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("activity: %w", err)
	}
	if ns > math.MaxInt64 {
		ns = math.MaxInt64
	}
	return time.Duration(ns), true, nil
}
