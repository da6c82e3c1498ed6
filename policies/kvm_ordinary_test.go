package policies

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// usbIDsEntry is one product of usb.ids with its vendor's name.
type usbIDsEntry struct {
	vendor, product uint32
	vendorName      string
	name            string
}

// usbIDsEntries reads every product line of usb.ids (vendor lines
// "vvvv  name", product lines "\tpppp  name"; interface lines and the
// class tables after the vendors are skipped).
func usbIDsEntries(t *testing.T, path string) []usbIDsEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []usbIDsEntry
	var vendor uint64
	vendorName := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "C ") {
			break
		}
		if strings.HasPrefix(line, "\t\t") {
			continue
		}
		id, name, ok := strings.Cut(strings.TrimPrefix(line, "\t"), "  ")
		if !ok || len(id) != 4 {
			continue
		}
		n, err := strconv.ParseUint(id, 16, 16)
		if err != nil {
			continue
		}
		if line[0] != '\t' {
			vendor, vendorName = n, name
			continue
		}
		out = append(out, usbIDsEntry{vendor: uint32(vendor), product: uint32(n), vendorName: vendorName, name: name})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ordinaryClasses sort usb.ids products into the ordinary peripherals a
// remote worker plugs in, by their usb.ids names, each with the functions
// such a device shows the host. Names that say KVM, console, BMC, virtual
// or remote are left out: those are the recall test's
// (TestKVMCatalogUSBIDs).
var (
	notOrdinary     = regexp.MustCompile(`(?i)kvm|console|bmc|virtual|remote|switch|management|ipmi|idrac|ilo\b|supermicro|aten|avocent|raritan|lantronix|adder`)
	ordinaryClasses = []struct {
		name  string
		match func(e usbIDsEntry) bool
		dev   func(e usbIDsEntry) *agentv1.UsbDevice
	}{
		{"hubs", nameMatch(`(?i)\bhub\b`), func(e usbIDsEntry) *agentv1.UsbDevice {
			return &agentv1.UsbDevice{DeviceClass: usbClassHub, Interfaces: []*agentv1.UsbInterface{{Class: usbClassHub}}}
		}},
		{"docks", nameMatch(`(?i)\bdock(ing)?\b|thunderbolt|usb-c (multiport|adapter)`), func(e usbIDsEntry) *agentv1.UsbDevice {
			// A dock's own function: vendor-specific (display, Ethernet)
			// and a HID for its buttons.
			return &agentv1.UsbDevice{Interfaces: []*agentv1.UsbInterface{{Class: 0xff}, {Class: usbClassHID}},
				Hid: &agentv1.HidSummary{ConsumerControl: true}, NetworkFunction: true}
		}},
		{"security keys", nameMatch(`(?i)yubikey|security key|\bfido|u2f|titan|nitrokey|solokey|onlykey|token`), func(e usbIDsEntry) *agentv1.UsbDevice {
			// YubiKeys type their OTP as a keyboard, beside the FIDO HID.
			return &agentv1.UsbDevice{Interfaces: []*agentv1.UsbInterface{{Class: usbClassHID}, {Class: usbClassHID}},
				Hid: &agentv1.HidSummary{Keyboard: true}}
		}},
		{"receivers", nameMatch(`(?i)receiver|unifying|wireless (keyboard|mouse|desktop)|\bbolt\b|dongle`), func(e usbIDsEntry) *agentv1.UsbDevice {
			return &agentv1.UsbDevice{Interfaces: []*agentv1.UsbInterface{{Class: usbClassHID}, {Class: usbClassHID}, {Class: usbClassHID}},
				Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true, ConsumerControl: true}}
		}},
		{"hobby boards", func(e usbIDsEntry) bool {
			return regexp.MustCompile(`(?i)arduino|adafruit|sparkfun|raspberry pi|seeed|espressif|pjrc|teensy|pimoroni|olimex`).MatchString(e.vendorName + " " + e.name)
		}, func(e usbIDsEntry) *agentv1.UsbDevice {
			// Programmed as a keyboard and mouse (Arduino Leonardo's
			// Keyboard and Mouse libraries): what a home-made jiggler is.
			return &agentv1.UsbDevice{Interfaces: []*agentv1.UsbInterface{{Class: 0x02}, {Class: usbClassHID}},
				Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true}}
		}},
	}
)

