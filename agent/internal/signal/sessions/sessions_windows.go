package sessions

// The Windows reader.
//
// Current sessions come from the Remote Desktop Services API:
// WTSEnumerateSessionsW lists the sessions, and for each active one
// WTSQuerySessionInformationW gives WTSUserName, WTSDomainName,
// WTSClientProtocolType (0 console, 2 RDP), WTSClientAddress and
// WTSSessionInfo (for the logon time).
//
// History comes from the Security event log through the Windows Event Log
// API (wevtapi.dll): EvtQuery on the "Security" channel with an XPath
// filter on the logon/logoff/reconnect/disconnect event IDs and on
// EventRecordID > the cursor, EvtNext in batches, EvtRender to XML,
// EvtClose. Reading the Security log needs administrator rights (or the
// Event Log Readers group); the agent service runs as LocalSystem. The
// events are only there if "Audit Logon" / "Audit Other Logon/Logoff
// Events" are enabled, which they are by default for logon and logoff
// success.
//
// Without a cursor the newest events are read (reverse direction) up to
// winMaxEventsPerRun; with one, events after it are read oldest first up to
// the same cap, and the next run continues after the last one read. If
// the log's newest record is below the cursor (the log was cleared and
// numbering restarted), the cursor is dropped.

import (
	"context"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/bonafide-sec/bonafide/agent/internal/winevt"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var (
	winWtsapi32         = windows.NewLazySystemDLL("wtsapi32.dll")
	winProcWTSQuerySess = winWtsapi32.NewProc("WTSQuerySessionInformationW")
)

// WTS_INFO_CLASS values (wtsapi32.h).
const (
	winWTSUserName           = 5
	winWTSDomainName         = 7
	winWTSClientAddress      = 14
	winWTSClientProtocolType = 16
	winWTSSessionInfo        = 24
)

const (
	// winMaxEventsPerRun bounds the events read in one snapshot.
	winMaxEventsPerRun = 20000
	// winMaxWTSBuffer bounds what is copied out of a WTS buffer.
	winMaxWTSBuffer = 4096
)

// WTS_SESSION_INFOW is windows.WTS_SESSION_INFO (x/sys): DWORD SessionId,
// LPWSTR pWinStationName, WTS_CONNECTSTATE_CLASS State; 24 bytes on 64-bit
// Windows, 12 on 32-bit.
func init() {
	want := uintptr(12)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		want = 24
	}
	if unsafe.Sizeof(windows.WTS_SESSION_INFO{}) != want {
		winLayoutErr = fmt.Errorf("sessions: WTS_SESSION_INFO is %d bytes, want %d", unsafe.Sizeof(windows.WTS_SESSION_INFO{}), want)
	}
}

// winLayoutErr is set at init when a struct layout is not what the API
// expects; the current-session reader then refuses to run.
var winLayoutErr error

// readLive reads the current sessions and the Security log history after
// cursor.
func readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) {
	// LazyProc.Call panics when the DLL or function is missing; look
	// them up first so that a stripped-down system gets an error.
	if err := winevt.Find(); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	if err := winProcWTSQuerySess.Find(); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	current, err := winCurrentSessions()
	if err != nil {
		return nil, err
	}
	history, newCursor, err := winReadHistory(ctx, cursor)
	if err != nil {
		// A scan that cannot read the Security log (not an administrator)
		// still reports the current sessions; the history is read from
		// the same cursor next time.
		return &agentv1.Sessions{Current: current, HistoryCursor: cursor}, err
	}
	return &agentv1.Sessions{Current: current, History: history, HistoryCursor: newCursor}, nil
}

// winCurrentSessions lists the active sessions that have a user.
func winCurrentSessions() ([]*agentv1.LoginSession, error) {
	if winLayoutErr != nil {
		return nil, winLayoutErr
	}
	var infos *windows.WTS_SESSION_INFO
	var count uint32
	if err := windows.WTSEnumerateSessions(0, 0, 1, &infos, &count); err != nil {
		return nil, fmt.Errorf("sessions: WTSEnumerateSessionsW: %w", err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(infos)))
	if infos == nil || count == 0 {
		return nil, nil
	}
	var out []*agentv1.LoginSession
	for _, si := range unsafe.Slice(infos, count) {
		if si.State != windows.WTSActive {
			continue
		}
		w := winWTSSession{
			WinStation: windows.UTF16PtrToString(si.WindowStationName),
			Protocol:   -1,
		}
		w.User = winWTSString(si.SessionID, winWTSUserName)
		if w.User == "" {
			continue
		}
		w.Domain = winWTSString(si.SessionID, winWTSDomainName)
		if b := winWTSQuery(si.SessionID, winWTSClientProtocolType); len(b) >= 2 {
			w.Protocol = int(uint16(b[0]) | uint16(b[1])<<8)
		}
		w.ClientAddress = winWTSQuery(si.SessionID, winWTSClientAddress)
		w.Info = winWTSQuery(si.SessionID, winWTSSessionInfo)
		if s := winCurrentSession(w); s != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// winWTSQuery returns a copy of the WTSQuerySessionInformationW buffer
// for one info class; nil on failure.
func winWTSQuery(session uint32, class uint32) []byte {
	var buf *byte
	var n uint32
	r, _, _ := winProcWTSQuerySess.Call(0, uintptr(session), uintptr(class),
		uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&n)))
	if r == 0 || buf == nil {
		return nil
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	n = min(n, winMaxWTSBuffer)
	return slices.Clone(unsafe.Slice(buf, n))
}

// winWTSString queries a string info class (UTF-16, NUL-terminated).
func winWTSString(session uint32, class uint32) string {
	b := winWTSQuery(session, class)
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return windows.UTF16ToString(u)
}

// winReadHistory reads the Security events after cursor and assembles
// them.
func winReadHistory(ctx context.Context, cursor string) ([]*agentv1.LoginSession, string, error) {
	after, ok := winParseCursor(cursor)
	if ok {
		newest, found, err := winNewestRecord()
		if err != nil {
			return nil, "", err
		}
		if found && newest < after {
			after, ok, cursor = 0, false, ""
		}
	}
	query := fmt.Sprintf("*[System[(EventID=%d or EventID=%d or EventID=%d or EventID=%d or EventID=%d) and EventRecordID > %d]]",
		winEventLogon, winEventLogoff, winEventUserLogoff, winEventReconnect, winEventDisconnect, after)
	var events []winEvent
	err := winevt.Each(ctx, "Security", query, !ok, winMaxEventsPerRun, winMaxEventXML, func(xml []byte) {
		if ev, err := winParseEvent(xml); err == nil {
			events = append(events, ev)
		}
	})
	if err != nil {
		return nil, "", err
	}
	history, newCursor := winSessions(events, cursor)
	return history, newCursor, nil
}

// winNewestRecord returns the EventRecordID of the newest Security event.
func winNewestRecord() (uint64, bool, error) {
	var id uint64
	var found bool
	err := winevt.Each(context.Background(), "Security", "*", true, 1, winMaxEventXML, func(xml []byte) {
		if ev, err := winParseEvent(xml); err == nil {
			id, found = ev.RecordID, true
		}
	})
	return id, found, err
}
