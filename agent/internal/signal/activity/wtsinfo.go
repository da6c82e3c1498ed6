package activity

// Windows reader, pure part (no build tag, tested on every OS);
// activity_windows.go makes the call.
//
// The agent runs as a service in session 0, where GetLastInputInfo sees
// only session 0's own (absent) input. The Remote Desktop Services API
// reports the last input of another session instead:
// WTSQuerySessionInformationW(WTS_CURRENT_SERVER_HANDLE, session,
// WTSSessionInfo) returns a WTSINFOW for the session, whose LastInputTime
// and CurrentTime are FILETIMEs (100 ns intervals since 1601-01-01 UTC);
// idle = CurrentTime - LastInputTime. The session is the active console
// session (WTSGetActiveConsoleSessionId): the physical keyboard, pointer
// and screen. Remote Desktop sessions are not looked at.
//
// LastInputTime is 0 for the console session on some Windows versions
// (reported by users of the API; Microsoft documents the field only as
// "the time of the last user input in the session"). Then the reader
// cannot tell and returns ok=false, as it does when CurrentTime is 0.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// wtsInfoSize is the size of WTSINFOW: 8 DWORDs (32 bytes), 70 WCHARs
// (140 bytes: WinStationName[32], Domain[17], UserName[21]), 4 bytes of
// padding to align the LARGE_INTEGERs on 8, then 5 LARGE_INTEGERs (40
// bytes): 216 bytes, the same on 386, amd64 and arm64.
const wtsInfoSize = 216

// wtsInfoW mirrors WTSINFOW (wtsapi32.h) with the padding spelled out, so
// that encoding/binary decodes it at the C offsets on every architecture:
// LastInputTime at 192, CurrentTime at 208.
type wtsInfoW struct {
	State                   uint32 // WTS_CONNECTSTATE_CLASS
	SessionID               uint32
	IncomingBytes           uint32
	OutgoingBytes           uint32
	IncomingFrames          uint32
	OutgoingFrames          uint32
	IncomingCompressedBytes uint32
	OutgoingCompressedBytes uint32
	WinStationName          [32]uint16 // WINSTATIONNAME_LENGTH
	Domain                  [17]uint16 // DOMAIN_LENGTH
	UserName                [21]uint16 // USERNAME_LENGTH + 1
	_                       uint32     // alignment of ConnectTime
	ConnectTime             int64
	DisconnectTime          int64
	LastInputTime           int64
	LogonTime               int64
	CurrentTime             int64
}

// wtsIdle decodes a WTSINFOW buffer (little-endian, as on every Windows
// architecture) and returns CurrentTime - LastInputTime; ok=false when
// either time is 0 (not reported). A LastInputTime after CurrentTime
// yields 0.
func wtsIdle(b []byte) (time.Duration, bool, error) {
	if len(b) < wtsInfoSize {
		return 0, false, fmt.Errorf("WTSINFOW: %d bytes, want %d", len(b), wtsInfoSize)
	}
	var info wtsInfoW
	if err := binary.Read(bytes.NewReader(b[:wtsInfoSize]), binary.LittleEndian, &info); err != nil {
		return 0, false, fmt.Errorf("WTSINFOW: %w", err)
	}
	return fileTimeIdle(info.LastInputTime, info.CurrentTime)
}

// fileTimeIdle returns current - last for two FILETIMEs.
func fileTimeIdle(last, current int64) (time.Duration, bool, error) {
	if last <= 0 || current <= 0 {
		return 0, false, nil
	}
	if last >= current {
		return 0, true, nil
	}
	ticks := current - last // both positive: no overflow
	const maxTicks = int64(1<<63-1) / 100
	if ticks > maxTicks {
		ticks = maxTicks
	}
	return time.Duration(ticks) * 100, true, nil
}
