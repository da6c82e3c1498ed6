package display

import (
	"encoding/base64"
	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func macRead(tb testing.TB, dir, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, name))
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

func macAssertDisplays(t *testing.T, got, want *agentv1.Displays) {
	t.Helper()
	if !proto.Equal(got, want) {
		o := prototext.MarshalOptions{Multiline: true}
		t.Errorf("got:\n%s\nwant:\n%s", o.Format(got), o.Format(want))
	}
}

// macFromEDIDFixture is what FromEDID makes of a testdata/edid file, with
// the fields the macOS reader sets.
func macFromEDIDFixture(t *testing.T, connector, file string, internal, active bool) *agentv1.Display {
	d := FromEDID(connector, macRead(t, "edid", file))
	d.Internal, d.Active = internal, active
	return d
}

func TestMacParseDisplaysFixtures(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		prefix string
		lid    string // clamshell fixture, "" for none
		want   func(t *testing.T) *agentv1.Displays
	}{
		{"glpi430", "appleclcd2_glpi430_lg24mb35_and_minimal.plist", "AppleCLCD2", "", func(*testing.T) *agentv1.Displays {
			return &agentv1.Displays{Displays: []*agentv1.Display{
				{
					Connector: "AppleCLCD2-0", ManufacturerId: "GSM", ProductCode: 23112,
					SerialNumber: 123456, SerialString: "SERIAL000002", MonitorName: "24MB35",
					ManufactureWeek: 6, ManufactureYear: 2016, WidthMm: 510, HeightMm: 290, Active: true,
				},
				// ManufacturerID is an OUI here: the PNP id comes from
				// LegacyManufacturerID 1552 = 0x0610 = APP; the ProductID
				// does not fit 16 bits and is dropped.
				{Connector: "AppleCLCD2-1", ManufacturerId: "APP", Active: true},
			}}
		}},
		{"hammerspoon3163", "appleclcd2_hammerspoon3163_benq_pd2720u.plist", "AppleCLCD2", "clamshell_closed.plist", func(*testing.T) *agentv1.Displays {
			return &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_CLOSED, Displays: []*agentv1.Display{{
				Connector: "AppleCLCD2-0", ManufacturerId: "BNQ", ProductCode: 32816,
				SerialNumber: 4660, SerialString: "SERIAL00001", MonitorName: "BenQ PD2720U",
				ManufactureWeek: 43, ManufactureYear: 2020, WidthMm: 600, HeightMm: 340, Active: true,
			}}}
		}},
		{"displayplacer96", "appleclcd2_displayplacer96_dell_u2720qm.plist", "AppleCLCD2", "clamshell_open.plist", func(*testing.T) *agentv1.Displays {
			return &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN, Displays: []*agentv1.Display{{
				Connector: "AppleCLCD2-0", ManufacturerId: "DEL", ProductCode: 16830,
				SerialNumber: 1111111111, SerialString: "SERIAL3", MonitorName: "DELL U2720QM",
				ManufactureWeek: 28, ManufactureYear: 2021, WidthMm: 600, HeightMm: 340, Active: true,
			}}}
		}},
		// The empty pipe (index 1) is skipped but keeps its index.
		{"internal+pikvm lid closed", "appleclcd2_internal_pikvm_constructed.plist", "AppleCLCD2", "clamshell_closed.plist", func(*testing.T) *agentv1.Displays {
			return &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_CLOSED, Displays: []*agentv1.Display{
				{
					Connector: "AppleCLCD2-0", ManufacturerId: "APP", ProductCode: 41750,
					MonitorName: "Color LCD", WidthMm: 350, HeightMm: 220, Internal: true,
				},
				{
					Connector: "AppleCLCD2-2", ManufacturerId: "LNX", ProductCode: 30577,
					SerialString: "CAFEBABE", MonitorName: "PiKVM V3", ManufactureWeek: 1,
					ManufactureYear: 2021, Active: true,
				},
			}}
		}},
		{"intel", "iodisplayconnect_intel_constructed.plist", "IODisplayConnect", "clamshell_open.plist", func(t *testing.T) *agentv1.Displays {
			return &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN, Displays: []*agentv1.Display{
				macFromEDIDFixture(t, "IODisplayConnect-0", "laptop_boe_edp.bin", true, true),
				macFromEDIDFixture(t, "IODisplayConnect-1", "pikvm_v3.bin", false, true),
				// No EDID: DisplayVendorID 1552 = APP.
				{Connector: "IODisplayConnect-2", ManufacturerId: "APP", ProductCode: 40978, SerialNumber: 7, Active: true},
			}}
		}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		if tc.lid != "" {
			seen[tc.lid] = true
		}
		t.Run(tc.name, func(t *testing.T) {
			ds, err := macParseFramebuffers(macRead(t, "mac", tc.file), tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			lid := agentv1.LidState_LID_STATE_UNSPECIFIED
			if tc.lid != "" {
				if lid, err = macParseClamshell(macRead(t, "mac", tc.lid)); err != nil {
					t.Fatal(err)
				}
			}
			macAssertDisplays(t, macAssemble(ds, lid), tc.want(t))
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

// A raw EDID in an AppleCLCD2 subtree wins over ProductAttributes.
func TestMacRawEDIDPreferred(t *testing.T) {
	raw := macRead(t, "edid", "pikvm_v3.bin")
	in := []byte(macPlistHead + `<array><dict>
	<key>external</key><true/>
	<key>DisplayAttributes</key><dict><key>ProductAttributes</key><dict>
		<key>ManufacturerID</key><string>DEL</string></dict></dict>
	<key>IORegistryEntryChildren</key><array><dict>
		<key>EDID</key><data>` + macBase64(raw) + `</data></dict></array>
</dict></array></plist>`)
	ds, err := macParseFramebuffers(in, "AppleCLCD2")
	if err != nil {
		t.Fatal(err)
	}
	want := &agentv1.Displays{Displays: []*agentv1.Display{macFromEDIDFixture(t, "AppleCLCD2-0", "pikvm_v3.bin", false, true)}}
	macAssertDisplays(t, macAssemble(ds, agentv1.LidState_LID_STATE_UNSPECIFIED), want)
}

func TestMacParseClamshell(t *testing.T) {
	tests := []struct {
		in   string
		want agentv1.LidState
	}{
		{"", agentv1.LidState_LID_STATE_UNSPECIFIED},
		{macPlistHead + "<array/></plist>", agentv1.LidState_LID_STATE_UNSPECIFIED},
		{macPlistHead + "<array><dict><key>AppleClamshellState</key><string>Yes</string></dict></array></plist>", agentv1.LidState_LID_STATE_UNSPECIFIED},
		{macPlistHead + "<array><dict><key>AppleClamshellState</key><true/></dict></array></plist>", agentv1.LidState_LID_STATE_CLOSED},
		{macPlistHead + "<array><dict><key>AppleClamshellState</key><false/></dict></array></plist>", agentv1.LidState_LID_STATE_OPEN},
	}
	for _, tc := range tests {
		got, err := macParseClamshell([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := macParseClamshell([]byte("\x00garbage")); err == nil {
		t.Error("garbage: no error")
	}
}

func TestMacParseFramebuffersErrors(t *testing.T) {
	for _, in := range []string{
		"\x00\x01garbage\xff",
		"<plist><array><dict>",
		macPlistHead + "<integer>3</integer></plist>",
	} {
		if _, err := macParseFramebuffers([]byte(in), "X"); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if _, err := macParseFramebuffers(make([]byte, ioreg.MaxSize+1), "X"); err == nil {
		t.Error("oversized: no error")
	}
	ds, err := macParseFramebuffers(nil, "X")
	if err != nil || len(ds) != 0 {
		t.Errorf("empty: %v, %v", ds, err)
	}
}

// Wrong types are skipped: nothing out of range reaches the message.
// Top-level elements that are not dictionaries are dropped before
// indexing.
func TestMacParseFramebuffersWrongTypes(t *testing.T) {
	in := macPlistHead + `<array>
<string>junk</string>
<dict>
	<key>external</key><string>No</string>
	<key>DisplayAttributes</key><dict>
		<key>MaxHorizontalImageSize</key><integer>-4</integer>
		<key>MaxVerticalImageSize</key><integer>30</integer>
		<key>ProductAttributes</key><dict>
			<key>ManufacturerID</key><string>dell</string>
			<key>LegacyManufacturerID</key><integer>0</integer>
			<key>ProductID</key><integer>-1</integer>
			<key>SerialNumber</key><integer>4294967296</integer>
			<key>ProductName</key><integer>5</integer>
			<key>WeekOfManufacture</key><integer>300</integer>
			<key>YearOfManufacture</key><real>2020</real>
			<key>AlphanumericSerialNumber</key><string>ABC</string>
		</dict>
	</dict>
	<key>IORegistryEntryChildren</key><string>x</string>
</dict>
<dict><key>DisplayAttributes</key><string>none</string></dict>
<dict><key>IODisplayEDID</key><data>AAECAw==</data></dict>
</array></plist>`
	ds, err := macParseFramebuffers([]byte(in), "X")
	if err != nil {
		t.Fatal(err)
	}
	want := &agentv1.Displays{Displays: []*agentv1.Display{
		// A whole-number <real> is read as the number (ioreg.Node.Uint).
		{Connector: "X-0", SerialString: "ABC", ManufactureYear: 2020, Active: true},
		// A raw EDID that does not decode is kept raw.
		{Connector: "X-2", Edid: []byte{0, 1, 2, 3}, Active: true},
	}}
	macAssertDisplays(t, macAssemble(ds, agentv1.LidState_LID_STATE_UNSPECIFIED), want)
}

func FuzzMacParseDisplays(f *testing.F) {
	for _, name := range macFixtureNames(f) {
		f.Add(macRead(f, "mac", name))
	}
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := macParseFramebuffers(data, "X")
		if err != nil && ds != nil {
			t.Fatal("result with error")
		}
		for _, d := range ds {
			if d.ProductCode > 0xffff || d.ManufactureWeek > 0xff || len(d.Edid) > MaxSize {
				t.Fatalf("out of range: %v", d)
			}
		}
		lid, err := macParseClamshell(data)
		if err != nil && lid != agentv1.LidState_LID_STATE_UNSPECIFIED {
			t.Fatal("lid with error")
		}
		macAssemble(ds, lid)
	})
}

func macBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
