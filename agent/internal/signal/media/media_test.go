package media

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func names(devs []*agentv1.MediaDevice) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.GetKind()+"/"+d.GetSource()+"/"+d.GetName())
	}
	return out
}

// TestCollectLinuxRoot reads the laptop fixture root through Collect
// --root: the V4L2 names, the v4l2loopback module (not the others) and
// the sound card.
func TestCollectLinuxRoot(t *testing.T) {
	m, err := Collect(context.Background(), "testdata/root-laptop-vcam")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"video/v4l2/Integrated Camera: Integrated C",
		"video/v4l2/Integrated Camera: Integrated I",
		"video/v4l2/OBS Virtual Camera",
		"video/kernel_module/v4l2loopback",
		"audio/alsa/PCH",
	}
	if got := names(m.GetDevices()); !slices.Equal(got, want) {
		t.Fatalf("devices\n got %q\nwant %q", got, want)
	}
	if loc := m.GetDevices()[2].GetLocation(); loc != "/sys/class/video4linux/video2" {
		t.Errorf("location %q", loc)
	}
	cat, err := policies.Media(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range policies.MatchMedia(cat, m).GetFindings() {
		ids = append(ids, f.GetToolId()+":"+f.GetDevice())
	}
	if want := []string{"obs_virtual_camera:OBS Virtual Camera", "v4l2loopback:v4l2loopback"}; !slices.Equal(ids, want) {
		t.Errorf("findings %q, want %q", ids, want)
	}
}

// TestCollectMacRoot reads the macOS fixture root: DAL plug-in, camera
// extension (not the network extension), HAL driver.
func TestCollectMacRoot(t *testing.T) {
	m, err := Collect(context.Background(), "testdata/root-mac")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"video/dal_plugin/obs-mac-virtualcam.plugin",
		"audio/hal_plugin/BlackHole2ch.driver",
		"video/camera_extension/com.obsproject.obs-studio.mac-camera-extension.systemextension",
	}
	if got := names(m.GetDevices()); !slices.Equal(got, want) {
		t.Fatalf("devices\n got %q\nwant %q", got, want)
	}
}

// TestWindowsRegQuery parses reg.exe output of the four keys and picks the
// devices: both DirectShow filters, the Media Foundation camera and the
// active capture endpoints named as Windows shows them.
func TestWindowsRegQuery(t *testing.T) {
	b, err := os.ReadFile("testdata/windows/reg-query.txt")
	if err != nil {
		t.Fatal(err)
	}
	keys := ParseRegQuery(b)
	if len(keys) != 12 {
		t.Fatalf("%d keys", len(keys))
	}
	want := []string{
		"video/directshow/OBS Virtual Camera",
		"video/directshow/Unity Video Capture",
		"video/mf_virtual_camera/XSplit VCam",
		"audio/audio_endpoint/Microphone Array (Realtek(R) Audio)",
		"audio/audio_endpoint/Microphone (Voicemod Virtual Audio Device (WDM))",
	}
	devs := WinDevices(keys)
	if got := names(devs); !slices.Equal(got, want) {
		t.Fatalf("devices\n got %q\nwant %q", got, want)
	}
	if !strings.HasSuffix(devs[0].GetLocation(), `\{A3FCE0F5-3493-419F-958A-ABA1250EC20B}`) {
		t.Errorf("location %q", devs[0].GetLocation())
	}
	cat, _ := policies.Media(policies.FS())
	var ids []string
	for _, f := range policies.MatchMedia(cat, &agentv1.Media{Devices: devs}).GetFindings() {
		ids = append(ids, f.GetToolId())
	}
	if want := []string{"obs_virtual_camera", "unity_capture", "xsplit_vcam", "voicemod"}; !slices.Equal(ids, want) {
		t.Errorf("findings %q, want %q", ids, want)
	}
}

func TestParseALSACards(t *testing.T) {
	in := " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n                      HDA Intel PCH at 0xea1f0000 irq 163\n" +
		" 1 [Loopback       ]: Loopback - Loopback\n                      Loopback 1\n" +
		"--- no soundcards ---\n 2 [broken\n"
	if got := ParseALSACards([]byte(in)); !slices.Equal(got, []string{"PCH", "Loopback"}) {
		t.Errorf("%q", got)
	}
}

func TestCapDevices(t *testing.T) {
	var devs []*agentv1.MediaDevice
	for range 300 {
		devs = append(devs, &agentv1.MediaDevice{Kind: "video", Name: "same", Source: "v4l2"})
	}
	devs = append(devs, &agentv1.MediaDevice{Kind: "video", Name: "\x00\x01", Source: "v4l2"},
		&agentv1.MediaDevice{Kind: "video", Name: strings.Repeat("é", 300) + "\xff", Source: "v4l2"})
	got := capDevices(devs)
	if len(got) != 2 || got[0].GetName() != "same" || len(got[1].GetName()) > maxName {
		t.Fatalf("%d devices: %q", len(got), names(got))
	}
	for i := range 400 {
		devs = append(devs, &agentv1.MediaDevice{Kind: "video", Name: strings.Repeat("x", i+1), Source: "v4l2"})
	}
	if n := len(capDevices(devs)); n != maxDevices {
		t.Errorf("%d devices kept", n)
	}
}

func TestReadFSEmpty(t *testing.T) {
	if d := append(ReadLinuxFS(fstest.MapFS{}), ReadMacFS(fstest.MapFS{})...); len(d) != 0 {
		t.Errorf("%q", names(d))
	}
}

// FuzzParseRegQuery: reg.exe output is outside text; the parser and the
// picker must take anything without panicking and keep their bounds.
func FuzzParseRegQuery(f *testing.F) {
	b, err := os.ReadFile("testdata/windows/reg-query.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("HKEY_X\r\n    a    REG_SZ\r\n    REG_SZ    REG_SZ    x\r\n"))
	f.Add([]byte(WinAudioCaptureKey + `\a\Properties` + "\n    {a45c254e-df1c-4efd-8020-67d146a850e0},2    REG_SZ    M\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys := ParseRegQuery(b)
		if len(keys) > maxRegKeys {
			t.Fatalf("%d keys", len(keys))
		}
		for _, d := range WinDevices(keys) {
			if d.GetName() == "" {
				t.Fatal("empty name")
			}
		}
	})
}

// FuzzParseProc: /proc/modules and /proc/asound/cards parsers.
func FuzzParseProc(f *testing.F) {
	for _, p := range []string{"testdata/root-laptop-vcam/proc/modules", "testdata/root-laptop-vcam/proc/asound/cards"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range ParseModules(b) {
			if !slices.Contains(virtualModules, m) {
				t.Fatalf("module %q", m)
			}
		}
		for _, c := range ParseALSACards(b) {
			if c == "" {
				t.Fatal("empty card")
			}
		}
	})
}
