package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// pausing counts a test evaluator's evaluations; pause holds the next one
// until released: the report's rules then run while another report of
// the device is stored.
type pausing struct {
	mu     sync.Mutex
	calls  int
	paused chan struct{} // closed when an evaluation is held
	resume chan struct{}
}

// evaluating counts an evaluation, and holds it when pause asked.
func (p *pausing) evaluating() {
	p.mu.Lock()
	p.calls++
	paused, resume := p.paused, p.resume
	p.paused, p.resume = nil, nil
	p.mu.Unlock()
	if paused != nil {
		close(paused)
		<-resume
	}
}

func (p *pausing) pause() (paused, resume chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.resume = make(chan struct{}), make(chan struct{})
	return p.paused, p.resume
}

func (p *pausing) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// egressRule fires on every device evaluation with the previous egress
// address it was given as evidence (or what evidence returns, when set),
// and counts its evaluations (pausing).
type egressRule struct {
	evidence func(*detect.DeviceFacts) any
	pausing
}

func (*egressRule) AutoResolve(detect.Scope) []string { return nil }

func (r *egressRule) Evaluate(_ context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	r.evaluating()
	fd := finding("egress_moved", "low")
	fd.Evidence = map[string]any{"previous": f.Device.PreviousEgress.IP}
	if r.evidence != nil {
		fd.Evidence = map[string]any{"previous": r.evidence(f.Device)}
	}
	return []detect.Finding{fd}, nil
}

// TestStaleVerdict: a report's rules run outside the writer on the device
// as read. When another report of the device is stored meanwhile, the
// writer does not store that verdict: it evaluates again on the device as
// it now is. When nothing intervened, the verdict reached outside is kept
// (the rules ran once). Both engines judge outside their writers.
func TestStaleVerdict(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("agent-1", "hw:1", "host-1")
		rule := &egressRule{}
		from := func(ip string, at time.Time, r store.IngestReport) store.IngestBatch {
			b := e.batch("agent-1", at, r)
			b.IP, b.Egress = ip, detect.Egress{IP: ip, NetworkClass: "residential"}
			return b
		}
		evidence := func() any {
			a := e.alerts(store.AlertFilter{DeviceID: dev})
			if len(a) != 1 {
				t.Fatalf("alerts: %+v, want one", a)
			}
			return a[0].Evidence["previous"]
		}

		// Nothing intervenes: one evaluation, kept. After the second
		// report, the device's row is cached as the writer left it, so
		// that A below is judged on the cached row.
		for i, at := range []time.Time{t0, t0.Add(30 * time.Second)} {
			if _, err := e.st.Ingest(e.ctx, from("203.0.113.1", at, e.heartbeat(fmt.Sprintf("10000000-0000-4000-8000-00000000000%d", i+1), "host-1", at)), rule); err != nil {
				t.Fatal(err)
			}
			if n := rule.count(); n != i+1 {
				t.Fatalf("rules ran %d times for %d reports, want once each (the verdict reached outside the writer kept)", n, i+1)
			}
		}
		if _, ok := e.st.CachedRowForTest(dev); !ok {
			t.Fatal("the device's row is not cached after a report stored with its prejudged verdict")
		}

		// Report A (from the same address) is evaluated; before it is
		// stored, report B from another address is.
		paused, resume := rule.pause()
		done := make(chan error, 1)
		at := t0.Add(time.Minute)
		// Each carries the activity of another hour: both are kept.
		hourA, hourB := at.Truncate(time.Hour).Add(-2*time.Hour), at.Truncate(time.Hour).Add(-time.Hour)
		go func() {
			r := e.heartbeat("10000000-0000-4000-8000-00000000000a", "host-1", at)
			r.Activity = []activity.Hour{{Start: hourA, Active: 11, Sampled: 60}}
			_, err := e.st.Ingest(e.ctx, from("203.0.113.1", at, r), rule)
			done <- err
		}()
		<-paused
		b := e.heartbeat("10000000-0000-4000-8000-00000000000b", "host-1", at)
		b.Activity = []activity.Hour{{Start: hourB, Active: 22, Sampled: 60}}
		if _, err := e.st.Ingest(e.ctx, from("198.51.100.2", at, b), rule); err != nil {
			t.Fatal(err)
		}
		if got := evidence(); got != "203.0.113.1" {
			t.Fatalf("after B: previous egress %v, want 203.0.113.1", got)
		}
		calls := rule.count()
		close(resume)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// A read the device before B moved it to another address; stored
		// after B, A moved it back, so its previous egress is B's.
		if got := evidence(); got != "198.51.100.2" {
			t.Fatalf("after A: the alert's evidence says previous egress %v, want 198.51.100.2 (a verdict on the device as it was before B was stored)", got)
		}
		if n := rule.count() - calls; n != 1 {
			t.Fatalf("the writer evaluated A %d times again, want once", n)
		}
		h, err := e.st.DeviceActivity(e.ctx, dev)
		if err != nil || h == nil {
			t.Fatalf("activity: %v, %v", h, err)
		}
		for _, c := range []struct {
			hour   time.Time
			active uint8
		}{{hourA, 11}, {hourB, 22}} {
			if i := c.hour.Unix()/3600 - (h.End - activity.Window); h.Active[i] != c.active {
				t.Fatalf("activity of %s: %d active minutes, want %d (both reports' hours kept)", c.hour, h.Active[i], c.active)
			}
		}
		if n := e.reportCount(dev); n != 4 {
			t.Fatalf("%d reports stored, want 4", n)
		}
	})
}

