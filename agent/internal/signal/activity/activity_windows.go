package activity

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	wtsapi32                        = windows.NewLazySystemDLL("wtsapi32.dll")
	procWTSQuerySessionInformationW = wtsapi32.NewProc("WTSQuerySessionInformationW")
)

// wtsSessionInfo is WTSSessionInfo in WTS_INFO_CLASS (wtsapi32.h).
const wtsSessionInfo = 24

// noConsoleSession is what WTSGetActiveConsoleSessionId returns while no
// session is attached to the physical console (e.g. during a switch).
const noConsoleSession = 0xFFFFFFFF

// LiveIdle is this OS's idle reader: the console session's last input
// time from WTSSessionInfo (see wtsinfo.go). ok=false, with no error, when
// no session is on the console, wtsapi32 is missing (Server Core
// variants), or LastInputTime is not reported.
func LiveIdle(ctx context.Context) (time.Duration, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	session := windows.WTSGetActiveConsoleSessionId()
	if session == noConsoleSession {
		return 0, false, nil
	}
	if err := procWTSQuerySessionInformationW.Find(); err != nil {
		return 0, false, nil
	}
	var buf *byte
	var n uint32
	r1, _, callErr := procWTSQuerySessionInformationW.Call(
		0, // WTS_CURRENT_SERVER_HANDLE
		uintptr(session),
		wtsSessionInfo,
		uintptr(unsafe.Pointer(&buf)),
		uintptr(unsafe.Pointer(&n)),
	)
	if r1 == 0 {
		if errors.Is(callErr, windows.ERROR_ACCESS_DENIED) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("activity: WTSQuerySessionInformationW(%d, WTSSessionInfo): %w", session, callErr)
	}
	if buf == nil {
		return 0, false, errors.New("activity: WTSQuerySessionInformationW returned no buffer")
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	d, ok, err := wtsIdle(unsafe.Slice(buf, n))
	if err != nil {
		return 0, false, fmt.Errorf("activity: %w", err)
	}
	return d, ok, nil
}

// Readers returns the idle readers of the machine under root (see Run):
// on the live system LiveIdle for both the minute samples and the jiggler
// rhythm (one WTSQuerySessionInformation call giving the last input
// time); none under a fixture root.
func Readers(root string) (idle, rhythm IdleFunc) {
	if root != "" && root != "/" {
		return nil, nil
	}
	return LiveIdle, LiveIdle
}
