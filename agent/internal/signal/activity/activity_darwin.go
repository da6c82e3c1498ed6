package activity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

const macIoreg = "/usr/sbin/ioreg"

// cmdTimeout bounds one ioreg call, maxOutput its output (IOHIDSystem
// four levels deep is a few kilobytes).
const (
	cmdTimeout = 10 * time.Second
	maxOutput  = 4 << 20
)

// LiveIdle is this OS's idle reader: HIDIdleTime of IOHIDSystem (see
// machid.go), system-wide, so it sees the console user from a
// LaunchDaemon. ok=false, with no error, when the property is absent.
// Only the IOHIDSystem entries themselves are printed (-d 1: the
// property is theirs, not their children's), a few kilobytes.
func LiveIdle(ctx context.Context) (time.Duration, bool, error) {
	out, err := cmdx.Run(ctx, cmdTimeout, maxOutput, macIoreg, "-c", "IOHIDSystem", "-d", "1", "-r", "-a")
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

// Readers returns the idle readers of the machine under root (see Run):
// on the live system LiveIdle for both the minute samples and the jiggler
// rhythm (HIDIdleTime is the time since the last HID event in
// nanoseconds; each reading runs ioreg once, one short process every
// RhythmInterval, about 17,000 a day); none under a fixture root.
func Readers(root string) (idle, rhythm IdleFunc) {
	if root != "" && root != "/" {
		return nil, nil
	}
	return LiveIdle, LiveIdle
}
