package usb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

type summary struct{ kbd, rel, abs, cc, dig bool }

func flat(s *agentv1.HidSummary) summary {
	return summary{s.GetKeyboard(), s.GetRelativeMouse(), s.GetAbsolutePointer(), s.GetConsumerControl(), s.GetDigitizer()}
}

func TestFixtureSummaries(t *testing.T) {
	tests := []struct {
		file string
		want summary
		apps []Application // compared on the exported fields
	}{
		{"boot_keyboard.hex", summary{kbd: true}, []Application{
			{Page: 1, Usage: UsageKeyboard, Keys: 8 + 102, KeySlots: 6},
		}},
		{"mouse_3button_wheel.hex", summary{rel: true}, []Application{
			{Page: 1, Usage: UsageMouse, RelativeXY: true, Buttons: 3},
		}},
		{"kvm_composite_kbd_absmouse.hex", summary{kbd: true, abs: true}, []Application{
			{Page: 1, Usage: UsageKeyboard, ReportIDs: []uint8{1}, Keys: 8 + 102, KeySlots: 6},
			{Page: 1, Usage: UsageMouse, ReportIDs: []uint8{2}, AbsoluteXY: true, XYLogicalMax: 32767, Buttons: 5},
		}},
		{"touchscreen.hex", summary{dig: true}, []Application{
			{Page: PageDigitizer, Usage: UsageTouchScreen, ReportIDs: []uint8{1}, AbsoluteXY: true, XYLogicalMax: 4095},
		}},
		{"consumer_control.hex", summary{cc: true}, []Application{
			{Page: PageConsumer, Usage: UsageConsumerControl, ReportIDs: []uint8{3}},
		}},
		{"tinypilot_like_abs_mouse.hex", summary{abs: true}, []Application{
			{Page: 1, Usage: UsageMouse, AbsoluteXY: true, XYLogicalMax: 32767, Buttons: 8},
		}},
		{"pikvm_like_abs_mouse.hex", summary{abs: true}, []Application{
			{Page: 1, Usage: UsageMouse, AbsoluteXY: true, XYLogicalMax: 32767, Buttons: 8},
		}},
		{"nanokvm_like_abs_touchpad.hex", summary{abs: true}, []Application{
			{Page: 1, Usage: UsageMouse, AbsoluteXY: true, XYLogicalMax: 32767, Buttons: 3},
		}},
		{"gamepad.hex", summary{}, []Application{
			{Page: 1, Usage: UsageGamepad, AbsoluteXY: true, XYLogicalMax: 255, Buttons: 10},
		}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			rd, err := ParseReportDescriptor(readHexFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(rd.Summary()); got != tc.want {
				t.Errorf("summary %+v, want %+v", got, tc.want)
			}
			if len(rd.Applications) != len(tc.apps) {
				t.Fatalf("applications %+v, want %+v", rd.Applications, tc.apps)
			}
			for i, want := range tc.apps {
				got := rd.Applications[i]
				got.absX, got.absY, got.relX, got.relY = false, false, false, false
				if !slices.Equal(got.ReportIDs, want.ReportIDs) {
					t.Errorf("app %d report ids %v, want %v", i, got.ReportIDs, want.ReportIDs)
				}
				got.ReportIDs, want.ReportIDs = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Errorf("app %d:\n got %+v\nwant %+v", i, got, want)
				}
			}
		})
	}
	for _, name := range hexFixtureNames(t) {
		if !seen[name] {
			t.Errorf("fixture %s has no table entry", name)
		}
	}
}

