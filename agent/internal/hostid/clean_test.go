package hostid

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Dell Inc.\n", "Dell Inc."},
		{"\x00\x00MacBookPro18,3\x00", "MacBookPro18,3"},
		{"a\xffb", "a\uFFFDb"},
		{"\t\r\n", ""},
		{strings.Repeat("x", 300), strings.Repeat("x", 256)},
		// 255 ASCII bytes then a 3-byte rune: the rune would cross the cap.
		{strings.Repeat("x", 255) + "€€", strings.Repeat("x", 255)},
		{strings.Repeat("é", 200), strings.Repeat("é", 128)},
	} {
		got := cleanString(c.in)
		if got != c.want {
			t.Errorf("cleanString(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > maxFieldLen || !utf8.ValidString(got) {
			t.Errorf("cleanString(%q) = %q: too long or invalid UTF-8", c.in, got)
		}
	}
}

func TestDMIString(t *testing.T) {
	for in, want := range map[string]string{
		"To Be Filled By O.E.M.\n": "",
		"To be filled by O.E.M.":   "",
		"Default string":           "",
		"System Serial Number":     "",
		"System manufacturer":      "",
		"Not Specified":            "",
		"None":                     "",
		"0":                        "",
		"0000000000":               "",
		"  ":                       "",
		"PF2XAMPL":                 "PF2XAMPL",
		"0A1":                      "0A1",
		"Dell Inc.":                "Dell Inc.",
	} {
		if got := dmiString(in); got != want {
			t.Errorf("dmiString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDMIUUID(t *testing.T) {
	for in, want := range map[string]string{
		"4C4C4544-0058-4B10-8032-B7C04F4C4D33\n": "4c4c4544-0058-4b10-8032-b7c04f4c4d33",
		"4c4c454400584b108032b7c04f4c4d33":       "4c4c4544-0058-4b10-8032-b7c04f4c4d33",
		"{4C4C4544-0058-4B10-8032-B7C04F4C4D33}": "4c4c4544-0058-4b10-8032-b7c04f4c4d33",
		"00000000-0000-0000-0000-000000000000":   "",
		"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF":   "",
		"03000200-0400-0500-0006-000700080009":   "",
		"03000200040005000006000700080009":       "",
		"Not Settable":                           "Not Settable",
		"Not Specified":                          "",
		"4C4C4544-0058-4B10-8032_B7C04F4C4D33":   "4C4C4544-0058-4B10-8032_B7C04F4C4D33",
		"4C4C4544-0058-4B10-8032-B7C04F4C4D3G":   "4C4C4544-0058-4B10-8032-B7C04F4C4D3G",
		"":                                       "",
	} {
		if got := dmiUUID(in); got != want {
			t.Errorf("dmiUUID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMachineID(t *testing.T) {
	for in, want := range map[string]string{
		"6f1c0a7e9b2d4e3f8a5b1c2d3e4f5a6b\n": "6f1c0a7e9b2d4e3f8a5b1c2d3e4f5a6b",
		"6F1C0A7E9B2D4E3F8A5B1C2D3E4F5A6B":   "6f1c0a7e9b2d4e3f8a5b1c2d3e4f5a6b",
		"uninitialized\n":                    "",
		"00000000000000000000000000000000":   "",
		"6f1c0a7e9b2d4e3f8a5b1c2d3e4f5a6":    "",
		"6f1c0a7e-9b2d-4e3f-8a5b-1c2d3e4f":   "",
		"":                                   "",
	} {
		if got := parseMachineID([]byte(in)); got != want {
			t.Errorf("parseMachineID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHostname(t *testing.T) {
	for in, want := range map[string]string{
		"deb-laptop-042\n":          "deb-laptop-042",
		"# comment\n\n  host \nx\n": "host",
		"# only a comment\n":        "",
		"":                          "",
	} {
		if got := parseHostname([]byte(in)); got != want {
			t.Errorf("parseHostname(%q) = %q, want %q", in, got, want)
		}
	}
}
