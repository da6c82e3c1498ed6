package usb

import (
	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func macReadFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "mac", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func macFixtureNames(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "mac", "*.plist"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no mac fixtures: %v", err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func macAssertUSB(t *testing.T, got, want *agentv1.Usb) {
	t.Helper()
	if !proto.Equal(got, want) {
		o := prototext.MarshalOptions{Multiline: true}
		t.Errorf("got:\n%s\nwant:\n%s", o.Format(got), o.Format(want))
	}
}

func TestMacParseUSBFixtures(t *testing.T) {
	tests := []struct {
		file string
		want *agentv1.Usb
	}{
		{"esp32c3_fivebyfive.plist", &agentv1.Usb{Devices: []*agentv1.UsbDevice{{
			Location:       "0x01114000",
			VendorId:       0x303a,
			ProductId:      0x1001,
			BcdDevice:      0x0101,
			Manufacturer:   "Espressif",
			Product:        "USB JTAG/serial debug unit", // kUSBProductString, not the sanitised name
			Serial:         "84:F7:03:A0:EF:84",
			DeviceClass:    0xef,
			DeviceSubclass: 2,
			DeviceProtocol: 1,
			SpeedMbps:      12,
			Hid:            &agentv1.HidSummary{},
		}}}},
		{"pikvm_composite.plist", &agentv1.Usb{Devices: []*agentv1.UsbDevice{{
			Location:     "0x00100000",
			VendorId:     0x1d6b,
			ProductId:    0x0104,
			BcdDevice:    0x0100,
			Manufacturer: "PiKVM",
			Product:      "PiKVM Composite Device",
			Serial:       "CAFEBABE",
			SpeedMbps:    480,
			Interfaces: []*agentv1.UsbInterface{
				{Number: 0, Class: 3, Subclass: 1, Protocol: 1, Driver: "AppleUserUSBHostHIDDevice"},
				{Number: 1, Class: 3, Driver: "AppleUserUSBHostHIDDevice"},
				{Number: 2, Class: 8, Subclass: 6, Protocol: 80, Driver: "IOUSBMassStorageInterfaceNub"},
			},
			Hid:         &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true},
			MassStorage: &agentv1.MassStorage{Vendor: "PiKVM", Product: "Optical Drive", Revision: "0100", Cdrom: true},
		}}}},
		{"logitech_unifying_receiver.plist", &agentv1.Usb{Devices: []*agentv1.UsbDevice{{
			Location:     "0x14200000",
			VendorId:     0x046d,
			ProductId:    0xc52b,
			BcdDevice:    0x1211,
			Manufacturer: "Logitech",
			Product:      "USB Receiver",
			SpeedMbps:    12,
			Interfaces: []*agentv1.UsbInterface{
				{Number: 0, Class: 3, Subclass: 1, Protocol: 1, Driver: "IOUSBHostHIDDevice"},
				{Number: 1, Class: 3, Subclass: 1, Protocol: 2, Driver: "IOUSBHostHIDDevice"},
				{Number: 2, Class: 3, Driver: "IOUSBHostHIDDevice"},
			},
			Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true, ConsumerControl: true},
		}}}},
		// The drive is printed twice (inside the hub's subtree and as its
		// own top-level element) and counted once; the hub does not get
		// the drive's interfaces or SCSI strings.
		{"hub_with_flash_drive.plist", &agentv1.Usb{Devices: []*agentv1.UsbDevice{
			{
				Location:       "0x01100000",
				VendorId:       0x05e3,
				ProductId:      0x0610,
				BcdDevice:      0x6563,
				Manufacturer:   "GenesysLogic",
				Product:        "USB2.1 Hub",
				DeviceClass:    9,
				DeviceProtocol: 2,
				SpeedMbps:      480,
				Interfaces:     []*agentv1.UsbInterface{{Number: 0, Class: 9, Protocol: 2}},
				Hid:            &agentv1.HidSummary{},
			},
			{
				Location:     "0x01110000",
				VendorId:     0x0781,
				ProductId:    0x5581,
				BcdDevice:    0x0100,
				Manufacturer: "SanDisk",
				Product:      "Ultra",
				Serial:       "4C530001230518104F82",
				SpeedMbps:    480,
				Interfaces:   []*agentv1.UsbInterface{{Number: 0, Class: 8, Subclass: 6, Protocol: 80, Driver: "IOUSBMassStorageInterfaceNub"}},
				Hid:          &agentv1.HidSummary{},
				MassStorage:  &agentv1.MassStorage{Vendor: "SanDisk", Product: "Ultra", Revision: "1.00"},
			},
		}}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			got, err := macParseUSB(macReadFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			macAssertUSB(t, got, tc.want)
		})
	}
	for _, name := range macFixtureNames(t) {
		if !seen[name] {
			t.Errorf("fixture %s has no table entry", name)
		}
	}
}

const macPlistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

