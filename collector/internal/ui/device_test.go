package ui

import (
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below on any OS

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// laptop is a snapshot of an ordinary laptop at home.
func laptop() *agentv1.HostSnapshot {
	return &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{Hostname: "lt-ana", SerialNumber: "SN1", AgentVersion: "1.0.0",
			Os: &agentv1.OperatingSystem{Name: "Debian GNU/Linux", Version: "12"}},
		Signals: []*agentv1.SignalStatus{{Name: "usb", State: agentv1.SignalStatus_STATE_OK}, {Name: "display", State: agentv1.SignalStatus_STATE_OK}},
		RemoteAccess: &agentv1.RemoteAccess{OsFeatures: []*agentv1.OsRemoteAccess{{Kind: "ssh", Enabled: false}},
			Tools: []*agentv1.RemoteTool{{ToolId: "caffeine", Name: "Caffeine", Category: "stay_awake",
				Installs: []*agentv1.InstallEvidence{{Kind: "package", Location: "caffeine"}}}}},
		Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{
			{Location: "1-0", VendorId: 0x1d6b, ProductId: 0x0002, Manufacturer: "Linux Foundation", Product: "2.0 root hub"},
			{Location: "2-0", VendorId: 0x1d6b, ProductId: 0x0002, Manufacturer: "Linux Foundation", Product: "2.0 root hub"}}},
		Displays: &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN, Displays: []*agentv1.Display{
			{Connector: "eDP-1", ManufacturerId: "BOE", ProductCode: 0x0b9c, Internal: true, Active: true}}},
		Network: &agentv1.Network{
			Interfaces: []*agentv1.NetworkInterface{{Name: "wlan0", Kind: agentv1.NetworkInterface_KIND_WIFI, Up: true},
				{Name: "utun3", Kind: agentv1.NetworkInterface_KIND_UTUN, Up: true}},
			DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "aa:bb:cc:00:00:01"},
			Wifi:         &agentv1.Wifi{Available: true, Interface: "wlan0", Ssid: "Home", Bssid: "aa:bb:cc:00:00:02"},
			DnsServers:   []string{"192.168.1.1"}},
		Locale: &agentv1.Locale{Timezone: "Europe/Berlin", SystemLocale: "de_DE.UTF-8",
			KeyboardLayouts: []*agentv1.KeyboardLayout{{User: "ana", Layout: "de"}}},
		Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{User: "ana", Type: agentv1.LoginSession_TYPE_CONSOLE, Terminal: "tty2"}}},
	}
}

func texts(cs []timelineEvent) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Family + ": " + c.Text
	}
	return out
}

