package sessions

// Pure decoding of what wtsapi32 returns for the current sessions, so that
// it is tested on every OS; sessions_windows.go makes the calls.

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// WTS_CLIENT_ADDRESS (wtsapi32.h), 24 bytes:
//
//	offset 0  DWORD AddressFamily   AF_INET (2), AF_INET6 (23), AF_UNSPEC (0)
//	offset 4  BYTE  Address[20]     for AF_INET the IPv4 address is at
//	                                Address[2..5]; for AF_INET6 the IPv6
//	                                address is read from Address[2..17]
const (
	winWTSClientAddressSize = 24
	winAFInet               = 2
	winAFInet6              = 23
)

// WTSINFOW (wtsapi32.h), 216 bytes on every Windows architecture, since
// LARGE_INTEGER is 8-byte aligned in C:
//
//	offset   0  WTS_CONNECTSTATE_CLASS State
//	offset   4  DWORD SessionId
//	offset   8  DWORD IncomingBytes, OutgoingBytes, IncomingFrames,
//	            OutgoingFrames, IncomingCompressedBytes,
//	            OutgoingCompressedBytes (6 × 4)
//	offset  32  WCHAR WinStationName[32]
//	offset  96  WCHAR Domain[17]
//	offset 130  WCHAR UserName[21]
//	offset 172  (4 bytes padding)
//	offset 176  LARGE_INTEGER ConnectTime
//	offset 184  LARGE_INTEGER DisconnectTime
//	offset 192  LARGE_INTEGER LastInputTime
//	offset 200  LARGE_INTEGER LogonTime      (FILETIME, UTC)
//	offset 208  LARGE_INTEGER CurrentTime
//
// It is read as bytes rather than through a Go struct, whose int64
// alignment differs on 386.
const (
	winWTSInfoSize            = 216
	winWTSInfoLogonTimeOffset = 200
)

// WTSClientProtocolType values.
const (
	winWTSProtocolConsole = 0
	winWTSProtocolICA     = 1
	winWTSProtocolRDP     = 2
)

// winWTSSession is what readLive learns about one active session.
type winWTSSession struct {
	// WinStation is the session's window station name, e.g. "Console",
	// "RDP-Tcp#3".
	WinStation string
	User       string
	Domain     string
	// Protocol is WTSClientProtocolType; -1 when unknown.
	Protocol int
	// ClientAddress is the raw WTS_CLIENT_ADDRESS; nil when not queried.
	ClientAddress []byte
	// Info is the raw WTSINFOW; nil when not queried.
	Info []byte
}

// winCurrentSession turns one active WTS session into a LoginSession; nil
// for sessions without a person (no user, service accounts).
func winCurrentSession(w winWTSSession) *agentv1.LoginSession {
	if winSkipAccount(w.User, w.Domain) {
		return nil
	}
	s := &agentv1.LoginSession{
		User:     winUserName(winEvent{User: w.User, Domain: w.Domain}),
		Terminal: w.WinStation,
	}
	switch w.Protocol {
	case winWTSProtocolConsole:
		s.Type = agentv1.LoginSession_TYPE_CONSOLE
	case winWTSProtocolRDP:
		s.Type = agentv1.LoginSession_TYPE_REMOTE_DESKTOP
		s.SourceAddress = winParseWTSClientAddress(w.ClientAddress)
	case winWTSProtocolICA:
		s.Type = agentv1.LoginSession_TYPE_OTHER
		s.SourceAddress = winParseWTSClientAddress(w.ClientAddress)
	default:
		if strings.EqualFold(w.WinStation, "Console") {
			s.Type = agentv1.LoginSession_TYPE_CONSOLE
		}
	}
	if t := winParseWTSInfoLogonTime(w.Info); !t.IsZero() {
		s.StartedAt = timestamppb.New(t)
	}
	return s
}

// winParseWTSClientAddress decodes a WTS_CLIENT_ADDRESS; "" for a local,
// unspecified or malformed address.
func winParseWTSClientAddress(b []byte) string {
	if len(b) < winWTSClientAddressSize {
		return ""
	}
	family := binary.LittleEndian.Uint32(b[0:4])
	addr := b[4:24]
	var ip netip.Addr
	switch family {
	case winAFInet:
		ip = netip.AddrFrom4([4]byte(addr[2:6]))
	case winAFInet6:
		ip = netip.AddrFrom16([16]byte(addr[2:18]))
	default:
		return ""
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsLoopback() {
		return ""
	}
	return ip.String()
}

// winParseWTSInfoLogonTime reads LogonTime from a WTSINFOW; zero when the
// buffer is short or the time is unset or implausible.
func winParseWTSInfoLogonTime(b []byte) time.Time {
	if len(b) < winWTSInfoSize {
		return time.Time{}
	}
	return winFiletime(binary.LittleEndian.Uint64(b[winWTSInfoLogonTimeOffset:]))
}

// winFiletime converts a FILETIME (100 ns ticks since 1601-01-01 UTC);
// zero for 0 and for times before 1970 or after 2200.
func winFiletime(ft uint64) time.Time {
	const (
		epochDiff = 116444736000000000 // 1601 → 1970 in 100 ns ticks
		maxTicks  = epochDiff + 7258118400*10000000
	)
	if ft <= epochDiff || ft > maxTicks {
		return time.Time{}
	}
	d := ft - epochDiff
	return time.Unix(int64(d/10000000), int64(d%10000000)*100).UTC()
}
