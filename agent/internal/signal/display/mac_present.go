package display

// macOS change fingerprint, pure part (no build tag, tested on every OS;
// present_darwin.go runs the commands). It reads the framebuffer entries
// the scan reads, without their subtrees where the identity is on the
// entry itself, so each poll is small:
//
//	ioreg -a -l -r -c AppleCLCD2 -d 1        (Apple silicon)
//	ioreg -a -l -r -c IODisplayConnect -d 2  (Intel: the AppleDisplay child)

import (
	"fmt"
	"sort"
)

// MacPresentMonitors lists the displays attached in the two ioreg outputs
// (either may be empty: the class that does not exist on a Mac matches
// nothing) as one identity line each, sorted: connector, manufacturer,
// product, serials, name, built-in. Registry ids, retain counts and busy
// times are not part of it, so only a display plugged in, taken away or
// swapped changes the list. Nil when nothing is attached or neither output
// decodes.
func MacPresentMonitors(appleCLCD2, displayConnect []byte) []string {
	var ids []string
	for _, in := range []struct {
		out   []byte
		class string
	}{{appleCLCD2, "AppleCLCD2"}, {displayConnect, "IODisplayConnect"}} {
		ds, err := macParseFramebuffers(in.out, in.class)
		if err != nil {
			continue
		}
		for _, d := range ds {
			ids = append(ids, fmt.Sprintf("%s|%s|%d|%d|%q|%q|%t", d.GetConnector(), d.GetManufacturerId(),
				d.GetProductCode(), d.GetSerialNumber(), d.GetSerialString(), d.GetMonitorName(), d.GetInternal()))
		}
	}
	sort.Strings(ids)
	return ids
}
