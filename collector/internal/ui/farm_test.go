package ui

import (
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

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/collector/internal/ui/uitest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
)

// pageEnv is the UI over a real SQLite store with the embedded policies
// live, and an admin, an analyst and a viewer (password pagePassword).
type pageEnv struct {
	srv      *httptest.Server
	st       *store.Store
	live     *detect.Live
	secretID string
}

const pagePassword = "correct horse battery"

func newPageEnv(t *testing.T, opts Options) *pageEnv {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	for _, u := range [][2]string{{"root", accounts.RoleAdmin}, {"ana", accounts.RoleAnalyst}, {"vic", accounts.RoleViewer}} {
		if _, err := accounts.New(st).CreateUser(ctx, u[0], u[1], pagePassword, "test"); err != nil {
			t.Fatal(err)
		}
	}
	_, sec, err := st.CreateSecret(ctx, "seed")
	if err != nil {
		t.Fatal(err)
	}
	e := &pageEnv{st: st, secretID: sec.ID}
	if opts.Live == nil {
		rules, err := detect.Load(policies.FS())
		if err != nil {
			t.Fatal(err)
		}
		opts.Live = detect.NewLive(rules, time.Now())
	}
	e.live = opts.Live
	h, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// pageUser is a signed-in browser: a cookie jar, redirects not followed.
type pageUser struct {
	t    *testing.T
	env  *pageEnv
	c    *http.Client
	csrf string
}

var pageCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *pageEnv) signIn(t *testing.T, user string) *pageUser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u := &pageUser{t: t, env: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := uitest.PostLogin(u.c, e.srv.URL, url.Values{"username": {user}, "password": {pagePassword}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: %s", user, resp.Status)
	}
	_, body := u.get("/ui/farms")
	m := pageCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	u.csrf = m[1]
	return u
}

func (u *pageUser) get(path string) (int, string) {
	u.t.Helper()
	resp, err := u.c.Get(u.env.srv.URL + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a form with the session's CSRF token (unless form sets
// "csrf" itself) and returns the status, body and redirect target.
func (u *pageUser) post(path string, form url.Values) (int, string, string) {
	u.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", u.csrf)
	}
	resp, err := u.c.PostForm(u.env.srv.URL+path, form)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// report enrolls host (once) and ingests one snapshot from it through
// the real store: egress ip on a residential network behind the gateway
// MAC gw, with a USB keyboard of serial kbd ("" for none). It returns
// the device id.
func (e *pageEnv) report(t *testing.T, host, ip, gw, kbd string, ev store.Evaluator) string {
	t.Helper()
	sn := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: host},
		Network: &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: gw}}}
	var serials []policies.PeripheralSerial
	if kbd != "" {
		serials = []policies.PeripheralSerial{{Key: "usb 0x046d:0xc52b " + kbd, Device: "1-1"}}
	}
	return e.ingest(t, host, ip, sn, gw+kbd, serials, ev)
}

