package hostid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// smbiosSystem is the System Information (type 1) structure of an SMBIOS
// table, cleaned: placeholder strings and UUIDs are empty.
type smbiosSystem struct {
	Version      string // SMBIOS version of the table, "major.minor"
	Manufacturer string
	Product      string
	Serial       string
	UUID         string // canonical lower case
}

// SMBIOS layout, from DMTF DSP0134 (SMBIOS Reference Specification 3.x)
// and the RawSMBIOSData structure documented with Windows'
// GetSystemFirmwareTable:
//
//	RawSMBIOSData: Used20CallingMethod u8, SMBIOSMajorVersion u8,
//	SMBIOSMinorVersion u8, DmiRevision u8, Length u32 (LE),
//	SMBIOSTableData[Length]
//
//	structure (6.1.2): Type u8, Length u8 (of the formatted area, header
//	included), Handle u16, formatted area, then the string set (6.1.3):
//	NUL-terminated strings, the set ending with an extra NUL ("\0\0" when
//	there are no strings). Strings are numbered from 1; 0 means none.
//
//	type 1, System Information (7.2): 04h Manufacturer (string),
//	05h Product Name (string), 06h Version (string), 07h Serial Number
//	(string), 08h UUID (16 bytes, SMBIOS 2.1+), 18h Wake-up Type, 19h SKU
//	Number, 1Ah Family. Length is 08h (2.0), 19h (2.1-2.3) or 1Bh (2.4+).
//
//	type 127: End-of-Table.
const (
	rawSMBIOSHeaderLen  = 8
	smbiosHeaderLen     = 4
	smbiosTypeSystem    = 1
	smbiosTypeEndTable  = 127
	type1OffManufacture = 0x04
	type1OffProduct     = 0x05
	type1OffSerial      = 0x07
	type1OffUUID        = 0x08
	uuidLen             = 16
)

// errNoSystemInfo is returned when the table has no type 1 structure.
var errNoSystemInfo = errors.New("smbios: no system information (type 1) structure")

// parseSMBIOS decodes a Windows RawSMBIOSData buffer (the RSMB firmware
// table) and returns its first System Information structure. The bytes are
// untrusted: every offset is bounds-checked, and a type 1 structure shorter
// than the current specification yields only the fields it holds.
func parseSMBIOS(b []byte) (smbiosSystem, error) {
	if len(b) < rawSMBIOSHeaderLen {
		return smbiosSystem{}, fmt.Errorf("smbios: %d bytes, shorter than the RawSMBIOSData header", len(b))
	}
	major, minor := b[1], b[2]
	n := binary.LittleEndian.Uint32(b[4:8])
	table := b[rawSMBIOSHeaderLen:]
	if uint64(n) < uint64(len(table)) {
		table = table[:n]
	}
	return parseSMBIOSTable(table, major, minor)
}

// parseSMBIOSTable walks the structure table for the first type 1
// structure. major.minor selects the UUID encoding.
func parseSMBIOSTable(t []byte, major, minor byte) (smbiosSystem, error) {
	off := 0
	for off+smbiosHeaderLen <= len(t) {
		typ, length := t[off], int(t[off+1])
		if length < smbiosHeaderLen || length > len(t)-off {
			return smbiosSystem{}, fmt.Errorf("smbios: structure type %d at offset %d: bad length %d", typ, off, length)
		}
		formatted := t[off : off+length]
		strStart := off + length
		end := bytes.Index(t[strStart:], []byte{0, 0})
		if end < 0 {
			return smbiosSystem{}, fmt.Errorf("smbios: structure type %d at offset %d: unterminated string set", typ, off)
		}
		strs := t[strStart : strStart+end]
		switch typ {
		case smbiosTypeSystem:
			return decodeSystemInfo(formatted, strs, major, minor), nil
		case smbiosTypeEndTable:
			return smbiosSystem{}, errNoSystemInfo
		}
		off = strStart + end + 2
	}
	return smbiosSystem{}, errNoSystemInfo
}

func decodeSystemInfo(f, strs []byte, major, minor byte) smbiosSystem {
	sys := smbiosSystem{Version: fmt.Sprintf("%d.%d", major, minor)}
	str := func(off int) string {
		if off >= len(f) {
			return ""
		}
		return dmiString(smbiosString(strs, f[off]))
	}
	sys.Manufacturer = str(type1OffManufacture)
	sys.Product = str(type1OffProduct)
	sys.Serial = str(type1OffSerial)
	if len(f) >= type1OffUUID+uuidLen {
		sys.UUID = smbiosUUID([16]byte(f[type1OffUUID:type1OffUUID+uuidLen]), major, minor)
	}
	return sys
}

// smbiosString returns string number idx (1-based) of a string set, or ""
// for 0 or a number past the end of the set.
func smbiosString(set []byte, idx byte) string {
	if idx == 0 {
		return ""
	}
	for i := 1; i <= int(idx) && len(set) > 0; i++ {
		s, rest, _ := bytes.Cut(set, []byte{0})
		if i == int(idx) {
			return string(s)
		}
		set = rest
	}
	return ""
}

// smbiosUUID renders the type 1 UUID field. From SMBIOS 2.6 on (7.2.1) the
// first three fields (time_low, time_mid, time_hi_and_version) are stored
// little-endian; earlier tables are read as stored, as dmidecode does. A
// table that reports version 0.0 is taken to be a current one. All-zero
// ("not present") and all-0xFF ("not set") values are returned empty.
func smbiosUUID(raw [16]byte, major, minor byte) string {
	if major == 0 || major > 2 || (major == 2 && minor >= 6) {
		raw[0], raw[1], raw[2], raw[3] = raw[3], raw[2], raw[1], raw[0]
		raw[4], raw[5] = raw[5], raw[4]
		raw[6], raw[7] = raw[7], raw[6]
	}
	return dmiUUID(formatUUID(raw))
}