func TestDiffSnapshots(t *testing.T) {
	prev := laptop()
	if cs := diffSnapshots(prev, proto.Clone(prev).(*agentv1.HostSnapshot)); len(cs) != 0 {
		t.Fatalf("no change: %v", texts(cs))
	}

	cur := proto.Clone(prev).(*agentv1.HostSnapshot)
	cur.Identity.AgentVersion = "1.1.0"
	cur.Signals[1] = &agentv1.SignalStatus{Name: "display", State: agentv1.SignalStatus_STATE_ERROR, Message: "no DRM access"}
	cur.RemoteAccess.Tools = append(cur.RemoteAccess.Tools,
		&agentv1.RemoteTool{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
			Installs:  []*agentv1.InstallEvidence{{Kind: "package", Location: "anydesk", Version: "6.3.0"}},
			Processes: []*agentv1.ProcessEvidence{{Name: "anydesk", Path: "/usr/bin/anydesk", Pid: 4242}}, ActiveSession: true},
		&agentv1.RemoteTool{ToolId: "rustdesk", Name: "RustDesk", Processes: []*agentv1.ProcessEvidence{{Name: "rustdesk", Path: "/tmp/.x/rustdesk"}}})
	cur.RemoteAccess.Tools = slices.DeleteFunc(cur.RemoteAccess.Tools, func(t *agentv1.RemoteTool) bool { return t.GetToolId() == "caffeine" })
	cur.RemoteAccess.OsFeatures[0].Enabled = true
	// One of the two identical root hubs goes; a PiKVM comes.
	cur.Usb.Devices = append(cur.Usb.Devices[:1], &agentv1.UsbDevice{Location: "3-1", VendorId: 0x1d6b, ProductId: 0x0104,
		Manufacturer: "PiKVM", Product: "Composite KVM Device", Serial: "CAFEBABE", Hid: &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true}})
	cur.Displays.Displays[0].Active = false
	cur.Displays.Lid = agentv1.LidState_LID_STATE_CLOSED
	cur.Displays.Displays = append(cur.Displays.Displays, &agentv1.Display{Connector: "HDMI-A-1", ManufacturerId: "DEL",
		MonitorName: "DELL U2720Q", SerialString: "ABC123", Active: true})
	cur.Network.DefaultRoute.Gateway, cur.Network.DefaultRoute.GatewayMac = "10.8.0.1", "de:ad:be:ef:00:01"
	cur.Network.Wifi.Ssid, cur.Network.Wifi.Bssid = "Cafe", "aa:bb:cc:00:00:09"
	cur.Network.Interfaces = append(cur.Network.Interfaces, &agentv1.NetworkInterface{Name: "wg0", Kind: agentv1.NetworkInterface_KIND_WIREGUARD, Up: true},
		&agentv1.NetworkInterface{Name: "utun4", Kind: agentv1.NetworkInterface_KIND_UTUN, Up: true}) // an unrecognised utun: not a VPN
	cur.Locale.Timezone = "America/New_York"
	cur.Locale.KeyboardLayouts = append(cur.Locale.KeyboardLayouts, &agentv1.KeyboardLayout{User: "ana", Layout: "ko", InputMethod: true})
	cur.Sessions.Current = append(cur.Sessions.Current, &agentv1.LoginSession{User: "bob", Type: agentv1.LoginSession_TYPE_REMOTE_DESKTOP, SourceAddress: "203.0.113.50"})
	cur.Sessions.History = []*agentv1.LoginSession{{User: "root", Type: agentv1.LoginSession_TYPE_SSH, SourceAddress: "198.51.100.77"},
		{User: "ana", Type: agentv1.LoginSession_TYPE_CONSOLE}}

	want := []string{
		"identity: agent version changed: 1.0.0 → 1.1.0",
		"collection: display failed: no DRM access",
		"remote access: remote tool installed: AnyDesk (running)",
		"remote access: remote session started: AnyDesk",
		"remote access: remote tool running without an install: RustDesk from /tmp/.x/rustdesk",
		"remote access: remote tool removed: Caffeine",
		"remote access: OS remote access enabled: ssh",
		"USB: USB device appeared: 1d6b:0104 PiKVM Composite KVM Device serial CAFEBABE",
		"USB: USB device removed: 1d6b:0002 Linux Foundation 2.0 root hub",
		"displays: display connected: DEL DELL U2720Q serial ABC123",
		"displays: built-in display turned off",
		"displays: lid closed",
		"network: default gateway changed: 192.168.1.1 → 10.8.0.1",
		"network: gateway router (MAC) changed: aa:bb:cc:00:00:01 → de:ad:be:ef:00:01",
		"network: Wi-Fi network changed: Home → Cafe",
		"network: VPN or tunnel interface up: wg0 (WireGuard)",
		"locale: time zone changed: Europe/Berlin → America/New_York",
		"locale: keyboard layout added: ko (input method) for ana",
		"sessions: session opened: bob (remote desktop from 203.0.113.50)",
		"sessions: remote login recorded: root (SSH from 198.51.100.77)",
	}
	if got := texts(diffSnapshots(prev, cur)); !slices.Equal(got, want) {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// And back: the reverse events.
	back := texts(diffSnapshots(cur, prev))
	for _, w := range []string{"remote access: remote tool removed: AnyDesk", "remote access: remote tool installed: Caffeine",
		"USB: USB device removed: 1d6b:0104 PiKVM Composite KVM Device serial CAFEBABE", "displays: display disconnected: DEL DELL U2720Q serial ABC123",
		"displays: built-in display turned on", "displays: lid open", "network: VPN or tunnel interface down: wg0 (WireGuard)",
		"collection: display is collected again", "sessions: session ended: bob (remote desktop from 203.0.113.50)",
		"locale: keyboard layout removed: ko (input method) for ana", "remote access: OS remote access disabled: ssh"} {
		if !slices.Contains(back, w) {
			t.Errorf("reverse diff lacks %q:\n%s", w, strings.Join(back, "\n"))
		}
	}

	// A tool that was installed starts, then stops; its ID changes.
	a, b := laptop(), laptop()
	b.RemoteAccess.Tools[0].Processes = []*agentv1.ProcessEvidence{{Name: "caffeine", Path: "/usr/bin/caffeine"}}
	b.RemoteAccess.Tools[0].ClientId = "123456789"
	if got, want := texts(diffSnapshots(a, b)), []string{"remote access: remote tool started: Caffeine (/usr/bin/caffeine)",
		"remote access: Caffeine ID changed: none → 123456789"}; !slices.Equal(got, want) {
		t.Errorf("tool started: %v, want %v", got, want)
	}
	if got := texts(diffSnapshots(b, a)); !slices.Contains(got, "remote access: remote tool stopped: Caffeine") {
		t.Errorf("tool stopped: %v", got)
	}

	// Sections missing on either side are no changes of their own.
	if got := diffSnapshots(&agentv1.HostSnapshot{}, &agentv1.HostSnapshot{}); len(got) != 0 {
		t.Errorf("empty snapshots: %v", texts(got))
	}
}

