package policies

import (
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestMediaCatalogLoads(t *testing.T) {
	c, err := Media(FS())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Version) != 64 {
		t.Fatalf("version %q", c.Version)
	}
	for _, tool := range c.Tools {
		if len(tool.Sources) == 0 {
			t.Errorf("%s: no source", tool.ID)
		}
	}
}

func TestMediaCatalogValidateRejects(t *testing.T) {
	for name, y := range map[string]string{
		"unknown category": "tools: [{id: a, name: A, category: webcam, sources: [https://x], names: [A]}]",
		"no source":        "tools: [{id: a, name: A, category: virtual_camera, names: [A]}]",
		"only wildcards":   "tools: [{id: a, name: A, category: virtual_camera, sources: [https://x], names: ['**']}]",
		"duplicate id":     "tools: [{id: a, name: A, category: virtual_camera, sources: [https://x], names: [A]}, {id: a, name: B, category: virtual_camera, sources: [https://x], names: [B]}]",
		"unknown key":      "tools: [{id: a, name: A, category: virtual_camera, sources: [https://x], names: [A], processes: [a]}]",
		"bad id":           "tools: [{id: A-1, name: A, category: virtual_camera, sources: [https://x], names: [A]}]",
	} {
		if _, err := ParseMedia([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMatchMedia: the names the products register (as the catalog's
// sources show them) match their entry; ordinary built-in and USB webcams
// and microphones match nothing.
func TestMatchMedia(t *testing.T) {
	c, err := Media(FS())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"OBS Virtual Camera":        "obs_virtual_camera",
		"obs-mac-virtualcam.plugin": "obs_virtual_camera",
		"com.obsproject.obs-studio.mac-camera-extension.systemextension": "obs_virtual_camera",
		"v4l2loopback":                "v4l2loopback",
		"Dummy video device (0x0000)": "v4l2loopback",
		"avatarify":                   "avatarify",
		"Unity Video Capture":         "unity_capture",
		"ManyCam Virtual Webcam":      "manycam",
		"XSplit VCam":                 "xsplit_vcam",
		"Snap Camera":                 "snap_camera",
		"SnapCamera.plugin":           "snap_camera",
		"CamTwist.plugin":             "camtwist",
		"Camera (NVIDIA Broadcast)":   "nvidia_broadcast",
		"Microphone (Voicemod Virtual Audio Device (WDM))": "voicemod",
		"CABLE Output (VB-Audio Virtual Cable)":            "vb_audio_cable",
		"BlackHole2ch.driver":                              "blackhole",
		"snd_aloop":                                        "alsa_loopback",
	}
	ordinary := []string{"Integrated Camera: Integrated C", "FaceTime HD Camera", "Logitech BRIO", "HD Pro Webcam C920",
		"Microphone Array (Realtek(R) Audio)", "Microphone (HD Webcam C615)", "uvcvideo", "snd_hda_intel",
		"AppleUSBAudioEngine", "HDA Intel PCH", "Integrated Webcam", "USB2.0 HD UVC WebCam", "Loopback Audio device"}
	var devs []*agentv1.MediaDevice
	for n := range want {
		devs = append(devs, &agentv1.MediaDevice{Kind: "video", Name: n, Source: "test"})
	}
	for _, n := range ordinary {
		devs = append(devs, &agentv1.MediaDevice{Kind: "video", Name: n, Source: "test"})
	}
	got := MatchMedia(c, &agentv1.Media{Devices: devs})
	if got.GetCatalogVersion() != c.Version || len(got.GetDevices()) != len(devs) {
		t.Fatalf("media %v", got)
	}
	found := map[string]string{}
	for _, f := range got.GetFindings() {
		if prev, dup := found[f.GetDevice()]; dup {
			t.Errorf("%q matched %s and %s", f.GetDevice(), prev, f.GetToolId())
		}
		found[f.GetDevice()] = f.GetToolId()
	}
	for n, id := range want {
		if found[n] != id {
			t.Errorf("%q: matched %q, want %q", n, found[n], id)
		}
	}
	for _, n := range ordinary {
		if id, ok := found[n]; ok {
			t.Errorf("ordinary device %q matched %s", n, id)
		}
	}
	if MatchMedia(c, nil) != nil {
		t.Error("nil media gave findings")
	}
}

func TestGlobFold(t *testing.T) {
	for _, c := range []struct {
		p, n string
		ok   bool
	}{
		{"OBS Virtual Camera", "obs virtual camera", true},
		{"OBS Virtual Camera", "OBS Virtual Camera 2", false},
		{"*(VB-Audio Virtual Cable)", "CABLE Output (VB-Audio Virtual Cable)", true},
		{"*Voicemod*", "Line (Voicemod Virtual Audio Device)", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*", "", true},
		{"abc", "", false},
		{"Émilie*", "émilie cam", true},
	} {
		if got := GlobFold(c.p, c.n); got != c.ok {
			t.Errorf("GlobFold(%q, %q) = %v", c.p, c.n, got)
		}
	}
}

func FuzzGlobFold(f *testing.F) {
	f.Add("*a*b*c*", "xaybzc")
	f.Add("OBS Virtual Camera", "OBS Virtual Camera")
	f.Add(strings.Repeat("*a", 50), strings.Repeat("a", 200))
	f.Fuzz(func(t *testing.T, p, n string) {
		if len(p) > 256 || len(n) > 4096 {
			return
		}
		// A pattern without wildcards matches only its own text.
		if !strings.Contains(p, "*") && GlobFold(p, n) != strings.EqualFold(strings.ToLower(strings.TrimSpace(p)), strings.ToLower(strings.TrimSpace(n))) {
			t.Fatalf("literal %q vs %q", p, n)
		}
		if GlobFold("*", n) != true {
			t.Fatal("* did not match")
		}
		_ = GlobFold(p, n)
	})
}
