package usb

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winFixture is the testdata/win/*.json format.
type winFixture struct {
	Comment string             `json:"comment"`
	Records []winPnPRecord     `json:"records"`
	HID     []winHIDCollection `json:"hid"`
}

func winLoadFixtures(tb testing.TB, names ...string) ([]winPnPRecord, []winHIDCollection) {
	tb.Helper()
	var recs []winPnPRecord
	var hids []winHIDCollection
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", "win", n))
		if err != nil {
			tb.Fatal(err)
		}
		var f winFixture
		if err := json.Unmarshal(b, &f); err != nil {
			tb.Fatalf("%s: %v", n, err)
		}
		recs = append(recs, f.Records...)
		hids = append(hids, f.HID...)
	}
	return recs, hids
}

func winIface(n, c, s, p uint32, drv string) *agentv1.UsbInterface {
	return &agentv1.UsbInterface{Number: n, Class: c, Subclass: s, Protocol: p, Driver: drv}
}

var (
	winWantPiKVM = &agentv1.UsbDevice{
		Location: "PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(2)", VendorId: 0x1d6b, ProductId: 0x0104, BcdDevice: 0x0100,
		Product: "PiKVM Composite Device", Serial: "CAFEBABE",
		Interfaces: []*agentv1.UsbInterface{
			winIface(0, 3, 1, 1, "HidUsb"), winIface(1, 3, 0, 0, "HidUsb"), winIface(2, 8, 6, 0x50, "USBSTOR"),
		},
		Hid:         &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true},
		MassStorage: &agentv1.MassStorage{Vendor: "PiKVM", Product: "Optical Drive", Revision: "1.00", Cdrom: true},
	}
	winWantReceiver = &agentv1.UsbDevice{
		Location: "PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(1)", VendorId: 0x046d, ProductId: 0xc52b, BcdDevice: 0x1211,
		Product: "USB Receiver",
		Interfaces: []*agentv1.UsbInterface{
			winIface(0, 3, 1, 1, "HidUsb"), winIface(1, 3, 1, 2, "HidUsb"), winIface(2, 3, 0, 0, "HidUsb"),
		},
		Hid: &agentv1.HidSummary{Keyboard: true, RelativeMouse: true, ConsumerControl: true},
	}
	winWantYubiKey = &agentv1.UsbDevice{
		Location: "PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(3)#USB(1)", VendorId: 0x1050, ProductId: 0x0407, BcdDevice: 0x0543,
		Product: "YubiKey OTP+FIDO+CCID",
		Interfaces: []*agentv1.UsbInterface{
			winIface(0, 3, 1, 1, "HidUsb"), winIface(1, 3, 0, 0, "HidUsb"), winIface(2, 0x0b, 0, 0, "WUDFRd"),
		},
		Hid: &agentv1.HidSummary{Keyboard: true},
	}
	winWantHub = &agentv1.UsbDevice{
		Location: "PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(3)", VendorId: 0x05e3, ProductId: 0x0610, BcdDevice: 0x9226,
		Product: "USB2.1 Hub", DeviceClass: 9, DeviceSubclass: 0, DeviceProtocol: 2,
		Interfaces: []*agentv1.UsbInterface{winIface(0, 9, 0, 2, "USBHUB3")},
		Hid:        &agentv1.HidSummary{},
	}
	winWantMouse = &agentv1.UsbDevice{
		Location: "Port_#0002.Hub_#0003", VendorId: 0x046d, ProductId: 0xc077, BcdDevice: 0x7200,
		Product:    "USB Optical Mouse",
		Interfaces: []*agentv1.UsbInterface{winIface(0, 3, 1, 2, "HidUsb")},
		Hid:        &agentv1.HidSummary{RelativeMouse: true},
	}
	winWantStick = &agentv1.UsbDevice{
		Location: "Port_#0003.Hub_#0003", VendorId: 0x0781, ProductId: 0x5567, BcdDevice: 0x0100,
		Product: "Cruzer Blade", Serial: "4C530001230318117074",
		Interfaces:  []*agentv1.UsbInterface{winIface(0, 8, 6, 0x50, "USBSTOR")},
		Hid:         &agentv1.HidSummary{},
		MassStorage: &agentv1.MassStorage{Vendor: "SanDisk", Product: "Cruzer Blade", Revision: "1.00"},
	}
)

func TestWinBuildFixtures(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []*agentv1.UsbDevice
	}{
		{"pikvm", []string{"pikvm.json"}, []*agentv1.UsbDevice{winWantPiKVM}},
		{"receiver", []string{"logitech_receiver.json"}, []*agentv1.UsbDevice{winWantReceiver}},
		{"yubikey", []string{"yubikey.json"}, []*agentv1.UsbDevice{winWantYubiKey}},
		{"hub", []string{"hub.json"}, []*agentv1.UsbDevice{winWantHub}},
		{"noparent", []string{"noparent.json"}, []*agentv1.UsbDevice{winWantMouse, winWantStick}},
		{"skipped", []string{"skipped.json"}, nil},
		{"laptop", []string{"skipped.json", "yubikey.json", "pikvm.json", "hub.json", "noparent.json", "logitech_receiver.json"},
			[]*agentv1.UsbDevice{winWantReceiver, winWantPiKVM, winWantHub, winWantYubiKey, winWantMouse, winWantStick}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, hids := winLoadFixtures(t, tt.files...)
			got := &agentv1.Usb{Devices: winBuild(recs, hids)}
			want := &agentv1.Usb{Devices: tt.want}
			if !proto.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(want))
			}
		})
	}
}

// Two identical devices without parent information: the HID collection
// cannot be attributed and is dropped rather than guessed.
func TestWinBuildAmbiguous(t *testing.T) {
	recs := []winPnPRecord{
		{InstanceID: `USB\VID_1D6B&PID_0104\A`, CompatibleIDs: []string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\COMPOSITE`}, Location: "1"},
		{InstanceID: `USB\VID_1D6B&PID_0104\B`, CompatibleIDs: []string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\COMPOSITE`}, Location: "2"},
		{InstanceID: `USB\VID_1D6B&PID_0104&MI_00\6&1&0&0`, CompatibleIDs: []string{`USB\Class_03&SubClass_01&Prot_01`}},
		{InstanceID: `USB\VID_1D6B&PID_0104&MI_00\6&2&0&0`, Parent: `usb\vid_1d6b&pid_0104\b`, CompatibleIDs: []string{`USB\Class_03&SubClass_01&Prot_01`}},
		{InstanceID: `USB\VID_1D6B&PID_0104\A`, Location: "duplicate"},
	}
	hids := []winHIDCollection{
		{InstanceID: `HID\VID_1D6B&PID_0104&MI_00\7&1&0&0`, UsagePage: 1, Usage: 6},
		{InstanceID: `HID\VID_1D6B&PID_0104&MI_00\7&2&0&0`, Parent: `USB\VID_1D6B&PID_0104&MI_00\6&2&0&0`, UsagePage: 1, Usage: 2,
			Values: []winHIDValueCap{{UsagePage: 1, UsageMin: 0x30, UsageMax: 0x31, Absolute: true}}},
	}
	got := &agentv1.Usb{Devices: winBuild(recs, hids)}
	want := &agentv1.Usb{Devices: []*agentv1.UsbDevice{
		{Location: "1", VendorId: 0x1d6b, ProductId: 0x0104, Serial: "A", Hid: &agentv1.HidSummary{}},
		{Location: "2", VendorId: 0x1d6b, ProductId: 0x0104, Serial: "B",
			Interfaces: []*agentv1.UsbInterface{winIface(0, 3, 1, 1, "")},
			Hid:        &agentv1.HidSummary{AbsolutePointer: true}},
	}}
	if !proto.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(want))
	}
}

// A device node with neither location paths nor location information
// (SetupAPI answers ERROR_INVALID_DATA for both, as for a virtual device)
// is named by its instance id, so that two such devices stay apart and
// neither is reported with an empty location.
func TestWinBuildNoLocation(t *testing.T) {
	recs := []winPnPRecord{
		{InstanceID: `USB\VID_1D6B&PID_0104\CAFEBABE`, BusDesc: "PiKVM Composite Device",
			CompatibleIDs: []string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\COMPOSITE`}},
		{InstanceID: `USB\VID_046D&PID_C52B\5&2F3B1C&0&2`, Location: "Port_#0002.Hub_#0001"},
		{InstanceID: `USB\VID_046D&PID_C52B\5&2F3B1C&0&3`},
	}
	got := &agentv1.Usb{Devices: winBuild(recs, nil)}
	want := &agentv1.Usb{Devices: []*agentv1.UsbDevice{
		{Location: "Port_#0002.Hub_#0001", VendorId: 0x046d, ProductId: 0xc52b, Hid: &agentv1.HidSummary{}},
		{Location: `USB\VID_046D&PID_C52B\5&2F3B1C&0&3`, VendorId: 0x046d, ProductId: 0xc52b, Hid: &agentv1.HidSummary{}},
		{Location: `USB\VID_1D6B&PID_0104\CAFEBABE`, VendorId: 0x1d6b, ProductId: 0x0104, Serial: "CAFEBABE",
			Product: "PiKVM Composite Device", Hid: &agentv1.HidSummary{}},
	}}
	if !proto.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(want))
	}
}

func TestWinHIDSummary(t *testing.T) {
	abs := func(page, lo, hi uint16) winHIDValueCap {
		return winHIDValueCap{UsagePage: page, UsageMin: lo, UsageMax: hi, Absolute: true}
	}
	rel := func(page, lo, hi uint16) winHIDValueCap {
		return winHIDValueCap{UsagePage: page, UsageMin: lo, UsageMax: hi}
	}
	tests := []struct {
		name string
		caps []winHIDCollection
		want *agentv1.HidSummary
	}{
		{"none", nil, &agentv1.HidSummary{}},
		{"keyboard", []winHIDCollection{{UsagePage: 1, Usage: 6}}, &agentv1.HidSummary{Keyboard: true}},
		{"keypad is not a keyboard", []winHIDCollection{{UsagePage: 1, Usage: 7}}, &agentv1.HidSummary{}},
		{"consumer", []winHIDCollection{{UsagePage: 0x0c, Usage: 1}}, &agentv1.HidSummary{ConsumerControl: true}},
		{"relative mouse range", []winHIDCollection{{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{rel(1, 0x30, 0x38)}}},
			&agentv1.HidSummary{RelativeMouse: true}},
		{"absolute mouse separate caps", []winHIDCollection{{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{abs(1, 0x31, 0x31), abs(1, 0x30, 0x30)}}},
			&agentv1.HidSummary{AbsolutePointer: true}},
		{"absolute pointer usage", []winHIDCollection{{UsagePage: 1, Usage: 1, Values: []winHIDValueCap{abs(1, 0x30, 0x31)}}},
			&agentv1.HidSummary{AbsolutePointer: true}},
		{"only X absolute", []winHIDCollection{{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{abs(1, 0x30, 0x30), rel(1, 0x31, 0x31)}}},
			&agentv1.HidSummary{}},
		{"touch screen", []winHIDCollection{{UsagePage: 0x0d, Usage: 4, Values: []winHIDValueCap{abs(1, 0x30, 0x31), abs(0x0d, 0x48, 0x49)}}},
			&agentv1.HidSummary{Digitizer: true}},
		{"joystick absolute X/Y ignored", []winHIDCollection{{UsagePage: 1, Usage: 4, Values: []winHIDValueCap{abs(1, 0x30, 0x31)}}},
			&agentv1.HidSummary{}},
		{"X/Y on another page ignored", []winHIDCollection{{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{abs(0xff00, 0x30, 0x31)}}},
			&agentv1.HidSummary{}},
		{"inverted range ignored", []winHIDCollection{{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{abs(1, 0x31, 0x30)}}},
			&agentv1.HidSummary{}},
		{"kvm pair", []winHIDCollection{
			{UsagePage: 1, Usage: 6},
			{UsagePage: 1, Usage: 2, Values: []winHIDValueCap{abs(1, 0x30, 0x31), rel(1, 0x38, 0x38)}},
		}, &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := winHIDSummary(tt.caps); !proto.Equal(got, tt.want) {
				t.Errorf("got %s, want %s", prototext.Format(got), prototext.Format(tt.want))
			}
		})
	}
}