func nameMatch(expr string) func(usbIDsEntry) bool {
	re := regexp.MustCompile(expr)
	return func(e usbIDsEntry) bool { return re.MatchString(e.name) }
}

// kvmFinding says whether a finding would raise one of the KVM alerts
// (kvm_usb_identity, kvm_switch_usb, composite_hid_gadget).
func kvmFinding(f *agentv1.PeripheralFinding) bool {
	if f.GetKind() == FindingCompositeHID {
		return true
	}
	return f.GetKind() == FindingUSBIdentity && slices.Contains([]string{KVMCategoryIPKVM, KVMCategoryHIDBridge,
		KVMCategoryEnterprise, KVMCategoryBMC, KVMCategorySwitch}, f.GetCategory())
}

// TestKVMOrdinaryUSBIDs is the precision half of the usb.ids check: every
// hub, dock, security key, wireless receiver and hobby board in usb.ids,
// presented with the functions such a device has and its usb.ids vendor
// and product names as its strings, must match no KVM identity (and no
// keyboard-plus-absolute-pointer gadget). Hobby boards programmed as
// keyboards may be jiggler hardware (medium, jiggler_hardware); that is
// counted, not failed.
func TestKVMOrdinaryUSBIDs(t *testing.T) {
	c := loadKVM(t)
	path := os.Getenv("USB_IDS")
	for _, p := range []string{"/usr/share/hwdata/usb.ids", "/usr/share/misc/usb.ids", "/var/lib/usbutils/usb.ids"} {
		if _, err := os.Stat(p); path == "" && err == nil {
			path = p
		}
	}
	if path == "" {
		msg := "no usb.ids installed (apt-get install hwdata)"
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	entries := usbIDsEntries(t, path)
	if len(entries) < 10000 {
		t.Fatalf("%s: only %d products", path, len(entries))
	}
	// The ids the catalog lists on purpose (BMC virtual hubs such as
	// Emulex's Pilot4 "Integrated Hub") are the recall set, not ordinary.
	listed := map[[2]uint32]bool{}
	for _, f := range c.Families {
		for _, u := range f.USB {
			if u.VendorID != nil && u.ProductID != nil {
				listed[[2]uint32{*u.VendorID, *u.ProductID}] = true
			}
		}
	}
	var report []string
	total := 0
	for _, cl := range ordinaryClasses {
		n, kvm, other := 0, 0, 0
		for _, e := range entries {
			if !cl.match(e) || notOrdinary.MatchString(e.vendorName+" "+e.name) || listed[[2]uint32{e.vendor, e.product}] {
				continue
			}
			n++
			d := cl.dev(e)
			// usb.ids names are not the devices' own strings: the
			// product string stands in, the manufacturer string stays
			// empty (a vendor-string mismatch would be an artefact).
			d.Location, d.VendorId, d.ProductId, d.Product = "1-1", e.vendor, e.product, e.name
			found := false
			for _, f := range c.matchUSB(d) {
				if kvmFinding(f) {
					found = true
					t.Errorf("%s %04x:%04x %q %q: flagged as a KVM: %s %s %v", cl.name, e.vendor, e.product, e.vendorName, e.name, f.GetKind(), f.GetFamily(), f.GetFields())
				}
			}
			if found {
				kvm++
			} else if fs := c.matchUSB(d); len(fs) > 0 {
				other++
				if testing.Verbose() {
					t.Logf("%s %04x:%04x %q: %s %s %s", cl.name, e.vendor, e.product, e.name, fs[0].GetKind(), fs[0].GetFamily(), fs[0].GetCategory())
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: none in usb.ids: the selection is broken", cl.name)
		}
		total += n
		report = append(report, fmt.Sprintf("%s: %d, flagged as KVM %d, other findings %d", cl.name, n, kvm, other))
	}
	t.Logf("usb.ids %s, %d products; ordinary devices checked: %d\n%s", path, len(entries), total, strings.Join(report, "\n"))
}
