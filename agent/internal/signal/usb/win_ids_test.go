package usb

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestWinParseID(t *testing.T) {
	tests := []struct {
		in     string
		want   winInstanceID
		serial string
	}{
		{`USB\VID_1D6B&PID_0104\CAFEBABE`, winInstanceID{Enumerator: "USB", DeviceID: "VID_1D6B&PID_0104", Instance: "CAFEBABE",
			VID: 0x1d6b, PID: 0x0104, HasVIDPID: true}, "CAFEBABE"},
		{`usb\vid_046d&pid_c52b\5&1a2b3c4d&0&1`, winInstanceID{Enumerator: "USB", DeviceID: "vid_046d&pid_c52b", Instance: "5&1a2b3c4d&0&1",
			VID: 0x046d, PID: 0xc52b, HasVIDPID: true}, ""},
		{`USB\VID_1D6B&PID_0104&MI_02\6&2b3f4a5c&0&0002`, winInstanceID{Enumerator: "USB", DeviceID: "VID_1D6B&PID_0104&MI_02", Instance: "6&2b3f4a5c&0&0002",
			VID: 0x1d6b, PID: 0x0104, HasVIDPID: true, MI: 2, HasMI: true}, ""},
		{`USB\VID_1D6B&PID_0104&MI_02\SERIALLIKE`, winInstanceID{Enumerator: "USB", DeviceID: "VID_1D6B&PID_0104&MI_02", Instance: "SERIALLIKE",
			VID: 0x1d6b, PID: 0x0104, HasVIDPID: true, MI: 2, HasMI: true}, ""},
		{`USB\VID_1D6B&PID_0104&REV_0100`, winInstanceID{Enumerator: "USB", DeviceID: "VID_1D6B&PID_0104&REV_0100",
			VID: 0x1d6b, PID: 0x0104, HasVIDPID: true, Rev: 0x0100, HasRev: true}, ""},
		{`USB\VID_046D&PID_C52B&REV_1211&MI_01`, winInstanceID{Enumerator: "USB", DeviceID: "VID_046D&PID_C52B&REV_1211&MI_01",
			VID: 0x046d, PID: 0xc52b, HasVIDPID: true, Rev: 0x1211, HasRev: true, MI: 1, HasMI: true}, ""},
		{`HID\VID_046D&PID_C52B&MI_01&Col02\7&4d5e6f70&0&0001`, winInstanceID{Enumerator: "HID", DeviceID: "VID_046D&PID_C52B&MI_01&Col02", Instance: "7&4d5e6f70&0&0001",
			VID: 0x046d, PID: 0xc52b, HasVIDPID: true, MI: 1, HasMI: true, Col: 2, HasCol: true}, ""},
		{`USB\Class_03&SubClass_01&Prot_02`, winInstanceID{Enumerator: "USB", DeviceID: "Class_03&SubClass_01&Prot_02",
			ClassTriple: winClassTriple{3, 1, 2}, HasClass: true}, ""},
		{`USB\DevClass_EF&SubClass_02&Prot_01`, winInstanceID{Enumerator: "USB", DeviceID: "DevClass_EF&SubClass_02&Prot_01",
			ClassTriple: winClassTriple{0xef, 2, 1}, HasClass: true, DeviceClass: true}, ""},
		{`USB\COMPOSITE`, winInstanceID{Enumerator: "USB", DeviceID: "COMPOSITE", Composite: true}, ""},
		{`USB\ROOT_HUB30\4&2a1b3c4d&0&0`, winInstanceID{Enumerator: "USB", DeviceID: "ROOT_HUB30", Instance: "4&2a1b3c4d&0&0", RootHub: true}, ""},
		{`HID\VEN_ELAN&DEV_2A4C&Col01\5&1&0&0`, winInstanceID{Enumerator: "HID", DeviceID: "VEN_ELAN&DEV_2A4C&Col01", Instance: "5&1&0&0",
			Col: 1, HasCol: true, UnknownParts: 2}, ""},
	}
	for _, tt := range tests {
		got, err := winParseID(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		if s := winSerial(got); s != tt.serial {
			t.Errorf("%s: serial %q, want %q", tt.in, s, tt.serial)
		}
	}
}

func TestWinParseIDErrors(t *testing.T) {
	for _, in := range []string{
		"", "USB", `USB\`, `\VID_1D6B&PID_0104\x`, `USB\\x`,
		`USB\VID_12&PID_3456\x`, `USB\VID_ZZZZ&PID_0001\x`, `USB\VID_1234\x`, `USB\PID_1234\x`,
		`USB\VID_1234&PID_5678\a\b`, `USB\VID_1234&PID_5678&MI_1\x`, `USB\VID_1234&PID_5678&REV_+001`,
		`USB\Class_3&SubClass_01&Prot_01`, `USB\VID_1234&PID_5678\` + strings.Repeat("x", winMaxIDLen),
	} {
		if id, err := winParseID(in); err == nil {
			t.Errorf("%q: no error, got %+v", in, id)
		} else if !errors.Is(err, errWinSyntax) && !errors.Is(err, errWinLong) {
			t.Errorf("%q: unexpected error %v", in, err)
		}
	}
}

func TestWinParseHardwareAndCompatibleIDs(t *testing.T) {
	if rev, ok := winParseHardwareIDs([]string{`garbage`, `USB\VID_1D6B&PID_0104&REV_0100`, `USB\VID_1D6B&PID_0104`}); !ok || rev != 0x0100 {
		t.Errorf("rev = %#x, %v", rev, ok)
	}
	if _, ok := winParseHardwareIDs([]string{`USB\VID_1D6B&PID_0104`}); ok {
		t.Error("rev found in an id without REV_")
	}
	tests := []struct {
		in   []string
		want winCompat
	}{
		{nil, winCompat{}},
		{[]string{`USB\Class_03&SubClass_01&Prot_01`, `USB\Class_03&SubClass_01`, `USB\Class_03`}, winCompat{Triple: winClassTriple{3, 1, 1}, HasTriple: true}},
		{[]string{`USB\Class_03`, `USB\Class_08&SubClass_06&Prot_50`}, winCompat{Triple: winClassTriple{8, 6, 0x50}, HasTriple: true}},
		{[]string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`},
			winCompat{HasTriple: true, DevClass: true, Composite: true}},
		{[]string{`USB\Class_zz&SubClass_01&Prot_01`, `USB\Class_0e&SubClass_03&Prot_00`}, winCompat{Triple: winClassTriple{0x0e, 3, 0}, HasTriple: true}},
	}
	for _, tt := range tests {
		if got := winParseCompatibleIDs(tt.in); got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestWinParseStorageID(t *testing.T) {
	tests := []struct {
		in     string
		typ    string
		ms     *agentv1.MassStorage
		serial string
	}{
		{`USBSTOR\CdRom&Ven_PiKVM&Prod_Optical_Drive&Rev_1.00\CAFEBABE&0`, "CdRom",
			&agentv1.MassStorage{Vendor: "PiKVM", Product: "Optical Drive", Revision: "1.00", Cdrom: true}, "CAFEBABE"},
		{`USBSTOR\Disk&Ven_SanDisk&Prod_Cruzer_Blade&Rev_1.00\4C530001230318117074&0`, "Disk",
			&agentv1.MassStorage{Vendor: "SanDisk", Product: "Cruzer Blade", Revision: "1.00"}, "4C530001230318117074"},
		{`USBSTOR\Disk&Ven_Linux&Prod_File-Stor_Gadget&Rev_0414\7&2b3f4a5c&0&CAFEBABE&1`, "Disk",
			&agentv1.MassStorage{Vendor: "Linux", Product: "File-Stor Gadget", Revision: "0414"}, ""},
		{`SCSI\Disk&Ven_Samsung&Prod_PSSD_T7\7&1a2b3c4d&0&000000`, "Disk",
			&agentv1.MassStorage{Vendor: "Samsung", Product: "PSSD T7"}, ""},
		{`usbstor\cdrom&ven_&prod_&rev_\x`, "cdrom", &agentv1.MassStorage{Cdrom: true}, ""},
	}
	for _, tt := range tests {
		got, err := winParseStorageID(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got.Type != tt.typ || got.Serial != tt.serial || !proto.Equal(got.MS, tt.ms) {
			t.Errorf("%s: got %q %q %s, want %q %q %s", tt.in, got.Type, got.Serial, prototext.Format(got.MS), tt.typ, tt.serial, prototext.Format(tt.ms))
		}
	}
	for _, in := range []string{"", `USBSTOR`, `USB\VID_1234&PID_5678\x`, `USBSTOR\Disk\x`, `USBSTOR\&Ven_x\y`,
		`USBSTOR\Disk&Ven_a\b\c`, `USBSTOR\Ven_a&Prod_b\c`, `USBSTOR\Disk&` + strings.Repeat("Ven_x&", 200)} {
		if st, err := winParseStorageID(in); err == nil {
			t.Errorf("%q: no error, got %+v", in, st)
		}
	}
}

func FuzzWinParseID(f *testing.F) {
	for _, s := range []string{
		`USB\VID_1D6B&PID_0104\CAFEBABE`, `USB\VID_1D6B&PID_0104&MI_02\6&2b3f4a5c&0&0002`,
		`HID\VID_046D&PID_C52B&MI_01&Col02\7&4d5e6f70&0&0001`, `USB\DevClass_00&SubClass_00&Prot_00`,
		`USB\COMPOSITE`, `USB\ROOT_HUB30\4&1&0&0`, `USB\VID_1D6B&PID_0104&REV_0100`, `a\b\c\d`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := winParseID(s)
		if err != nil {
			if id != (winInstanceID{}) && !errors.Is(err, errWinSyntax) {
				t.Fatalf("%q: partial result with error %v", s, err)
			}
			return
		}
		if id.Enumerator == "" || id.DeviceID == "" {
			t.Fatalf("%q: parsed without enumerator or device id: %+v", s, id)
		}
		_ = winSerial(id)
		_, _ = winParseHardwareIDs([]string{s})
		_ = winParseCompatibleIDs([]string{s})
	})
}

func FuzzWinParseStorageID(f *testing.F) {
	for _, s := range []string{
		`USBSTOR\CdRom&Ven_PiKVM&Prod_Optical_Drive&Rev_1.00\CAFEBABE&0`,
		`SCSI\Disk&Ven_Samsung&Prod_PSSD_T7\7&1a2b3c4d&0&000000`, `USBSTOR\Disk&Ven_\&`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := winParseStorageID(s)
		if err == nil && st.MS == nil {
			t.Fatalf("%q: nil MassStorage without error", s)
		}
	})
}

