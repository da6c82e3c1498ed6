package usb

// macOS reader, pure part: it decodes the XML property list that
//
//	/usr/sbin/ioreg -a -l -r -c IOUSBHostDevice
//
// prints and turns it into UsbDevice messages. It has no build tag so
// that it is compiled and tested on every OS; usb_darwin.go runs the
// command.
//
// ioreg -a prints an array with one dictionary per matching registry
// entry. A dictionary holds the entry's properties plus the keys ioreg
// adds itself (IOObjectClass, IORegistryEntryID, IORegistryEntryName…);
// its subtree is under IORegistryEntryChildren. With -r every matching
// entry is printed with its whole subtree, so a device behind a hub shows
// up twice: as a top-level element and inside the hub's subtree.

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

// macMaxDepth bounds the walk of IORegistryEntryChildren. Real USB
// subtrees are a dozen levels deep at most.
const macMaxDepth = 64

// errMacNotArray is returned when the plist is not an array of entries.
var errMacNotArray = errors.New("ioreg: property list is not an array of registry entries")

// macNode is one registry entry as ioreg -a prints it.
type macNode map[string]any

// macDecodeIoreg decodes ioreg -a output into its top-level entries.
// Empty output (no matching entry) yields no entries and no error.
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

// children returns the entry's child entries, skipping malformed ones.
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

func (n macNode) class() string { return n.str("IOObjectClass") }

func (n macNode) str(key string) string {
	s, _ := n[key].(string)
	return s
}

func (n macNode) has(key string) bool {
	_, ok := n[key]
	return ok
}

// uint reads a non-negative integer property; ok is false when the key is
// missing, not an integer, negative or above max.
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
	case float64:
		if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
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

// firstStr returns the first non-empty string among keys.
func (n macNode) firstStr(keys ...string) string {
	for _, k := range keys {
		if s := n.str(k); s != "" {
			return s
		}
	}
	return ""
}

// macIsDevice tells a USB device entry from the entries below it.
// IOUSBDevice is the class before macOS 10.11.
func macIsDevice(n macNode) bool {
	c := n.class()
	return c == "IOUSBHostDevice" || c == "IOUSBDevice"
}

func macIsInterface(n macNode) bool {
	c := n.class()
	return c == "IOUSBHostInterface" || c == "IOUSBInterface"
}

// macParseUSB turns ioreg -a -l -r -c IOUSBHostDevice output into the Usb
// message: one UsbDevice per device entry, hubs included, each device
// counted once even when it appears both at top level and inside its
// hub's subtree.
func macParseUSB(data []byte) (*agentv1.Usb, error) {
	top, err := macDecodeIoreg(data)
	if err != nil {
		return nil, err
	}
	out := &agentv1.Usb{}
	seen := map[string]bool{}
	var visit func(n macNode, depth int, topLevel bool)
	visit = func(n macNode, depth int, topLevel bool) {
		if depth > macMaxDepth {
			return
		}
		// Every top-level element matched -c, whatever its class says.
		if topLevel || macIsDevice(n) {
			key := macDeviceKey(n)
			if key == "" || !seen[key] {
				if key != "" {
					seen[key] = true
				}
				out.Devices = append(out.Devices, macDevice(n))
			}
		}
		for _, c := range n.children() {
			visit(c, depth+1, false)
		}
	}
	for _, n := range top {
		visit(n, 0, true)
	}
	Sort(out.Devices)
	return out, nil
}

// macDeviceKey identifies a device entry for deduplication: its registry
// entry id, else its location id; "" when it has neither.
func macDeviceKey(n macNode) string {
	if id, ok := n.uint("IORegistryEntryID", math.MaxUint64); ok {
		return fmt.Sprintf("id:%d", id)
	}
	if loc, ok := n.uint("locationID", math.MaxUint32); ok {
		return fmt.Sprintf("loc:%d", loc)
	}
	return ""
}

