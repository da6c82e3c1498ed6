package display

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// realKVMEDIDs are the EDIDs in the linuxhw corpus that KVMs or HDMI-capture
// bridges serve, by path, with the findings' families ("" for the
// capture_edid heuristic alone). Each was told apart by its own fields: a
// KVM monitor name, or a bridge's reference EDID (TSB/LNX, 0×0 cm, serial
// 0x88888800, made 2011 week 28 or 2020 week 45).
var realKVMEDIDs = map[string]string{
	"Digital/Lanix/LNX7770/7DF4F1230EC8":   "pikvm",
	"Digital/Lanix/LNX7771/27A215A2CF4F":   "pikvm",
	"Digital/Lanix/LNX7772/5DD3CFFF65A0":   "pikvm",
	"Digital/Lanix/LNX7773/0247F3A87A62":   "pikvm",
	"Digital/Lanix/LNX8888/51B0F2759E3B":   "pikvm",
	"Digital/Lanix/LNX8888/881AC2D4A7C4":   "pikvm",
	"Digital/Lanix/LNX8888/A75F0D06C09F":   "pikvm",
	"Digital/Lanix/LNX8888/C005342953B5":   "pikvm",
	"Digital/Toshiba/TSB8888/01F70CF3EB4B": "pikvm", // "PI-KVM Video", PiKVM's first EDID name
	"Digital/Toshiba/TSB8888/09B30A15E7C7": "pikvm",
	"Digital/Toshiba/TSB8888/69830468DF15": "pikvm",
	"Digital/Toshiba/TSB8888/2D3288012DDC": "toshiba_hdmi_bridge", // "Toshiba-H2C"
	"Digital/Toshiba/TSB8888/6E31E25E20B4": "toshiba_hdmi_bridge",
	"Digital/Toshiba/TSB8888/9564EC327041": "toshiba_hdmi_bridge",
	"Digital/Toshiba/TSB8888/8ADBB7B57699": "",          // renamed "no-audio-HD"
	"Digital/Toshiba/TSB9876/192E4C093E9A": "tinypilot", // TinyPilot Voyager
	"Digital/Others/HJW2130/23E42B1F225C":  "ms21xx_capture",
	"Digital/Others/HJW0001/0D12B94475E0":  "ms21xx_capture", // "HDMI TO USB"
	"Digital/Others/HJW0001/220668F8417E":  "ms21xx_capture",
	"Digital/Others/HJW0001/3A2412311DFB":  "ms21xx_capture",
	"Digital/Others/HJW0001/5C7512F25A26":  "ms21xx_capture",
	"Digital/Others/HJW0001/A1874470E514":  "ms21xx_capture",
	"Digital/Others/HJW0001/F324226E448B":  "ms21xx_capture",
}

// acceptedEDIDs are ordinary-looking EDIDs the heuristics flag on purpose:
// the model and serial descriptor JetKVM's UI presets copy. Each is the one
// monitor JetKVM's authors copied or a JetKVM using the preset; no other
// unit of those models carries that serial.
var acceptedEDIDs = map[string]string{
	"Digital/Acer/ACR0565/CCF78B30FE61": "jetkvm", // B246WL T8NEE0038522
	"Digital/ASUS/AUS2487/2B473481CAE6": "jetkvm", // PA248QV M1LMQS052157
	"Digital/Dell/DEL2013/EEE824E681BF": "jetkvm", // D2721H 3S5GQ23
}

var tvOrProjector = regexp.MustCompile(`(?i)TV|PROJ|BEAMER|EPSON|OPTOMA`)

// TestRealEDIDCorpus runs the KVM EDID heuristics over real EDIDs from the
// public linuxhw/EDID database (testdata/linuxhw/SOURCES.md): no ordinary
// display may raise a finding (all display findings feed high-severity
// rules), and every KVM or capture-bridge EDID in it must.
func TestRealEDIDCorpus(t *testing.T) {
	cat, err := policies.KVM(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "linuxhw", "edid.tsv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var total, tvs, kvms, ordinary int
	seen := map[string]bool{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		path, h, _ := strings.Cut(sc.Text(), "\t")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		e, err := ParseEDID(b)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		total++
		seen[path] = true
		d := e.Proto()
		d.Connector = path
		if tvOrProjector.MatchString(d.GetMonitorName()) {
			tvs++
		}
		findings := policies.MatchPeripherals(cat, nil, &agentv1.Displays{Displays: []*agentv1.Display{d}}).GetFindings()
		family, isKVM := realKVMEDIDs[path]
		if !isKVM {
			family, isKVM = acceptedEDIDs[path]
		}
		switch {
		case !isKVM && len(findings) > 0:
			ordinary++
			t.Errorf("ordinary display %s %q flagged: %v", path, d.GetMonitorName(), findings)
		case isKVM && len(findings) == 0:
			t.Errorf("KVM EDID %s %q not flagged", path, d.GetMonitorName())
		case isKVM:
			kvms++
			if family != "" && !slices.ContainsFunc(findings, func(f *agentv1.PeripheralFinding) bool { return f.GetFamily() == family }) {
				t.Errorf("KVM EDID %s: no %s finding in %v", path, family, findings)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for p := range realKVMEDIDs {
		if !seen[p] {
			t.Errorf("corpus lacks KVM EDID %s", p)
		}
	}
	if total < 2000 || tvs < 1000 {
		t.Errorf("corpus has %d EDIDs, %d TVs/projectors; want at least 2000 and 1000", total, tvs)
	}
	t.Logf("%d real EDIDs (%d TVs/projectors): %d KVM/capture or accepted EDIDs flagged, %d ordinary displays flagged",
		total, tvs, kvms, ordinary)
}

// TestPublishedKVMEDIDs checks that every KVM EDID built from the products'
// published defaults (testdata/edid) is flagged, and a NanoKVM whose monitor
// name is longer than the E21 EDID's "NanoKVM".
func TestPublishedKVMEDIDs(t *testing.T) {
	cat, err := policies.KVM(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	edids := map[string][]byte{
		"nanokvm_longer_name": kvmBase("SPD", 0x3302, 0, 30, 2025, 48, 27, "NanoKVM-Pro", "", 0).bytes(),
	}
	for _, name := range []string{"pikvm_v3.bin", "pikvm_v4plus.bin", "tsb_toshiba_h2c.bin", "tinypilot_voyager.bin",
		"jetkvm_default.bin", "jetkvm_preset_dell.bin", "nanokvm_e21.bin", "ms2130_capture.bin"} {
		edids[name] = mustFixture(t, name)
	}
	for name, b := range edids {
		e, err := ParseEDID(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(policies.MatchPeripherals(cat, nil, &agentv1.Displays{Displays: []*agentv1.Display{e.Proto()}}).GetFindings()) == 0 {
			t.Errorf("%s (%q) not flagged", name, e.MonitorName)
		}
	}
}