// TestCachedRow: a report is judged on the device's row as the writer
// cached it when it stored the previous report (rowCache). A change made
// through another path is seen by the next report's verdict: one the
// device's version does not count (a person bound by serial number) drops
// the cached rows (and bumps PostgreSQL's fact stamp); and a report
// already judged on a cached row when a change that counts is made (the
// recompute binds the person to the device) is judged again by the
// writer, which finds the device at another version.
func TestCachedRow(t *testing.T) {
	storetest.Engines(t, testCachedRow)
}

func testCachedRow(t *testing.T, dsn string) {
	e := newEnv(t, freshDSN(t, dsn))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &egressRule{evidence: func(f *detect.DeviceFacts) any { return f.Person }}
	person := func() any {
		a := e.alerts(store.AlertFilter{DeviceID: dev})
		if len(a) != 1 {
			t.Fatalf("alerts: %+v, want one", a)
		}
		return a[0].Evidence["previous"]
	}
	n := 0
	report := func(at time.Time) store.IngestBatch {
		n++
		return e.batch("agent-1", at, e.heartbeat(fmt.Sprintf("20000000-0000-4000-8000-%012d", n), "host-1", at))
	}
	version := func() int64 {
		t.Helper()
		v, err := e.st.DeviceVersionForTest(e.ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	at := t0
	cached := func() {
		t.Helper()
		for range 2 { // the first group after opening checks data_version only
			at = at.Add(time.Minute)
			if _, err := e.st.Ingest(e.ctx, report(at), rule); err != nil {
				t.Fatal(err)
			}
		}
		if v, ok := e.st.CachedRowForTest(dev); !ok || v != version() {
			t.Fatalf("cached row: version %d (cached %v), want the device's, %d", v, ok, version())
		}
	}

	cached()
	if got := person(); got != "" {
		t.Fatalf("person %v before any was declared", got)
	}
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-1"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	at = at.Add(time.Minute)
	if _, err := e.st.Ingest(e.ctx, report(at), rule); err != nil {
		t.Fatal(err)
	}
	if got := person(); got != "ann@example.com" {
		t.Fatalf("after the person was declared: the verdict saw person %q, want ann@example.com (judged on the row cached before)", got)
	}

	// Unbind, cache again, then hold a report judged on the cached row
	// while the person is bound again and the recompute records it.
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecomputeFleet(e.ctx, at); err != nil {
		t.Fatal(err)
	}
	cached()
	if got := person(); got != "" {
		t.Fatalf("person %v after the binding was removed", got)
	}
	paused, resume := rule.pause()
	done := make(chan error, 1)
	at = at.Add(time.Minute)
	go func() {
		_, err := e.st.Ingest(e.ctx, report(at), rule)
		done <- err
	}()
	<-paused
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-1"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	before := version()
	if _, err := e.st.RecomputeFleet(e.ctx, at); err != nil {
		t.Fatal(err)
	}
	if version() == before {
		t.Fatal("the recompute did not change the device's version")
	}
	calls := rule.count()
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := person(); got != "ann@example.com" {
		t.Fatalf("the verdict saw person %q, want ann@example.com: the writer kept a verdict on the cached row after the device changed", got)
	}
	if n := rule.count() - calls; n != 1 {
		t.Fatalf("the writer evaluated the report %d times again, want once", n)
	}
}

// TestCachedRowOtherDevice: another device's report that changes what a
// device's row is read from without changing its version (the user name
// that bound the device to its person, now reported by another device too,
// binds neither) drops the cached rows: the device's next verdict sees
// it unbound.
func TestCachedRowOtherDevice(t *testing.T) {
	storetest.Engines(t, testCachedRowOtherDevice)
}

func testCachedRowOtherDevice(t *testing.T, dsn string) {
	e := newEnv(t, freshDSN(t, dsn))
	devA := e.enroll("agent-a", "hw:a", "host-a")
	e.enroll("agent-b", "hw:b", "host-b")
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", Username: "ann"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	rule := &egressRule{evidence: func(f *detect.DeviceFacts) any { return f.Person }}
	person := func() any {
		a := e.alerts(store.AlertFilter{DeviceID: devA})
		if len(a) != 1 {
			t.Fatalf("alerts: %+v, want one", a)
		}
		return a[0].Evidence["previous"]
	}
	n := 0
	id := func() string { n++; return fmt.Sprintf("30000000-0000-4000-8000-%012d", n) }
	at := t0
	// B's first snapshot stores its user names; so does A's, which
	// binds A to ann.
	e.ingest("agent-b", at, rule, e.userSnapshot(id(), "host-b", at, "bob"))
	e.ingest("agent-a", at, rule, e.userSnapshot(id(), "host-a", at, "ann"))
	for range 2 {
		at = at.Add(time.Minute)
		e.ingest("agent-a", at, rule, e.heartbeat(id(), "host-a", at))
	}
	if _, ok := e.st.CachedRowForTest(devA); !ok {
		t.Fatal("the device's row is not cached")
	}
	if got := person(); got != "ann@example.com" {
		t.Fatalf("person %q, want ann@example.com (bound by user name)", got)
	}
	at = at.Add(time.Minute)
	e.ingest("agent-b", at, rule, e.userSnapshot(id(), "host-b", at, "ann"))
	at = at.Add(time.Minute)
	e.ingest("agent-a", at, rule, e.heartbeat(id(), "host-a", at))
	if got := person(); got != "" {
		t.Fatalf("person %q after another device reported the same user name, want none (judged on the row cached before)", got)
	}
}

// TestCachedRowMatchesDatabase: the row the writer caches after a report
// (computed before the report is stored, as the report will leave it) is
// the row the database gives at the same version, through snapshots that
// change, heartbeats, activity hours, the built-in panel, a new host name
// and a new address.
func TestCachedRowMatchesDatabase(t *testing.T) {
	storetest.Engines(t, testCachedRowMatchesDatabase)
}

func testCachedRowMatchesDatabase(t *testing.T, dsn string) {
	e := newEnv(t, freshDSN(t, dsn))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &egressRule{}
	n := 0
	id := func() string { n++; return fmt.Sprintf("40000000-0000-4000-8000-%012d", n) }
	at := t0
	// The egress as a GeoIP database places it, on some reports (SQLite,
	// where the egress history takes it) with an organisation's name that
	// is not valid UTF-8 (which its JSON encoding in the row replaces).
	egress := map[string]detect.Egress{
		"203.0.113.1": {IP: "203.0.113.1", Status: "ok", Country: "US", Region: "Illinois", City: "Chicago", HasLocation: true,
			Latitude: 41.8781, Longitude: -87.6298, ASN: 7922, Org: "Comcast", NetworkClass: "residential", TimeZone: "America/Chicago"},
		"198.51.100.9": {IP: "198.51.100.9", Status: "ok", Country: "DE", City: "Berlin", HasLocation: true, Latitude: 52.52, Longitude: 13.405,
			ASN: 3320, Org: "Deutsche Telekom", NetworkClass: "mobile", TimeZone: "Europe/Berlin", Since: at},
	}
	send := func(ip string, r store.IngestReport) {
		t.Helper()
		b := e.batch("agent-1", at, r)
		b.IP, b.Egress = ip, egress[ip]
		if n%3 == 1 && e.st.Dialect() == store.SQLite {
			b.Egress.Org += "\xff"
		}
		if _, err := e.st.Ingest(e.ctx, b, rule); err != nil {
			t.Fatal(err)
		}
	}
	send("203.0.113.1", e.snapshot(id(), "host-1", at, map[string]string{"apps": "first"}))
	cached := 0
	for i := range 24 {
		at = at.Add(time.Minute)
		ip, host := "203.0.113.1", "host-1"
		if i%5 == 4 {
			ip = "198.51.100.9"
		}
		if i%7 == 6 {
			host = "host-1-renamed"
		}
		var r store.IngestReport
		if i%2 == 0 {
			r = e.snapshot(id(), host, at, map[string]string{"apps": fmt.Sprint(i)})
			if i%4 == 0 {
				r.Snapshot.Displays = &agentv1.Displays{Displays: []*agentv1.Display{{Connector: "eDP-1", Internal: true, Active: true}}}
			}
		} else {
			r = e.heartbeat(id(), host, at)
		}
		if i%3 != 0 {
			r.Activity = []activity.Hour{{Start: at.Truncate(time.Hour), Active: uint32(10 + i), Sampled: 60}}
		}
		r.DroppedReports = uint64(i)
		send(ip, r)
		ok, err := e.st.CachedRowMatchesForTest(e.ctx, dev)
		if err != nil {
			t.Fatalf("after report %d: %v", i, err)
		}
		if ok {
			cached++
		}
	}
	// A report from another egress address changes the device's keys
	// (the writer re-clusters): the eight reports moving to and back from
	// 198.51.100.9 are not cached.
	if cached < 16 {
		t.Fatalf("the device's row was cached at its version after %d reports of 24, want at least 16", cached)
	}
}

// TestCachedRowSweep: the sweep judging a silent device leaves the other
// devices' cached rows, which still match the database.
func TestCachedRowSweep(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "bonafide.db"))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	e.enroll("agent-2", "hw:2", "host-2") // never reports
	rule := &egressRule{}
	for i := range 2 {
		at := t0.Add(time.Duration(i) * time.Minute)
		e.ingest("agent-1", at, rule, e.heartbeat(fmt.Sprintf("50000000-0000-4000-8000-%012d", i), "host-1", at))
	}
	n, err := e.st.Sweep(e.ctx, rule, t0.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the sweep judged %d devices, want the silent one", n)
	}
	ok, err := e.st.CachedRowMatchesForTest(e.ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("the sweep dropped the cached row of a device it did not judge")
	}
}

