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
	"fmt"
	"math"
	"strings"

	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// macNode is one registry entry as ioreg -a prints it.
type macNode = ioreg.Node

// macIsDevice tells a USB device entry from the entries below it.
// IOUSBDevice is the class before macOS 10.11.
func macIsDevice(n macNode) bool {
	c := n.Class()
	return c == "IOUSBHostDevice" || c == "IOUSBDevice"
}

func macIsInterface(n macNode) bool {
	c := n.Class()
	return c == "IOUSBHostInterface" || c == "IOUSBInterface"
}

// macParseUSB turns ioreg -a -l -r -c IOUSBHostDevice output into the Usb
// message: one UsbDevice per device entry, hubs included, each device
// counted once even when it appears both at top level and inside its
// hub's subtree.
func macParseUSB(data []byte) (*agentv1.Usb, error) {
	top, err := ioreg.Decode(data)
	if err != nil {
		return nil, err
	}
	out := &agentv1.Usb{}
	seen := map[string]bool{}
	var visit func(n macNode, depth int, topLevel bool)
	visit = func(n macNode, depth int, topLevel bool) {
		if depth > ioreg.MaxDepth {
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
		for _, c := range n.Children() {
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
	if id, ok := n.Uint("IORegistryEntryID", math.MaxUint64); ok {
		return fmt.Sprintf("id:%d", id)
	}
	if loc, ok := n.Uint("locationID", math.MaxUint32); ok {
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
	if v, ok := n.Uint("USBSpeed", 255); ok {
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
	if v, ok := n.Uint("Device Speed", 255); ok {
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
		VendorId:       n.U32("idVendor", 0xffff),
		ProductId:      n.U32("idProduct", 0xffff),
		BcdDevice:      n.U32("bcdDevice", 0xffff),
		DeviceClass:    n.U32("bDeviceClass", 0xff),
		DeviceSubclass: n.U32("bDeviceSubClass", 0xff),
		DeviceProtocol: n.U32("bDeviceProtocol", 0xff),
		SpeedMbps:      macSpeedMbps(n),
		// The k… keys hold the string descriptors as read; the "USB …
		// Name" keys are copies sanitised for use as registry names
		// ('/' becomes '_'), so they are only the fallback.
		Manufacturer: n.FirstStr("kUSBVendorString", "USB Vendor Name"),
		Product:      n.FirstStr("kUSBProductString", "USB Product Name"),
		Serial:       n.FirstStr("kUSBSerialNumberString", "USB Serial Number"),
	}
	if loc, ok := n.Uint("locationID", math.MaxUint32); ok {
		d.Location = fmt.Sprintf("0x%08x", loc)
	}
	var rds []*ReportDescriptor
	var walk func(c macNode, depth int)
	walk = func(c macNode, depth int) {
		if depth > ioreg.MaxDepth {
			return
		}
		if macIsInterface(c) {
			d.Interfaces = append(d.Interfaces, &agentv1.UsbInterface{
				Number:   c.U32("bInterfaceNumber", 0xff),
				Class:    c.U32("bInterfaceClass", 0xff),
				Subclass: c.U32("bInterfaceSubClass", 0xff),
				Protocol: c.U32("bInterfaceProtocol", 0xff),
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
		for _, g := range c.Children() {
			if macIsDevice(g) {
				continue
			}
			walk(g, depth+1)
		}
	}
	for _, c := range n.Children() {
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
	for _, c := range iface.Children() {
		if s := c.FirstStr("IOUserClass", "IOClass"); s != "" {
			return s
		}
	}
	return ""
}

// macMassStorage reads the SCSI inquiry strings that the SCSI peripheral
// nub of a USB mass-storage function publishes; nil when the entry has
// none.
func macMassStorage(n macNode) *agentv1.MassStorage {
	if !n.Has("Peripheral Device Type") && !n.Has("Vendor Identification") && !n.Has("Product Identification") {
		return nil
	}
	ms := &agentv1.MassStorage{
		Vendor:   strings.TrimSpace(n.Str("Vendor Identification")),
		Product:  strings.TrimSpace(n.Str("Product Identification")),
		Revision: strings.TrimSpace(n.Str("Product Revision Level")),
	}
	if t, ok := n.Uint("Peripheral Device Type", 0xff); ok && t&0x1f == 5 {
		ms.Cdrom = true
	}
	return ms
}