// macSpeedMbps maps the speed properties to Mbit/s. USBSpeed
// (kUSBHostMatchingPropertySpeed) holds a tIOUSBHostConnectionSpeed:
// 1 full, 2 low, 3 high, 4 super, 5 super+, 6 super+ 2x2. "Device Speed"
// (kUSBDevicePropertySpeed, the older IOUSBFamily key) holds 0 low, 1 full,
// 2 high, 3 super, 4 super+.
func macSpeedMbps(n macNode) uint32 {
	if v, ok := n.uint("USBSpeed", 255); ok {
		switch v {
		case 1:
			return 12
		case 2:
			return 1
		case 3:
			return 480
		case 4:
			return 5000
		case 5:
			return 10000
		case 6:
			return 20000
		}
		return 0
	}
	if v, ok := n.uint("Device Speed", 255); ok {
		switch v {
		case 0:
			return 1
		case 1:
			return 12
		case 2:
			return 480
		case 3:
			return 5000
		case 4:
			return 10000
		}
	}
	return 0
}

// macDevice builds the UsbDevice of one device entry and its subtree
// (interfaces, HID report descriptors, SCSI inquiry strings), without
// descending into devices attached below it (a hub's downstream devices).
func macDevice(n macNode) *agentv1.UsbDevice {
	d := &agentv1.UsbDevice{
		VendorId:       n.u32("idVendor", 0xffff),
		ProductId:      n.u32("idProduct", 0xffff),
		BcdDevice:      n.u32("bcdDevice", 0xffff),
		DeviceClass:    n.u32("bDeviceClass", 0xff),
		DeviceSubclass: n.u32("bDeviceSubClass", 0xff),
		DeviceProtocol: n.u32("bDeviceProtocol", 0xff),
		SpeedMbps:      macSpeedMbps(n),
		// The k… keys hold the string descriptors as read; the "USB …
		// Name" keys are copies sanitised for use as registry names
		// ('/' becomes '_'), so they are only the fallback.
		Manufacturer: n.firstStr("kUSBVendorString", "USB Vendor Name"),
		Product:      n.firstStr("kUSBProductString", "USB Product Name"),
		Serial:       n.firstStr("kUSBSerialNumberString", "USB Serial Number"),
	}
	if loc, ok := n.uint("locationID", math.MaxUint32); ok {
		d.Location = fmt.Sprintf("0x%08x", loc)
	}
	var rds []*ReportDescriptor
	var walk func(c macNode, depth int)
	walk = func(c macNode, depth int) {
		if depth > macMaxDepth {
			return
		}
		if macIsInterface(c) {
			d.Interfaces = append(d.Interfaces, &agentv1.UsbInterface{
				Number:   c.u32("bInterfaceNumber", 0xff),
				Class:    c.u32("bInterfaceClass", 0xff),
				Subclass: c.u32("bInterfaceSubClass", 0xff),
				Protocol: c.u32("bInterfaceProtocol", 0xff),
				Driver:   macDriver(c),
			})
		}
		if rd, ok := c["ReportDescriptor"].([]byte); ok && len(rd) > 0 {
			// A malformed descriptor still yields what was parsed
			// before the error.
			if r, _ := ParseReportDescriptor(rd); r != nil {
				rds = append(rds, r)
			}
		}
		if d.MassStorage == nil {
			d.MassStorage = macMassStorage(c)
		}
		for _, g := range c.children() {
			if macIsDevice(g) {
				continue
			}
			walk(g, depth+1)
		}
	}
	for _, c := range n.children() {
		if !macIsDevice(c) {
			walk(c, 1)
		}
	}
	if len(rds) > 0 {
		d.Hid = Summarize(rds...)
	}
	Finish(d)
	return d
}

// macDriver names the driver bound to an interface entry: the class of its
// first child that was matched from a driver personality (it carries
// IOClass). DriverKit drivers name their class in IOUserClass.
func macDriver(iface macNode) string {
	for _, c := range iface.children() {
		if s := c.firstStr("IOUserClass", "IOClass"); s != "" {
			return s
		}
	}
	return ""
}

// macMassStorage reads the SCSI inquiry strings that the SCSI peripheral
// nub of a USB mass-storage function publishes; nil when the entry has
// none.
func macMassStorage(n macNode) *agentv1.MassStorage {
	if !n.has("Peripheral Device Type") && !n.has("Vendor Identification") && !n.has("Product Identification") {
		return nil
	}
	ms := &agentv1.MassStorage{
		Vendor:   strings.TrimSpace(n.str("Vendor Identification")),
		Product:  strings.TrimSpace(n.str("Product Identification")),
		Revision: strings.TrimSpace(n.str("Product Revision Level")),
	}
	if t, ok := n.uint("Peripheral Device Type", 0xff); ok && t&0x1f == 5 {
		ms.Cdrom = true
	}
	return ms
}