// TestCachedRowOtherProcess: a change written to the SQLite file by
// another process (here another store on the file, as an admin command
// run beside the collector), which drops nothing in this one, is seen by
// the next report's verdict: the writer finds the database's data_version
// changed, drops the cached rows and judges the report itself.
func TestCachedRowOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bonafide.db")
	e := newEnv(t, path)
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &egressRule{evidence: func(f *detect.DeviceFacts) any { return f.Person }}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		e.ingest("agent-1", at, rule, e.heartbeat(fmt.Sprintf("60000000-0000-4000-8000-%012d", i), "host-1", at))
	}
	if _, ok := e.st.CachedRowForTest(dev); !ok {
		t.Fatal("the device's row is not cached")
	}
	admin := storetest.Open(t, path)
	if _, err := admin.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-1"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.st.CachedRowForTest(dev); !ok {
		t.Fatal("the other store's write dropped this one's cache: the test no longer tests what it says")
	}
	at := t0.Add(10 * time.Minute)
	e.ingest("agent-1", at, rule, e.heartbeat("60000000-0000-4000-8000-000000000099", "host-1", at))
	a := e.alerts(store.AlertFilter{DeviceID: dev})
	if len(a) != 1 || a[0].Evidence["previous"] != "ann@example.com" {
		t.Fatalf("alerts %+v: want one whose verdict saw person ann@example.com (declared by another process)", a)
	}
}

