package usb

// macOS change fingerprint, pure part: it reads the text that
//
//	/usr/sbin/ioreg -p IOUSB -w0
//
// prints, the USB plane's tree with one line per device and no properties,
// and has no build tag so that it is tested on every OS; present_darwin.go
// runs the command. A node line reads
//
//	| +-o USB JTAG/serial debug unit@01114000  <class IOUSBHostDevice, id 0x10001c6b3, registered, matched, active, busy 0 (234 ms), retain 46>
//
// The name (with the location after "@"), the class and the registry
// entry id identify a device attached: the id is new each time a device
// is plugged in. The states, busy time and retain count that follow change
// from one run to the next with nothing plugged, so they are left out.
// Property lines (with -l) are skipped.

import (
	"sort"
	"strings"
)

const (
	// macMaxPresent bounds the devices kept; a USB tree has a few dozen.
	macMaxPresent = 1024
	// macMaxPresentName bounds a device name (the device chooses it).
	macMaxPresentName = 256
)

// MacPresentDevices lists the USB plane's nodes in ioreg's text output as
// "name|class|id", sorted; nil when there are none.
func MacPresentDevices(out []byte) []string {
	var ids []string
	for line := range strings.Lines(string(out)) {
		_, node, ok := strings.Cut(line, "+-o ")
		if !ok {
			continue
		}
		// The last "  <class " starts ioreg's own part, whatever the name holds.
		i := strings.LastIndex(node, "  <class ")
		if i < 0 {
			continue
		}
		name := node[:i]
		class, rest, _ := strings.Cut(node[i+len("  <class "):], ",")
		id := ""
		if after, ok := strings.CutPrefix(strings.TrimSpace(rest), "id "); ok {
			id, _, _ = strings.Cut(after, ",")
			id = strings.TrimSuffix(strings.TrimSpace(id), ">")
		}
		if len(name) > macMaxPresentName {
			name = strings.ToValidUTF8(name[:macMaxPresentName], "")
		}
		ids = append(ids, name+"|"+strings.TrimSpace(class)+"|"+id)
		if len(ids) == macMaxPresent {
			break
		}
	}
	sort.Strings(ids)
	return ids
}