func TestMacParseUSBSpeeds(t *testing.T) {
	tests := []struct {
		props string
		want  uint32
	}{
		{`<key>USBSpeed</key><integer>2</integer><key>Device Speed</key><integer>0</integer>`, 1},
		{`<key>USBSpeed</key><integer>3</integer>`, 480},
		{`<key>USBSpeed</key><integer>4</integer>`, 5000},
		{`<key>USBSpeed</key><integer>5</integer>`, 10000},
		{`<key>USBSpeed</key><integer>6</integer>`, 20000},
		{`<key>USBSpeed</key><integer>0</integer>`, 0},
		{`<key>Device Speed</key><integer>0</integer>`, 1},
		{`<key>Device Speed</key><integer>2</integer>`, 480},
		{`<key>Device Speed</key><integer>3</integer>`, 5000},
		{`<key>Device Speed</key><integer>4</integer>`, 10000},
		{`<key>Device Speed</key><integer>9</integer>`, 0},
		{`<key>Device Speed</key><string>fast</string>`, 0},
	}
	for _, tc := range tests {
		got, err := macParseUSB([]byte(macPlistHead + `<array><dict>` + tc.props + `</dict></array></plist>`))
		if err != nil {
			t.Fatalf("%s: %v", tc.props, err)
		}
		if s := got.Devices[0].GetSpeedMbps(); s != tc.want {
			t.Errorf("%s: speed %d, want %d", tc.props, s, tc.want)
		}
	}
}

func TestMacParseUSBEmpty(t *testing.T) {
	for _, in := range []string{"", " \n", macPlistHead + "<array/></plist>"} {
		got, err := macParseUSB([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(got.GetDevices()) != 0 {
			t.Errorf("%q: devices %v", in, got.Devices)
		}
	}
}

func TestMacParseUSBErrors(t *testing.T) {
	for _, in := range []string{
		"\x00\x01garbage\xff",
		"<plist><array><dict>",
		macPlistHead + "<string>not an array</string></plist>",
		"bplist00\x00\x00",
	} {
		if _, err := macParseUSB([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if _, err := macParseUSB(make([]byte, ioreg.MaxSize+1)); err == nil {
		t.Error("oversized input: no error")
	}
}

// Properties of the wrong type are skipped, never trusted or fatal.
func TestMacParseUSBWrongTypes(t *testing.T) {
	in := macPlistHead + `<array>
<string>not a dict</string>
<dict>
	<key>IOObjectClass</key><string>IOUSBHostDevice</string>
	<key>idVendor</key><string>0x1d6b</string>
	<key>idProduct</key><integer>70000</integer>
	<key>bcdDevice</key><integer>-1</integer>
	<key>bDeviceClass</key><real>3.5</real>
	<key>locationID</key><true/>
	<key>kUSBVendorString</key><integer>5</integer>
	<key>USB Vendor Name</key><string>Fallback</string>
	<key>kUSBProductString</key><data>AAE=</data>
	<key>IORegistryEntryChildren</key><array>
		<string>junk</string>
		<dict>
			<key>IOObjectClass</key><string>IOUSBHostInterface</string>
			<key>bInterfaceNumber</key><string>one</string>
			<key>bInterfaceClass</key><integer>3</integer>
			<key>IORegistryEntryChildren</key><dict/>
			<key>ReportDescriptor</key><string>05010906</string>
		</dict>
		<dict>
			<key>IOObjectClass</key><string>IOUSBHostInterface</string>
			<key>bInterfaceNumber</key><integer>1</integer>
			<key>bInterfaceClass</key><integer>3</integer>
			<key>IORegistryEntryChildren</key><array><dict>
				<key>IOClass</key><integer>7</integer>
				<key>ReportDescriptor</key><data>BQEJBqEBBQeZ</data>
			</dict></array>
		</dict>
		<dict>
			<key>Peripheral Device Type</key><string>5</string>
			<key>Vendor Identification</key><integer>1</integer>
		</dict>
	</array>
</dict>
</array></plist>`
	got, err := macParseUSB([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	// The truncated descriptor (Keyboard application, then a cut item)
	// still yields what was parsed before the error.
	want := &agentv1.Usb{Devices: []*agentv1.UsbDevice{{
		Manufacturer: "Fallback",
		Interfaces: []*agentv1.UsbInterface{
			{Number: 0, Class: 3},
			{Number: 1, Class: 3},
		},
		Hid:         &agentv1.HidSummary{Keyboard: true},
		MassStorage: &agentv1.MassStorage{},
	}}}
	macAssertUSB(t, got, want)
}

// Entries nested deeper than ioreg.MaxDepth are ignored rather than walked.
func TestMacParseUSBDeepNesting(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(macPlistHead + "<array>")
	const n = 200
	for i := 0; i < n; i++ {
		sb.WriteString("<dict><key>IOObjectClass</key><string>IOUSBHostDevice</string><key>IORegistryEntryChildren</key><array>")
	}
	for i := 0; i < n; i++ {
		sb.WriteString("</array></dict>")
	}
	sb.WriteString("</array></plist>")
	got, err := macParseUSB([]byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Devices) != ioreg.MaxDepth+1 {
		t.Errorf("%d devices, want %d", len(got.Devices), ioreg.MaxDepth+1)
	}
}

func FuzzMacParseUSB(f *testing.F) {
	for _, name := range macFixtureNames(f) {
		f.Add(macReadFixture(f, name))
	}
	f.Add([]byte(""))
	f.Add([]byte(macPlistHead + "<array><dict><key>IORegistryEntryChildren</key><array><dict/></array></dict></array></plist>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := macParseUSB(data)
		if err != nil {
			if u != nil {
				t.Fatal("result with error")
			}
			return
		}
		for _, d := range u.Devices {
			if d.Hid == nil {
				t.Fatal("nil Hid")
			}
			if d.VendorId > 0xffff || d.ProductId > 0xffff || d.DeviceClass > 0xff {
				t.Fatalf("out of range: %v", d)
			}
		}
	})
}
