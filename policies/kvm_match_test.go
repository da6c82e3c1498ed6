package policies

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestTextMatch(t *testing.T) {
	for _, c := range []struct {
		value, pattern string
		want           bool
	}{
		{"PiKVM", "pikvm", true},
		{" PiKVM  ", "PiKVM", true},
		{"PiKVM V4 Mini", "PiKVM*", true},
		{"PiKV", "PiKVM*", false},
		{"XPiKVM", "PiKVM*", false},
		{"Logitech (x64)", "Logitech", false},
		{"", "Logitech", false},
	} {
		if got := textMatch(c.value, c.pattern); got != c.want {
			t.Errorf("textMatch(%q, %q) = %v", c.value, c.pattern, got)
		}
	}
}

// summary renders findings as "source device kind family field=value …".
func summary(p *agentv1.Peripherals) []string {
	var out []string
	for _, f := range p.GetFindings() {
		s := f.GetSource() + " " + f.GetDevice() + " " + f.GetKind() + " " + f.GetFamily()
		for _, m := range f.GetFields() {
			s += " " + m.GetField() + "=" + m.GetValue()
		}
		out = append(out, s)
	}
	return out
}

func TestMatchPeripherals(t *testing.T) {
	cat, err := KVM(FS())
	if err != nil {
		t.Fatal(err)
	}
	u := &agentv1.Usb{Devices: []*agentv1.UsbDevice{
		// A hub with the Linux Foundation's id is skipped.
		{Location: "usb1", VendorId: 0x1d6b, ProductId: 0x0002, DeviceClass: 0x09},
		// PiKVM's defaults.
		{Location: "1-2", VendorId: 0x1d6b, ProductId: 0x0104, Manufacturer: "PiKVM", Product: "PiKVM Composite Device",
			Serial: "CAFEBABE", Hid: &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true},
			MassStorage: &agentv1.MassStorage{Vendor: "PiKVM", Product: "Optical Drive", Cdrom: true},
			Interfaces:  []*agentv1.UsbInterface{{Class: 3}, {Class: 3}, {Class: 8}}},
		// A pen tablet: digitizer plus express keys is not a composite KVM.
		{Location: "1-3", VendorId: 0x056a, ProductId: 0x0374, Manufacturer: "Wacom Co.,Ltd.", Product: "Intuos S",
			Hid: &agentv1.HidSummary{Keyboard: true, Digitizer: true}, Interfaces: []*agentv1.UsbInterface{{Class: 3}}},
		// A real Logitech receiver.
		{Location: "1-4", VendorId: 0x046d, ProductId: 0xc52b, Manufacturer: "Logitech", Product: "USB Receiver",
			Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true}, Interfaces: []*agentv1.UsbInterface{{Class: 3}}},
	}}
	ds := &agentv1.Displays{Displays: []*agentv1.Display{
		{Connector: "eDP-1", ManufacturerId: "BOE", ProductCode: 0x0a81, Internal: true, Active: true},
		{Connector: "HDMI-A-1", ManufacturerId: "TSB", ProductCode: 0x9876, SerialNumber: 0x88888800, MonitorName: "TinyPilot"},
	}}
	got := strings.Join(summary(MatchPeripherals(cat, u, ds)), "\n")
	want := strings.Join([]string{
		"display HDMI-A-1 capture_edid  manufacturer_id=TSB width_mm=0 height_mm=0 serial_number=0x88888800 monitor_name=TinyPilot",
		"display HDMI-A-1 edid_identity tinypilot manufacturer_id=TSB product_code=0x9876",
		"usb 1-2 composite_hid  hid.keyboard=true hid.absolute_pointer=true mass_storage.cdrom=true mass_storage.vendor=PiKVM mass_storage.product=Optical Drive",
		"usb 1-2 gadget_vendor  vendor_id=0x1d6b interfaces.class=0x0003",
		"usb 1-2 preset_serial glkvm_comet serial=CAFEBABE",
		"usb 1-2 preset_serial pikvm serial=CAFEBABE",
		"usb 1-2 usb_identity linux_usb_gadget vendor_id=0x1d6b product_id=0x0104",
		"usb 1-2 usb_identity pikvm vendor_id=0x1d6b product_id=0x0104 manufacturer=PiKVM",
	}, "\n")
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}

	// Fleet keys: HID devices and external displays with a serial.
	var keys []string
	for _, p := range PeripheralSerials(cat, u, ds) {
		keys = append(keys, p.Key+" @"+p.Device)
	}
	if w := "usb 0x1d6b:0x0104 CAFEBABE @1-2|display TSB 0x9876 0x88888800 @HDMI-A-1"; strings.Join(keys, "|") != w {
		t.Errorf("serials %q, want %q", keys, w)
	}
}

