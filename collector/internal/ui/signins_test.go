package ui

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// TestPersonPageSignins: the person page puts an identity-provider
// sign-in beside the laptop's egress on one timeline, with the distance
// between the sign-in and the laptop's report nearest to it.
func TestPersonPageSignins(t *testing.T) {
	p := newPages(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	a, err := p.st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	berlin := detect.Egress{IP: "198.51.100.1", Status: "ok", Country: "DE", City: "Berlin", HasLocation: true, Latitude: 52.52, Longitude: 13.405,
		ASN: 3320, Org: "Deutsche Telekom AG", NetworkClass: "residential"}
	if _, err := p.st.Ingest(ctx, store.IngestBatch{Agent: a, IP: berlin.IP, Egress: berlin, ReceivedAt: now.Add(-10 * time.Minute),
		ReportInterval: 5 * time.Minute, Reports: []store.IngestReport{{ReportID: "r-now", Sequence: 9, CreatedAt: now.Add(-10 * time.Minute),
			Identity: store.DeviceIdentity{SerialNumber: "SN-KVM-1", Hostname: evilHost, OSFamily: "linux", AgentVersion: "1.2.0"}}}}, alwaysFires{}); err != nil {
		t.Fatal(err)
	}
	si := store.Signin{Provider: "okta", EventID: "ev-1", At: now.Add(-5 * time.Minute), Email: "Ana@Corp.Example", Result: "success",
		IP: "203.0.113.50", UserAgent: evilProduct, Egress: detect.Egress{IP: "203.0.113.50", Status: "ok", Country: "KP", City: "Pyongyang",
			HasLocation: true, Latitude: 39.0392, Longitude: 125.7625, NetworkClass: "unknown"}}
	if err := si.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.st.AddSignins(ctx, []store.Signin{si}, nil, now); err != nil {
		t.Fatal(err)
	}
	km := geo.DistanceKm(52.52, 13.405, 39.0392, 125.7625)
	c := p.browse(t, "vic")
	code, body, _ := p.get(t, c, "/ui/people/ana@corp.example")
	if code != http.StatusOK {
		t.Fatalf("person page: %d\n%s", code, body)
	}
	inert(t, "person page", body)
	wantIn(t, "person page", body, "Sign-ins and laptop positions", "sign-in (okta, success)",
		`<td class="host">203.0.113.50</td><td>Pyongyang, KP</td>`,
		fmt.Sprintf("<strong>%.0f km</strong>", km), "&lt;img src=x onerror=alert(1)&gt; at 198.51.100.1, Berlin, DE (5 min apart)",
		`laptop <span class="host">&lt;img src=x onerror=alert(1)&gt;</span> egress`)
	// The sign-in (5 minutes ago) above the laptop's egress change (10).
	if i, j := strings.Index(body, "sign-in (okta"), strings.Index(body, "egress</td>"); i < 0 || j < i {
		t.Errorf("timeline order: sign-in at %d, laptop egress at %d", i, j)
	}
}

// The identity-provider rules' evidence puts the sign-in and the laptop
// side by side.
func TestEvidenceSigninBesideLaptop(t *testing.T) {
	e := layoutEvidence(map[string]any{"distance_km": 8100.0, "signin_ip": "203.0.113.50", "signin_city": "Pyongyang",
		"laptop_ip": "198.51.100.1", "laptop_city": "Berlin", "laptop_network": "residential"})
	if len(e.Fields) != 2 || e.Fields[0].Label != "sign-in and laptop" || e.Fields[1].Label != "distance km" {
		t.Fatalf("fields %+v", e.Fields)
	}
	tab := e.Fields[0].Value.Table
	want := [][]string{{"city", "Pyongyang", "Berlin"}, {"ip", "203.0.113.50", "198.51.100.1"}, {"network", "", "residential"}}
	if tab == nil || fmt.Sprint(tab.Columns) != "[ sign-in laptop]" || fmt.Sprint(tab.Rows) != fmt.Sprint(want) {
		t.Errorf("table %+v", tab)
	}
	// Without both halves nothing changes.
	if e := layoutEvidence(map[string]any{"signin_ip": "x"}); len(e.Fields) != 1 || e.Fields[0].Label != "signin ip" {
		t.Errorf("one half: %+v", e.Fields)
	}
}

// TestIdPPage: the identity-provider page shows each connector's state;
// a provider's error text is shown escaped.
func TestIdPPage(t *testing.T) {
	p := newPages(t)
	ctx := t.Context()
	now := time.Now()
	si := store.Signin{Provider: "entra", EventID: "e1", At: now.Add(-time.Minute), Email: "x@corp.example", Result: "success"}
	if _, err := p.st.CommitIdPPage(ctx, "entra-main", "entra", "2026-01-01T00:00:00Z", []store.Signin{si}, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := p.st.IdPError(ctx, "okta-main", "okta", `GET https://o.example/api/v1/logs: 500: <img src=x onerror=alert(1)>`, now); err != nil {
		t.Fatal(err)
	}
	code, body, _ := p.get(t, p.browse(t, "vic"), "/ui/idp")
	if code != http.StatusOK {
		t.Fatalf("idp page: %d\n%s", code, body)
	}
	inert(t, "idp page", body)
	wantIn(t, "idp page", body, "<td>entra-main</td>", "<td>entra</td>", "<td>1</td>", "60 s",
		"<td>okta-main</td>", "500: &lt;img src=x onerror=alert(1)&gt;", "never", `<a href="/ui/idp">Identity providers</a>`)
}

// TestFarmSigninLink: two people whose laptops sit in different places
// but who sign in from one residential address form a farm, and the farm
// view names the link.
func TestFarmSigninLink(t *testing.T) {
	e := newPageEnv(t, Options{})
	ctx := t.Context()
	for _, p := range []store.Person{{Email: "cy@example.com", DeviceSerial: "SN-lap-cy"}, {Email: "di@example.com", DeviceSerial: "SN-lap-di"}} {
		if _, err := e.st.UpsertPerson(ctx, p, "test"); err != nil {
			t.Fatal(err)
		}
	}
	e.report(t, "lap-cy", "198.51.100.21", "f4:92:bf:00:00:21", "", e.live)
	e.report(t, "lap-di", "198.51.100.22", "f4:92:bf:00:00:22", "", e.live)
	var batch []store.Signin
	for _, email := range []string{"cy@example.com", "di@example.com"} {
		si := store.Signin{Provider: "entra", EventID: "si-" + email, At: time.Now().Add(-time.Minute), Email: email, Result: "success",
			IP: "192.0.2.44", Egress: detect.Egress{IP: "192.0.2.44", Status: "ok", Country: "US", NetworkClass: "residential"}}
		if err := si.Validate(); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, si)
	}
	if _, err := e.st.AddSignins(ctx, batch, e.live, time.Now()); err != nil {
		t.Fatal(err)
	}
	farms, err := e.st.ListClusters(ctx, false, 10)
	if err != nil || len(farms) != 1 {
		t.Fatalf("clusters: %+v %v", farms, err)
	}
	code, page := e.signIn(t, "vic").get("/ui/farms/" + farms[0].ID)
	if code != http.StatusOK || !strings.Contains(page, "sign-in address") || !strings.Contains(page, "192.0.2.44") {
		t.Errorf("farm view: %d, want the sign-in address link\n%s", code, page)
	}
}
