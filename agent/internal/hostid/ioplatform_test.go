package hostid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseIOPlatformFixture(t *testing.T) {
	got, err := parseIOPlatform(readFixture(t, "ioreg-IOPlatformExpertDevice-m1pro.plist"))
	if err != nil {
		t.Fatal(err)
	}
	want := ioPlatform{
		UUID:         "8e5d2c1a-3f4b-5a6c-9d7e-0f1a2b3c4d5e",
		Serial:       "FVFZZ0ZZQ05Q",
		Model:        "MacBookPro18,3",
		Manufacturer: "Apple Inc.",
	}
	if got != want {
		t.Errorf("parseIOPlatform = %+v, want %+v", got, want)
	}
}

const plistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

func TestParseIOPlatform(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       ioPlatform
		wantErr    bool
	}{
		{
			// ioreg -r prints an array of matching entries; values as strings.
			name: "array of entries, string values",
			body: `<array><dict>
				<key>IOPlatformUUID</key><string>00000000-0000-0000-0000-000000000000</string>
				<key>IOPlatformSerialNumber</key><string> C02ZZ0ZZMD6T </string>
				<key>model</key><string>iMac20,1</string>
				<key>manufacturer</key><data>QXBwbGUgSW5jLgA=</data>
			</dict></array>`,
			want: ioPlatform{Serial: "C02ZZ0ZZMD6T", Model: "iMac20,1", Manufacturer: "Apple Inc."},
		},
		{
			name: "found by class, nothing else",
			body: `<dict><key>IORegistryEntryChildren</key><array><dict>
				<key>IOObjectClass</key><string>IOPlatformExpertDevice</string>
				<key>model</key><integer>3</integer>
			</dict></array></dict>`,
			want: ioPlatform{},
		},
		{
			name:    "no platform device",
			body:    `<dict><key>IORegistryEntryName</key><string>Root</string></dict>`,
			wantErr: true,
		},
		{name: "not a plist", body: "", wantErr: true},
	} {
		got, err := parseIOPlatform([]byte(plistHead + c.body + "</plist>\n"))
		if (err != nil) != c.wantErr {
			t.Errorf("%s: error = %v, wantErr %v", c.name, err, c.wantErr)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, in := range []string{"", "garbage", "bplist00\x00\x01", `{ IOPlatformUUID = "x"; }`} {
		if _, err := parseIOPlatform([]byte(in)); err == nil {
			t.Errorf("parseIOPlatform(%q) succeeded", in)
		}
	}
}

func TestParseSystemVersion(t *testing.T) {
	got, err := parseSystemVersion(readFixture(t, "SystemVersion-15.1.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (macOSVersion{Name: "macOS", Version: "15.1", Build: "24B83"}); got != want {
		t.Errorf("parseSystemVersion = %+v, want %+v", got, want)
	}
	for _, body := range []string{
		`<array><string>macOS</string></array>`,
		`<dict><key>ProductName</key><integer>15</integer></dict>`,
		`<string>macOS</string>`,
	} {
		if v, err := parseSystemVersion([]byte(plistHead + body + "</plist>")); err == nil {
			t.Errorf("parseSystemVersion(%s) = %+v, want an error", body, v)
		}
	}
	long := plistHead + `<dict><key>ProductName</key><string>` + strings.Repeat("m", 1000) + `</string></dict></plist>`
	if v, err := parseSystemVersion([]byte(long)); err != nil || len(v.Name) != maxFieldLen {
		t.Errorf("long ProductName: %d bytes, %v", len(v.Name), err)
	}
}
