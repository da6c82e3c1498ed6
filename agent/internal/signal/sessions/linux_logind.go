package sessions

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// logindSession is the part of a systemd-logind state file
// (/run/systemd/sessions/<id>, written by session_save() in
// src/login/logind-session.c) the agent uses. The file is KEY=VALUE lines;
// REMOTE_HOST, REMOTE_USER, SERVICE and DESKTOP are C-escaped.
type logindSession struct {
	ID         string
	User       string
	UID        string
	Remote     bool
	RemoteHost string
	Service    string
	Type       string // tty, x11, wayland, mir, web, unspecified
	Class      string // user, greeter, lock-screen, background, manager, ...
	State      string // online, active, closing
	TTY        string
	Display    string
	Seat       string
	Realtime   time.Time
}

// maxLogindFile bounds one session file; real ones are well under 1 KiB.
const maxLogindFile = 64 << 10

// parseLogindSession parses one session state file.
func parseLogindSession(id string, data []byte) logindSession {
	s := logindSession{ID: id}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLogindFile)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.ToValidUTF8(v, "\uFFFD")
		switch k {
		case "USER":
			s.User = v
		case "UID":
			s.UID = v
		case "REMOTE":
			s.Remote = v == "1" || v == "yes" || v == "true"
		case "REMOTE_HOST":
			s.RemoteHost = cUnescape(v)
		case "SERVICE":
			s.Service = cUnescape(v)
		case "TYPE":
			s.Type = v
		case "CLASS":
			s.Class = v
		case "STATE":
			s.State = v
		case "TTY":
			s.TTY = v
		case "DISPLAY":
			s.Display = v
		case "SEAT":
			s.Seat = v
		case "REALTIME":
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 && us < 1<<62 {
				s.Realtime = time.UnixMicro(us).UTC()
			}
		}
	}
	return s
}

// cUnescape undoes systemd's cescape(): \\, \", \', \a \b \f \n \r \t \v,
// \xHH and \NNN (octal). Unknown escapes are kept as written.
func cUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case '\\', '"', '\'':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			if e >= '0' && e <= '3' && i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i:i+3], 8, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// isUserSession reports sessions a person logged in to: CLASS user (and
// user-early, user-incomplete, user-light in newer systemd). Greeters,
// lock screens, background (cron) and manager sessions are skipped. A file
// without CLASS counts as a user session.
func (s logindSession) isUserSession() bool {
	return s.Class == "" || strings.HasPrefix(s.Class, "user")
}

// toSession maps a logind session: SERVICE sshd → SSH, xrdp* →
// REMOTE_DESKTOP, *vnc* → SCREEN_SHARING, other REMOTE=1 → OTHER, else
// CONSOLE. The terminal is TTY, else DISPLAY, else the seat, else
// "session-<id>".
func (s logindSession) toSession() session {
	svc := strings.ToLower(s.Service)
	var typ agentv1.LoginSession_Type
	switch {
	case svc == "sshd" || strings.HasPrefix(svc, "sshd-"):
		typ = agentv1.LoginSession_TYPE_SSH
	case strings.HasPrefix(svc, "xrdp"):
		typ = agentv1.LoginSession_TYPE_REMOTE_DESKTOP
	case strings.Contains(svc, "vnc"):
		typ = agentv1.LoginSession_TYPE_SCREEN_SHARING
	case s.Remote:
		typ = agentv1.LoginSession_TYPE_OTHER
	default:
		typ = agentv1.LoginSession_TYPE_CONSOLE
	}
	term := s.TTY
	if term == "" {
		term = s.Display
	}
	if term == "" {
		term = s.Seat
	}
	if term == "" {
		term = "session-" + s.ID
	}
	return session{User: s.User, Line: term, Host: s.RemoteHost, Type: typ, Start: s.Realtime}
}
