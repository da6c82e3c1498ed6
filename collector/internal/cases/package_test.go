package cases_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Strings an attacker controls: the laptop's host name (from its agent),
// the alert evidence (from its snapshot) and, for good measure, what an
// insider typed into HR's export and a case note.
const (
	hostileHost     = `<script>window.pwned=1</script>`
	hostileEvidence = `<img src=x onerror="window.pwned=2">`
	hostileName     = `Mallory "</td><svg onload=alert(3)>`
	hostileNote     = `</pre><iframe src="https://evil.example/">`
	hostileKVM      = `Composite KVM <img src=x onerror="window.pwned=4">`
)

// The items the laptop's second snapshot adds, as its case's timeline
// must name them (snapdiff's words, as on the device page).
var (
	anydeskAppeared = "remote tool installed: AnyDesk (running)"
	kvmAppeared     = "USB device appeared: 1d6b:0104 PiKVM " + hostileKVM + " serial CAFEBABE"
	zoneChanged     = "time zone changed: America/Boise → Asia/Pyongyang"
)

// homeSnapshot is the laptop at home; farmSnapshot the same laptop once
// AnyDesk was installed, an IP-KVM attached and the clock set to
// Pyongyang's time zone.
func homeSnapshot() *agentv1.HostSnapshot {
	return &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: hostileHost, SerialNumber: "SN-X", AgentVersion: "1.0.0"},
		Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{{Location: "1-0", VendorId: 0x1d6b, ProductId: 0x0002,
			Manufacturer: "Linux Foundation", Product: "2.0 root hub"}}},
		Locale: &agentv1.Locale{Timezone: "America/Boise"}}
}

func farmSnapshot() *agentv1.HostSnapshot {
	sn := homeSnapshot()
	sn.RemoteAccess = &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
		Installs:  []*agentv1.InstallEvidence{{Kind: "package", Location: "anydesk"}},
		Processes: []*agentv1.ProcessEvidence{{Name: "anydesk", Path: "/usr/bin/anydesk"}}}}}
	sn.Usb.Devices = append(sn.Usb.Devices, &agentv1.UsbDevice{Location: "3-1", VendorId: 0x1d6b, ProductId: 0x0104,
		Manufacturer: "PiKVM", Product: hostileKVM, Serial: "CAFEBABE", Hid: &agentv1.HidSummary{Keyboard: true, AbsolutePointer: true}})
	sn.Locale.Timezone = "Asia/Pyongyang"
	return sn
}

type fires []detect.Finding

func (f fires) Evaluate(_ context.Context, scope detect.Scope, _ detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice {
		return f, nil
	}
	return nil, nil
}

func (fires) AutoResolve(detect.Scope) []string { return nil }

// hostileCase stores a laptop named hostileHost bound to a person named
// hostileName, its two snapshots (at home, then with AnyDesk and an
// IP-KVM whose product name is markup), two alerts on it gathered in a
// case by hand, a note and a ticked step, on a real store (a SQLite file
// or PostgreSQL, by dsn); it returns the store and the case.
func hostileCase(t *testing.T, dsn string) (*store.Store, int64) {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, dsn)
	if _, err := st.UpsertPerson(ctx, store.Person{Email: "mallory@example.com", Name: hostileName, DeviceSerial: "SN-X",
		Country: "US", City: "Boise", Timezone: "America/Boise", WorkHours: "09:00-17:00"}, "test"); err != nil {
		t.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := store.DeviceIdentity{SerialNumber: "SN-X", Hostname: hostileHost, OSFamily: "linux", AgentVersion: "1.0.0"}
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-1", SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-1",
		Identity: id, CertSerial: "c1", CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	a, err := st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	rules := fires{
		{RuleID: "remote_session_active", Title: "Remote session", Severity: "high", Description: "d", Evidence: map[string]any{"tool": hostileEvidence}},
		{RuleID: "kvm_usb_identity", Title: "IP-KVM", Severity: "medium", Description: "d", Evidence: map[string]any{"product": "PiKVM"}},
	}
	egress := detect.Egress{IP: "198.51.100.1", Status: "ok", Country: "KP", City: "Pyongyang", NetworkClass: "residential"}
	for i, sn := range []*agentv1.HostSnapshot{homeSnapshot(), farmSnapshot()} {
		at := time.Now().Add(time.Duration(i-2) * time.Hour)
		r := store.IngestReport{ReportID: fmt.Sprint("r", i), Sequence: uint64(i + 1), CreatedAt: at, Identity: id, Snapshot: sn}
		r.Data, r.Digest, r.Sections = ingest.Digest(sn)
		ev := fires(nil) // the alerts come with the second snapshot
		if i == 1 {
			ev = rules
		}
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: egress.IP, ReceivedAt: at, ReportInterval: time.Minute,
			Egress: egress, Reports: []store.IngestReport{r}}, ev); err != nil {
			t.Fatal(err)
		}
	}
	alerts, err := st.ListAlerts(ctx, store.AlertFilter{})
	if err != nil || len(alerts) != 2 {
		t.Fatalf("alerts %v %v", alerts, err)
	}
	c, err := st.CreateCase(ctx, "Case of "+hostileHost, []int64{alerts[0].ID, alerts[1].ID}, "user:ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCaseNote(ctx, c.ID, hostileNote, "user:ana"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TickStep(ctx, c.ID, "preserve_evidence", true, "exported", "user:ana"); err != nil {
		t.Fatal(err)
	}
	return st, c.ID
}

