package display

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/edid/*.bin from the fixture builders")

// The fixtures are synthetic: each EDID is built here from field values
// (VESA E-EDID 1.4 base block, CTA-861 extension) with computed checksums.
// No EDID bytes are copied from any project.

type dtd struct {
	clockKHz, hActive, hBlank, vActive, vBlank int
	hFront, hSync, vFront, vSync               int
	wMM, hMM                                   int
}

func (t dtd) bytes() []byte {
	d := make([]byte, 18)
	c := t.clockKHz / 10
	d[0], d[1] = byte(c), byte(c>>8)
	d[2], d[3] = byte(t.hActive), byte(t.hBlank)
	d[4] = byte(t.hActive>>8)<<4 | byte(t.hBlank>>8)&0x0F
	d[5], d[6] = byte(t.vActive), byte(t.vBlank)
	d[7] = byte(t.vActive>>8)<<4 | byte(t.vBlank>>8)&0x0F
	d[8], d[9] = byte(t.hFront), byte(t.hSync)
	d[10] = byte(t.vFront&0x0F)<<4 | byte(t.vSync&0x0F)
	d[11] = byte(t.hFront>>8&3)<<6 | byte(t.hSync>>8&3)<<4 | byte(t.vFront>>4&3)<<2 | byte(t.vSync>>4&3)
	d[12], d[13] = byte(t.wMM), byte(t.hMM)
	d[14] = byte(t.wMM>>8)<<4 | byte(t.hMM>>8)&0x0F
	d[17] = 0x1E // digital separate sync, +H +V
	return d
}

var (
	t1080p = dtd{148500, 1920, 280, 1080, 45, 88, 44, 4, 5, 527, 296}
	t4k60  = dtd{594000, 3840, 560, 2160, 90, 176, 88, 8, 10, 600, 340}
	t4k30  = dtd{297000, 3840, 560, 2160, 90, 176, 88, 8, 10, 600, 340}
	tEDP   = dtd{141000, 1920, 160, 1080, 40, 48, 32, 3, 5, 344, 194}
)

// textDesc is a display descriptor with a ≤13-byte string: terminated by
// 0x0A and padded with spaces when shorter.
func textDesc(tag byte, s string) []byte {
	d := make([]byte, 18)
	d[3] = tag
	p := d[5:]
	n := copy(p, s)
	if n < len(p) {
		p[n] = 0x0A
		for i := n + 1; i < len(p); i++ {
			p[i] = ' '
		}
	}
	return d
}

// rangeDesc is a display range limits descriptor (0xFD).
func rangeDesc(vMin, vMax, hMinKHz, hMaxKHz, maxClockMHz int) []byte {
	d := make([]byte, 18)
	d[3] = 0xFD
	d[5], d[6], d[7], d[8] = byte(vMin), byte(vMax), byte(hMinKHz), byte(hMaxKHz)
	d[9] = byte(maxClockMHz / 10)
	d[10] = 0x01 // range limits only
	d[11] = 0x0A
	for i := 12; i < 18; i++ {
		d[i] = ' '
	}
	return d
}

func dummyDesc() []byte { d := make([]byte, 18); d[3] = 0x10; return d }

type base struct {
	mfg               string
	product           uint16
	serial            uint32
	week, year        int // year as calendar year
	widthCM, heightCM int
	digitalInput      byte
	features          byte
	descs             [4][]byte
	extensions        int
}

func setChecksum(blk []byte) {
	var s byte
	for _, c := range blk[:127] {
		s += c
	}
	blk[127] = -s
}

func (b base) bytes() []byte {
	e := make([]byte, 128)
	copy(e, header[:])
	m := uint16(b.mfg[0]-'A'+1)<<10 | uint16(b.mfg[1]-'A'+1)<<5 | uint16(b.mfg[2]-'A'+1)
	e[8], e[9] = byte(m>>8), byte(m)
	e[10], e[11] = byte(b.product), byte(b.product>>8)
	e[12], e[13], e[14], e[15] = byte(b.serial), byte(b.serial>>8), byte(b.serial>>16), byte(b.serial>>24)
	e[16], e[17] = byte(b.week), byte(b.year-1990)
	e[18], e[19] = 1, 4
	e[20] = b.digitalInput
	if e[20] == 0 {
		e[20] = 0xA5 // digital, 8 bits per colour, DisplayPort
	}
	e[21], e[22] = byte(b.widthCM), byte(b.heightCM)
	e[23] = 120 // gamma 2.2
	e[24] = b.features
	if e[24] == 0 {
		e[24] = 0x0A // RGB 4:4:4, preferred timing native, continuous
	}
	// sRGB-like chromaticity.
	copy(e[25:35], []byte{0xEE, 0x91, 0xA3, 0x54, 0x4C, 0x99, 0x26, 0x0F, 0x50, 0x54})
	// Established timings: 640x480@60, 800x600@60, 1024x768@60.
	e[35], e[36] = 0x21, 0x08
	// Standard timings unused.
	for i := 38; i < 54; i++ {
		e[i] = 0x01
	}
	for i, d := range b.descs {
		if d == nil {
			d = dummyDesc()
		}
		copy(e[54+18*i:], d)
	}
	e[126] = byte(b.extensions)
	setChecksum(e)
	return e
}

// ctaBlock builds a CTA-861 extension: revision 3, data blocks, DTDs.
func ctaBlock(dataBlocks [][]byte, dtds ...dtd) []byte {
	e := make([]byte, 128)
	e[0], e[1] = 0x02, 0x03
	p := 4
	for _, db := range dataBlocks {
		p += copy(e[p:], db)
	}
	e[2] = byte(p)
	e[3] = 0xF0 // underscan, basic audio, YCbCr 4:4:4, 4:2:2; 0 native DTDs
	for _, t := range dtds {
		p += copy(e[p:], t.bytes())
	}
	setChecksum(e)
	return e
}

func dataBlock(tag byte, payload ...byte) []byte {
	return append([]byte{tag<<5 | byte(len(payload))}, payload...)
}

var (
	// VICs 16 (1080p60), 4 (720p60), 3 (480p), 95 (2160p30), 97 (2160p60).
	ctaVideo = dataBlock(CTATagVideo, 0x90, 0x04, 0x03, 95, 97)
	// LPCM 2 channels, 32/44.1/48 kHz, 16/20/24 bit.
	ctaAudio   = dataBlock(CTATagAudio, 0x09, 0x07, 0x07)
	ctaSpeaker = dataBlock(CTATagSpeaker, 0x01, 0x00, 0x00) // FL/FR
	// HDMI 1.x VSDB: OUI 00-0C-03 (LE), physical address 1.0.0.0.
	ctaHDMI = dataBlock(CTATagVendorSpecific, 0x03, 0x0C, 0x00, 0x10, 0x00, 0x00, 0x3C)
	// HDMI Forum VSDB: OUI C4-5D-D8 (LE), version 1, max TMDS 600 MHz.
	ctaHF = dataBlock(CTATagVendorSpecific, 0xD8, 0x5D, 0xC4, 0x01, 0x78, 0x00)
	// Extended tag 5 colorimetry, 6 HDR static metadata.
	ctaColorimetry = dataBlock(CTATagExtended, 0x05, 0x40, 0x00)
	ctaHDR         = dataBlock(CTATagExtended, 0x06, 0x05, 0x01)
)

// kvmBase is the shape of a TC358743/TC358749-style capture bridge EDID:
// 1080p preferred timing plus name and (optionally) serial descriptors.
func kvmBase(mfg string, product uint16, serial uint32, week, year, wCM, hCM int, name, serialStr string, ext int) base {
	b := base{
		mfg: mfg, product: product, serial: serial, week: week, year: year,
		widthCM: wCM, heightCM: hCM, extensions: ext,
		digitalInput: 0x80, // digital, undefined depth/interface (EDID 1.3-style bridges)
	}
	b.descs[0] = t1080p.bytes()
	b.descs[1] = rangeDesc(50, 65, 15, 80, 170)
	b.descs[2] = textDesc(0xFC, name)
	if serialStr != "" {
		b.descs[3] = textDesc(0xFF, serialStr)
	}
	return b
}

// fixtures builds every testdata/edid/*.bin file.
func fixtures() map[string][]byte {
	out := map[string][]byte{}

	// Generic 1080p desktop monitor.
	dell := base{mfg: "DEL", product: 0xA0C4, serial: 0x4C4A3231, week: 12, year: 2021,
		widthCM: 53, heightCM: 30}
	dell.descs = [4][]byte{t1080p.bytes(), textDesc(0xFF, "7DTRZ83"), textDesc(0xFC, "DELL P2419H"), rangeDesc(50, 76, 30, 83, 170)}
	out["dell_p2419h.bin"] = dell.bytes()

	// Laptop eDP panel: no name, two 0xFE text descriptors, serial 0.
	boe := base{mfg: "BOE", product: 0x0A81, week: 7, year: 2022, widthCM: 34, heightCM: 19,
		digitalInput: 0xA5, features: 0x1A}
	boe.descs = [4][]byte{tEDP.bytes(), dummyDesc(), textDesc(0xFE, "BOE CQ"), textDesc(0xFE, "NV156FHM-N61")}
	out["laptop_boe_edp.bin"] = boe.bytes()

	// 4K monitor with a CTA-861 extension.
	lg := base{mfg: "GSM", product: 0x5B09, serial: 0x0005A1B2, week: 0xFF, year: 2020,
		widthCM: 60, heightCM: 34, extensions: 1, digitalInput: 0xB5}
	lg.descs = [4][]byte{t4k60.bytes(), rangeDesc(40, 61, 30, 135, 600), textDesc(0xFC, "LG HDR 4K"), textDesc(0xFF, "005NTAB1C234")}
	out["monitor_4k_cta.bin"] = append(lg.bytes(),
		ctaBlock([][]byte{ctaVideo, ctaAudio, ctaSpeaker, ctaHDMI, ctaHF, ctaColorimetry, ctaHDR}, t4k30, t1080p)...)

	// KVM EDIDs: values from /work/shared/threat-signals.md §2.2 (facts
	// only; the bytes are built here).
	// PiKVM V3 (TC358743, kvmd configs/kvmd/edid): LNX 0x7771 "PiKVM V3",
	// serial "CAFEBABE", serial32 0x01010101, 2016 wk 35, 53×30 cm.
	out["pikvm_v3.bin"] = append(
		kvmBase("LNX", 0x7771, 0x01010101, 35, 2016, 53, 30, "PiKVM V3", "CAFEBABE", 1).bytes(),
		ctaBlock([][]byte{ctaVideo, ctaAudio, ctaSpeaker, ctaHDMI}, t1080p)...)
	// PiKVM V4 Plus: LNX 0x7773; the 13-character name fills the descriptor
	// with no 0x0A terminator.
	out["pikvm_v4plus.bin"] = append(
		kvmBase("LNX", 0x7773, 0x01010101, 35, 2016, 53, 30, "PiKVM V4 Plus", "CAFEBABE", 1).bytes(),
		ctaBlock([][]byte{ctaVideo, ctaAudio, ctaSpeaker, ctaHDMI}, t1080p)...)
	// PiKVM before 2022-07 and BliKVM: stock TC358743 EDID, TSB 0x8888
	// "Toshiba-H2C", serial32 0x88888800, 2011 wk 28, 0×0 cm.
	out["tsb_toshiba_h2c.bin"] = kvmBase("TSB", 0x8888, 0x88888800, 28, 2011, 0, 0, "Toshiba-H2C", "", 0).bytes()
	// TinyPilot Voyager: TSB 0x9876 "TinyPilot", serial32 0x88888800,
	// 2020 wk 45, 0×0 cm.
	out["tinypilot_voyager.bin"] = kvmBase("TSB", 0x9876, 0x88888800, 45, 2020, 0, 0, "TinyPilot", "", 0).bytes()
	// JetKVM default: TSB 0x8801 "T749-fHD720", serial32 0x88888800,
	// 2011 wk 28, 0×0 cm.
	out["jetkvm_default.bin"] = kvmBase("TSB", 0x8801, 0x88888800, 28, 2011, 0, 0, "T749-fHD720", "", 0).bytes()
	// Sipeed NanoKVM E21: SPD 0x3301 "NanoKVM", serial "NanoKVM",
	// 2025 wk 30, 48×27 cm.
	out["nanokvm_e21.bin"] = kvmBase("SPD", 0x3301, 0, 30, 2025, 48, 27, "NanoKVM", "NanoKVM", 0).bytes()
	// JetKVM "DELL D2721H" preset: DEL 0x2013, serial "3S5GQ23".
	out["jetkvm_preset_dell.bin"] = kvmBase("DEL", 0x2013, 0, 10, 2021, 60, 34, "DELL D2721H", "3S5GQ23", 0).bytes()

	// MacroSilicon MS2130 USB capture stock EDID (ms21xx-firmware README,
	// threat-signals.md §2.2): HJW 0x2130 "HDMI TO USB".
	out["ms2130_capture.bin"] = kvmBase("HJW", 0x2130, 0, 1, 2021, 0, 0, "HDMI TO USB", "", 0).bytes()
	// PiKVM EDID after kvmd-edidconf --set-mfc-id DEL --set-product-id
	// --set-monitor-name --set-serial: the bridge's shape stays (2016 wk 35,
	// 53×30 cm, serial32 0x01010101), only the edited fields change.
	out["pikvm_edidconf_dell.bin"] = kvmBase("DEL", 0xA0C4, 0x01010101, 35, 2016, 53, 30, "DELL P2419H", "HX4TQ93", 1).bytes()
	out["pikvm_edidconf_dell.bin"] = append(out["pikvm_edidconf_dell.bin"],
		ctaBlock([][]byte{ctaVideo, ctaAudio, ctaSpeaker, ctaHDMI}, t1080p)...)
	// A second office monitor (HP 24-inch).
	hp := base{mfg: "HWP", product: 0x3397, serial: 0x01010101, week: 40, year: 2022, widthCM: 53, heightCM: 30}
	hp.descs = [4][]byte{t1080p.bytes(), rangeDesc(48, 75, 30, 86, 170), textDesc(0xFC, "HP E24 G5"), textDesc(0xFF, "CNC2401X7Q")}
	out["hp_e24.bin"] = hp.bytes()

	// Bad checksum: the Dell EDID with a corrupted checksum byte.
	bad := dell.bytes()
	bad[127]++
	out["bad_checksum.bin"] = bad

	// Truncated: the 4K EDID cut in the middle of its CTA extension.
	out["truncated.bin"] = append([]byte(nil), out["monitor_4k_cta.bin"][:128+60]...)
	return out
}

// TestFixtures checks that the checked-in testdata/edid files match the
// builders; `go test -run TestFixtures -update` rewrites them.
func TestFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "edid")
	for name, want := range fixtures() {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestFixtures -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its builder (run go test -run TestFixtures -update)", path)
		}
	}
}
