package notify

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var procWTSSendMessageW = windows.NewLazySystemDLL("wtsapi32.dll").NewProc("WTSSendMessageW")

// Values from winuser.h and wtsapi32.h.
const (
	noConsoleSession = 0xFFFFFFFF
	mbOK             = 0x0
	mbIconInfo       = 0x40
	mbSetForeground  = 0x10000
	mbTopMost        = 0x40000
	// boxSeconds is how long the message box stays if nobody closes it.
	boxSeconds = 15 * 60
)

// show puts a message box on the active console session's desktop with
// WTSSendMessageW, the way a service reaches the person at the screen. It
// does not wait for the box to be closed.
func show(ctx context.Context, _ string, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	session := windows.WTSGetActiveConsoleSessionId()
	if session == noConsoleSession {
		return errors.New("notify: no session is attached to the console")
	}
	if err := procWTSSendMessageW.Find(); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	title, err := windows.UTF16FromString(m.Summary)
	if err != nil {
		return err
	}
	body, err := windows.UTF16FromString(m.Body)
	if err != nil {
		return err
	}
	var response uint32
	r1, _, callErr := procWTSSendMessageW.Call(
		0, // WTS_CURRENT_SERVER_HANDLE
		uintptr(session),
		uintptr(unsafe.Pointer(&title[0])), uintptr((len(title)-1)*2), // lengths in bytes, without the NUL
		uintptr(unsafe.Pointer(&body[0])), uintptr((len(body)-1)*2),
		mbOK|mbIconInfo|mbSetForeground|mbTopMost,
		boxSeconds,
		uintptr(unsafe.Pointer(&response)),
		0, // bWait: FALSE, return at once
	)
	if r1 == 0 {
		return fmt.Errorf("notify: WTSSendMessageW(session %d): %w", session, callErr)
	}
	return nil
}
