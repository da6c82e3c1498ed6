package activity

// Linux reader, pure part (no build tag, tested on every OS);
// activity_linux.go runs the commands.
//
// systemd-logind keeps an idle hint per session, shown by
//
//	loginctl list-sessions --no-legend
//	loginctl show-session <id> -p IdleHint -p IdleSinceHint -p Active -p Remote -p Type -p Class
//
// show-session prints one Key=value line per property. IdleSinceHint is
// the CLOCK_REALTIME time in microseconds since the Unix epoch at which
// IdleHint last changed (0 when it never did).
//
//   - Graphical sessions (Type x11, wayland, mir): logind does not watch
//     input itself; the desktop reports idleness with SetIdleHint (GNOME's
//     session manager does; other desktops may not). IdleHint=yes means
//     idle since IdleSinceHint; IdleHint=no means the user is active, idle
//     0. A desktop that never calls SetIdleHint leaves IdleHint=no for ever,
//     which would count every minute as active; such a session shows
//     IdleSinceHint=0, and is treated as "cannot tell" (ok=false). A
//     desktop that set the hint once and then stopped cannot be told apart
//     from an active user.
//   - Text sessions (Type tty): logind derives the hint from the access
//     time of the session's terminal, which input updates, and shows that
//     time in IdleSinceHint, whether or not IdleHint is yes (IdleHint only
//     turns yes after logind's IdleActionSec). Idle is now - IdleSinceHint.
//
// Only sessions with Active=yes (the foreground session of its seat),
// Remote=no and Class=user count; of those, the least idle one is used.

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"time"
)

// maxSessions caps the sessions the Linux reader queries.
const maxSessions = 64

// loginSession is the part of loginctl show-session the reader uses.
type loginSession struct {
	IdleHint      bool
	IdleSinceHint int64 // µs since the Unix epoch; 0 when never set
	Active        bool
	Remote        bool
	Type          string
	Class         string
	hasIdleHint   bool
	hasIdleSince  bool
}

// parseSessionList returns the session IDs of loginctl list-sessions
// --no-legend output: the first field of each line. Fields that are not
// plausible session IDs (letters, digits, '_', '-', '.', not starting
// with '-') are skipped, so nothing odd ever reaches a command line.
func parseSessionList(out []byte) []string {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !validSessionID(f[0]) {
			continue
		}
		dup := false
		for _, id := range ids {
			if id == f[0] {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		ids = append(ids, f[0])
		if len(ids) == maxSessions {
			break
		}
	}
	return ids
}

func validSessionID(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// parseShowSession decodes loginctl show-session Key=value output.
// Unknown keys and malformed lines are ignored.
func parseShowSession(out []byte) loginSession {
	var s loginSession
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch k {
		case "IdleHint":
			s.IdleHint, s.hasIdleHint = parseYesNo(v)
		case "IdleSinceHint":
			if n, err := strconv.ParseUint(v, 10, 63); err == nil {
				s.IdleSinceHint, s.hasIdleSince = int64(n), true
			}
		case "Active":
			s.Active, _ = parseYesNo(v)
		case "Remote":
			s.Remote, _ = parseYesNo(v)
		case "Type":
			s.Type = v
		case "Class":
			s.Class = v
		}
	}
	return s
}

// parseYesNo decodes systemd's boolean property form.
func parseYesNo(v string) (b, ok bool) {
	switch v {
	case "yes", "true", "1":
		return true, true
	case "no", "false", "0":
		return false, true
	}
	return false, false
}

// local reports whether the session is an active local user session, the
// only kind whose idle time counts.
func (s loginSession) local() bool {
	return s.Active && !s.Remote && s.Class == "user"
}

func (s loginSession) graphical() bool {
	switch s.Type {
	case "x11", "wayland", "mir":
		return true
	}
	return false
}

// idle returns the session's input idle time at now; ok=false when the
// session does not count or logind cannot tell (see the file comment).
func (s loginSession) idle(now time.Time) (time.Duration, bool) {
	if !s.local() || !s.hasIdleHint {
		return 0, false
	}
	since := time.UnixMicro(s.IdleSinceHint)
	switch {
	case s.graphical():
		if !s.hasIdleSince || s.IdleSinceHint == 0 {
			return 0, false // The desktop never reported idleness.
		}
		if !s.IdleHint {
			return 0, true
		}
	case s.Type == "tty":
		if !s.hasIdleSince || s.IdleSinceHint == 0 {
			return 0, false
		}
	default:
		// unspecified and other types: logind has no input source.
		return 0, false
	}
	d := now.Sub(since)
	if d < 0 {
		d = 0
	}
	return d, true
}

// leastIdle returns the smallest idle time of the sessions that can tell.
func leastIdle(sessions []loginSession, now time.Time) (time.Duration, bool) {
	var best time.Duration
	found := false
	for _, s := range sessions {
		d, ok := s.idle(now)
		if ok && (!found || d < best) {
			best, found = d, true
		}
	}
	return best, found
}