// histogram is a histogram whose window ends with the hour after last,
// with the given active minutes (of 60 sampled) in the given UTC hours.
func histogram(last time.Time, hours map[time.Time]uint8) *activity.Histogram {
	h := &activity.Histogram{End: last.Unix()/3600 + 1}
	for at, a := range hours {
		i := at.Unix()/3600 - (h.End - activity.Window)
		h.Active[i], h.Sampled[i] = a, 60
	}
	return h
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestBucketActivityDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	const mon, sun = 0, 6
	// Spring forward: on Sunday 2024-03-31 Berlin goes from 02:00 CET to
	// 03:00 CEST at 01:00 UTC, so local 02:00 does not exist.
	h := histogram(utc("2024-03-31 23:00"), map[time.Time]uint8{
		utc("2024-03-31 00:00"): 10, // 01:xx CET
		utc("2024-03-31 01:00"): 20, // 03:xx CEST
		utc("2024-03-31 02:00"): 30, // 04:xx CEST
		utc("2024-03-25 08:00"): 40, // Monday 09:xx CET, the week before
	})
	active, sampled := bucketActivity(h, berlin)
	if active[sun][1] != 10 || active[sun][2] != 0 || sampled[sun][2] != 0 || active[sun][3] != 20 || active[sun][4] != 30 {
		t.Errorf("spring forward, Sunday 01–04 h: %v", active[sun][1:5])
	}
	if active[mon][9] != 40 || active[mon][8] != 0 {
		t.Errorf("Monday before the change (CET): %v", active[mon][7:11])
	}
	// Fall back: on Sunday 2024-10-27 Berlin goes from 03:00 CEST back to
	// 02:00 CET at 01:00 UTC, so local 02:00 happens twice.
	h = histogram(utc("2024-10-27 23:00"), map[time.Time]uint8{
		utc("2024-10-27 00:00"): 5,  // 02:xx CEST
		utc("2024-10-27 01:00"): 7,  // 02:xx CET
		utc("2024-10-27 02:00"): 11, // 03:xx CET
		utc("2024-10-21 07:00"): 13, // Monday 09:xx CEST, the week before
	})
	active, sampled = bucketActivity(h, berlin)
	if active[sun][2] != 12 || sampled[sun][2] != 120 || active[sun][3] != 11 || active[sun][1] != 0 {
		t.Errorf("fall back, Sunday 01–03 h: %v (sampled %v)", active[sun][1:4], sampled[sun][1:4])
	}
	if active[mon][9] != 13 {
		t.Errorf("Monday before the change (CEST): %v", active[mon][7:11])
	}
	// A half-hour zone: each UTC hour goes to the local hour its middle is
	// in (00:30 UTC is 06:00 in Kolkata).
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	h = histogram(utc("2024-06-03 23:00"), map[time.Time]uint8{utc("2024-06-03 00:00"): 9})
	if active, _ = bucketActivity(h, kolkata); active[mon][6] != 9 {
		t.Errorf("Kolkata: %v", active[mon][4:8])
	}
	// UTC, and the day boundary: Sunday 23:00 UTC is Monday in Tokyo.
	h = histogram(utc("2024-06-03 23:00"), map[time.Time]uint8{utc("2024-06-02 23:00"): 3})
	if active, _ = bucketActivity(h, time.UTC); active[sun][23] != 3 {
		t.Errorf("UTC Sunday 23 h: %v", active[sun][23])
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	if active, _ = bucketActivity(h, tokyo); active[mon][8] != 3 {
		t.Errorf("Tokyo Monday 08 h: %v", active[mon][8])
	}
}

func TestHeatmap(t *testing.T) {
	for _, c := range []struct{ v, busiest, want int }{{0, 60, 0}, {1, 60, 1}, {15, 60, 1}, {16, 60, 2}, {45, 60, 3}, {46, 60, 4}, {60, 60, 4}, {5, 0, 0}} {
		if got := heatLevel(c.v, c.busiest); got != c.want {
			t.Errorf("heatLevel(%d, %d) = %d, want %d", c.v, c.busiest, got, c.want)
		}
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	h := histogram(utc("2024-06-03 23:00"), map[time.Time]uint8{utc("2024-06-03 07:00"): 60, utc("2024-06-03 08:00"): 10})
	h.Sampled[0] = 60 // observed, idle
	m := newHeatmap(h, berlin, "Europe/Berlin")
	if !m.Declared || m.Zone != "Europe/Berlin" || m.Empty || len(m.Rows) != 7 || len(m.Rows[0].Cells) != 24 || len(m.Hours) != 24 {
		t.Fatalf("heatmap: %+v", m)
	}
	nine, ten := m.Rows[0].Cells[9], m.Rows[0].Cells[10]
	if nine.Class != "heat-4" || nine.Label != "Monday 09:00–10:00: 60 active minutes of 60 observed" || ten.Class != "heat-1" {
		t.Errorf("Monday 09 h %+v, 10 h %+v", nine, ten)
	}
	if c := m.Rows[2].Cells[3]; c.Class != "heat-none" || !strings.Contains(c.Label, "not observed") {
		t.Errorf("an unobserved hour: %+v", c)
	}
	start := time.Unix((h.End-activity.Window)*3600+1800, 0).In(berlin)
	if c := m.Rows[(int(start.Weekday())+6)%7].Cells[start.Hour()]; c.Class != "heat-0" {
		t.Errorf("an observed idle hour: %+v", c)
	}
	if m := newHeatmap(nil, time.UTC, ""); m.Declared || m.Zone != "UTC" || !m.Empty {
		t.Errorf("no histogram: %+v", m)
	}
}

// Values a forged agent may send in the media and posture sections.
const (
	xssCamera = `<img src=x onerror=alert("cam")>`
	xssAdmin  = `"><svg onload=alert("admin")>`
	xssUser   = `<b>mallory</b>`
)

// farmLaptop is laptop() with a virtual camera behind a travel router, a
// voice changer's microphone, three accounts and a sudo-installed
// AnyDesk, with hostile strings where an agent could put them.
func farmLaptop() *agentv1.HostSnapshot {
	sn := laptop()
	sn.Network.DefaultRoute.GatewayMac = "94:83:c4:a4:78:82"
	sn.Network.DefaultRoute.GatewayMaker = &agentv1.GatewayMaker{Id: "glinet", Name: "GL.iNet", Category: "travel_router", Prefix: "94:83:c4"}
	sn.Media = &agentv1.Media{
		Devices: []*agentv1.MediaDevice{
			{Kind: "video", Name: "Integrated Camera", Source: "v4l2", Location: "/sys/class/video4linux/video0"},
			{Kind: "video", Name: "OBS Virtual Camera", Source: "v4l2", Location: "/sys/class/video4linux/video2"},
			{Kind: "audio", Name: xssCamera, Source: "audio_endpoint", Location: `</code><script>alert("loc")</script>`}},
		Findings: []*agentv1.MediaFinding{
			{ToolId: "obs_virtual_camera", Name: "OBS Virtual Camera", Category: "virtual_camera", Device: "OBS Virtual Camera", Source: "v4l2"},
			{ToolId: "voicemod", Name: "Voicemod", Category: "voice_changer", Device: xssCamera, Source: "audio_endpoint"}}}
	sn.Posture = &agentv1.Posture{AdminsRead: true, LocalAdmins: []string{"ana", xssAdmin},
		InteractiveAccounts: []string{"ana", "bob", xssUser},
		ToolInstalls: []*agentv1.ToolInstall{{ToolId: "anydesk", Package: "anydesk", User: xssUser, Source: "/var/log/apt/history.log",
			At: timestamppb.New(time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC))}}}
	return sn
}

func TestMediaPostureFacts(t *testing.T) {
	f := snapshotFacts(farmLaptop())
	if f.Media == nil || len(f.Media.Devices) != 3 || f.Posture == nil {
		t.Fatalf("facts: %+v", f)
	}
	for i, want := range []string{"", "OBS Virtual Camera (virtual camera)", "Voicemod (voice changer)"} {
		if got := f.Media.Devices[i].Match; got != want {
			t.Errorf("device %d (%s) matches %q, want %q", i, f.Media.Devices[i].Name, got, want)
		}
	}
	if f.Media.Devices[2].Source != "audio endpoint" {
		t.Errorf("source %q", f.Media.Devices[2].Source)
	}
	if !slices.Equal(f.Media.Findings, []string{"OBS Virtual Camera (virtual camera) by OBS Virtual Camera", "Voicemod (voice changer) by " + xssCamera}) {
		t.Errorf("findings %q", f.Media.Findings)
	}
	if f.Posture.Admins != "ana, "+xssAdmin || len(f.Posture.Accounts) != 3 || len(f.Posture.Installs) != 1 ||
		f.Posture.Installs[0].User != xssUser || f.Posture.Installs[0].At.Hour() != 9 {
		t.Errorf("posture %+v", f.Posture)
	}
	if !strings.Contains(f.Route, "router MAC 94:83:c4:a4:78:82, GL.iNet travel router") {
		t.Errorf("route %q", f.Route)
	}

	// Admins the OS reader cannot read are said so, not shown as none;
	// an agent without the sections shows neither.
	unread := farmLaptop()
	unread.Posture = &agentv1.Posture{InteractiveAccounts: []string{"ana"}}
	if got := snapshotFacts(unread).Posture.Admins; got != "not read on this operating system" {
		t.Errorf("unread admins: %q", got)
	}
	unread.Posture.AdminsRead = true
	if got := snapshotFacts(unread).Posture.Admins; got != "none" {
		t.Errorf("no admins: %q", got)
	}
	if f := snapshotFacts(laptop()); f.Media != nil || f.Posture != nil {
		t.Errorf("an older agent's snapshot: media %+v, posture %+v", f.Media, f.Posture)
	}

	// The timeline says when a tool, an admin or an account appears.
	prev := laptop()
	prev.Posture = &agentv1.Posture{AdminsRead: true, LocalAdmins: []string{"ana"}, InteractiveAccounts: []string{"ana"}}
	got := texts(diffSnapshots(prev, farmLaptop()))
	for _, want := range []string{
		"media: virtual camera, microphone or face/voice tool found: OBS Virtual Camera (virtual camera) by OBS Virtual Camera",
		"media: virtual camera, microphone or face/voice tool found: Voicemod (voice changer) by " + xssCamera,
		"accounts: local administrator added: " + xssAdmin,
		"accounts: account signed in for the first time: bob",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("timeline lacks %q: %q", want, got)
		}
	}
	if back := texts(diffSnapshots(farmLaptop(), prev)); !slices.Contains(back, "accounts: local administrator removed: "+xssAdmin) ||
		!slices.Contains(back, "media: virtual camera, microphone or face/voice tool gone: OBS Virtual Camera (virtual camera) by OBS Virtual Camera") {
		t.Errorf("reverse timeline: %q", back)
	}
}

