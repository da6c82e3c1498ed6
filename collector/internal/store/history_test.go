package store_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
)

// TestDevicePages runs the queries of the UI's device and person pages on
// SQLite and on PostgreSQL.
func TestDevicePages(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		for _, c := range []struct {
			name string
			fn   func(*env)
		}{
			{"search devices", testSearchDevices},
			{"egress history", testEgressHistory},
			{"egress changes in one microsecond", testEgressSameMicrosecond},
			{"device snapshots", testDeviceSnapshots},
			{"search people", testSearchPeople},
			{"person devices and alerts", testPersonDevices},
		} {
			t.Run(c.name, func(t *testing.T) { c.fn(newEnv(t, freshDSN(t, dsn))) })
		}
	})
}

// report ingests one heartbeat of agentID from ip at at.
func (e *env) reportFrom(agentID, ip string, at time.Time, eg detect.Egress, ev store.Evaluator, r store.IngestReport) {
	e.Helper()
	b := e.batch(agentID, at, r)
	b.IP, b.Egress = ip, eg
	if _, err := e.st.Ingest(e.ctx, b, ev); err != nil {
		e.Fatalf("ingest: %v", err)
	}
}

func (e *env) search(q store.DeviceQuery) store.DevicePage {
	e.Helper()
	p, err := e.st.SearchDevices(e.ctx, q)
	if err != nil {
		e.Fatalf("SearchDevices(%+v): %v", q, err)
	}
	return p
}

func hosts(ds []store.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Hostname
	}
	return out
}

