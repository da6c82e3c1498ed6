package display

// macOS reader, pure part. It decodes the XML property lists that ioreg -a
// prints and has no build tag, so that it is compiled and tested on every
// OS; display_darwin.go runs the commands:
//
//   - Apple silicon: ioreg -a -l -r -c AppleCLCD2. Each AppleCLCD2 entry
//     is one display pipe; a connected display has a DisplayAttributes
//     dictionary whose ProductAttributes holds the decoded EDID identity
//     (ManufacturerID, ProductID, SerialNumber, AlphanumericSerialNumber,
//     ProductName, WeekOfManufacture, YearOfManufacture), and an "external"
//     boolean. A raw EDID is used instead when the subtree carries one.
//   - Intel: ioreg -a -l -r -c IODisplayConnect. The display entry below
//     (AppleDisplay, or AppleBacklightDisplay for the built-in panel)
//     carries the raw EDID in IODisplayEDID.
//   - Lid: ioreg -a -r -k AppleClamshellState -d 1 (IOPMrootDomain).

import (
	"fmt"
	"math"
	"strings"

	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// macNode is one registry entry as ioreg -a prints it.
type macNode = ioreg.Node

// macEDIDKeys are the properties that hold a raw EDID, by preference.
var macEDIDKeys = []string{"IODisplayEDID", "EDID", "IODisplayEDIDOriginal"}

// macRawEDID returns the first raw EDID in the entry's subtree.
func macRawEDID(n macNode) []byte {
	var out []byte
	n.Walk(func(c macNode) bool {
		for _, k := range macEDIDKeys {
			if b, ok := c[k].([]byte); ok && len(b) > 0 {
				out = b
				return false
			}
		}
		return true
	})
	return out
}

// macParseFramebuffers turns the output of ioreg -a -l -r -c AppleCLCD2 or
// -c IODisplayConnect into one Display per entry that has a display
// attached. Connectors are named prefix-N, N being the entry's index
// among all entries of the output (registry order), so that a display
// keeps its name whatever else is connected.
func macParseFramebuffers(data []byte, prefix string) ([]*agentv1.Display, error) {
	top, err := ioreg.Decode(data)
	if err != nil {
		return nil, err
	}
	var out []*agentv1.Display
	for i, n := range top {
		if d := macDisplay(n, fmt.Sprintf("%s-%d", prefix, i)); d != nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// macDisplay builds the Display of one framebuffer entry; nil when no
// display is attached to it.
func macDisplay(n macNode, connector string) *agentv1.Display {
	attrs := n.Dict("DisplayAttributes")
	product := attrs.Dict("ProductAttributes")
	var intel macNode // the AppleDisplay / AppleBacklightDisplay entry
	internal := false
	if ext, ok := n["external"].(bool); ok {
		internal = !ext
	}
	n.Walk(func(c macNode) bool {
		cls := c.Str("IOObjectClass")
		if cls == "AppleBacklightDisplay" || strings.Contains(c.Str("IODisplayPrefsKey"), "AppleBacklightDisplay") {
			internal = true
		}
		if intel == nil && (cls == "AppleDisplay" || cls == "AppleBacklightDisplay" || c["DisplayVendorID"] != nil) {
			intel = c
		}
		return true
	})
	raw := macRawEDID(n)
	if raw == nil && product == nil && intel == nil {
		return nil
	}
	var d *agentv1.Display
	if raw != nil {
		d = FromEDID(connector, raw)
	} else {
		d = &agentv1.Display{Connector: connector}
	}
	if d.ManufacturerId == "" && d.ProductCode == 0 {
		// No EDID, or one that does not decode: use the identity that
		// the OS decoded itself.
		switch {
		case product != nil:
			macFromProductAttributes(d, attrs, product)
		case intel != nil:
			macFromDisplayKeys(d, intel)
		}
	}
	d.Internal = internal
	return d
}

// macFromProductAttributes fills a Display from the Apple silicon
// DisplayAttributes/ProductAttributes dictionaries.
func macFromProductAttributes(d *agentv1.Display, attrs, p macNode) {
	d.ManufacturerId = macPNP(p.Str("ManufacturerID"))
	if d.ManufacturerId == "" {
		if v, ok := p.Uint("LegacyManufacturerID", 0xffff); ok {
			d.ManufacturerId = pnpID(uint16(v))
		}
	}
	d.ProductCode = p.U32("ProductID", 0xffff)
	d.SerialNumber = p.U32("SerialNumber", math.MaxUint32)
	d.SerialString = p.Str("AlphanumericSerialNumber")
	d.MonitorName = p.Str("ProductName")
	d.ManufactureWeek = p.U32("WeekOfManufacture", 0xff)
	d.ManufactureYear = p.U32("YearOfManufacture", 0xffff)
	// The EDID base block gives the image size in centimetres, as do
	// these keys.
	w := attrs.U32("MaxHorizontalImageSize", 0xff)
	h := attrs.U32("MaxVerticalImageSize", 0xff)
	if w != 0 && h != 0 {
		d.WidthMm, d.HeightMm = w*10, h*10
	}
}

// macFromDisplayKeys fills a Display from the Intel display entry's
// DisplayVendorID (the EDID manufacturer id as a number, e.g. 0x610 for
// APP), DisplayProductID and DisplaySerialNumber.
func macFromDisplayKeys(d *agentv1.Display, n macNode) {
	if v, ok := n.Uint("DisplayVendorID", 0xffff); ok {
		d.ManufacturerId = pnpID(uint16(v))
	}
	d.ProductCode = n.U32("DisplayProductID", 0xffff)
	d.SerialNumber = n.U32("DisplaySerialNumber", math.MaxUint32)
}

// macPNP returns s when it is a three-letter PNP id, else "". Apple
// silicon puts other identifiers there for some sinks (e.g. an IEEE OUI
// such as "00-10-fa").
func macPNP(s string) string {
	if len(s) != 3 {
		return ""
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return ""
		}
	}
	return s
}

// macParseClamshell reads the lid state from ioreg -a -r -k
// AppleClamshellState -d 1: AppleClamshellState true means closed.
// Output without the key (machines without a lid do not publish it, but
// neither does a failed read) gives LID_STATE_UNSPECIFIED.
func macParseClamshell(data []byte) (agentv1.LidState, error) {
	top, err := ioreg.Decode(data)
	if err != nil {
		return agentv1.LidState_LID_STATE_UNSPECIFIED, err
	}
	lid := agentv1.LidState_LID_STATE_UNSPECIFIED
	for _, n := range top {
		n.Walk(func(c macNode) bool {
			if v, ok := c["AppleClamshellState"].(bool); ok {
				lid = agentv1.LidState_LID_STATE_OPEN
				if v {
					lid = agentv1.LidState_LID_STATE_CLOSED
				}
				return false
			}
			return true
		})
		if lid != agentv1.LidState_LID_STATE_UNSPECIFIED {
			break
		}
	}
	return lid, nil
}

// macAssemble puts the displays and the lid state together. Every display
// listed is attached and lit, except the built-in panel under a closed
// lid.
func macAssemble(displays []*agentv1.Display, lid agentv1.LidState) *agentv1.Displays {
	for _, d := range displays {
		d.Active = !(d.Internal && lid == agentv1.LidState_LID_STATE_CLOSED)
	}
	return &agentv1.Displays{Displays: displays, Lid: lid}
}
