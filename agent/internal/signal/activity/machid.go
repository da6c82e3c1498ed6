package activity

// macOS reader, pure part (no build tag, tested on every OS);
// activity_darwin.go runs the command
//
//	ioreg -c IOHIDSystem -d 1 -r -a
//
// which prints the I/O Registry entries of class IOHIDSystem as an XML
// property list: an array of dictionaries, each with the entry's
// properties and its subtree under IORegistryEntryChildren. The
// IOHIDSystem entry's HIDIdleTime property is the time since the last
// keyboard, pointer or other HID input, system-wide, in nanoseconds. It is
// a number on current macOS; very old releases published it as 8 bytes of
// data in host byte order (the I/O Kit sample code of the time handled
// both), which is also accepted. Public sources: Jean-David Gadina,
// "Detecting idle time and activity with I/O Kit" (xs-labs.com), and
// "Inactivity and Idle Time on OS X" (dssw.co.uk blog, 2015),
// which reads it with `ioreg -c IOHIDSystem` and divides by 10^9.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"howett.net/plist"
)

const (
	macHIDKey      = "HIDIdleTime"
	macChildrenKey = "IORegistryEntryChildren"
	macMaxSize     = 8 << 20
	macMaxDepth    = 16
)

var errMacNoIdle = errors.New("ioreg: no HIDIdleTime property")

// macHIDIdleTime returns the first HIDIdleTime (nanoseconds) found in ioreg
// -a output, searching each entry before its children. errMacNoIdle when
// no entry has it (nothing matched, or the property is absent).
func macHIDIdleTime(data []byte) (ns uint64, err error) {
	if len(data) > macMaxSize {
		return 0, fmt.Errorf("ioreg: output too large (%d bytes)", len(data))
	}
	if strings.TrimSpace(string(data)) == "" {
		return 0, errMacNoIdle
	}
	defer func() {
		if r := recover(); r != nil {
			ns, err = 0, fmt.Errorf("ioreg: decoding property list: %v", r)
		}
	}()
	var v any
	if _, err := plist.Unmarshal(data, &v); err != nil {
		return 0, fmt.Errorf("ioreg: decoding property list: %w", err)
	}
	if ns, ok := macFindIdle(v, 0); ok {
		return ns, nil
	}
	return 0, errMacNoIdle
}

// macFindIdle walks arrays of entries and entries' children.
func macFindIdle(v any, depth int) (uint64, bool) {
	if depth > macMaxDepth {
		return 0, false
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if ns, ok := macFindIdle(e, depth+1); ok {
				return ns, true
			}
		}
	case map[string]any:
		if raw, ok := v[macHIDKey]; ok {
			if ns, ok := macIdleValue(raw); ok {
				return ns, true
			}
		}
		if c, ok := v[macChildrenKey]; ok {
			return macFindIdle(c, depth+1)
		}
	}
	return 0, false
}

// macIdleValue converts the property value to nanoseconds.
func macIdleValue(v any) (uint64, bool) {
	switch v := v.(type) {
	case uint64:
		return v, true
	case int64:
		if v >= 0 {
			return uint64(v), true
		}
	case int:
		if v >= 0 {
			return uint64(v), true
		}
	case float64:
		if v >= 0 && v < math.MaxUint64 {
			return uint64(v), true
		}
	case []byte:
		// Host byte order: little-endian on every Mac macOS still runs on.
		if len(v) == 8 {
			return binary.LittleEndian.Uint64(v), true
		}
	}
	return 0, false
}
