package winevt

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	wevtapi       = windows.NewLazySystemDLL("wevtapi.dll")
	procEvtQuery  = wevtapi.NewProc("EvtQuery")
	procEvtNext   = wevtapi.NewProc("EvtNext")
	procEvtRender = wevtapi.NewProc("EvtRender")
	procEvtClose  = wevtapi.NewProc("EvtClose")
)

// winevt.h constants.
const (
	evtQueryChannelPath      = 0x1
	evtQueryForwardDirection = 0x100
	evtQueryReverseDirection = 0x200
	evtRenderEventXML        = 1
	infinite                 = 0xFFFFFFFF
	// batch is how many event handles one EvtNext returns.
	batch = 64
)

// Find reports whether the Event Log API is there. LazyProc.Call panics
// when the DLL or a function is missing, so callers check first and a
// stripped-down system gets an error.
func Find() error {
	for _, p := range []*windows.LazyProc{procEvtQuery, procEvtNext, procEvtRender, procEvtClose} {
		if err := p.Find(); err != nil {
			return fmt.Errorf("winevt: %w", err)
		}
	}
	return nil
}

// Each runs an XPath query on a channel ("Security", "Application"),
// oldest first or, with newestFirst, newest first, and calls fn with each
// event's XML (UTF-8), up to limit events. An event whose XML is over
// maxXML bytes is skipped. Call Find first.
func Each(ctx context.Context, channel, query string, newestFirst bool, limit, maxXML int, fn func([]byte)) error {
	ch, err := windows.UTF16PtrFromString(channel)
	if err != nil {
		return err
	}
	q, err := windows.UTF16PtrFromString(query)
	if err != nil {
		return err
	}
	flags := uintptr(evtQueryChannelPath | evtQueryForwardDirection)
	if newestFirst {
		flags = evtQueryChannelPath | evtQueryReverseDirection
	}
	h, _, callErr := procEvtQuery.Call(0, uintptr(unsafe.Pointer(ch)), uintptr(unsafe.Pointer(q)), flags)
	if h == 0 {
		return callError("EvtQuery("+channel+")", callErr)
	}
	defer procEvtClose.Call(h)

	var handles [batch]uintptr
	var buf []uint16
	seen := 0
	for seen < limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		var returned uint32
		want := min(batch, limit-seen)
		r, _, callErr := procEvtNext.Call(h, uintptr(want), uintptr(unsafe.Pointer(&handles[0])), infinite, 0, uintptr(unsafe.Pointer(&returned)))
		if r == 0 {
			if errors.Is(callErr, windows.ERROR_NO_MORE_ITEMS) {
				return nil
			}
			return callError("EvtNext", callErr)
		}
		returned = min(returned, uint32(want))
		for _, ev := range handles[:returned] {
			var xml []byte
			xml, buf = renderXML(ev, buf, maxXML)
			procEvtClose.Call(ev)
			if xml != nil {
				fn(xml)
			}
		}
		seen += int(returned)
		if returned == 0 {
			return nil
		}
	}
	return nil
}

// callError is the error of a failed call. Some failures leave the last
// error at 0 (Wine's EvtQuery does), which would read "Success.".
func callError(call string, errno error) error {
	if errno == nil || errno == windows.ERROR_SUCCESS {
		return fmt.Errorf("winevt: %s failed without an error code", call)
	}
	return fmt.Errorf("winevt: %s: %w", call, errno)
}

// renderXML renders one event handle as XML and returns it as UTF-8; nil
// on failure or when it is over maxXML bytes. buf is reused between calls
// and returned grown.
func renderXML(ev uintptr, buf []uint16, maxXML int) ([]byte, []uint16) {
	for range 2 {
		if len(buf) == 0 {
			buf = make([]uint16, 4096)
		}
		var used, props uint32
		r, _, callErr := procEvtRender.Call(0, ev, evtRenderEventXML,
			uintptr(len(buf)*2), uintptr(unsafe.Pointer(&buf[0])),
			uintptr(unsafe.Pointer(&used)), uintptr(unsafe.Pointer(&props)))
		if r != 0 {
			n := min(int(used)/2, len(buf))
			return []byte(windows.UTF16ToString(buf[:n])), buf
		}
		if !errors.Is(callErr, windows.ERROR_INSUFFICIENT_BUFFER) || int(used) > 2*maxXML+2 {
			return nil, buf
		}
		buf = make([]uint16, int(used)/2+1)
	}
	return nil, buf
}