func testSearchDevices(e *env) {
	names := []string{"alpha-1", "ALPHA-2", "alpha-3", "alpha-4", "alpha-5", "beta-1", "gamma"}
	ids := map[string]string{}
	for i, n := range names {
		ids[n] = e.enroll(fmt.Sprintf("a%d", i), "hw:"+n, n)
		// Reports in list order: gamma is the last seen.
		e.ingest(fmt.Sprintf("a%d", i), t0.Add(time.Duration(i)*time.Minute), noRules, e.heartbeat("r1", n, t0))
	}
	never := e.enroll("a-never", "hw:never", "alpha-never") // never reported: last_seen 0

	// A prefix of the host name, any case; newest report first.
	p := e.search(store.DeviceQuery{Search: "Alpha-", Field: "host", Sort: "last_seen"})
	if got, want := hosts(p.Devices), []string{"alpha-5", "alpha-4", "alpha-3", "ALPHA-2", "alpha-1", "alpha-never"}; !slices.Equal(got, want) || p.Next != "" {
		e.Fatalf("host prefix: %v next %q, want %v", got, p.Next, want)
	}
	// A page at a time: every device once, in order.
	var all []string
	q := store.DeviceQuery{Sort: "last_seen", Limit: 3}
	for page := 0; ; page++ {
		if page > 5 {
			e.Fatal("the cursor does not advance")
		}
		p := e.search(q)
		all = append(all, hosts(p.Devices)...)
		if p.Next == "" {
			break
		}
		if len(p.Devices) != 3 {
			e.Fatalf("page %d has %d devices and a next cursor", page, len(p.Devices))
		}
		q.Cursor = p.Next
	}
	if want := []string{"gamma", "beta-1", "alpha-5", "alpha-4", "alpha-3", "ALPHA-2", "alpha-1", "alpha-never"}; !slices.Equal(all, want) {
		e.Fatalf("paged by last seen: %v, want %v", all, want)
	}

	// Serial (identity() makes "SN-" + host name), and the bound person.
	if p := e.search(store.DeviceQuery{Search: "sn-beta", Field: "serial"}); !slices.Equal(hosts(p.Devices), []string{"beta-1"}) {
		e.Fatalf("serial prefix: %v", hosts(p.Devices))
	}
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "gina@corp.example", DeviceSerial: "sn-gamma"}, "test"); err != nil {
		e.Fatal(err)
	}
	// A high alert on gamma, and its person bound at its next report.
	e.ingest("a6", t0.Add(time.Hour), deviceFindings(finding("kvm", "high")), e.heartbeat("r2", "gamma", t0.Add(time.Hour)))
	if p := e.search(store.DeviceQuery{Search: "GINA@", Field: "person"}); !slices.Equal(hosts(p.Devices), []string{"gamma"}) || p.Devices[0].Person != "gina@corp.example" {
		e.Fatalf("person prefix: %+v", p.Devices)
	}
	// Any field.
	if p := e.search(store.DeviceQuery{Search: "sn-alpha-3"}); !slices.Equal(hosts(p.Devices), []string{"alpha-3"}) {
		e.Fatalf("any field, a serial: %v", hosts(p.Devices))
	}
	if p := e.search(store.DeviceQuery{Search: "gin"}); !slices.Equal(hosts(p.Devices), []string{"gamma"}) {
		e.Fatalf("any field, a person: %v", hosts(p.Devices))
	}
	if p := e.search(store.DeviceQuery{Search: "zzz"}); len(p.Devices) != 0 {
		e.Fatalf("no match: %v", hosts(p.Devices))
	}

	// By risk: gamma first, then the rest a page at a time.
	p = e.search(store.DeviceQuery{Sort: "risk", Limit: 1})
	if len(p.Devices) != 1 || p.Devices[0].ID != ids["gamma"] || p.Devices[0].Risk.Score == 0 || p.Next == "" {
		e.Fatalf("by risk: %+v next %q", p.Devices, p.Next)
	}
	seen := map[string]bool{ids["gamma"]: true}
	for q := (store.DeviceQuery{Sort: "risk", Limit: 4, Cursor: p.Next}); ; {
		p := e.search(q)
		for _, d := range p.Devices {
			if seen[d.ID] || d.Risk.Score != 0 {
				e.Fatalf("by risk: %s (%d) again or out of order", d.Hostname, d.Risk.Score)
			}
			seen[d.ID] = true
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if len(seen) != len(names)+1 || !seen[never] {
		e.Fatalf("by risk saw %d devices, want %d", len(seen), len(names)+1)
	}

	for _, bad := range []store.DeviceQuery{{Cursor: "x"}, {Cursor: "12"}, {Cursor: "1,"}, {Field: "mac", Search: "a"}, {Sort: "name"}} {
		if _, err := e.st.SearchDevices(e.ctx, bad); !errors.Is(err, store.ErrInvalid) {
			e.Errorf("SearchDevices(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

// testEgressSameMicrosecond: reports of one device received in the same
// microsecond, from changing addresses. Whether the address changed is
// read from the egress_since the device update returns, which an earlier
// write of the same microsecond may also have set: each change is still
// recorded once, and a report from the address just recorded adds nothing.
func testEgressSameMicrosecond(e *env) {
	dev := e.enroll("a1", "hw:1", "laptop")
	t1 := t0.Add(time.Minute)
	for i, r := range []struct {
		ip string
		at time.Time
	}{{"192.0.2.3", t0}, {"192.0.2.1", t1}, {"192.0.2.2", t1}, {"192.0.2.1", t1}, {"192.0.2.1", t1}} {
		e.reportFrom("a1", r.ip, r.at, detect.Egress{IP: r.ip}, noRules, e.heartbeat(fmt.Sprintf("r%d", i), "laptop", r.at))
	}
	h, err := e.st.EgressHistory(e.ctx, dev, time.Time{}, 10)
	if err != nil {
		e.Fatal(err)
	}
	var got []string
	for _, c := range h {
		got = append(got, fmt.Sprintf("%s@%d", c.IP, c.At.Sub(t0)/time.Minute))
	}
	if want := []string{"192.0.2.1@1", "192.0.2.2@1", "192.0.2.1@1", "192.0.2.3@0"}; !slices.Equal(got, want) {
		e.Fatalf("egress history (newest first) %v, want %v", got, want)
	}
}

func testEgressHistory(e *env) {
	dev := e.enroll("a1", "hw:1", "laptop")
	home := detect.Egress{IP: "198.51.100.1", Status: "ok", Country: "DE", City: "Berlin", ASN: 3320, Org: "Deutsche Telekom AG",
		NetworkClass: "residential", TimeZone: "Europe/Berlin"}
	dc := detect.Egress{IP: "203.0.113.9", Status: "ok", Country: "NL", City: "Amsterdam", ASN: 14061, Org: "DigitalOcean, LLC",
		NetworkClass: "hosting", NetworkName: "DigitalOcean"}
	hour := activity.Hour{Start: t0.Truncate(time.Hour).Add(-time.Hour), Active: 42, Sampled: 60}
	hb := e.heartbeat("r1", "laptop", t0)
	hb.Activity = []activity.Hour{hour}
	e.reportFrom("a1", home.IP, t0, home, noRules, hb)
	e.reportFrom("a1", home.IP, t0.Add(5*time.Minute), home, noRules, e.heartbeat("r2", "laptop", t0)) // same address: no entry
	e.reportFrom("a1", dc.IP, t0.Add(10*time.Minute), dc, noRules, e.heartbeat("r3", "laptop", t0))
	e.reportFrom("a1", home.IP, t0.Add(15*time.Minute), home, noRules, e.heartbeat("r4", "laptop", t0))

	h, err := e.st.EgressHistory(e.ctx, dev, time.Time{}, 10)
	if err != nil {
		e.Fatal(err)
	}
	if len(h) != 3 || h[0].IP != home.IP || h[1].IP != dc.IP || h[2].IP != home.IP {
		e.Fatalf("egress history: %+v", h)
	}
	wantTime(e.T, "newest egress change", h[0].At, t0.Add(15*time.Minute))
	wantTime(e.T, "first egress", h[2].At, t0)
	if g := h[1]; g.Country != "NL" || g.City != "Amsterdam" || g.ASN != 14061 || g.Org != dc.Org || g.NetworkClass != "hosting" ||
		g.NetworkName != "DigitalOcean" || g.Status != "ok" {
		e.Fatalf("stored egress %+v, want %+v", g, dc)
	}
	if g := h[2]; g.TimeZone != "Europe/Berlin" || g.Org != home.Org {
		e.Fatalf("stored egress %+v, want %+v", g, home)
	}
	if h, _ := e.st.EgressHistory(e.ctx, dev, time.Time{}, 1); len(h) != 1 || h[0].IP != home.IP {
		e.Fatalf("limit 1: %+v", h)
	}
	if h, _ := e.st.EgressHistory(e.ctx, dev, t0.Add(15*time.Minute), 10); len(h) != 2 || h[0].IP != dc.IP {
		e.Fatalf("before the last change: %+v", h)
	}

	// The activity the first heartbeat carried.
	a, err := e.st.DeviceActivity(e.ctx, dev)
	if err != nil || a == nil {
		e.Fatalf("DeviceActivity = %v, %v", a, err)
	}
	i := hour.Start.Unix()/3600 - (a.End - activity.Window)
	if i < 0 || i >= activity.Window || a.Active[i] != 42 || a.Sampled[i] != 60 {
		e.Fatalf("activity hour %d: %d/%d", i, a.Active[max(i, 0)], a.Sampled[max(i, 0)])
	}
	if a, err := e.st.DeviceActivity(e.ctx, "dev_none"); a != nil || err != nil {
		e.Fatalf("DeviceActivity of no device = %v, %v", a, err)
	}
	if a, err := e.st.DeviceActivity(e.ctx, e.enroll("a2", "hw:2", "quiet")); a != nil || err != nil {
		e.Fatalf("DeviceActivity of a device that reported no activity = %v, %v", a, err)
	}
}

func testDeviceSnapshots(e *env) {
	dev := e.enroll("a1", "hw:1", "laptop")
	for i := range 3 {
		e.ingest("a1", t0.Add(time.Duration(i)*time.Minute), noRules,
			e.snapshot(fmt.Sprintf("r%d", i), "laptop", t0, map[string]string{"usb": fmt.Sprint("u", i), "locale": "l"}))
	}
	h, err := e.st.DeviceSnapshots(e.ctx, dev, 0, 10)
	if err != nil {
		e.Fatal(err)
	}
	if len(h) != 3 || h[0].ReportID != "r2" || h[2].ReportID != "r0" || !slices.Equal(h[0].Changed, []string{"usb"}) {
		e.Fatalf("snapshots: %+v", h)
	}
	var sn agentv1.HostSnapshot
	if err := proto.Unmarshal(h[1].Data, &sn); err != nil || sn.GetSignals()[1].GetMessage() != "u1" {
		e.Fatalf("snapshot r1 data: %v %v", err, sn.GetSignals())
	}
	older, err := e.st.DeviceSnapshots(e.ctx, dev, h[0].ID, 1)
	if err != nil || len(older) != 1 || older[0].ReportID != "r1" {
		e.Fatalf("before %d: %+v %v", h[0].ID, older, err)
	}
}

func testSearchPeople(e *env) {
	for _, p := range []store.Person{{Email: "zed@corp.example", Name: "Ana Zed"}, {Email: "bob@corp.example", Name: "Bob"},
		{Email: "carla@corp.example", Name: "Carla", Username: `CORP\cvalle`}, {Email: "anna@corp.example", Name: "Anna"}} {
		if _, err := e.st.UpsertPerson(e.ctx, p, "test"); err != nil {
			e.Fatal(err)
		}
	}
	emails := func(q store.PeopleQuery) ([]string, string) {
		e.Helper()
		p, err := e.st.SearchPeople(e.ctx, q)
		if err != nil {
			e.Fatalf("SearchPeople(%+v): %v", q, err)
		}
		var out []string
		for _, pe := range p.People {
			out = append(out, pe.Email)
		}
		return out, p.Next
	}
	if got, _ := emails(store.PeopleQuery{Search: "AN"}); !slices.Equal(got, []string{"anna@corp.example", "zed@corp.example"}) {
		e.Fatalf("email or name prefix: %v", got)
	}
	if got, _ := emails(store.PeopleQuery{Search: "cvalle"}); !slices.Equal(got, []string{"carla@corp.example"}) {
		e.Fatalf("user name: %v", got)
	}
	var all []string
	for q := (store.PeopleQuery{Limit: 3}); ; {
		got, next := emails(q)
		all = append(all, got...)
		if q.Cursor = next; next == "" {
			break
		}
	}
	if want := []string{"anna@corp.example", "bob@corp.example", "carla@corp.example", "zed@corp.example"}; !slices.Equal(all, want) {
		e.Fatalf("paged by email: %v", all)
	}
	all = nil
	for q := (store.PeopleQuery{Sort: "risk", Limit: 1}); ; {
		got, next := emails(q)
		all = append(all, got...)
		if q.Cursor = next; next == "" || len(all) > 4 {
			break
		}
	}
	if want := []string{"anna@corp.example", "bob@corp.example", "carla@corp.example", "zed@corp.example"}; !slices.Equal(all, want) {
		e.Fatalf("paged by risk (all 0, then by email): %v", all)
	}
	if _, err := e.st.SearchPeople(e.ctx, store.PeopleQuery{Sort: "risk", Cursor: "bob@corp.example"}); !errors.Is(err, store.ErrInvalid) {
		e.Fatalf("a malformed risk cursor: %v", err)
	}
}

func testPersonDevices(e *env) {
	ana, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ana@corp.example", Username: "ana", DeviceSerial: "SN-by-serial"}, "test")
	if err != nil {
		e.Fatal(err)
	}
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "other@corp.example", DeviceSerial: "SN-other"}, "test"); err != nil {
		e.Fatal(err)
	}
	bySerial := e.enroll("a1", "hw:1", "by-serial")
	byUser := e.enroll("a2", "hw:2", "by-user")
	other := e.enroll("a3", "hw:3", "other") // ana logs in here, but its serial names someone else
	e.enroll("a4", "hw:4", "nobody")
	withUser := func(reportID, host string) store.IngestReport {
		r := e.snapshot(reportID, host, t0, map[string]string{"sessions": "s"})
		r.Snapshot.Sessions = &agentv1.Sessions{Current: []*agentv1.LoginSession{{User: `CORP\Ana`, Type: agentv1.LoginSession_TYPE_CONSOLE}}}
		return r
	}
	kvm := deviceFindings(finding("kvm", "high"))
	e.ingest("a1", t0, kvm, e.heartbeat("r1", "by-serial", t0))
	e.ingest("a2", t0, kvm, withUser("r1", "by-user"))
	e.ingest("a3", t0, kvm, withUser("r1", "other"))
	e.ingest("a4", t0, kvm, e.heartbeat("r1", "nobody", t0))

	ds, err := e.st.PersonDevices(e.ctx, ana)
	if err != nil {
		e.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.ID+"/"+d.PersonBinding)
	}
	want := []string{bySerial + "/device_serial", byUser + "/username"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.Fatalf("ana's devices: %v, want %v (not %s)", got, want, other)
	}
	alerts, err := e.st.OpenAlertsOf(e.ctx, []string{bySerial, byUser}, 10)
	if err != nil || len(alerts) != 2 {
		e.Fatalf("open alerts: %+v %v", alerts, err)
	}
	resolved := store.StatusResolved
	if _, err := e.st.UpdateAlert(e.ctx, alerts[0].ID, store.AlertChange{Status: &resolved}, "test"); err != nil {
		e.Fatal(err)
	}
	if left, err := e.st.OpenAlertsOf(e.ctx, []string{bySerial, byUser}, 10); err != nil || len(left) != 1 || left[0].ID != alerts[1].ID {
		e.Fatalf("after resolving %d: %+v %v", alerts[0].ID, left, err)
	}
	if none, err := e.st.OpenAlertsOf(e.ctx, nil, 10); err != nil || len(none) != 0 {
		e.Fatalf("no devices: %+v %v", none, err)
	}
}