// TestMatchPeripheralsHubs: virtual hubs of KVM dongles and BMCs match the
// catalog; ordinary hubs, even with a gadget vendor id and a KVM preset
// serial, raise nothing.
func TestMatchPeripheralsHubs(t *testing.T) {
	cat, err := KVM(FS())
	if err != nil {
		t.Fatal(err)
	}
	u := &agentv1.Usb{Devices: []*agentv1.UsbDevice{
		{Location: "1-1", VendorId: 0x0624, ProductId: 0x0248, DeviceClass: 0x09, Product: "Virtual Hub"},
		{Location: "1-2", VendorId: 0x03f0, ProductId: 0x1327, DeviceClass: 0x09},
		{Location: "1-3", VendorId: 0x2245, ProductId: 0x1500, DeviceClass: 0x09},
		{Location: "usb1", VendorId: 0x1d6b, ProductId: 0x0002, DeviceClass: 0x09, Serial: "0000:00:14.0"},
		{Location: "1-4", VendorId: 0x05e3, ProductId: 0x0610, DeviceClass: 0x09, Manufacturer: "GenesysLogic", Product: "USB2.1 Hub"},
		{Location: "1-5", VendorId: 0x1209, ProductId: 0x0001, DeviceClass: 0x09, Serial: "CAFEBABE",
			Interfaces: []*agentv1.UsbInterface{{Class: 9}, {Class: 3}}},
	}}
	got := strings.Join(summary(MatchPeripherals(cat, u, nil)), "\n")
	want := strings.Join([]string{
		"usb 1-1 usb_identity avocent_kvm vendor_id=0x0624 product_id=0x0248",
		"usb 1-2 usb_identity hpe_ilo vendor_id=0x03f0 product_id=0x1327",
		"usb 1-3 usb_identity aspeed_pc_over_lan vendor_id=0x2245 product_id=0x1500",
	}, "\n")
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

func BenchmarkMatchPeripherals(b *testing.B) {
	cat, err := KVM(FS())
	if err != nil {
		b.Fatal(err)
	}
	u := &agentv1.Usb{}
	for i := range 10 {
		u.Devices = append(u.Devices, &agentv1.UsbDevice{Location: "1-" + string(rune('0'+i)), VendorId: 0x046d, ProductId: uint32(0xc52b + i),
			Manufacturer: "Logitech", Product: "USB Receiver", Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true}})
	}
	ds := &agentv1.Displays{Displays: []*agentv1.Display{{Connector: "DP-1", ManufacturerId: "DEL", ProductCode: 0xa0c4, SerialString: "7DTRZ83"}}}
	for b.Loop() {
		MatchPeripherals(cat, u, ds)
	}
}

func TestHexIDAsFmt(t *testing.T) {
	for _, v := range []uint32{0, 1, 0xf, 0x10, 0xff, 0x100, 0xfff, 0x1000, 0x1d6b, 0xffff, 0x10000, 0xabcdef, 0xffffffff} {
		if got, want := hexID(v), fmt.Sprintf("0x%04x", v); got != want {
			t.Errorf("hexID(%#x) = %q, want %q", v, got, want)
		}
	}
}

