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
	"errors"
	"fmt"
	"math"
	"strings"

	"howett.net/plist"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// macMaxIoregSize caps the ioreg output the parser accepts.
const macMaxIoregSize = 64 << 20

// macMaxDepth bounds the walk of IORegistryEntryChildren.
const macMaxDepth = 64

var errMacNotArray = errors.New("ioreg: property list is not an array of registry entries")

// macNode is one registry entry as ioreg -a prints it: its properties, the
// keys ioreg adds (IOObjectClass, IORegistryEntryID…) and its subtree under
// IORegistryEntryChildren.
type macNode map[string]any

// macDecodeIoreg decodes ioreg -a output into its top-level entries.
// Empty output (nothing matched) yields no entries and no error.
func macDecodeIoreg(data []byte) (nodes []macNode, err error) {
	if len(data) > macMaxIoregSize {
		return nil, fmt.Errorf("ioreg: output too large (%d bytes)", len(data))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			nodes, err = nil, fmt.Errorf("ioreg: decoding property list: %v", r)
		}
	}()
	var v any
	if _, err := plist.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("ioreg: decoding property list: %w", err)
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				nodes = append(nodes, macNode(m))
			}
		}
		return nodes, nil
	case map[string]any:
		return []macNode{macNode(v)}, nil
	}
	return nil, errMacNotArray
}

func (n macNode) children() []macNode {
	a, _ := n["IORegistryEntryChildren"].([]any)
	out := make([]macNode, 0, len(a))
	for _, e := range a {
		if m, ok := e.(map[string]any); ok {
			out = append(out, macNode(m))
		}
	}
	return out
}

func (n macNode) str(key string) string {
	s, _ := n[key].(string)
	return s
}

func (n macNode) dict(key string) macNode {
	m, _ := n[key].(map[string]any)
	return macNode(m)
}

// uint reads a non-negative integer property no larger than max.
func (n macNode) uint(key string, max uint64) (uint64, bool) {
	var u uint64
	switch v := n[key].(type) {
	case uint64:
		u = v
	case int64:
		if v < 0 {
			return 0, false
		}
		u = uint64(v)
	case int:
		if v < 0 {
			return 0, false
		}
		u = uint64(v)
	default:
		return 0, false
	}
	if u > max {
		return 0, false
	}
	return u, true
}

func (n macNode) u32(key string, max uint64) uint32 {
	v, _ := n.uint(key, max)
	return uint32(v)
}

// walk calls f on n and its descendants, depth first, until f returns
// false.
func (n macNode) walk(f func(macNode) bool) {
	var rec func(c macNode, depth int) bool
	rec = func(c macNode, depth int) bool {
		if depth > macMaxDepth || !f(c) {
			return false
		}
		for _, g := range c.children() {
			if !rec(g, depth+1) {
				return false
			}
		}
		return true
	}
	rec(n, 0)
}

// macEDIDKeys are the properties that hold a raw EDID, by preference.
var macEDIDKeys = []string{"IODisplayEDID", "EDID", "IODisplayEDIDOriginal"}

// macRawEDID returns the first raw EDID in the entry's subtree.
func macRawEDID(n macNode) []byte {
	var out []byte
	n.walk(func(c macNode) bool {
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
	top, err := macDecodeIoreg(data)
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
	attrs := n.dict("DisplayAttributes")
	product := attrs.dict("ProductAttributes")
	var intel macNode // the AppleDisplay / AppleBacklightDisplay entry
	internal := false
	if ext, ok := n["external"].(bool); ok {
		internal = !ext
	}
	n.walk(func(c macNode) bool {
		cls := c.str("IOObjectClass")
		if cls == "AppleBacklightDisplay" || strings.Contains(c.str("IODisplayPrefsKey"), "AppleBacklightDisplay") {
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
	d.ManufacturerId = macPNP(p.str("ManufacturerID"))
	if d.ManufacturerId == "" {
		if v, ok := p.uint("LegacyManufacturerID", 0xffff); ok {
			d.ManufacturerId = pnpID(uint16(v))
		}
	}
	d.ProductCode = p.u32("ProductID", 0xffff)
	d.SerialNumber = p.u32("SerialNumber", math.MaxUint32)
	d.SerialString = p.str("AlphanumericSerialNumber")
	d.MonitorName = p.str("ProductName")
	d.ManufactureWeek = p.u32("WeekOfManufacture", 0xff)
	d.ManufactureYear = p.u32("YearOfManufacture", 0xffff)
	// The EDID base block gives the image size in centimetres, as do
	// these keys.
	w := attrs.u32("MaxHorizontalImageSize", 0xff)
	h := attrs.u32("MaxVerticalImageSize", 0xff)
	if w != 0 && h != 0 {
		d.WidthMm, d.HeightMm = w*10, h*10
	}
}

// macFromDisplayKeys fills a Display from the Intel display entry's
// DisplayVendorID (the EDID manufacturer id as a number, e.g. 0x610 for
// APP), DisplayProductID and DisplaySerialNumber.
func macFromDisplayKeys(d *agentv1.Display, n macNode) {
	if v, ok := n.uint("DisplayVendorID", 0xffff); ok {
		d.ManufacturerId = pnpID(uint16(v))
	}
	d.ProductCode = n.u32("DisplayProductID", 0xffff)
	d.SerialNumber = n.u32("DisplaySerialNumber", math.MaxUint32)
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
	top, err := macDecodeIoreg(data)
	if err != nil {
		return agentv1.LidState_LID_STATE_UNSPECIFIED, err
	}
	lid := agentv1.LidState_LID_STATE_UNSPECIFIED
	for _, n := range top {
		n.walk(func(c macNode) bool {
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