// A gadget-based KVM exposes keyboard and mouse on separate interfaces;
// Summarize sums them.
func TestSummarizeInterfaces(t *testing.T) {
	var rds []*ReportDescriptor
	for _, f := range []string{"boot_keyboard.hex", "tinypilot_like_abs_mouse.hex", "mouse_3button_wheel.hex", "consumer_control.hex"} {
		rd, err := ParseReportDescriptor(readHexFixture(t, f))
		if err != nil {
			t.Fatal(err)
		}
		rds = append(rds, rd)
	}
	rds = append(rds, nil)
	if got, want := flat(Summarize(rds...)), (summary{true, true, true, true, false}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := flat(Summarize()); got != (summary{}) {
		t.Errorf("empty: %+v", got)
	}
	var nilRD *ReportDescriptor
	if got := flat(nilRD.Summary()); got != (summary{}) {
		t.Errorf("nil: %+v", got)
	}
}

func TestParseItems(t *testing.T) {
	// Generic Desktop Mouse application around body, Report Count 2.
	mouse := func(body ...byte) []byte {
		b := []byte{0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x95, 0x02}
		b = append(b, body...)
		return append(b, 0xc0)
	}
	xy := []byte{0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x75, 0x10, 0x95, 0x02}
	tests := []struct {
		name string
		b    []byte
		want summary
		err  error
	}{
		{"empty", nil, summary{}, nil},
		{"absolute xy", mouse(append(xy, 0x81, 0x02)...), summary{abs: true}, nil},
		{"relative xy", mouse(append(xy, 0x81, 0x06)...), summary{rel: true}, nil},
		{"constant xy is padding", mouse(append(xy, 0x81, 0x03)...), summary{}, nil},
		{"x only is not a pointer", mouse(0x05, 0x01, 0x09, 0x30, 0x95, 0x02, 0x81, 0x02), summary{}, nil},
		{"report count 1 declares only x", mouse(0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x95, 0x01, 0x81, 0x02), summary{}, nil},
		{"report count 0 declares nothing", mouse(0x95, 0x00, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x81, 0x02), summary{}, nil},
		{"output xy is not input", mouse(append(xy, 0x91, 0x02)...), summary{}, nil},
		{"4-byte input flags", mouse(append(xy, 0x83, 0x06, 0, 0, 0)...), summary{rel: true}, nil},
		{"extended usages on another page", mouse(
			0x05, 0x09, // Usage Page (Button)
			0x0b, 0x30, 0x00, 0x01, 0x00, // Usage (Generic Desktop X, extended)
			0x0b, 0x31, 0x00, 0x01, 0x00, // Usage (Generic Desktop Y, extended)
			0x81, 0x02), summary{abs: true}, nil},
		{"extended usage range", mouse(
			0x05, 0x09,
			0x1b, 0x30, 0x00, 0x01, 0x00, // Usage Minimum (GD X, extended)
			0x2b, 0x31, 0x00, 0x01, 0x00, // Usage Maximum (GD Y, extended)
			0x81, 0x06), summary{rel: true}, nil},
		{"usage page after usage applies at main item", mouse(
			0x09, 0x30, 0x09, 0x31, 0x05, 0x01, 0x81, 0x02), summary{abs: true}, nil},
		{"locals cleared by main item", mouse(
			0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x81, 0x03, // constant
			0x81, 0x02), summary{}, nil},
		{"push pop restores usage page", mouse(
			0x05, 0x01, 0xa4, 0x05, 0x09, 0xb4, 0x09, 0x30, 0x09, 0x31, 0x81, 0x02), summary{abs: true}, nil},
		{"pen digitizer", []byte{0x05, 0x0d, 0x09, 0x02, 0xa1, 0x01,
			0x05, 0x01, 0x95, 0x02, 0x09, 0x30, 0x09, 0x31, 0x81, 0x02, 0xc0}, summary{dig: true}, nil},
		{"pointer application", []byte{0x05, 0x01, 0x09, 0x01, 0xa1, 0x01,
			0x95, 0x02, 0x09, 0x30, 0x09, 0x31, 0x81, 0x06, 0xc0}, summary{rel: true}, nil},
		{"joystick is not a pointer", []byte{0x05, 0x01, 0x09, 0x04, 0xa1, 0x01,
			0x95, 0x02, 0x09, 0x30, 0x09, 0x31, 0x81, 0x02, 0xc0}, summary{}, nil},
		{"input outside a collection", append(xy, 0x81, 0x02), summary{}, nil},
		{"reserved type 3 ignored", mouse(append([]byte{0x0d, 0x0f, 0x0c}, append(xy, 0x81, 0x02)...)...), summary{abs: true}, nil},
		{"truncated short item", []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x26, 0xff}, summary{kbd: true}, ErrTruncated},
		{"truncated long item header", []byte{0xfe, 0x01}, summary{}, ErrTruncated},
		{"truncated long item data", []byte{0xfe, 0x05, 0x00, 1, 2}, summary{}, ErrTruncated},
		{"pop without push", []byte{0xb4}, summary{}, ErrPopWithoutPush},
		{"end without collection", []byte{0xc0}, summary{}, ErrUnbalancedEnd},
		{"unclosed collection keeps partial result", []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01}, summary{kbd: true}, ErrUnclosedCollection},
		{"push too deep", bytes.Repeat([]byte{0xa4}, maxGlobalStack+1), summary{}, ErrPushTooDeep},
		{"nesting too deep", bytes.Repeat([]byte{0xa1, 0x00}, maxCollectionDepth+1), summary{}, ErrCollectionTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := ParseReportDescriptor(tc.b)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if rd == nil {
				t.Fatal("nil descriptor")
			}
			if got := flat(rd.Summary()); got != tc.want {
				t.Errorf("summary %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseNestingAtLimit(t *testing.T) {
	b := append(bytes.Repeat([]byte{0xa1, 0x00}, maxCollectionDepth), bytes.Repeat([]byte{0xc0}, maxCollectionDepth)...)
	if _, err := ParseReportDescriptor(b); err != nil {
		t.Fatal(err)
	}
}

func TestParseTooLarge(t *testing.T) {
	rd, err := ParseReportDescriptor(make([]byte, MaxReportDescriptorSize+1))
	if !errors.Is(err, ErrTooLarge) || rd != nil {
		t.Fatalf("got %v, %v", rd, err)
	}
	// At the limit it parses (0x00 is a main item with the reserved tag 0
	// and no data, which is ignored).
	if _, err := ParseReportDescriptor(make([]byte, MaxReportDescriptorSize)); err != nil {
		t.Fatal(err)
	}
}

// Huge Report Count and usage ranges must not cost work or overflow.
func TestParseHugeCounts(t *testing.T) {
	b := []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,
		0x97, 0xff, 0xff, 0xff, 0xff, // Report Count (0xFFFFFFFF)
		0x05, 0x07, 0x19, 0x00, 0x2a, 0xff, 0xff, 0x81, 0x00, // keys 0..0xFFFF, array
		0x05, 0x09, 0x19, 0x00, 0x2a, 0xff, 0xff, 0x81, 0x02, // buttons 0..0xFFFF
		0x81, 0x02, 0x81, 0x02, 0x81, 0x00, 0xc0}
	rd, err := ParseReportDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	a := rd.Applications[0]
	if a.Keys != maxCount || a.KeySlots != maxCount || a.Buttons != maxCount {
		t.Errorf("%+v", a)
	}
}

func TestLogicalMaxUnsignedQuirk(t *testing.T) {
	// Logical Maximum 0xFFFF in two bytes is -1 when read signed (HID
	// 1.11 §6.2.2.7); with Logical Minimum 0 it is meant unsigned.
	b := []byte{0x05, 0x0d, 0x09, 0x04, 0xa1, 0x01, 0x05, 0x01, 0x15, 0x00, 0x26, 0xff, 0xff, 0x95, 0x02,
		0x09, 0x30, 0x09, 0x31, 0x81, 0x02, 0xc0}
	rd, err := ParseReportDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := rd.Applications[0].XYLogicalMax; got != 65535 {
		t.Errorf("XYLogicalMax %d", got)
	}
}

// Linux exposes each hidraw device's report descriptor verbatim. Those of
// testdata/sysfs, real devices' (see its SOURCES.md), are parsed on every
// machine, with the capabilities each device has; this machine's /sys
// too when it has hidraw devices. None may fail or panic.
func TestParseSysfsHidraw(t *testing.T) {
	want := map[string]summary{
		"hidraw0": {kbd: true},            // USB receiver 045E:0745, keyboard interface
		"hidraw1": {rel: true, cc: true},  // the same receiver's mouse interface
		"hidraw2": {cc: true},             // and its consumer and vendor controls
		"hidraw3": {kbd: true},            // USB keyboard 045E:00DB
		"hidraw4": {cc: true},             // its extra keys, in a consumer control application
		"hidraw5": {rel: true, dig: true}, // I2C touchpad 04F3:304B: a mouse and a touch pad
		// USB pen tablet 056A:5048: a pen, and a mouse with absolute X/Y
		// 0..32767, the same as an IP-KVM's.
		"hidraw6": {abs: true, dig: true},
	}
	fixture := parseHidraw(t, filepath.Join("testdata", "sysfs"))
	if len(fixture) != len(want) {
		t.Fatalf("%d fixture descriptors, want %d", len(fixture), len(want))
	}
	for dev, got := range fixture {
		if got != want[dev] {
			t.Errorf("%s: %+v, want %+v", dev, got, want[dev])
		}
	}
	if live := parseHidraw(t, "/sys"); len(live) == 0 {
		t.Log("no /sys/class/hidraw/*/device/report_descriptor on this machine: fixture only")
	}
}

// parseHidraw parses the report descriptor of every hidraw device of the
// sysfs tree sys and returns each device's summary.
func parseHidraw(t *testing.T, sys string) map[string]summary {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(sys, "class", "hidraw", "*", "device", "report_descriptor"))
	out := map[string]summary{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Logf("%s: %v", p, err)
			continue
		}
		rd, err := ParseReportDescriptor(b)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		dev := filepath.Base(filepath.Dir(filepath.Dir(p)))
		out[dev] = flat(rd.Summary())
		t.Logf("%s: %d applications, summary %+v", p, len(rd.Applications), out[dev])
	}
	return out
}

func FuzzParseReportDescriptor(f *testing.F) {
	for _, name := range hexFixtureNames(f) {
		f.Add(readHexFixture(f, name))
	}
	f.Add([]byte{0xfe, 0xff, 0x00})
	f.Add([]byte{0xa4, 0xb4, 0xb4})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := ParseReportDescriptor(b)
		if rd == nil {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("nil descriptor with %v", err)
			}
			return
		}
		if len(rd.Applications) > maxApplications {
			t.Fatalf("%d applications", len(rd.Applications))
		}
		for _, a := range rd.Applications {
			if a.Keys < 0 || a.Keys > maxCount || a.Buttons < 0 || a.Buttons > maxCount ||
				a.KeySlots < 0 || a.KeySlots > maxCount || len(a.ReportIDs) > maxReportIDs {
				t.Fatalf("out of bounds %+v", a)
			}
			if slices.Contains(a.ReportIDs, 0) {
				t.Fatalf("report id 0 recorded: %+v", a)
			}
		}
		_ = rd.Summary()
	})
}