// matchUSB finds through its vendor index what looking at every identity
// of every family finds (restated here: each family's first longest
// match, then its preset serial), on devices made from each identity of
// the embedded catalog and their near misses.
func TestMatchUSBIndex(t *testing.T) {
	cat, err := KVM(FS())
	if err != nil {
		t.Fatal(err)
	}
	if cat.usb == nil {
		t.Fatal("ParseKVM made no index")
	}
	// And identities naming no vendor id, which the embedded catalog has
	// none of: one family before the others, one among them.
	ext := *cat
	ext.Families = slices.Clone(cat.Families)
	ext.Families = slices.Insert(ext.Families, 3, KVMFamily{ID: "acme", Name: "Acme", USB: []USBIdentity{{Manufacturer: "Acme*"}}})
	ext.Families = slices.Insert(ext.Families, 0, KVMFamily{ID: "logi", Name: "Logi",
		USB: []USBIdentity{{Product: "USB Receiver"}, {Manufacturer: "Logitech", Product: "USB Receiver"}}})
	ext.usb = newUSBIndex(&ext)
	cat = &ext
	every := func(d *agentv1.UsbDevice) []string {
		var out []string
		for i := range cat.Families {
			f := &cat.Families[i]
			var best []*agentv1.MatchedField
			for j := range f.USB {
				if m, ok := f.USB[j].match(d); ok && len(m) > len(best) {
					best = m
				}
			}
			if best != nil {
				out = append(out, summary(&agentv1.Peripherals{Findings: []*agentv1.PeripheralFinding{finding("usb", d.GetLocation(), FindingUSBIdentity, f, "", best)}})...)
			}
			if d.GetDeviceClass() != usbClassHub && d.GetSerial() != "" && anyText(d.GetSerial(), f.PresetSerials.USB) {
				out = append(out, "usb "+d.GetLocation()+" "+FindingPresetSerial+" "+f.ID+" serial="+d.GetSerial())
			}
		}
		return out
	}
	var devices []*agentv1.UsbDevice
	for _, f := range cat.Families {
		for _, id := range f.USB {
			d := &agentv1.UsbDevice{Location: fmt.Sprint("1-", len(devices)), Manufacturer: id.Manufacturer, Product: id.Product,
				Configuration: id.Configuration}
			if id.VendorID != nil {
				d.VendorId = *id.VendorID
			}
			if id.ProductID != nil {
				d.ProductId = *id.ProductID
			}
			if id.StorageVendor != "" || id.StorageProduct != "" {
				d.MassStorage = &agentv1.MassStorage{Vendor: id.StorageVendor, Product: id.StorageProduct}
			}
			other := proto.Clone(d).(*agentv1.UsbDevice)
			other.ProductId++
			hub := proto.Clone(d).(*agentv1.UsbDevice)
			hub.DeviceClass = usbClassHub
			devices = append(devices, d, other, hub)
		}
		for _, s := range f.PresetSerials.USB {
			devices = append(devices, &agentv1.UsbDevice{Location: "2-1", VendorId: 0x046d, Serial: strings.ToLower(s)},
				&agentv1.UsbDevice{Location: "2-2", DeviceClass: usbClassHub, Serial: s})
		}
	}
	for _, v := range []uint32{0, 0x046d, *cat.Families[5].USB[0].VendorID} {
		devices = append(devices, &agentv1.UsbDevice{Location: "3-1", VendorId: v, Manufacturer: "Logitech", Product: "USB Receiver"},
			&agentv1.UsbDevice{Location: "3-2", VendorId: v, Manufacturer: "ACME Corp", Product: "USB Receiver"})
	}
	matched := 0
	for _, d := range devices {
		got, want := summary(&agentv1.Peripherals{Findings: cat.matchUSB(d)}), every(d)
		var kept []string // the findings of the catalog's identities and preset serials
		for _, s := range got {
			if strings.Contains(s, " "+FindingUSBIdentity+" ") || strings.Contains(s, " "+FindingPresetSerial+" ") {
				kept = append(kept, s)
			}
		}
		slices.Sort(kept)
		slices.Sort(want)
		if !slices.Equal(kept, want) {
			t.Errorf("device %v:\n got %q\nwant %q", d, kept, want)
		}
		matched += len(want)
	}
	if matched < len(devices)/2 {
		t.Fatalf("only %d findings on %d devices", matched, len(devices))
	}
	// A catalog not made by ParseKVM is matched alike.
	lit := *cat
	lit.usb = nil
	for _, d := range devices {
		if a, b := summary(&agentv1.Peripherals{Findings: lit.matchUSB(d)}), summary(&agentv1.Peripherals{Findings: cat.matchUSB(d)}); !slices.Equal(a, b) {
			t.Errorf("device %v: without the index %q, with %q", d, a, b)
		}
	}
}
