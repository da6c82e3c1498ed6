package display

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winDisplayFixture is the testdata/win/*.json format; edid_file names a
// file of testdata/edid ("" for a monitor without EDID).
type winDisplayFixture struct {
	Comment  string `json:"comment"`
	Monitors []struct {
		InstanceID string `json:"instance_id"`
		EDIDFile   string `json:"edid_file"`
	} `json:"monitors"`
	Targets []winTarget `json:"targets"`
}

func winLoadDisplayFixture(tb testing.TB, name string) ([]winMonitor, []winTarget) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "win", name))
	if err != nil {
		tb.Fatal(err)
	}
	var f winDisplayFixture
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	var mons []winMonitor
	for _, m := range f.Monitors {
		wm := winMonitor{InstanceID: m.InstanceID}
		if m.EDIDFile != "" {
			wm.EDID = winReadEDIDFixture(tb, m.EDIDFile)
		}
		mons = append(mons, wm)
	}
	return mons, f.Targets
}

func winReadEDIDFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "edid", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestWinBuildDisplays(t *testing.T) {
	mons, targets := winLoadDisplayFixture(t, "laptop_kvm.json")
	disp := func(conn, edid string, internal, active bool) *agentv1.Display {
		var raw []byte
		if edid != "" {
			raw = winReadEDIDFixture(t, edid)
		}
		d := FromEDID(conn, raw)
		d.Internal, d.Active = internal, active
		return d
	}
	const (
		boe     = `DISPLAY\BOE0A1C\4&1f2e3d4c&0&UID8388688`
		dell    = `DISPLAY\DELA0C4\5&2a1b3c4d&0&UID4355`
		generic = `DISPLAY\Default_Monitor\1&8713bca&0&UID0`
		pikvm   = `DISPLAY\LNX7771\5&2a1b3c4d&0&UID4353`
	)
	tests := []struct {
		name    string
		targets []winTarget
		want    *agentv1.Displays
	}{
		{"displayconfig", targets, &agentv1.Displays{Displays: []*agentv1.Display{
			disp(boe, "laptop_boe_edp.bin", true, true),
			disp(dell, "dell_p2419h.bin", false, false),
			disp(generic, "", false, false),
			disp(pikvm, "pikvm_v3.bin", false, true),
		}}},
		{"no displayconfig", nil, &agentv1.Displays{Displays: []*agentv1.Display{
			disp(boe, "laptop_boe_edp.bin", false, false),
			disp(dell, "dell_p2419h.bin", false, false),
			disp(generic, "", false, false),
			disp(pikvm, "pikvm_v3.bin", false, false),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := winBuildDisplays(mons, tt.targets)
			if !proto.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(tt.want))
			}
		})
	}

	// The decoded fields really come from the EDIDs.
	got := winBuildDisplays(mons, targets)
	want := []struct {
		conn string
		mfg  string
		edid bool
	}{{boe, "BOE", true}, {dell, "DEL", true}, {generic, "", false}, {pikvm, "LNX", true}}
	if len(got.Displays) != len(want) {
		t.Fatalf("%d displays", len(got.Displays))
	}
	for i, w := range want {
		d := got.Displays[i]
		if d.GetConnector() != w.conn || d.GetManufacturerId() != w.mfg || (len(d.GetEdid()) > 0) != w.edid {
			t.Errorf("display %d: %s %q edid=%d bytes, want %s %q", i, d.GetConnector(), d.GetManufacturerId(), len(d.GetEdid()), w.conn, w.mfg)
		}
	}
	if got.GetLid() != agentv1.LidState_LID_STATE_UNSPECIFIED {
		t.Errorf("lid = %v", got.GetLid())
	}
}

func TestWinDevicePathInstanceID(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\\?\DISPLAY#LNX7771#5&2a1b3c4d&0&UID4353#{e6f07b5f-ee97-4a90-b076-33f57bf4eaa7}`, `DISPLAY\LNX7771\5&2a1b3c4d&0&UID4353`},
		{`\\?\display#boe0a1c#4&1f2e3d4c&0&uid8388688#{e6f07b5f-ee97-4a90-b076-33f57bf4eaa7}`, `display\boe0a1c\4&1f2e3d4c&0&uid8388688`},
		{``, ``},
		{`DISPLAY\LNX7771\5&2a1b3c4d&0&UID4353`, ``},
		{`\\?\DISPLAY#LNX7771#5&2a1b3c4d&0&UID4353`, ``},
		{`\\?\DISPLAY#LNX7771#{e6f07b5f-ee97-4a90-b076-33f57bf4eaa7}`, ``},
		{`\\?\#{x}`, ``},
		{`\\?\A#B#C#D#{x}`, ``},
	}
	for _, tt := range tests {
		if got := winDevicePathInstanceID(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWinIsInternalTech(t *testing.T) {
	for tech, want := range map[uint32]bool{
		0: false, 4: false, 5: false, 6: true, 10: false, 11: true, 12: false, 13: true,
		15: false, 16: false, 17: false, 18: false, 0x80000000: true, 0xFFFFFFFF: false,
	} {
		if got := winIsInternalTech(tech); got != want {
			t.Errorf("%#x: got %v, want %v", tech, got, want)
		}
	}
}

func FuzzWinParseDevicePath(f *testing.F) {
	f.Add(`\\?\DISPLAY#LNX7771#5&2a1b3c4d&0&UID4353#{e6f07b5f-ee97-4a90-b076-33f57bf4eaa7}`)
	f.Add(`\\?\#{}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		id := winDevicePathInstanceID(s)
		if id != "" && len(id) >= len(s) {
			t.Fatalf("%q -> %q", s, id)
		}
		d := winBuildDisplays([]winMonitor{{InstanceID: id}}, []winTarget{{MonitorDevicePath: s, OutputTechnology: 11, Active: true}})
		if id != "" && (len(d.Displays) != 1 || !d.Displays[0].Internal || !d.Displays[0].Active) {
			t.Fatalf("%q: not matched: %v", s, d)
		}
	})
}