func FuzzWinBuild(f *testing.F) {
	f.Add(`USB\VID_1D6B&PID_0104\CAFEBABE`, `USB\VID_1D6B&PID_0104&MI_00\6&1&0&0`, `HID\VID_1D6B&PID_0104&MI_00\7&1&0&0`, `USB\Class_03&SubClass_01&Prot_01`)
	f.Add(`USB\VID_1D6B&PID_0104\X`, `USBSTOR\CdRom&Ven_A&Prod_B&Rev_C\X&0`, `HID\VID_1D6B&PID_0104\1`, `USB\DevClass_EF&SubClass_02&Prot_01`)
	f.Fuzz(func(t *testing.T, a, b, c, compat string) {
		recs := []winPnPRecord{
			{InstanceID: a, CompatibleIDs: []string{compat}, HardwareIDs: []string{c}},
			{InstanceID: b, Parent: a, CompatibleIDs: []string{compat}},
			{InstanceID: c, Parent: b},
		}
		hids := []winHIDCollection{{InstanceID: c, Parent: b, UsagePage: 1, Usage: 2,
			Values: []winHIDValueCap{{UsagePage: 1, UsageMin: 0x30, UsageMax: 0x31, Absolute: true}}}}
		for _, d := range winBuild(recs, hids) {
			if d.Hid == nil {
				t.Fatal("nil Hid")
			}
		}
	})
}
