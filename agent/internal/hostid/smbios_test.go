package hostid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The builders below write SMBIOS data the way DSP0134 lays it out; the
// fixture files in testdata were written to the same layout, and
// TestSMBIOSFixtureBytes checks that they still match it.

// rawSMBIOS wraps a structure table in a RawSMBIOSData header.
func rawSMBIOS(major, minor byte, table []byte) []byte {
	b := []byte{0, major, minor, 0}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(table)))
	return append(b, table...)
}

// smbiosStruct builds one structure: header, formatted area after the
// header, and the string set.
func smbiosStruct(typ byte, handle uint16, formatted []byte, strs ...string) []byte {
	b := []byte{typ, byte(4 + len(formatted))}
	b = binary.LittleEndian.AppendUint16(b, handle)
	b = append(b, formatted...)
	if len(strs) == 0 {
		return append(b, 0, 0)
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

// type0Formatted is a BIOS Information formatted area (vendor 1,
// version 2, segment E800h, date 3, ROM size, characteristics, extension
// bytes, release numbers, extended ROM size), cut to length-4 bytes.
func type0Formatted(length int) []byte {
	f := []byte{1, 2, 0x00, 0xE8, 3, 0xFF}
	f = binary.LittleEndian.AppendUint64(f, 0x7B09AC80)
	f = append(f, 0x03, 0x0D, 1, 62, 1, 36, 0x20, 0x00)
	return f[:length-4]
}

// type1Formatted is a System Information formatted area (manufacturer 1,
// product 2, version 3, serial 4, uuid, wake-up type, SKU 5, family 6), cut
// to length-4 bytes.
func type1Formatted(length int, uuid [16]byte) []byte {
	f := append([]byte{1, 2, 3, 4}, uuid[:]...)
	f = append(f, 6, 5, 6)
	return f[:length-4]
}

func endOfTable(handle uint16) []byte { return smbiosStruct(127, handle, nil) }

// uuidLE is 5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d in the SMBIOS 2.6+
// encoding (first three fields little-endian).
var uuidLE = [16]byte{0x2e, 0x1d, 0x8c, 0x5a, 0x4f, 0x3b, 0x6b, 0x4a, 0x9c, 0x7d, 0x0e, 0x1f, 0x2a, 0x3b, 0x4c, 0x5d}

func thinkpadTable() []byte {
	var t []byte
	t = append(t, smbiosStruct(0, 0, type0Formatted(0x1A), "LENOVO", "N32ET86W (1.62 )", "05/08/2024")...)
	t = append(t, smbiosStruct(1, 1, type1Formatted(0x1B, uuidLE),
		"LENOVO", "20XW00ABUS", "ThinkPad X1 Carbon Gen 9", "PF2XAMPL",
		"LENOVO_MT_20XW_BU_Think_FM_ThinkPad X1 Carbon Gen 9", "ThinkPad X1 Carbon Gen 9")...)
	// Base board: manufacturer 1, product 2, version 3, serial 4, asset 5,
	// feature flags, location 6, chassis handle 0003h, type 0Ah
	// (motherboard), no contained handles.
	t = append(t, smbiosStruct(2, 2, []byte{1, 2, 3, 4, 5, 0x09, 6, 0x03, 0x00, 0x0A, 0},
		"LENOVO", "20XW00ABUS", "SDK0J40697 WIN", "L1HF1AB00CD", "Not Available", "Not Available")...)
	return append(t, endOfTable(3)...)
}

func whiteboxTable() []byte {
	// The AMI default UUID bytes, which decode (2.6+) to
	// 03000200-0400-0500-0006-000700080009.
	ami := [16]byte{0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9}
	var t []byte
	t = append(t, smbiosStruct(0, 0, type0Formatted(0x18), "American Megatrends Inc.", "1.80", "11/15/2019")...)
	t = append(t, smbiosStruct(1, 1, type1Formatted(0x1B, ami),
		"System manufacturer", "System Product Name", "System Version", "System Serial Number",
		"SKU", "To be filled by O.E.M.")...)
	return append(t, endOfTable(2)...)
}

func latitudeTable() []byte {
	uuid := [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	// SMBIOS 2.3 type 1 is 19h bytes: no SKU or family; version string 0.
	f := append([]byte{1, 2, 0, 3}, uuid[:]...)
	f = append(f, 6)
	var t []byte
	t = append(t, smbiosStruct(0, 0, type0Formatted(0x14), "Dell Computer Corporation", "A10", "03/20/2008")...)
	t = append(t, smbiosStruct(1, 0x0100, f, "Dell Inc.", "Latitude D620", "1ABCD2E")...)
	return append(t, endOfTable(0x7F00)...)
}

func TestSMBIOSFixtureBytes(t *testing.T) {
	for name, want := range map[string][]byte{
		"smbios-3.4-thinkpad.bin": rawSMBIOS(3, 4, thinkpadTable()),
		"smbios-2.8-whitebox.bin": rawSMBIOS(2, 8, whiteboxTable()),
		"smbios-2.3-latitude.bin": rawSMBIOS(2, 3, latitudeTable()),
	} {
		if got := readFixture(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s does not match its DSP0134 layout:\n got % x\nwant % x", name, got, want)
		}
	}
}

func TestParseSMBIOSFixtures(t *testing.T) {
	for _, c := range []struct {
		file string
		want smbiosSystem
	}{
		{"smbios-3.4-thinkpad.bin", smbiosSystem{
			Version: "3.4", Manufacturer: "LENOVO", Product: "20XW00ABUS", Serial: "PF2XAMPL",
			UUID: "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d",
		}},
		// Every value is a placeholder.
		{"smbios-2.8-whitebox.bin", smbiosSystem{Version: "2.8"}},
		// Pre-2.6: the UUID is read as stored.
		{"smbios-2.3-latitude.bin", smbiosSystem{
			Version: "2.3", Manufacturer: "Dell Inc.", Product: "Latitude D620", Serial: "1ABCD2E",
			UUID: "00112233-4455-6677-8899-aabbccddeeff",
		}},
	} {
		got, err := parseSMBIOS(readFixture(t, c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
	}
}

func TestParseSMBIOSShortType1(t *testing.T) {
	full := type1Formatted(0x1B, uuidLE)
	for _, c := range []struct {
		length int
		want   smbiosSystem
	}{
		// SMBIOS 2.0: no UUID.
		{0x08, smbiosSystem{Manufacturer: "Acme", Product: "Box", Serial: "SN1"}},
		// Cut inside the UUID: the UUID is skipped.
		{0x10, smbiosSystem{Manufacturer: "Acme", Product: "Box", Serial: "SN1"}},
		// Serial number field missing.
		{0x07, smbiosSystem{Manufacturer: "Acme", Product: "Box"}},
		{0x05, smbiosSystem{Manufacturer: "Acme"}},
		{0x04, smbiosSystem{}},
		{0x19, smbiosSystem{Manufacturer: "Acme", Product: "Box", Serial: "SN1", UUID: "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d"}},
	} {
		table := smbiosStruct(1, 1, full[:c.length-4], "Acme", "Box", "v1", "SN1")
		got, err := parseSMBIOS(rawSMBIOS(3, 0, table))
		if err != nil {
			t.Errorf("length %#x: %v", c.length, err)
			continue
		}
		c.want.Version = "3.0"
		if got != c.want {
			t.Errorf("length %#x:\n got %+v\nwant %+v", c.length, got, c.want)
		}
	}
}

func TestParseSMBIOSStrings(t *testing.T) {
	// String numbers past the set, 0, a set with no strings, and bytes that
	// are not UTF-8.
	f := append([]byte{0, 9, 0, 1}, make([]byte, 16)...)
	got, err := parseSMBIOS(rawSMBIOS(3, 2, smbiosStruct(1, 1, f, "SN\xff\xfe")))
	if err != nil {
		t.Fatal(err)
	}
	if want := (smbiosSystem{Version: "3.2", Serial: "SN\uFFFD"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, err = parseSMBIOS(rawSMBIOS(3, 2, smbiosStruct(1, 1, []byte{1, 2, 3, 4})))
	if err != nil || got != (smbiosSystem{Version: "3.2"}) {
		t.Errorf("no strings: got %+v, %v", got, err)
	}
}

func TestParseSMBIOSUUIDEncoding(t *testing.T) {
	for _, c := range []struct {
		major, minor byte
		want         string
	}{
		{2, 5, "2e1d8c5a-4f3b-6b4a-9c7d-0e1f2a3b4c5d"},
		{2, 6, "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d"},
		{3, 0, "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d"},
		{0, 0, "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d"},
	} {
		if got := smbiosUUID(uuidLE, c.major, c.minor); got != c.want {
			t.Errorf("smbiosUUID(v%d.%d) = %s, want %s", c.major, c.minor, got, c.want)
		}
	}
	var ones [16]byte
	for i := range ones {
		ones[i] = 0xFF
	}
	if got := smbiosUUID(ones, 3, 0); got != "" {
		t.Errorf("all-FF UUID = %q, want empty", got)
	}
	if got := smbiosUUID([16]byte{}, 3, 0); got != "" {
		t.Errorf("all-zero UUID = %q, want empty", got)
	}
}

func TestParseSMBIOSMalformed(t *testing.T) {
	good := rawSMBIOS(3, 4, thinkpadTable())
	type0Only := smbiosStruct(0, 0, type0Formatted(0x1A), "LENOVO")
	for _, c := range []struct {
		name      string
		in        []byte
		noSysInfo bool
	}{
		{"empty", nil, false},
		{"header only", good[:7], false},
		{"no structures", rawSMBIOS(3, 4, nil), true},
		{"end of table first", rawSMBIOS(3, 4, append(endOfTable(0), thinkpadTable()...)), true},
		{"no type 1", rawSMBIOS(3, 4, append(type0Only, endOfTable(1)...)), true},
		{"length below header", rawSMBIOS(3, 4, []byte{1, 3, 0, 0, 0, 0}), false},
		{"length past end", rawSMBIOS(3, 4, []byte{1, 0x1B, 0, 0, 1, 2, 0, 0}), false},
		{"unterminated strings", rawSMBIOS(3, 4, []byte{1, 8, 1, 0, 1, 2, 3, 4, 'a', 'b', 0}), false},
		{"table cut by Length", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[4:8], 40) // inside the type 1 strings
			return b
		}(), false},
		{"trailing partial header", rawSMBIOS(3, 4, append(type0Only, 1, 0x1B)), true},
	} {
		_, err := parseSMBIOS(c.in)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := errors.Is(err, errNoSystemInfo); got != c.noSysInfo {
			t.Errorf("%s: error %v, errNoSystemInfo = %v, want %v", c.name, err, got, c.noSysInfo)
		}
	}

	// A Length larger than the buffer is clamped to the buffer.
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint32(b[4:8], 1<<31)
	if got, err := parseSMBIOS(b); err != nil || got.Serial != "PF2XAMPL" {
		t.Errorf("oversized Length: %+v, %v", got, err)
	}
}