// TestCachedRowDroppedWhileJudged: a report judged on a cached row while
// another path makes a change the version does not count (a person bound
// by serial number: the cache is dropped) is judged again by the writer,
// which sees the person.
func TestCachedRowDroppedWhileJudged(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "bonafide.db"))
	dev := e.enroll("agent-1", "hw:1", "host-1")
	rule := &egressRule{evidence: func(f *detect.DeviceFacts) any { return f.Person }}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		e.ingest("agent-1", at, rule, e.heartbeat(fmt.Sprintf("70000000-0000-4000-8000-%012d", i), "host-1", at))
	}
	if _, ok := e.st.CachedRowForTest(dev); !ok {
		t.Fatal("the device's row is not cached")
	}
	paused, resume := rule.pause()
	done := make(chan error, 1)
	at := t0.Add(10 * time.Minute)
	go func() {
		_, err := e.st.Ingest(e.ctx, e.batch("agent-1", at, e.heartbeat("70000000-0000-4000-8000-000000000099", "host-1", at)), rule)
		done <- err
	}()
	<-paused
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", DeviceSerial: "SN-host-1"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a := e.alerts(store.AlertFilter{DeviceID: dev})
	if len(a) != 1 || a[0].Evidence["previous"] != "ann@example.com" {
		t.Fatalf("alerts %+v: want one whose verdict saw person ann@example.com (the writer kept a verdict on a dropped row)", a)
	}
}