func unzip(t *testing.T, data []byte, dir string) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = b
		if dir != "" {
			if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestEvidencePackage: a case's package holds the report, the facts and
// the signed manifest; the hostile strings are text in the report and
// intact in the facts; Verify accepts it (and with the collector's key as
// the trusted one), and refuses it when a file, the manifest or the
// signature was changed, a file added, or it is signed by another key;
// the documented commands (sha256sum -c, openssl pkeyutl -verify) accept
// the unpacked package.
func TestEvidencePackage(t *testing.T) {
	storetest.Engines(t, testEvidencePackage)
}

func testEvidencePackage(t *testing.T, dsn string) {
	st, id := hostileCase(t, dsn)
	ctx := t.Context()
	key, err := st.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := st.SigningKey(ctx); err != nil || !again.Equal(key) {
		t.Fatalf("the signing key changed between calls: %v", err)
	}
	rec, err := cases.Build(ctx, st, id, "user:ana", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Alerts) != 2 || len(rec.Devices) != 1 || len(rec.People) != 1 || len(rec.Story) < 3 || len(rec.Timeline) < 3 || len(rec.Notes) != 1 {
		t.Fatalf("record: %d alerts, %d devices, %d people, story %q, %d timeline events, %d notes",
			len(rec.Alerts), len(rec.Devices), len(rec.People), rec.Story, len(rec.Timeline), len(rec.Notes))
	}
	if !strings.Contains(strings.Join(rec.Story, " "), "Remote session") {
		t.Errorf("the story does not say what drove the laptop: %q", rec.Story)
	}
	checkChanges(t, rec.Timeline)
	if len(rec.Capped) != 0 {
		t.Errorf("a small case is capped: %q", rec.Capped)
	}
	pkg, err := cases.Export(rec, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := unzip(t, pkg.Zip, dir)
	report := string(files[cases.ReportName])
	for _, bad := range []string{hostileHost, hostileEvidence, hostileKVM, "<svg onload", "<iframe", "</pre><iframe", "<img"} {
		if strings.Contains(report, bad) {
			t.Errorf("the report holds %q as markup", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;window.pwned=1&lt;/script&gt;", "Mallory &#34;&lt;/td&gt;&lt;svg onload=alert(3)&gt;",
		"What happened", "Where the laptops really were", pkg.FactsSHA256, "device · remote access", "device · USB",
		html.EscapeString(anydeskAppeared), html.EscapeString(kvmAppeared), html.EscapeString(zoneChanged), cases.Fingerprint(key.Public().(ed25519.PublicKey)),
		`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	var back cases.Record
	if err := json.Unmarshal(files[cases.FactsName], &back); err != nil || back.Devices[0].Hostname != hostileHost || back.Format != cases.Format {
		t.Errorf("facts.json: %v %+v", err, back.Devices)
	}
	checkChanges(t, back.Timeline)
	if strings.Contains(report, `class="meta capped"`) || back.Capped == nil {
		t.Errorf("an uncapped package says it is capped, or its facts lack the (empty) list: %q", back.Capped)
	}

	v, err := cases.Verify(pkg.Zip, key.Public().(ed25519.PublicKey))
	if err != nil || len(v.Files) != 3 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if _, err := cases.Verify(pkg.Zip, nil); err != nil {
		t.Errorf("verify with the packaged key: %v", err)
	}
	otherPub, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := cases.Verify(pkg.Zip, otherPub); !errors.Is(err, cases.ErrTampered) {
		t.Errorf("verify against another trusted key: %v", err)
	}
	rezip := func(edit func(map[string][]byte)) []byte {
		m := unzip(t, pkg.Zip, "")
		edit(m)
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, n := range []string{cases.ReportName, cases.FactsName, cases.VerifyName, cases.ManifestName, cases.SignatureName, cases.KeyName, "extra.txt"} {
			if data, ok := m[n]; ok {
				w, _ := zw.Create(n)
				w.Write(data)
			}
		}
		zw.Close()
		return b.Bytes()
	}
	for name, edit := range map[string]func(map[string][]byte){
		"facts altered": func(m map[string][]byte) {
			m[cases.FactsName] = bytes.Replace(m[cases.FactsName], []byte("Pyongyang"), []byte("Boise"), 1)
		},
		"report altered":   func(m map[string][]byte) { m[cases.ReportName] = append(m[cases.ReportName], ' ') },
		"manifest altered": func(m map[string][]byte) { m[cases.ManifestName] = bytes.ToUpper(m[cases.ManifestName]) },
		"file added":       func(m map[string][]byte) { m["extra.txt"] = []byte("x") },
		"signature gone":   func(m map[string][]byte) { delete(m, cases.SignatureName) },
		"re-signed by another key": func(m map[string][]byte) {
			m[cases.SignatureName] = ed25519.Sign(otherKey, m[cases.ManifestName])
		},
	} {
		if _, err := cases.Verify(rezip(edit), nil); !errors.Is(err, cases.ErrTampered) {
			t.Errorf("%s: verify says %v, want it refused", name, err)
		}
	}
	// A package re-signed with another key and carrying that key verifies
	// on its own, but not against the collector's key.
	forged := rezip(func(m map[string][]byte) {
		m[cases.SignatureName] = ed25519.Sign(otherKey, m[cases.ManifestName])
		m[cases.KeyName] = cases.PublicKeyPEM(otherPub)
	})
	if _, err := cases.Verify(forged, key.Public().(ed25519.PublicKey)); !errors.Is(err, cases.ErrTampered) {
		t.Errorf("forged package against the collector's key: %v", err)
	}

	// The documented commands, on the unpacked package.
	for _, tool := range []string{"sha256sum", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed; skipping the command-line check", tool)
		}
	}
	for _, args := range [][]string{{"sha256sum", "-c", cases.ManifestName},
		{"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", cases.KeyName, "-rawin", "-in", cases.ManifestName, "-sigfile", cases.SignatureName}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, cases.FactsName), bytes.Replace(files[cases.FactsName], []byte("Pyongyang"), []byte("Boise"), 1), 0o644)
	cmd := exec.Command("sha256sum", "-c", cases.ManifestName)
	cmd.Dir = dir
	if err := cmd.Run(); err == nil {
		t.Error("sha256sum -c accepts an altered facts.json")
	}
}

// checkChanges: the timeline names, item by item, what the laptop's
// second snapshot changed (AnyDesk, the IP-KVM with its product name
// verbatim, the time zone), at that snapshot's time, with the reports
// compared as the source; the first snapshot is described in counts.
func checkChanges(t *testing.T, tl []cases.Event) {
	t.Helper()
	var second time.Time
	for _, want := range []struct{ family, text string }{{"remote access", anydeskAppeared}, {"USB", kvmAppeared}, {"locale", zoneChanged},
		{"snapshot", "first snapshot: 0 remote-access tools, 1 USB devices, 0 displays, 0 network interfaces, 0 sessions"}} {
		i := slices.IndexFunc(tl, func(e cases.Event) bool { return e.Text == want.text })
		if i < 0 {
			t.Errorf("the timeline lacks %q: %+v", want.text, tl)
			continue
		}
		e := tl[i]
		if e.Kind != "device" || e.Family != want.family || e.Device != hostileHost || !strings.HasPrefix(e.Source, "agent snapshot, report r") {
			t.Errorf("event %+v, want a device event of family %q on %q", e, want.family, hostileHost)
		}
		if want.family == "snapshot" {
			if e.Source != "agent snapshot, report r0" || !e.At.Before(second) {
				t.Errorf("first snapshot %+v, after the second (%v)", e, second)
			}
			continue
		}
		if e.Source != "agent snapshot, report r1, compared with report r0" || !second.IsZero() && !e.At.Equal(second) {
			t.Errorf("change %+v: want it at the second snapshot's time %v, from r1 against r0", e, second)
		}
		second = e.At
	}
}

// TestLayoutWhere: distances place dots above the declared city on a
// square-root scale, unknown distances on their own band, and labels do
// not overlap.
func TestLayoutWhere(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if d := cases.Distance(51.5074, -0.1278, 48.8566, 2.3522); d != 344 {
		t.Errorf("London–Paris %v km, want 344", d)
	}
	if d := cases.Distance(43.6150, -116.2023, 39.0392, 125.7625); d < 8800 || d > 9000 {
		t.Errorf("Boise–Pyongyang %v km, want about 8,900", d)
	}
	c := cases.LayoutWhere([]cases.Place{
		{At: t0, Hostname: "a", Place: "Boise, US", DistanceKM: 0},
		{At: t0.Add(time.Hour), Hostname: "a", Place: "Pyongyang, KP", DistanceKM: 9200},
		{At: t0.Add(2 * time.Hour), Hostname: "b", Place: "", DistanceKM: -1},
		{At: t0.Add(3 * time.Hour), Hostname: "c", Place: "Pyongyang, KP", DistanceKM: 9300},
	})
	if !slices.ContainsFunc(c.Labels, func(l cases.WhereMark) bool { return l.Text == "Pyongyang, KP · 9,200–9,300 km" }) {
		t.Errorf("labels %+v, want Pyongyang with its range of distances", c.Labels)
	}
	if len(c.Dots) != 4 || c.Dots[0].Y != c.PlotBottom || c.Dots[1].Y >= c.Dots[0].Y || c.Dots[2].Y != c.UnknownY || c.Dots[0].X >= c.Dots[1].X {
		t.Errorf("dots %+v", c.Dots)
	}
	for i := 1; i < len(c.Labels); i++ {
		if c.Labels[i].Y < c.Labels[i-1].Y+14 {
			t.Errorf("labels overlap: %+v", c.Labels)
		}
	}
	svg, err := cases.WhereSVG([]cases.Place{{At: t0, Hostname: hostileHost, Place: hostileEvidence, DistanceKM: 5}})
	if err != nil || strings.Contains(string(svg), "<script>") || strings.Contains(string(svg), "<img") {
		t.Errorf("where SVG: %v\n%s", err, svg)
	}
}

// TestCaseSignins: the person's identity-provider sign-ins are on the
// case's timeline and in its where view, with their provider and event.
func TestCaseSignins(t *testing.T) {
	st, id := hostileCase(t, filepath.Join(t.TempDir(), "bonafide.db"))
	ctx := t.Context()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	si := store.Signin{Provider: "okta", EventID: "evt-1", At: at, Email: "mallory@example.com", Result: "success", IP: "203.0.113.9",
		Egress: detect.Egress{IP: "203.0.113.9", Status: "ok", Country: "CN", City: "Shenyang", HasLocation: true,
			Latitude: 41.8, Longitude: 123.4, NetworkClass: "residential"}}
	if _, err := st.AddSignins(ctx, []store.Signin{si}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	rec, err := cases.Build(ctx, st, id, "user:ana", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ev *cases.Event
	for i := range rec.Timeline {
		if rec.Timeline[i].Kind == "signin" {
			ev = &rec.Timeline[i]
		}
	}
	if ev == nil || !ev.At.Equal(at) || !strings.Contains(ev.Text, "okta") || !strings.Contains(ev.Text, "203.0.113.9") ||
		!strings.Contains(ev.Text, "Shenyang") || !strings.Contains(ev.Source, "evt-1") {
		t.Fatalf("sign-in event %+v in timeline %+v", ev, rec.Timeline)
	}
	found := false
	for _, p := range rec.Where {
		if p.IP == "203.0.113.9" && p.Person == "mallory@example.com" && p.Located && p.Hostname == "sign-in (okta)" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no sign-in place in the where view: %+v", rec.Where)
	}
}
