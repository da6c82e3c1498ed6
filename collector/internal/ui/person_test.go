package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Strings an attacker controls on their laptop: its host name, a USB
// product string and the path of a remote-access tool's process.
const (
	evilHost    = `<img src=x onerror=alert(1)>`
	evilProduct = `<script>alert("usb")</script>`
	evilPath    = `/tmp/<img src=y onerror=alert(2)>/anydesk`
)

// monday is when the seeded device first reported (a Monday; Berlin is on
// CET, UTC+1).
var monday = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// pages is a UI over a real SQLite store holding a person (Ana, declared
// in Europe/Berlin) bound by serial to a device that sent two differing
// snapshots from two egress addresses, an alert on it, and extra devices.
type pages struct {
	srv    *httptest.Server
	st     *store.Store
	device string
}

// alwaysFires raises a KVM alert on every device evaluation.
type alwaysFires struct{}

func (alwaysFires) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	return []detect.Finding{{RuleID: "kvm_usb_identity", Title: "IP-KVM by its USB identity", Severity: "high", Category: "kvm",
		Description: "A PiKVM is connected."}}, nil
}

func (alwaysFires) AutoResolve(detect.Scope) []string { return nil }

// snapshotOne is the device's first snapshot: a laptop at home in Berlin.
func snapshotOne() *agentv1.HostSnapshot {
	return &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{AgentId: "agent-1", Hostname: evilHost, SerialNumber: "SN-KVM-1", HardwareVendor: "Dell Inc.",
			HardwareModel: "Latitude 7440", AgentVersion: "1.2.0",
			Os: &agentv1.OperatingSystem{Family: "linux", Name: "Debian GNU/Linux", Version: "12", Arch: "amd64"}},
		ScanStartedAt: timestamppb.New(monday),
		Signals:       []*agentv1.SignalStatus{{Name: "usb", State: agentv1.SignalStatus_STATE_OK}},
		Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{{Location: "1-0", VendorId: 0x1d6b, ProductId: 0x0002,
			Manufacturer: "Linux Foundation", Product: "2.0 root hub"}}},
		Displays: &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN, Displays: []*agentv1.Display{{Connector: "eDP-1",
			ManufacturerId: "BOE", ProductCode: 0x0b9c, Internal: true, Active: true, EdidChecksumOk: true}}},
		Network: &agentv1.Network{
			Interfaces:   []*agentv1.NetworkInterface{{Name: "wlan0", Kind: agentv1.NetworkInterface_KIND_WIFI, Mac: "aa:bb:cc:11:22:33", Up: true, Addresses: []string{"192.168.1.20/24"}}},
			DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: "aa:bb:cc:00:00:01"},
			Wifi:         &agentv1.Wifi{Available: true, Interface: "wlan0", Ssid: "Home", Bssid: "aa:bb:cc:00:00:02"},
			DnsServers:   []string{"192.168.1.1"}},
		Locale: &agentv1.Locale{Timezone: "Europe/Berlin", UtcOffsetSeconds: 3600, SystemLocale: "de_DE.UTF-8",
			KeyboardLayouts: []*agentv1.KeyboardLayout{{User: "ana", Layout: "de"}}},
		Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{User: "ana", Type: agentv1.LoginSession_TYPE_CONSOLE, Terminal: "tty2"}}},
	}
}

// snapshotTwo is an hour later: a PiKVM, AnyDesk, an external display, a
// café's Wi-Fi and New York time.
func snapshotTwo() *agentv1.HostSnapshot {
	sn := snapshotOne()
	sn.ScanStartedAt = timestamppb.New(monday.Add(time.Hour))
	sn.Usb.Devices = append(sn.Usb.Devices, &agentv1.UsbDevice{Location: "3-1", VendorId: 0x1d6b, ProductId: 0x0104,
		Manufacturer: "PiKVM", Product: evilProduct, Serial: "CAFEBABE", Hid: &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true}})
	sn.RemoteAccess = &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
		Installs:  []*agentv1.InstallEvidence{{Kind: "package", Location: "anydesk", Version: "6.3.0"}},
		Processes: []*agentv1.ProcessEvidence{{Name: "anydesk", Path: evilPath, Pid: 4242, User: "ana"}}}}}
	sn.Displays.Displays = append(sn.Displays.Displays, &agentv1.Display{Connector: "HDMI-A-1", ManufacturerId: "DEL",
		MonitorName: "DELL U2720Q", SerialString: "ABC123", Active: true, EdidChecksumOk: true, WidthMm: 600, HeightMm: 340})
	sn.Network.Wifi.Ssid = "Cafe"
	sn.Locale.Timezone, sn.Locale.UtcOffsetSeconds = "America/New_York", -18000
	return sn
}