// TestDevicePageMediaPosture serves the device page of a laptop whose
// snapshot (stored in a real SQLite store) has media and posture
// sections full of markup: the page shows every value as text.
func TestDevicePageMediaPosture(t *testing.T) {
	e := newPageEnv(t, Options{})
	device := e.ingest(t, "lt-farm-1", "198.51.100.20", farmLaptop(), "media", nil, fires{})
	code, body := e.signIn(t, "vic").get("/ui/devices/" + device)
	if code != 200 {
		t.Fatalf("device page: %d\n%s", code, body)
	}
	for _, want := range []string{
		"<h3>Cameras and microphones</h3>", "<h3>Accounts and admin rights</h3>",
		"OBS Virtual Camera (virtual camera)", "Voicemod (voice changer)", "audio endpoint", "Integrated Camera",
		"&lt;img src=x onerror=alert(&#34;cam&#34;)&gt;", "&lt;/code&gt;&lt;script&gt;alert(&#34;loc&#34;)&lt;/script&gt;",
		"ana, &#34;&gt;&lt;svg onload=alert(&#34;admin&#34;)&gt;", "&lt;b&gt;mallory&lt;/b&gt;",
		"/var/log/apt/history.log", "2026-11-20 09:30 UTC", "GL.iNet travel router",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	for _, bad := range []string{xssCamera, xssAdmin, xssUser, "<script>alert("} {
		if strings.Contains(body, bad) {
			t.Errorf("device page holds %q unescaped", bad)
		}
	}
}