// ingest enrolls host (once) and ingests the snapshot sn from it through
// the real store, from egress ip on a residential network; digest stands
// for the snapshot's sections. It returns the device id.
func (e *pageEnv) ingest(t *testing.T, host, ip string, sn *agentv1.HostSnapshot, digest string, serials []policies.PeripheralSerial, ev store.Evaluator) string {
	t.Helper()
	ctx := t.Context()
	agentID := "agent-" + fmt.Sprint(len(host)) + "-" + url.PathEscape(host)
	id := store.DeviceIdentity{SerialNumber: "SN-" + url.PathEscape(host), Hostname: host, OSFamily: "linux", AgentVersion: "1.0.0"}
	if _, err := e.st.AgentByID(ctx, agentID); err != nil {
		if _, err := e.st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: e.secretID, IP: ip, HardwareKey: "hw-" + agentID,
			Identity: id, CertSerial: "c-" + agentID, CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := e.st.AgentByID(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	data, err := proto.Marshal(sn)
	if err != nil {
		t.Fatal(err)
	}
	r := store.IngestReport{ReportID: "r-" + agentID + now.String(), Sequence: uint64(now.UnixNano()), CreatedAt: now, Identity: id,
		Snapshot: sn, Data: data, Digest: fmt.Sprintf("%x", now.UnixNano()), Sections: map[string]string{"network": digest},
		PeripheralSerials: serials}
	if _, err := e.st.Ingest(ctx, store.IngestBatch{Agent: a, IP: ip, ReceivedAt: now, ReportInterval: time.Minute,
		Egress: detect.Egress{IP: ip, Status: "ok", NetworkClass: policies.NetClassResidential}, Reports: []store.IngestReport{r}}, ev); err != nil {
		t.Fatal(err)
	}
	return a.DeviceID
}

// hostile host names an attacker could give the farm laptops.
// hostileHosts are host names an agent may send: markup, and a right-to-
// left override followed by a long unbroken name (it must neither reverse
// the page's own text nor widen the page).
var hostileHosts = []string{`<script>alert("farm")</script>`, `"><svg onload=alert(2)>`, "farm-3\u202eyranib-" + strings.Repeat("w", 180)}

// seedFarm makes three laptops behind one residential router sharing one
// keyboard serial (one bound to a person) and a bystander elsewhere; it
// returns the farm's id and the device ids by host.
func seedFarm(t *testing.T, e *pageEnv) (string, map[string]string) {
	t.Helper()
	if _, err := e.st.UpsertPerson(t.Context(), store.Person{Email: "o'brien+farm@example.com", Name: "O'Brien",
		DeviceSerial: "SN-" + url.PathEscape(hostileHosts[0])}, "test"); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, h := range hostileHosts {
		ids[h] = e.report(t, h, "198.51.100.9", "f4:92:bf:01:02:03", "KBD-1", e.live)
	}
	ids["bystander"] = e.report(t, "bystander", "192.0.2.77", "00:1a:2b:3c:4d:5e", "", e.live)
	farms, err := e.st.ListClusters(t.Context(), false, 10)
	if err != nil || len(farms) != 1 {
		t.Fatalf("clusters: %+v %v", farms, err)
	}
	return farms[0].ID, ids
}

func TestFarmPages(t *testing.T) {
	e := newPageEnv(t, Options{})
	farmID, ids := seedFarm(t, e)
	v := e.signIn(t, "vic")

	code, list := v.get("/ui/farms")
	if code != 200 || !strings.Contains(list, `href="/ui/farms/`+farmID+`"`) {
		t.Fatalf("farm list: %d\n%s", code, list)
	}
	if code, _ := v.get("/ui/farms?suspected=maybe"); code != http.StatusBadRequest {
		t.Errorf("bad filter: %d", code)
	}
	if code, _ := v.get("/ui/farms/c-000000000000"); code != http.StatusNotFound {
		t.Errorf("unknown farm: %d", code)
	}

	code, body := v.get("/ui/farms/" + farmID)
	if code != 200 {
		t.Fatalf("farm view: %d\n%s", code, body)
	}
	// Agent strings are text, never markup, in the tables and the SVG.
	for _, bad := range []string{`<script>alert("farm")`, `<svg onload`, `"><svg`} {
		if strings.Contains(body, bad) {
			t.Errorf("farm view contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;farm&#34;)&lt;/script&gt;`, `&#34;&gt;&lt;svg onload=alert(2)&gt;`,
		// Members link to the device and person pages.
		`href="/ui/devices/` + ids[hostileHosts[2]] + `"`, `href="/ui/people/o%27brien&#43;farm@example.com"`,
		// Evidence: the router, the egress and the keyboard, each linking.
		`<code>f4:92:bf:01:02:03</code>`, `<code>198.51.100.9</code>`, `<code>usb 0x046d:0xc52b KBD-1</code>`,
		"gateway MAC", "egress IP", "peripheral serial",
		// The timeline says the farm formed.
		"formed by",
		`<desc id="graph-desc">3 devices on the left and 3 shared keys`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("farm view lacks %s", want)
		}
	}
	if strings.Contains(body, "bystander") {
		t.Error("the bystander is shown in the farm")
	}
	// The graph: 3 device nodes, 3 key nodes, a line from each device to
	// each key.
	svg := body[strings.Index(body, "<svg"):strings.Index(body, "</svg>")]
	if n := strings.Count(svg, `class="node device"`); n != 3 {
		t.Errorf("%d device nodes, want 3", n)
	}
	if n := strings.Count(svg, `class="node key `); n != 3 {
		t.Errorf("%d key nodes, want 3", n)
	}
	if n := strings.Count(svg, `<line class="edge edge-link"`); n != 9 {
		t.Errorf("%d edges, want 9", n)
	}
	if strings.Contains(svg, "style=") || strings.Contains(body, " style=") || strings.Contains(body, "<script>") {
		t.Error("inline style or script in the farm view (the CSP forbids them)")
	}
}

func TestLayoutGraph(t *testing.T) {
	members := []store.ClusterMember{{DeviceID: "d1", Hostname: "a"}, {DeviceID: "d2", Hostname: "b"}, {DeviceID: "d3", Person: "p@x"}}
	evidence := []store.SharedKey{
		{Kind: fleet.KindPeripheral, Value: "usb 1:2 S", Link: true, Devices: []string{"d2", "d3"}},
		{Kind: fleet.KindEgress, Value: "198.51.100.9", Link: true, Devices: []string{"d1", "d2"}},
		{Kind: fleet.KindLAN, Value: strings.Repeat("x", 60), Devices: []string{"d1", "d2", "d3"}},
		{Kind: fleet.KindBSSID, Value: "gone", Link: true, Devices: []string{"d9", "d8"}}, // no member holds it
	}
	g := layoutGraph(members, evidence)
	if len(g.Devices) != 3 || len(g.Keys) != 3 || len(g.Edges) != 7 || g.Capped() {
		t.Fatalf("graph: %d devices, %d keys, %d edges, capped %v", len(g.Devices), len(g.Keys), len(g.Edges), g.Capped())
	}
	// Devices top to bottom in order, in one column; keys in the other,
	// by the mean row of their devices: egress (0.5), LAN (1), peripheral (1.5).
	for i, d := range g.Devices {
		if d.X != graphDeviceX || d.Y != graphMargin+i*graphRow {
			t.Errorf("device %d at %d,%d", i, d.X, d.Y)
		}
	}
	if g.Devices[2].Label != "d3" || g.Devices[2].Title != "d3 (p@x)" || g.Devices[0].URL != "/ui/devices/d1" {
		t.Errorf("device nodes: %+v", g.Devices)
	}
	var order []string
	for _, k := range g.Keys {
		order = append(order, k.Class)
		if k.X != graphKeyX {
			t.Errorf("key at x %d", k.X)
		}
	}
	if strings.Join(order, " ") != "key-egress_ip key-lan key-peripheral" {
		t.Errorf("key order: %v", order)
	}
	if lan := g.Keys[1]; len([]rune(lan.Label)) != graphLabelMax || !strings.HasSuffix(lan.Label, "…") || !strings.Contains(lan.Title, strings.Repeat("x", 60)) {
		t.Errorf("long label: %q / %q", lan.Label, lan.Title)
	}
	// Two keys centred on three device rows.
	if g.Keys[0].Y != graphMargin || g.Height != 2*graphMargin+2*graphRow {
		t.Errorf("key rows: %+v, height %d", g.Keys, g.Height)
	}
	for _, ed := range g.Edges {
		if ed.X1 != graphDeviceX || ed.X2 != graphKeyX {
			t.Errorf("edge %+v", ed)
		}
		if strings.Contains(ed.Title, "LAN") == ed.Link {
			t.Errorf("the LAN key does not link, the others do: %+v", ed)
		}
	}
	// Deterministic.
	if again := layoutGraph(members, evidence); fmt.Sprint(again) != fmt.Sprint(g) {
		t.Error("the layout is not deterministic")
	}

	// Caps: 100 devices on one key show graphMaxDevices of them.
	var many []store.ClusterMember
	var holders []string
	for i := range 100 {
		id := fmt.Sprintf("d%03d", i)
		many = append(many, store.ClusterMember{DeviceID: id, Hostname: id})
		holders = append(holders, id)
	}
	g = layoutGraph(many, []store.SharedKey{{Kind: fleet.KindEgress, Value: "x", Link: true, Devices: holders}})
	if len(g.Devices) != graphMaxDevices || g.AllDevices != 100 || !g.Capped() || len(g.Edges) != graphMaxDevices {
		t.Errorf("capped graph: %d of %d devices, %d edges", len(g.Devices), g.AllDevices, len(g.Edges))
	}
	if g.Keys[0].Y != graphMargin+(graphMaxDevices-1)*graphRow/2 {
		t.Errorf("the single key is not centred: %d", g.Keys[0].Y)
	}
	if g := layoutGraph(nil, nil); g.Height != 2*graphMargin || len(g.Devices)+len(g.Keys)+len(g.Edges) != 0 {
		t.Errorf("empty graph: %+v", g)
	}
}