// TestCachedRowKeysChange: a snapshot judged on a cached row whose keys
// digest was found from the same snapshot keys, egress and sign-ins is
// not checked again (cachedRow.keys), unless a section the snapshot keys
// derive from changed: a device that moves to another device's Wi-Fi
// access point, reporting from its own egress address, is re-keyed and
// joins that device's cluster.
func TestCachedRowKeysChange(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "bonafide.db"))
	a, b := e.enroll("agent-a", "hw:a", "host-a"), e.enroll("agent-b", "hw:b", "host-b")
	rule := &egressRule{}
	n := 0
	at := t0
	send := func(agent, host, ip, bssid string) {
		t.Helper()
		n++
		at = at.Add(time.Minute)
		r := e.snapshot(fmt.Sprintf("50000000-0000-4000-8000-%012d", n), host, at, map[string]string{"network": bssid, "sessions": fmt.Sprint(n)})
		r.Snapshot.Network = &agentv1.Network{Wifi: &agentv1.Wifi{Bssid: bssid}}
		batch := e.batch(agent, at, r)
		batch.IP, batch.Egress = ip, detect.Egress{IP: ip, Status: "ok", NetworkClass: "residential"}
		if _, err := e.st.Ingest(e.ctx, batch, rule); err != nil {
			t.Fatal(err)
		}
	}
	send("agent-b", "host-b", "198.51.100.2", "a4:2b:b0:00:00:02")
	for range 3 {
		send("agent-a", "host-a", "203.0.113.1", "a4:2b:b0:00:00:01")
	}
	if ok, err := e.st.CachedRowMatchesForTest(e.ctx, a); err != nil || !ok {
		t.Fatalf("host-a's row is not cached as the database has it (%v)", err)
	}
	if c := e.device(a).ClusterID; c != "" {
		t.Fatalf("host-a is in cluster %s before it shares anything", c)
	}
	send("agent-a", "host-a", "203.0.113.1", "a4:2b:b0:00:00:02")
	if ca, cb := e.device(a).ClusterID, e.device(b).ClusterID; ca == "" || ca != cb {
		t.Fatalf("host-a on host-b's access point: clusters %q and %q, want one", ca, cb)
	}
}

