package hostid

import (
	"bytes"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFieldLen caps every string the package reports, in bytes. Host names,
// DMI strings and plist values are controlled by whoever owns the machine,
// so they are bounded before they leave the agent.
const maxFieldLen = 256

// cleanString makes s fit for the wire: valid UTF-8, no leading or trailing
// white space or NULs, at most maxFieldLen bytes (cut on a rune boundary).
func cleanString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.TrimFunc(s, isSpaceOrNUL)
	if len(s) > maxFieldLen {
		i := maxFieldLen
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = strings.TrimFunc(s[:i], isSpaceOrNUL)
	}
	return s
}

func isSpaceOrNUL(r rune) bool { return r == 0 || unicode.IsSpace(r) }

// cString returns b up to its first NUL, cleaned. Firmware and IOKit store
// strings NUL-terminated; anything after the first NUL is padding.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return cleanString(string(b))
}

// isPlaceholder reports whether a (cleaned) firmware string is one of the
// values board vendors leave in unprogrammed SMBIOS fields. Such values are
// shared by thousands of machines and identify nothing. The list is the
// set of defaults commonly seen in dmidecode output of white-box boards
// (AMI Aptio "To Be Filled By O.E.M." and "Default string", ASUS "System
// Serial Number"/"System Product Name"/"System manufacturer", and the
// SMBIOS (DMTF DSP0134) "Not Specified" wording).
func isPlaceholder(s string) bool {
	if s == "" {
		return true
	}
	switch strings.ToLower(s) {
	case "to be filled by o.e.m.", "to be filled by oem",
		"default string", "default",
		"system serial number", "system product name", "system manufacturer",
		"system version", "base board serial number", "chassis serial number",
		"serial number", "not specified", "not applicable", "not available",
		"n/a", "none", "unknown", "invalid", "oem", "o.e.m.",
		"123456789", "0123456789":
		return true
	}
	// "0", "00000000", ...: an unset numeric serial.
	return strings.Trim(s, "0") == ""
}

// dmiString cleans a firmware string and drops placeholder values.
func dmiString(s string) string {
	s = cleanString(s)
	if isPlaceholder(s) {
		return ""
	}
	return s
}

// dmiUUID cleans a firmware UUID: canonical lower-case form when it parses
// as a UUID, empty when it is a placeholder, the cleaned text otherwise.
func dmiUUID(s string) string {
	s = cleanString(s)
	if u, ok := canonicalUUID(s); ok {
		if isPlaceholderUUID(u) {
			return ""
		}
		return u
	}
	if isPlaceholder(s) {
		return ""
	}
	return s
}

// isPlaceholderUUID reports whether a canonical UUID identifies nothing:
// all zeros ("not present" in SMBIOS 7.2.1), all ones ("not set"), or the
// AMI Aptio default 03000200-0400-0500-0006-000700080009 that many
// white-box boards ship with.
func isPlaceholderUUID(u string) bool {
	switch u {
	case "00000000-0000-0000-0000-000000000000",
		"ffffffff-ffff-ffff-ffff-ffffffffffff",
		"03000200-0400-0500-0006-000700080009":
		return true
	}
	return false
}

// canonicalUUID parses s as 32 hex digits, optionally in braces and with
// hyphens in the 8-4-4-4-12 positions, and returns the lower-case 8-4-4-4-12
// form.
func canonicalUUID(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	var digits string
	switch len(s) {
	case 32:
		digits = s
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		digits = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	default:
		return "", false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(digits)); err != nil {
		return "", false
	}
	return formatUUID(b), true
}

// formatUUID renders 16 bytes, in the order they are printed, as a
// lower-case 8-4-4-4-12 UUID.
func formatUUID(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// parseMachineID returns the 32-hex-digit id of a machine-id(5) file in
// lower case, or "" when the file holds anything else (empty, the
// "uninitialized" marker of first boot, all zeros).
func parseMachineID(b []byte) string {
	s := strings.ToLower(cleanString(string(b)))
	if len(s) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	if strings.Trim(s, "0") == "" {
		return ""
	}
	return s
}

// parseHostname returns the host name in an /etc/hostname file: the first
// line that is neither empty nor a comment (hostname(5)).
func parseHostname(b []byte) string {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimFunc(line, isSpaceOrNUL)
		if line == "" || line[0] == '#' {
			continue
		}
		return cleanString(line)
	}
	return ""
}
