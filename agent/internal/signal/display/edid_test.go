package display

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

func mustFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "edid", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEDIDFixtures(t *testing.T) {
	type want struct {
		mfg          string
		product      uint16
		serial       uint32
		name, serStr string
		text         []string
		week, year   int
		wMM, hMM     int
		ext          int
		tags         []uint8
		checksumOK   bool
		bad          []int
		truncated    bool
		prefW, prefH int
		prefClockKHz int
	}
	tests := map[string]want{
		"dell_p2419h.bin": {mfg: "DEL", product: 0xA0C4, serial: 0x4C4A3231, name: "DELL P2419H", serStr: "7DTRZ83",
			week: 12, year: 2021, wMM: 530, hMM: 300, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"laptop_boe_edp.bin": {mfg: "BOE", product: 0x0A81, text: []string{"BOE CQ", "NV156FHM-N61"},
			week: 7, year: 2022, wMM: 340, hMM: 190, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 141000},
		"monitor_4k_cta.bin": {mfg: "GSM", product: 0x5B09, serial: 0x0005A1B2, name: "LG HDR 4K", serStr: "005NTAB1C234",
			week: 0xFF, year: 2020, wMM: 600, hMM: 340, ext: 1, tags: []uint8{2}, checksumOK: true,
			prefW: 3840, prefH: 2160, prefClockKHz: 594000},
		"pikvm_v3.bin": {mfg: "LNX", product: 0x7771, serial: 0x01010101, name: "PiKVM V3", serStr: "CAFEBABE",
			week: 35, year: 2016, wMM: 530, hMM: 300, ext: 1, tags: []uint8{2}, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"pikvm_v4plus.bin": {mfg: "LNX", product: 0x7773, serial: 0x01010101, name: "PiKVM V4 Plus", serStr: "CAFEBABE",
			week: 35, year: 2016, wMM: 530, hMM: 300, ext: 1, tags: []uint8{2}, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"tsb_toshiba_h2c.bin": {mfg: "TSB", product: 0x8888, serial: 0x88888800, name: "Toshiba-H2C",
			week: 28, year: 2011, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"tinypilot_voyager.bin": {mfg: "TSB", product: 0x9876, serial: 0x88888800, name: "TinyPilot",
			week: 45, year: 2020, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"jetkvm_default.bin": {mfg: "TSB", product: 0x8801, serial: 0x88888800, name: "T749-fHD720",
			week: 28, year: 2011, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"jetkvm_preset_dell.bin": {mfg: "DEL", product: 0x2013, name: "DELL D2721H", serStr: "3S5GQ23",
			week: 10, year: 2021, wMM: 600, hMM: 340, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"nanokvm_e21.bin": {mfg: "SPD", product: 0x3301, name: "NanoKVM", serStr: "NanoKVM",
			week: 30, year: 2025, wMM: 480, hMM: 270, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"ms2130_capture.bin": {mfg: "HJW", product: 0x2130, name: "HDMI TO USB",
			week: 1, year: 2021, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"pikvm_edidconf_dell.bin": {mfg: "DEL", product: 0xA0C4, serial: 0x01010101, name: "DELL P2419H", serStr: "HX4TQ93",
			week: 35, year: 2016, wMM: 530, hMM: 300, ext: 1, tags: []uint8{2}, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"hp_e24.bin": {mfg: "HWP", product: 0x3397, serial: 0x01010101, name: "HP E24 G5", serStr: "CNC2401X7Q",
			week: 40, year: 2022, wMM: 530, hMM: 300, checksumOK: true, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"bad_checksum.bin": {mfg: "DEL", product: 0xA0C4, serial: 0x4C4A3231, name: "DELL P2419H", serStr: "7DTRZ83",
			week: 12, year: 2021, wMM: 530, hMM: 300, bad: []int{0}, prefW: 1920, prefH: 1080, prefClockKHz: 148500},
		"truncated.bin": {mfg: "GSM", product: 0x5B09, serial: 0x0005A1B2, name: "LG HDR 4K", serStr: "005NTAB1C234",
			week: 0xFF, year: 2020, wMM: 600, hMM: 340, ext: 1, checksumOK: true, truncated: true,
			prefW: 3840, prefH: 2160, prefClockKHz: 594000},
	}
	for name, w := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := ParseEDID(mustFixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			got := want{
				mfg: e.ManufacturerID, product: e.ProductCode, serial: e.SerialNumber,
				name: e.MonitorName, serStr: e.SerialString, text: e.UnspecifiedText,
				week: int(e.ManufactureWeek), year: e.ManufactureYear, wMM: e.WidthMM, hMM: e.HeightMM,
				ext: e.ExtensionCount, tags: e.ExtensionTags, checksumOK: e.ChecksumOK, bad: e.BadChecksumBlocks,
				truncated: e.Truncated,
			}
			if e.Preferred != nil {
				got.prefW, got.prefH, got.prefClockKHz = e.Preferred.HActive, e.Preferred.VActive, e.Preferred.PixelClockKHz
			}
			if !equalWant(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
			if e.ModelYear != (w.week == 0xFF) {
				t.Errorf("ModelYear = %v", e.ModelYear)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "edid", "*.bin"))
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expectations", f)
		}
	}
}

func equalWant[T any](a, b T) bool { return sprint(a) == sprint(b) }

func TestParseEDIDCTA(t *testing.T) {
	e, err := ParseEDID(mustFixture(t, "monitor_4k_cta.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.CTA) != 1 {
		t.Fatalf("CTA blocks = %d", len(e.CTA))
	}
	c := e.CTA[0]
	if c.Block != 1 || c.Revision != 3 {
		t.Errorf("block %d revision %d", c.Block, c.Revision)
	}
	type db struct {
		tag uint8
		oui uint32
		ext uint8
	}
	var got []db
	for _, d := range c.DataBlocks {
		if d.Truncated {
			t.Errorf("data block %+v truncated", d)
		}
		got = append(got, db{d.Tag, d.OUI, d.ExtendedTag})
	}
	want := []db{{CTATagVideo, 0, 0}, {CTATagAudio, 0, 0}, {CTATagSpeaker, 0, 0},
		{CTATagVendorSpecific, OUIHDMI, 0}, {CTATagVendorSpecific, OUIHDMIForum, 0},
		{CTATagExtended, 0, 5}, {CTATagExtended, 0, 6}}
	if !slices.Equal(got, want) {
		t.Errorf("data blocks %+v, want %+v", got, want)
	}
	if len(c.DetailedTimings) != 2 || c.DetailedTimings[0].HActive != 3840 || c.DetailedTimings[0].PixelClockKHz != 297000 ||
		c.DetailedTimings[1].VActive != 1080 {
		t.Errorf("CTA DTDs %+v", c.DetailedTimings)
	}
	if r := e.Preferred.RefreshMilliHz(); r != 60000 {
		t.Errorf("preferred refresh %d mHz", r)
	}
}

func TestParseEDIDErrors(t *testing.T) {
	good := mustFixture(t, "dell_p2419h.bin")
	if _, err := ParseEDID(nil); !errors.Is(err, ErrNoHeader) {
		t.Errorf("nil: %v", err)
	}
	if _, err := ParseEDID(good[:100]); !errors.Is(err, ErrTooShort) {
		t.Errorf("short: %v", err)
	}
	noHdr := bytes.Clone(good)
	noHdr[0] = 1
	if _, err := ParseEDID(noHdr); !errors.Is(err, ErrNoHeader) {
		t.Errorf("no header: %v", err)
	}
	if _, err := ParseEDID(append(bytes.Clone(good), make([]byte, MaxSize)...)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large: %v", err)
	}
	// Extra blocks beyond the announced count are reported, not fatal.
	extra := append(bytes.Clone(good), make([]byte, 128)...)
	e, err := ParseEDID(extra)
	if err != nil || !e.Oversized || e.Truncated || !e.ChecksumOK || len(e.ExtensionTags) != 1 {
		t.Errorf("oversized: %v %+v", err, e)
	}
	// Announced extension missing.
	missing := bytes.Clone(good)
	missing[126] = 2
	missing[127] -= 2
	e, err = ParseEDID(missing)
	if err != nil || !e.Truncated || !e.ChecksumOK || e.ExtensionCount != 2 || len(e.ExtensionTags) != 0 {
		t.Errorf("missing extensions: %v %+v", err, e)
	}
}

func TestDescriptorText(t *testing.T) {
	for in, want := range map[string]string{
		"PiKVM V4 Plus":    "PiKVM V4 Plus",
		"abc\n   \x00\x00": "abc",
		"ab  \n":           "ab",
		"a\x01b\xffc":      "a?b?c",
		"\xe2\x82\xac":     "???",
		"":                 "",
		"            \n":   "",
	} {
		if got := descriptorText([]byte(in)); got != want {
			t.Errorf("descriptorText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPNPID(t *testing.T) {
	for v, want := range map[uint16]string{0x10AC: "DEL", 0x5262: "TSB", 0x0000: "", 0x7FFF: "", 0x0421: "AAA", 0x6B5A: "ZZZ"} {
		if got := pnpID(v); got != want {
			t.Errorf("pnpID(%#04x) = %q, want %q", v, got, want)
		}
	}
}

func TestProto(t *testing.T) {
	raw := mustFixture(t, "pikvm_v3.bin")
	e, err := ParseEDID(raw)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Proto()
	if d.GetManufacturerId() != "LNX" || d.GetProductCode() != 0x7771 || d.GetSerialNumber() != 0x01010101 ||
		d.GetSerialString() != "CAFEBABE" || d.GetMonitorName() != "PiKVM V3" ||
		d.GetManufactureWeek() != 35 || d.GetManufactureYear() != 2016 ||
		d.GetWidthMm() != 530 || d.GetHeightMm() != 300 || d.GetExtensionCount() != 1 ||
		!slices.Equal(d.GetExtensionTags(), []uint32{2}) || !d.GetEdidChecksumOk() ||
		!bytes.Equal(d.GetEdid(), raw) || d.GetConnector() != "" || d.GetInternal() || d.GetActive() {
		t.Errorf("Proto() = %v", d)
	}
	raw[20] ^= 0xFF // Proto's Edid and e.Raw are copies
	if d.GetEdid()[20] == raw[20] || e.Raw[20] == raw[20] {
		t.Error("raw EDID aliases the input")
	}
	if (*EDID)(nil).Proto() != nil {
		t.Error("nil Proto")
	}
	bad, _ := ParseEDID(mustFixture(t, "bad_checksum.bin"))
	if bad.Proto().GetEdidChecksumOk() {
		t.Error("bad checksum reported ok")
	}
}

func FuzzParseEDID(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "edid", "*.bin"))
	for _, p := range files {
		f.Add(mustFixture(f, filepath.Base(p)))
	}
	f.Add([]byte{})
	f.Add(header[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEDID(b)
		if err != nil {
			if e != nil {
				t.Fatal("result with error")
			}
			return
		}
		strs := append([]string{e.ManufacturerID, e.MonitorName, e.SerialString}, e.UnspecifiedText...)
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
		}
		if len(e.MonitorName) > 13 || len(e.SerialString) > 13 {
			t.Fatalf("descriptor string too long: %q %q", e.MonitorName, e.SerialString)
		}
		if e.ChecksumOK != (len(e.BadChecksumBlocks) == 0) {
			t.Fatal("ChecksumOK disagrees with BadChecksumBlocks")
		}
		if len(e.ExtensionTags) != len(b)/BlockSize-1 {
			t.Fatalf("%d extension tags for %d bytes", len(e.ExtensionTags), len(b))
		}
		d := e.Proto()
		if !bytes.Equal(d.GetEdid(), b) {
			t.Fatal("raw EDID differs")
		}
	})
}

func sprint(v any) string { return fmt.Sprintf("%#v", v) }