// TestCachedRowOtherReplica: on PostgreSQL a report is judged on the
// device's row as the writer cached it, without reading it (a change to
// the row that neither the version nor the fact stamp counts, made on
// another connection on purpose, is not seen), and what another replica
// (a second store on the database) changes of what the row reads of other
// rows is seen by the next report's verdict, which the writer reaches on
// facts it reads itself: another device reporting the device's user name
// (which unbinds its person), that device revoked (which binds it again),
// a person declared for its serial number. So is a report the other
// replica stored for the device (its version).
func TestCachedRowOtherReplica(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	e := newEnv(t, dsn)
	other := &env{T: t, ctx: t.Context(), st: storetest.Open(t, dsn), secretID: e.secretID}
	devA := e.enroll("agent-a", "hw:a", "host-a")
	devB := e.enroll("agent-b", "hw:b", "host-b")
	if _, err := e.st.UpsertPerson(e.ctx, store.Person{Email: "ann@example.com", Username: "ann"}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	// The verdict's person, hardware UUID and previous address (none
	// until the device reports from another).
	rule := &egressRule{evidence: func(f *detect.DeviceFacts) any {
		return f.Person + " " + f.HardwareUUID + " " + f.PreviousEgress.IP
	}}
	evidence := func() any {
		t.Helper()
		a := e.alerts(store.AlertFilter{DeviceID: devA})
		if len(a) != 1 {
			t.Fatalf("alerts: %+v, want one", a)
		}
		return a[0].Evidence["previous"]
	}
	n := 0
	id := func() string { n++; return fmt.Sprintf("70000000-0000-4000-8000-%012d", n) }
	at := t0
	heartbeat := func(st *env, ip string) {
		t.Helper()
		at = at.Add(time.Minute)
		b := st.batch("agent-a", at, st.heartbeat(id(), "host-a", at))
		b.IP, b.Egress = ip, detect.Egress{IP: ip}
		if _, err := st.st.Ingest(st.ctx, b, rule); err != nil {
			t.Fatal(err)
		}
	}
	// cache reports until the device's row is cached at its version.
	cache := func() {
		t.Helper()
		for range 2 {
			heartbeat(e, "203.0.113.7")
		}
		v, err := e.st.DeviceVersionForTest(e.ctx, devA)
		if err != nil {
			t.Fatal(err)
		}
		if cached, ok := e.st.CachedRowForTest(devA); !ok || cached != v {
			t.Fatalf("cached row: version %d (cached %v), want the device's, %d", cached, ok, v)
		}
	}
	e.ingest("agent-b", at, rule, e.userSnapshot(id(), "host-b", at, "bob"))
	e.ingest("agent-a", at, rule, e.userSnapshot(id(), "host-a", at, "ann"))
	cache()
	const uuid = "4c4c4544-0042-3510-8052-b7c04f4e3132"
	if got, want := evidence(), "ann@example.com "+uuid+" "; got != want {
		t.Fatalf("evidence %q, want %q", got, want)
	}

	// The row is not read: a change nothing counts is not seen.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(e.ctx, `UPDATE devices SET hardware_uuid = 'uuid-2' WHERE id = $1`, devA); err != nil {
		t.Fatal(err)
	}
	heartbeat(e, "203.0.113.7")
	if got, want := evidence(), "ann@example.com "+uuid+" "; got != want {
		t.Fatalf("evidence %q, want %q: the device's row was read, not taken from the cache", got, want)
	}

	steps := []struct {
		what, want string
		change     func()
	}{
		{"another device reported ann's user name", " uuid-2 ", func() {
			at = at.Add(time.Minute)
			other.ingest("agent-b", at, rule, other.userSnapshot(id(), "host-b", at, "ann"))
		}},
		{"that device was revoked", "ann@example.com uuid-2 ", func() {
			if err := other.st.RevokeDevice(other.ctx, devB, "admin:test"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a person was declared for its serial number", "bea@example.com uuid-2 ", func() {
			if _, err := other.st.UpsertPerson(other.ctx, store.Person{Email: "bea@example.com", DeviceSerial: "SN-host-a"}, "admin:test"); err != nil {
				t.Fatal(err)
			}
		}},
		{"the other replica stored a report from another address", "bea@example.com uuid-2 198.51.100.2", func() {
			heartbeat(other, "198.51.100.2")
		}},
	}
	for _, s := range steps {
		cache()
		s.change()
		if _, ok := e.st.CachedRowForTest(devA); !ok {
			t.Fatalf("%s: the other replica's write dropped this one's cache: the test no longer tests what it says", s.what)
		}
		heartbeat(e, "203.0.113.7")
		if got := evidence(); got != s.want {
			t.Errorf("after %s: evidence %q, want %q (judged on the row cached before)", s.what, got, s.want)
		}
	}
}

// userSnapshot is a snapshot whose keyboard layout is user's.
func (e *env) userSnapshot(reportID, host string, at time.Time, user string) store.IngestReport {
	r := e.snapshot(reportID, host, at, map[string]string{"locale": user})
	r.Snapshot.Locale = &agentv1.Locale{KeyboardLayouts: []*agentv1.KeyboardLayout{{User: user}}}
	return r
}

// TestFactStampQuiet: PostgreSQL's fact stamp is no hot row: enrollments
// (an enrollment stampede) and reports that change only their own
// device's facts (first snapshots with user names nobody has, heartbeats,
// changed snapshots, an alert raised on a person's device, which
// refreshes the person's risk score) leave it as it was; a user name a
// person has, reported by a device, changes it.
func TestFactStampQuiet(t *testing.T) {
	e := newEnv(t, storetest.PostgresDSN(t))
	for _, p := range []store.Person{{Email: "ann@example.com", DeviceSerial: "SN-host-0"}, {Email: "bob@example.com", Username: "bob"}} {
		if _, err := e.st.UpsertPerson(e.ctx, p, "admin:test"); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func() int64 {
		t.Helper()
		n, err := e.st.FactStampForTest(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := stamp()
	rule := &egressRule{}
	n := 0
	id := func() string { n++; return fmt.Sprintf("80000000-0000-4000-8000-%012d", n) }
	for i := range 4 {
		agent, host := fmt.Sprintf("agent-%d", i), fmt.Sprintf("host-%d", i)
		e.enroll(agent, "hw:"+host, host)
		at := t0.Add(time.Duration(i) * time.Minute)
		e.ingest(agent, at, rule, e.userSnapshot(id(), host, at, "guest-"+host))
		e.ingest(agent, at.Add(time.Minute), rule, e.heartbeat(id(), host, at.Add(time.Minute)))
		e.ingest(agent, at.Add(2*time.Minute), rule, e.snapshot(id(), host, at.Add(2*time.Minute), map[string]string{"apps": "more"}))
	}
	if got := e.alerts(store.AlertFilter{DeviceID: e.agent("agent-0").DeviceID}); len(got) != 1 || got[0].Person != "ann@example.com" {
		t.Fatalf("host-0's alerts %+v, want one, on ann's device", got)
	}
	if after := stamp(); after != before {
		t.Fatalf("the fact stamp moved from %d to %d: enrollments and reports that change no other device's facts bumped it", before, after)
	}
	at := t0.Add(time.Hour)
	e.ingest("agent-1", at, rule, e.userSnapshot(id(), "host-1", at, "bob"))
	if stamp() == before {
		t.Fatal("the fact stamp did not move when a device reported bob's user name")
	}
}
