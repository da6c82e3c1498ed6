package activity

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The Linux desktops' own idle time, read on the session D-Bus of the
// person at the screen (see desktop_linux.go). Each source answers one
// number, how long ago the last input event was; the agent asks nothing
// else, and so never learns which key, button or position.
//
//   - GNOME (Mutter, X11 and Wayland): org.gnome.Mutter.IdleMonitor,
//     object /org/gnome/Mutter/IdleMonitor/Core, method GetIdletime →
//     uint64, the milliseconds since the last input event (mutter's
//     data/dbus-interfaces/org.gnome.Mutter.IdleMonitor.xml, and
//     meta_idle_monitor_get_idletime in src/backends/meta-idle-monitor.c:
//     monotonic time now − last event time, in ms). Mutter serves it to
//     any client of the session bus.
//   - KDE Plasma on X11: kscreenlocker's org.freedesktop.ScreenSaver
//     interface, object /ScreenSaver, method GetSessionIdleTime → uint32.
//     Its introspection names the result "seconds", but kscreenlocker
//     (interface.cpp, Interface::GetSessionIdleTime) returns
//     KIdleTime::idleTime(), milliseconds since the last input. On Plasma
//     Wayland it answers org.freedesktop.DBus.Error.NotSupported (since
//     kscreenlocker a4244d3c, 2022). The agent asks it under its KDE bus
//     name, org.kde.screensaver (the same object, registered under both
//     names), and not under org.freedesktop.ScreenSaver: other owners of
//     that name from the gnome-screensaver line (MATE, Cinnamon, the old
//     gnome-screensaver) answer the seconds since the session was
//     declared idle, and 0 before (mate-screensaver's
//     doc/dbus-interface.xml), which is not the time since the last input
//     and would invent resumptions.

// desktopSource is one way of asking a desktop its idle time with gdbus.
type desktopSource struct {
	name   string // for logs and tests
	dest   string
	path   string
	method string // interface.member
	typ    string // the GVariant type of the one result: uint64 or uint32
}

var desktopSources = []desktopSource{
	{name: "mutter", dest: "org.gnome.Mutter.IdleMonitor", path: "/org/gnome/Mutter/IdleMonitor/Core",
		method: "org.gnome.Mutter.IdleMonitor.GetIdletime", typ: "uint64"},
	{name: "kscreenlocker", dest: "org.kde.screensaver", path: "/ScreenSaver",
		method: "org.freedesktop.ScreenSaver.GetSessionIdleTime", typ: "uint32"},
}

// gdbusArgs calls s's method with no arguments on the session bus.
// gdbus's own timeout is below the agent's deadline for the command.
func (s desktopSource) gdbusArgs() []string {
	return []string{"call", "--session", "--timeout", strconv.Itoa(int(desktopCallTimeout / time.Second)),
		"--dest", s.dest, "--object-path", s.path, "--method", s.method}
}

// desktopCallTimeout is gdbus's --timeout; desktopCmdTimeout bounds the
// whole command (a reading every RhythmInterval must not pile up), and
// desktopMaxOutput its output: the answer is one short line.
const (
	desktopCallTimeout = 3 * time.Second
	desktopCmdTimeout  = 4 * time.Second
	desktopMaxOutput   = 256
)

// errGdbusReply is wrapped by parseGdbusIdle's errors.
var errGdbusReply = errors.New("unexpected gdbus reply")

// maxIdleMillis is the largest idle time a Duration holds, in ms.
const maxIdleMillis = uint64(math.MaxInt64 / int64(time.Millisecond))

// parseGdbusIdle parses what `gdbus call` prints for a method returning
// one unsigned integer of GVariant type typ (uint64 or uint32) counting
// milliseconds: exactly "(typ N,)" and a newline, N in decimal without
// leading zeros and within typ. Anything else (another type, more values,
// an error text) is an error. Idle times past what a Duration holds (292
// years) are capped.
func parseGdbusIdle(out []byte, typ string) (time.Duration, error) {
	bits := 64
	switch typ {
	case "uint64":
	case "uint32":
		bits = 32
	default:
		return 0, fmt.Errorf("%w: type %q", errGdbusReply, typ)
	}
	s, ok := strings.CutSuffix(string(out), "\n")
	if ok {
		s, ok = strings.CutPrefix(s, "("+typ+" ")
	}
	if ok {
		s, ok = strings.CutSuffix(s, ",)")
	}
	if !ok || s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %.80q", errGdbusReply, out)
	}
	ms, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: %.80q", errGdbusReply, out)
	}
	return time.Duration(min(ms, maxIdleMillis)) * time.Millisecond, nil
}