func newPages(t *testing.T) *pages {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	for _, u := range [][2]string{{"ana", accounts.RoleAnalyst}, {"vic", accounts.RoleViewer}} {
		if _, err := accounts.New(st).CreateUser(ctx, u[0], u[1], "correct horse battery", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.UpsertPerson(ctx, store.Person{Email: "ana@corp.example", Name: "Ana Example", Username: "ana", DeviceSerial: "SN-KVM-1",
		Country: "DE", City: "Berlin", Timezone: "Europe/Berlin", WorkHours: "09:00-17:00"}, "test"); err != nil {
		t.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	enroll := func(agentID, key, host string) string {
		id := store.DeviceIdentity{SerialNumber: "SN-" + key, Hostname: host, OSFamily: "linux", OSName: "Debian GNU/Linux", OSVersion: "12", AgentVersion: "1.2.0"}
		if key == "KVM-1" {
			id.HardwareVendor, id.HardwareModel = "Dell Inc.", "Latitude 7440"
		}
		dev, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-" + key,
			Identity: id, CertSerial: "c-" + agentID, CertNotAfter: monday.AddDate(1, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}
	dev := enroll("agent-1", "KVM-1", evilHost)
	a, err := st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	home := detect.Egress{IP: "198.51.100.1", Status: "ok", Country: "DE", City: "Berlin", ASN: 3320, Org: "Deutsche Telekom AG", NetworkClass: "residential"}
	dc := detect.Egress{IP: "203.0.113.9", Status: "ok", Country: "NL", City: "Amsterdam", ASN: 14061, Org: "DigitalOcean, LLC",
		NetworkClass: "hosting", NetworkName: "DigitalOcean"}
	for i, r := range []struct {
		sn     *agentv1.HostSnapshot
		egress detect.Egress
	}{{snapshotOne(), home}, {snapshotTwo(), dc}} {
		at := monday.Add(time.Duration(i) * time.Hour)
		data, digest, sections := ingest.Digest(r.sn)
		rep := store.IngestReport{ReportID: fmt.Sprintf("r%d", i), Sequence: uint64(i + 1), CreatedAt: at, Snapshot: r.sn, Data: data,
			Digest: digest, Sections: sections,
			Identity: store.DeviceIdentity{SerialNumber: "SN-KVM-1", Hostname: evilHost, OSFamily: "linux", OSName: "Debian GNU/Linux", OSVersion: "12",
				HardwareVendor: "Dell Inc.", HardwareModel: "Latitude 7440", AgentVersion: "1.2.0"}}
		if i == 0 {
			rep.Activity = twoWeeks()
		}
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: r.egress.IP, Egress: r.egress, ReceivedAt: at, ReportInterval: 5 * time.Minute,
			Reports: []store.IngestReport{rep}}, alwaysFires{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 52 {
		enroll(fmt.Sprintf("agent-b%02d", i), fmt.Sprintf("B%02d", i), fmt.Sprintf("bulk-%02d", i))
	}
	h, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &pages{srv: srv, st: st, device: dev}
}

// twoWeeks is the activity of the two weeks up to monday: office hours
// in Berlin (08:00–16:00 UTC) on weekdays, and someone at the keyboard
// from 02:00 to 05:00 UTC on Tuesdays to Thursdays.
func twoWeeks() []activity.Hour {
	var out []activity.Hour
	for at := monday.Add(-14 * 24 * time.Hour).Truncate(time.Hour); at.Before(monday); at = at.Add(time.Hour) {
		h := activity.Hour{Start: at, Sampled: 60}
		wd := at.Weekday()
		switch {
		case wd >= time.Monday && wd <= time.Friday && at.Hour() >= 8 && at.Hour() < 16:
			h.Active = uint32(30 + 10*(at.Hour()%3))
		case wd >= time.Tuesday && wd <= time.Thursday && at.Hour() >= 2 && at.Hour() < 5:
			h.Active = 55
		}
		out = append(out, h)
	}
	return out
}

// mondayNine is the heat map's cell for Monday 09:00 in Berlin: what
// twoWeeks has in the UTC hours that are then (08:00 UTC, on CET).
func mondayNine() string {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	var active, sampled uint32
	for _, h := range twoWeeks() {
		if l := h.Start.Add(30 * time.Minute).In(berlin); l.Weekday() == time.Monday && l.Hour() == 9 {
			active, sampled = active+h.Active, sampled+h.Sampled
		}
	}
	return fmt.Sprintf(`title="Monday 09:00–10:00: %d active minutes of %d observed"`, active, sampled)
}

// browse signs in as user and returns a client that does not follow
// redirects.
func (p *pages) browse(t *testing.T, user string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if user == "" {
		return c
	}
	resp, err := uitest.PostLogin(c, p.srv.URL, url.Values{"username": {user}, "password": {"correct horse battery"}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %s", user, resp.Status)
	}
	return c
}

func (p *pages) get(t *testing.T, c *http.Client, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(p.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// wantIn fails the test for each want missing from body.
func wantIn(t *testing.T, page, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", page, w)
		}
	}
}

// inert checks that no agent string came through as markup, only
// escaped, and that the page has no inline script or style.
func inert(t *testing.T, page, body string) {
	t.Helper()
	for _, raw := range []string{"<img src=x", "<img src=y", `<script>alert("usb")`, "onerror=alert(1)>"} {
		if strings.Contains(body, raw) {
			t.Errorf("%s contains the raw markup %q", page, raw)
		}
	}
	if n := strings.Count(body, "<script"); n == 0 || n != strings.Count(body, `<script src="/ui/static/`) {
		t.Errorf("%s has %d script elements, not all of them from /ui/static/", page, n)
	}
	if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("%s has inline style", page)
	}
}

func TestDevicePage(t *testing.T) {
	p := newPages(t)
	c := p.browse(t, "vic") // a viewer reads everything here
	code, body, _ := p.get(t, c, "/ui/devices/"+p.device)
	if code != http.StatusOK {
		t.Fatalf("device page: %d\n%s", code, body)
	}
	inert(t, "device page", body)
	wantIn(t, "device page", body,
		// Identity, person and binding.
		`<h1 class="host">&lt;img src=x onerror=alert(1)&gt;</h1>`, "SN-KVM-1", "Dell Inc. Latitude 7440", "Debian GNU/Linux 12 (amd64)",
		`<a href="/ui/people/ana@corp.example">ana@corp.example</a> (Ana Example); bound because the HR export names this device&#39;s serial number`,
		"<code>agent-1</code>",
		// Risk and alerts.
		`<span class="score">`, "<code>kvm_usb_identity</code>", `<a href="/ui/alerts/`,
		// The latest facts, by family.
		"<th scope=\"row\">AnyDesk</th>", "running, installed", "package: anydesk (6.3.0)",
		"process <code>anydesk /tmp/&lt;img src=y onerror=alert(2)&gt;/anydesk (pid 4242) (ana)</code>",
		"<td><code>1d6b:0104</code></td><td>PiKVM</td><td>&lt;script&gt;alert(&#34;usb&#34;)&lt;/script&gt;</td><td class=\"host\">CAFEBABE</td><td>keyboard, absolute pointer</td>",
		"<td>DEL</td><td>DELL U2720Q</td><td class=\"host\">ABC123</td><td>600 × 340 mm</td>", "Lid: open.",
		"via 192.168.1.1 on wlan0 (router MAC aa:bb:cc:00:00:01)", "Cafe (access point aa:bb:cc:00:00:02) on wlan0",
		"America/New_York (UTC−05:00)", "de_DE.UTF-8", "<li>de for ana</li>", `<td class="host">ana</td><td>console</td>`,
		// The timeline, from the two snapshots and the egress change.
		"USB device appeared: 1d6b:0104 PiKVM &lt;script&gt;alert(&#34;usb&#34;)&lt;/script&gt; serial CAFEBABE",
		"remote tool installed: AnyDesk (running)", "display connected: DEL DELL U2720Q serial ABC123",
		"time zone changed: Europe/Berlin → America/New_York", "Wi-Fi network changed: Home → Cafe",
		"egress network changed: 198.51.100.1 → 203.0.113.9 (hosting network DigitalOcean, AS14061 DigitalOcean, LLC; Amsterdam, NL)",
		"first snapshot: 0 remote-access tools, 1 USB devices, 1 displays, 1 network interfaces, 1 sessions",
		"first report from 198.51.100.1",
		// Network history.
		"<td><code>203.0.113.9</code></td><td>hosting network DigitalOcean, AS14061 DigitalOcean, LLC</td><td>Amsterdam, NL</td>",
		"<td><code>198.51.100.1</code></td><td>residential network, AS3320 Deutsche Telekom AG</td><td>Berlin, DE</td>",
		// The heat map in Ana's zone: 08:00 UTC is 09:00 in Berlin.
		"Hours in <strong>Europe/Berlin</strong>, the person's declared time zone.",
		mondayNine(), `<th scope="row">Monday</th>`, `<th scope="col">09</th>`,
		// Office hours end at 16:00 UTC, 17:00 in Berlin.
		`<td class="heat-0" title="Monday 17:00–18:00: 0 active minutes of 120 observed">`,
	)
	// Newest first: the second snapshot's changes before the first's.
	if i, j := strings.Index(body, "USB device appeared"), strings.Index(body, "first snapshot:"); i < 0 || j < i {
		t.Errorf("timeline order: USB at %d, first snapshot at %d", i, j)
	}

	if code, _, _ := p.get(t, c, "/ui/devices/dev_nosuchdevice"); code != http.StatusNotFound {
		t.Errorf("unknown device: %d", code)
	}
	if code, _, _ := p.get(t, c, "/ui/devices/"+p.device+"?before=x"); code != http.StatusBadRequest {
		t.Errorf("bad before: %d", code)
	}
	// Signed out: to the sign-in page, and back here after.
	code, _, h := p.get(t, p.browse(t, ""), "/ui/devices/"+p.device)
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/devices/"+p.device) {
		t.Errorf("signed out: %d %q", code, h.Get("Location"))
	}

	// The alert pages link the device and the person.
	_, queue, _ := p.get(t, c, "/ui/alerts")
	wantIn(t, "alert queue", queue, `<a href="/ui/devices/`+p.device+`">&lt;img src=x onerror=alert(1)&gt;</a>`,
		`<a href="/ui/people/ana%40corp.example">ana@corp.example</a>`)
}

var deviceLink = regexp.MustCompile(`<td class="host"><a href="/ui/devices/(dev_[0-9a-f]+)">`)

func TestDeviceList(t *testing.T) {
	p := newPages(t)
	c := p.browse(t, "vic")
	// Highest risk first: the device with the alert.
	_, body, _ := p.get(t, c, "/ui/devices")
	inert(t, "device list", body)
	m := deviceLink.FindAllStringSubmatch(body, -1)
	if len(m) != 50 || m[0][1] != p.device {
		t.Fatalf("first page: %d devices, first %v", len(m), m[:min(len(m), 1)])
	}
	wantIn(t, "device list", body, `<a href="/ui/people/ana@corp.example">ana@corp.example</a>`, `rel="next"`)
	// Page by page, every device once.
	seen := map[string]bool{}
	next := "/ui/devices?sort=last_seen"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("the list does not end")
		}
		code, body, _ := p.get(t, c, next)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", next, code)
		}
		for _, m := range deviceLink.FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Fatalf("%s shown twice", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if n := regexp.MustCompile(`rel="next" href="([^"]+)"`).FindStringSubmatch(body); n != nil {
			next = strings.ReplaceAll(n[1], "&amp;", "&")
		}
	}
	if len(seen) != 53 || !seen[p.device] {
		t.Errorf("paged through %d devices, want 53", len(seen))
	}
	// Search: a host name prefix, a serial, a person.
	for q, want := range map[string]int{"q=BULK-0&field=host": 10, "q=sn-kvm&field=serial": 1, "q=ana@&field=person": 1, "q=bulk-5": 2, "q=nothing": 0} {
		_, body, _ := p.get(t, c, "/ui/devices?"+q)
		if got := len(deviceLink.FindAllStringSubmatch(body, -1)); got != want {
			t.Errorf("search %s: %d devices, want %d", q, got, want)
		}
	}
	if code, _, _ := p.get(t, c, "/ui/devices?cursor=garbage"); code != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", code)
	}
}

func TestPersonPage(t *testing.T) {
	p := newPages(t)
	c := p.browse(t, "vic")
	code, body, _ := p.get(t, c, "/ui/people/ana@corp.example")
	if code != http.StatusOK {
		t.Fatalf("person page: %d\n%s", code, body)
	}
	inert(t, "person page", body)
	wantIn(t, "person page", body, "<h1>Ana Example</h1>", "Berlin, DE", "09:00-17:00", "SN-KVM-1",
		`<a href="/ui/devices/`+p.device+`">&lt;img src=x onerror=alert(1)&gt;</a>`, "<td>serial number</td>",
		"<code>kvm_usb_identity</code>", `<a href="/ui/alerts/`,
		"Hours in <strong>Europe/Berlin</strong>", mondayNine())
	// The email in any case; an unknown person.
	if code, _, _ := p.get(t, c, "/ui/people/ANA@corp.example"); code != http.StatusOK {
		t.Errorf("upper-case email: %d", code)
	}
	if code, _, _ := p.get(t, c, "/ui/people/nobody@corp.example"); code != http.StatusNotFound {
		t.Errorf("unknown person: %d", code)
	}

	_, list, _ := p.get(t, c, "/ui/people?q=ana")
	wantIn(t, "people list", list, `<a href="/ui/people/ana@corp.example">ana@corp.example</a>`, "Ana Example", "Europe/Berlin")
	if _, none, _ := p.get(t, c, "/ui/people?q=zed"); strings.Contains(none, "ana@corp.example") {
		t.Error("search zed shows ana")
	}
	if code, _, h := p.get(t, p.browse(t, ""), "/ui/people"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login") {
		t.Errorf("people signed out: %d", code)
	}
}

// TestDeviceTimelinePages pages through a timeline longer than a page:
// 52 snapshots, each on another Wi-Fi network.
func TestDeviceTimelinePages(t *testing.T) {
	p := newPages(t)
	ctx := t.Context()
	_, sec, err := p.st.CreateSecret(ctx, "roamer")
	if err != nil {
		t.Fatal(err)
	}
	id := store.DeviceIdentity{SerialNumber: "SN-ROAM", Hostname: "roamer", OSFamily: "linux"}
	dev, err := p.st.Enroll(ctx, store.Enrollment{AgentID: "agent-roam", SecretID: sec.ID, IP: "198.51.100.2", HardwareKey: "hw-roam",
		Identity: id, CertSerial: "c-roam", CertNotAfter: monday.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.st.AgentByID(ctx, "agent-roam")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 52 {
		sn := snapshotOne()
		sn.Identity.Hostname, sn.Identity.SerialNumber = "roamer", "SN-ROAM"
		sn.Network.Wifi.Ssid = fmt.Sprintf("net-%02d", i)
		data, digest, sections := ingest.Digest(sn)
		at := monday.Add(time.Duration(i) * time.Minute)
		if _, err := p.st.Ingest(ctx, store.IngestBatch{Agent: a, IP: "198.51.100.2", ReceivedAt: at, ReportInterval: 5 * time.Minute,
			Reports: []store.IngestReport{{ReportID: fmt.Sprint("r", i), Sequence: uint64(i + 1), CreatedAt: at, Identity: id, Snapshot: sn,
				Data: data, Digest: digest, Sections: sections}}}, alwaysFires{}); err != nil {
			t.Fatal(err)
		}
	}
	c := p.browse(t, "vic")
	changes := regexp.MustCompile(`Wi-Fi network changed: net-(\d\d) → net-(\d\d)`)
	older := regexp.MustCompile(`<a rel="next" href="(/ui/devices/[^"]+)">Older changes`)
	_, first, _ := p.get(t, c, "/ui/devices/"+dev)
	m := changes.FindAllStringSubmatch(first, -1)
	if len(m) != 50 || m[0][2] != "51" || m[49][2] != "02" || strings.Contains(first, "first snapshot:") {
		t.Fatalf("first page: %d changes, %v … %v", len(m), m[0], m[len(m)-1])
	}
	if strings.Contains(first, "first report from 198.51.100.2") {
		t.Error("the first page shows an egress change older than its snapshots")
	}
	next := older.FindStringSubmatch(first)
	if next == nil {
		t.Fatal("no link to older changes")
	}
	code, second, _ := p.get(t, c, strings.ReplaceAll(next[1], "&amp;", "&"))
	m = changes.FindAllStringSubmatch(second, -1)
	if code != http.StatusOK || len(m) != 1 || m[0][1] != "00" || m[0][2] != "01" || !strings.Contains(second, "first snapshot:") ||
		older.MatchString(second) {
		t.Errorf("second page (%d): changes %v, first snapshot %v", code, m, strings.Contains(second, "first snapshot:"))
	}
	if !strings.Contains(second, "first report from 198.51.100.2") {
		t.Error("the older page lacks the egress change of its period")
	}
	if code, _, _ := p.get(t, c, "/ui/devices/"+dev+"?before=999999"); code != http.StatusBadRequest {
		t.Errorf("before a snapshot that does not exist: %d", code)
	}
}
