package sessions

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Linux struct utmp as glibc lays it out on x86-64 and arm64 (the same on
// both; the 32-bit time fields are __WORDSIZE_TIME64_COMPAT32): see utmp(5).
const (
	utmpRecordSize = 384

	utmpOffType    = 0   // int32 ut_type
	utmpOffPID     = 4   // int32 ut_pid
	utmpOffLine    = 8   // char ut_line[32]
	utmpOffID      = 40  // char ut_id[4]
	utmpOffUser    = 44  // char ut_user[32]
	utmpOffHost    = 76  // char ut_host[256]
	utmpOffExit    = 332 // struct exit_status {int16 termination, exit}
	utmpOffSession = 336 // int32 ut_session
	utmpOffSec     = 340 // int32 tv_sec
	utmpOffUsec    = 344 // int32 tv_usec
	utmpOffAddr    = 348 // int32 ut_addr_v6[4], network byte order
)

// ut_type values (utmp(5)); macOS uses the same numbers up to 8.
const (
	utEmpty        = 0
	utRunLevel     = 1
	utBootTime     = 2
	utNewTime      = 3
	utOldTime      = 4
	utInitProcess  = 5
	utLoginProcess = 6
	utUserProcess  = 7
	utDeadProcess  = 8
	utAccounting   = 9
)

// utmpRecord is one decoded struct utmp.
type utmpRecord struct {
	Type    int32
	PID     int32
	Line    string
	ID      string
	User    string
	Host    string
	Session int32
	Time    time.Time
	Addr    netip.Addr
	// Offset is the record's byte offset in the file.
	Offset int64
}

// cString returns b up to its first NUL, with invalid UTF-8 replaced.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// parseUtmp decodes whole 384-byte records from data; a trailing partial
// record is ignored. base is the file offset of data[0].
func parseUtmp(data []byte, base int64) []utmpRecord {
	n := len(data) / utmpRecordSize
	out := make([]utmpRecord, 0, n)
	le := binary.LittleEndian
	for i := range n {
		r := data[i*utmpRecordSize : (i+1)*utmpRecordSize]
		rec := utmpRecord{
			Type:    int32(le.Uint32(r[utmpOffType:])),
			PID:     int32(le.Uint32(r[utmpOffPID:])),
			Line:    cString(r[utmpOffLine:utmpOffID]),
			ID:      cString(r[utmpOffID:utmpOffUser]),
			User:    cString(r[utmpOffUser:utmpOffHost]),
			Host:    cString(r[utmpOffHost:utmpOffExit]),
			Session: int32(le.Uint32(r[utmpOffSession:])),
			Offset:  base + int64(i*utmpRecordSize),
		}
		sec := int64(int32(le.Uint32(r[utmpOffSec:])))
		usec := int64(int32(le.Uint32(r[utmpOffUsec:])))
		if usec < 0 || usec >= 1e6 {
			usec = 0
		}
		rec.Time = time.Unix(sec, usec*1000).UTC()
		a := r[utmpOffAddr : utmpOffAddr+16]
		if isZero(a[4:]) {
			rec.Addr = netip.AddrFrom4([4]byte(a[:4]))
		} else {
			rec.Addr = netip.AddrFrom16([16]byte(a))
		}
		out = append(out, rec)
	}
	return out
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// session is a login paired with its end, before conversion to the wire type.
type session struct {
	User, Line, Host string
	Type             agentv1.LoginSession_Type
	Start, End       time.Time // End zero while open
	// Key orders sessions and positions the history cursor: the file offset
	// of the login record on Linux.
	Key int64
}

func (s session) proto() *agentv1.LoginSession {
	ls := &agentv1.LoginSession{
		User:          s.User,
		Type:          s.Type,
		SourceAddress: s.Host,
		Terminal:      s.Line,
	}
	if !s.Start.IsZero() {
		ls.StartedAt = timestamppb.New(s.Start)
	}
	if !s.End.IsZero() {
		ls.EndedAt = timestamppb.New(s.End)
	}
	return ls
}

// isShutdownRecord reports whether r marks the system going down or coming
// up, which ends every open session. Like util-linux last, it recognises
// BOOT_TIME and the "~" line written by shutdown and reboot.
func isShutdownRecord(r utmpRecord) bool {
	if r.Type == utBootTime {
		return true
	}
	if r.Line == "~" && (r.User == "shutdown" || r.User == "reboot") {
		return true
	}
	return false
}

// pairUtmp turns wtmp records into sessions, in login order. It follows
// util-linux last: a DEAD_PROCESS on a line ends the open login on that
// line; a new login on a line ends the previous one there; a boot or
// shutdown record ends every open session.
func pairUtmp(recs []utmpRecord) []session {
	var out []session
	open := map[string]int{} // line -> index in out
	for _, r := range recs {
		switch {
		case isShutdownRecord(r):
			for line, i := range open {
				out[i].End = r.Time
				delete(open, line)
			}
		case r.Type == utUserProcess:
			if i, ok := open[r.Line]; ok {
				out[i].End = r.Time
			}
			src, typ := classifyUtmp(r)
			out = append(out, session{
				User: r.User, Line: r.Line, Host: src, Type: typ,
				Start: r.Time, Key: r.Offset,
			})
			if r.Line != "" {
				open[r.Line] = len(out) - 1
			}
		case r.Type == utDeadProcess:
			if i, ok := open[r.Line]; ok && r.Line != "" {
				out[i].End = r.Time
				delete(open, r.Line)
			}
		}
	}
	return out
}

// displayNumber parses an X display name ":N" or ":N.S" and reports N.
func displayNumber(s string) (int, bool) {
	if !strings.HasPrefix(s, ":") {
		return 0, false
	}
	s = s[1:]
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// xrdpDisplayOffset is xrdp-sesman's default X11DisplayOffset: xrdp
// sessions run on X displays :10 and up, local ones on :0 to :9.
const xrdpDisplayOffset = 10

// classifyUtmp decides a USER_PROCESS record's session type and source.
//
//   - host mentions "xrdp", or line or host is an X display ":N" with
//     N >= 10 (xrdp's default display offset) → REMOTE_DESKTOP;
//   - line or host is an X display ":0"–":9", or line is "console", tty<N>
//     or vc/<N> with no remote host → CONSOLE;
//   - line pts/* (or anything else) with a remote host → SSH when the line
//     is a pseudo-terminal (sshd is what records a remote host for a pts;
//     telnet and mosh would look the same), otherwise OTHER;
//   - anything else → OTHER.
//
// The source address is the host field unless it is an X display name,
// falling back to ut_addr_v6 when the host is empty.
func classifyUtmp(r utmpRecord) (string, agentv1.LoginSession_Type) {
	host := r.Host
	if strings.Contains(strings.ToLower(host), "xrdp") {
		return host, agentv1.LoginSession_TYPE_REMOTE_DESKTOP
	}
	if n, ok := displayNumber(r.Line); ok {
		if n >= xrdpDisplayOffset {
			return remoteHost(host, r.Addr), agentv1.LoginSession_TYPE_REMOTE_DESKTOP
		}
		return "", agentv1.LoginSession_TYPE_CONSOLE
	}
	if n, ok := displayNumber(host); ok {
		// A terminal emulator inside an X session records the display.
		if n >= xrdpDisplayOffset {
			return "", agentv1.LoginSession_TYPE_REMOTE_DESKTOP
		}
		return "", agentv1.LoginSession_TYPE_CONSOLE
	}
	src := remoteHost(host, r.Addr)
	if src != "" {
		if strings.HasPrefix(r.Line, "pts/") {
			return src, agentv1.LoginSession_TYPE_SSH
		}
		return src, agentv1.LoginSession_TYPE_OTHER
	}
	if isConsoleLine(r.Line) {
		return "", agentv1.LoginSession_TYPE_CONSOLE
	}
	return "", agentv1.LoginSession_TYPE_OTHER
}

func remoteHost(host string, addr netip.Addr) string {
	if host != "" {
		return host
	}
	if addr.IsValid() && !addr.IsUnspecified() {
		return addr.String()
	}
	return ""
}

// isConsoleLine reports a virtual console: "console", tty<N>, vc/<N>.
func isConsoleLine(line string) bool {
	if line == "console" {
		return true
	}
	for _, p := range []string{"tty", "vc/"} {
		if rest, ok := strings.CutPrefix(line, p); ok && rest != "" {
			if _, err := strconv.Atoi(rest); err == nil {
				return true
			}
		}
	}
	return false
}

// currentFromUtmp lists the USER_PROCESS entries of a utmp file (the live
// file keeps one slot per line; ended logins become DEAD_PROCESS in place).
func currentFromUtmp(recs []utmpRecord) []session {
	var out []session
	for _, r := range recs {
		if r.Type != utUserProcess || r.User == "" {
			continue
		}
		src, typ := classifyUtmp(r)
		out = append(out, session{User: r.User, Line: r.Line, Host: src, Type: typ, Start: r.Time, Key: r.Offset})
	}
	return out
}
