package sessions

import (
	"encoding/binary"
	"strings"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// macOS /var/run/utmpx holds packed struct utmpx records with a 32-bit
// timeval (libc writes the 32-bit compatible layout on every architecture):
// 628 bytes, little-endian. The first record is a signature whose user
// field is "utmpx-1.00" and type 10. Verified against plaso's test file.
const (
	macUtmpxRecordSize = 628

	macUtmpxOffUser = 0   // char ut_user[256]
	macUtmpxOffID   = 256 // char ut_id[4]
	macUtmpxOffLine = 260 // char ut_line[32]
	macUtmpxOffPID  = 292 // int32 ut_pid
	macUtmpxOffType = 296 // int16 ut_type, then 2 bytes padding
	macUtmpxOffSec  = 300 // int32 tv_sec
	macUtmpxOffUsec = 304 // int32 tv_usec
	macUtmpxOffHost = 308 // char ut_host[256]; then ut_pad[16] uint32

	macUtmpxSignature = 10
	macUtmpxShutdown  = 11
)

// macUtmpxRecord is one decoded macOS utmpx record.
type macUtmpxRecord struct {
	User, ID, Line, Host string
	PID                  int32
	Type                 int16
	Time                 time.Time
}

// macParseUtmpx decodes whole records; a trailing partial one is ignored.
func macParseUtmpx(data []byte) []macUtmpxRecord {
	n := len(data) / macUtmpxRecordSize
	out := make([]macUtmpxRecord, 0, n)
	le := binary.LittleEndian
	for i := range n {
		r := data[i*macUtmpxRecordSize : (i+1)*macUtmpxRecordSize]
		usec := int64(int32(le.Uint32(r[macUtmpxOffUsec:])))
		if usec < 0 || usec >= 1e6 {
			usec = 0
		}
		out = append(out, macUtmpxRecord{
			User: cString(r[macUtmpxOffUser:macUtmpxOffID]),
			ID:   cString(r[macUtmpxOffID:macUtmpxOffLine]),
			Line: cString(r[macUtmpxOffLine:macUtmpxOffPID]),
			PID:  int32(le.Uint32(r[macUtmpxOffPID:])),
			Type: int16(le.Uint16(r[macUtmpxOffType:])),
			Time: time.Unix(int64(int32(le.Uint32(r[macUtmpxOffSec:]))), usec*1000).UTC(),
			Host: cString(r[macUtmpxOffHost : macUtmpxOffHost+256]),
		})
	}
	return out
}

// macClassify maps a macOS login line and host: "console" is the local
// graphical login (Screen Sharing and Apple Remote Desktop attach to it and
// add no record of their own, so they also look like CONSOLE); a ttys* with
// a host is SSH (sshd records the client); a ttys* without a host is a
// local terminal window (OTHER).
func macClassify(line, host string) agentv1.LoginSession_Type {
	switch {
	case line == "console":
		return agentv1.LoginSession_TYPE_CONSOLE
	case host != "" && strings.HasPrefix(line, "ttys"):
		return agentv1.LoginSession_TYPE_SSH
	default:
		return agentv1.LoginSession_TYPE_OTHER
	}
}

// macCurrentFromUtmpx lists USER_PROCESS entries.
func macCurrentFromUtmpx(recs []macUtmpxRecord) []session {
	var out []session
	for _, r := range recs {
		if r.Type != utUserProcess || r.User == "" {
			continue
		}
		out = append(out, session{User: r.User, Line: r.Line, Host: r.Host, Type: macClassify(r.Line, r.Host), Start: r.Time})
	}
	return out
}
