package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/geo/geotest"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
)

// TestIdPEndToEnd: laptops report to a real collector from loopback
// addresses a generated GeoIP database places in US cities; sign-in
// documents in the providers' own formats are imported with `idp
// import`. Ana's laptop is in Phoenix while her Okta sign-ins come from an
// address the collector's GeoIP places in China: idp_signin_far_from_laptop.
// Bo signs in from his laptop's own address: nothing. Cy's and Di's laptops
// sit in Dallas and Seattle, unlinked, until their Entra sign-ins show one
// residential address: then they are one cluster. A second import of the
// same documents stores nothing new.
func TestIdPEndToEnd(t *testing.T) {
	agent, collector := binaries(t)
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	place := func(cc, name string, lat, lon float64) map[string]any {
		return map[string]any{"country": map[string]any{"iso_code": cc}, "city": map[string]any{"names": map[string]any{"en": name}},
			"location": map[string]any{"latitude": lat, "longitude": lon, "accuracy_radius": uint16(20)}}
	}
	geotest.Write(t, city, "GeoLite2-City", map[string]map[string]any{
		"127.0.1.0/24": place("US", "Phoenix", 33.4484, -112.0740),
		"127.0.2.0/24": place("CN", "Shenyang", 41.8057, 123.4315),
		"127.0.4.0/24": place("US", "Dallas", 32.7767, -96.7970),
		"127.0.5.0/24": place("US", "Seattle", 47.6062, -122.3321),
		"127.0.6.0/24": place("US", "Atlanta", 33.7490, -84.3880),
	})
	geotest.Write(t, asn, "GeoLite2-ASN", map[string]map[string]any{
		"127.0.1.0/24": {"autonomous_system_number": uint32(7922), "autonomous_system_organization": "COMCAST-7922"},
		"127.0.6.0/24": {"autonomous_system_number": uint32(7922), "autonomous_system_organization": "COMCAST-7922"},
	})
	// The embedded policies, with a networks catalog that does not call
	// 127/8 private (this test's "internet" is loopback) and that knows
	// Comcast as residential.
	pol := filepath.Join(dir, "policies")
	if err := os.CopyFS(pol, policies.FS()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(pol, policies.NetworksFile), 0o644)
	if err := os.WriteFile(filepath.Join(pol, policies.NetworksFile), []byte(
		"asns:\n  - {asn: 7922, name: Comcast, class: residential, sources: [https://bgp.he.net/AS7922]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "hr.csv")
	os.WriteFile(csv, []byte("email,name,username,device_serial,country,region,city,timezone,work_hours\n"+
		"ana@example.com,Ana,ana,5ZK2LM3,US,AZ,Phoenix,America/Phoenix,09:00-17:00\n"+
		"bo@example.com,Bo,bo,3YK2LM3,US,AZ,Phoenix,America/Phoenix,09:00-17:00\n"+
		"cy@example.com,Cy,cy,PF0H0M3D,US,TX,Dallas,America/Chicago,09:00-17:00\n"+
		"di@example.com,Di,di,1YK2LM3,US,WA,Seattle,America/Los_Angeles,09:00-17:00\n"), 0o644)

	storetest.Engines(t, func(t *testing.T, dsn string) {
		args := []string{"--policies", pol, "--geoip", city, "--geoip", asn}
		if strings.HasPrefix(dsn, "postgres") {
			args = append(args, "--db", dsn)
		}
		s := startServerArgs(t, collector, t.TempDir(), args...)
		s.admin(t, "people", "import", csv)
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")

		const roots = "../agent/internal/scan/testdata/roots"
		for _, a := range []struct{ root, source string }{
			{"remote-ny", "127.0.1.2"},   // Ana: Phoenix
			{"office-dock", "127.0.1.3"}, // Bo: Phoenix
			{"home-desk", "127.0.4.2"},   // Cy: Dallas
			{"aten-dongle", "127.0.5.2"}, // Di: Seattle
		} {
			state := t.TempDir()
			cfg := filepath.Join(state, "agent.yaml")
			os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nsource_address: %s\n",
				s.grpc, secret, fp, state, a.source), 0o600)
			runAgent(t, agent, "run", "--once", "--config", cfg, "--root", filepath.Join(roots, a.root))
		}
		devices := func() map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, d := range s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any) {
				m := d.(map[string]any)
				out[m["person"].(string)] = m
			}
			return out
		}
		before := devices()
		for _, p := range []string{"ana@example.com", "bo@example.com", "cy@example.com", "di@example.com"} {
			if before[p] == nil {
				t.Fatalf("no device bound to %s: %v", p, before)
			}
		}
		if c := before["cy@example.com"]["cluster_id"]; c != "" && c == before["di@example.com"]["cluster_id"] {
			t.Fatalf("cy and di linked before any sign-in: %v", c)
		}

		// Sign-ins a minute ago, as the providers' APIs return them.
		at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
		oktaEvent := func(id, email, ip string) string {
			return fmt.Sprintf(`{"uuid": %q, "published": %q, "eventType": "user.session.start", "version": "0", "severity": "INFO",
				"actor": {"id": "00u1", "type": "User", "alternateId": %q, "displayName": "x"},
				"client": {"ipAddress": %q, "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
				"outcome": {"result": "SUCCESS"}, "securityContext": {"isProxy": false}}`, id, at, email, ip)
		}
		okta := filepath.Join(dir, "okta.json")
		os.WriteFile(okta, []byte("["+oktaEvent("ev-ana-1", "Ana@Example.com", "127.0.2.9")+", "+
			oktaEvent("ev-bo-1", "bo@example.com", "127.0.1.3")+", "+
			`{"uuid": "ev-bad", "published": "2026-02-31T00:00:00Z", "eventType": "user.session.start", "actor": {"type": "User", "alternateId": "ana@example.com"}, "outcome": {"result": "SUCCESS"}}`+"]"), 0o644)
		entraSignin := func(id, upn string) string {
			return fmt.Sprintf(`{"id": %q, "createdDateTime": %q, "userPrincipalName": %q, "ipAddress": "127.0.6.7",
				"status": {"errorCode": 0}, "location": {"city": "Atlanta", "countryOrRegion": "US"}}`, id, at, upn)
		}
		entra := filepath.Join(dir, "entra.json")
		os.WriteFile(entra, []byte(`{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": [`+
			entraSignin("si-cy-1", "CY@example.com")+", "+entraSignin("si-di-1", "di@example.com")+`]}`), 0o644)

		importIdP := func(format, file string) (string, error) {
			cmd := []string{"idp", "import", "--format", format, file, "--policies", pol, "--geoip", city, "--geoip", asn, "--data-dir", s.dataDir}
			if s.db != "" {
				cmd = append(cmd, "--db", s.db)
			}
			out, err := exec.Command(collector, cmd...).CombinedOutput()
			return string(out), err
		}
		out, err := importIdP("okta", okta)
		if err == nil || !strings.Contains(out, "record 2 (ev-bad): published") || !strings.Contains(out, "imported 2 sign-ins (0 already stored") {
			t.Fatalf("okta import: %v\n%s", err, out)
		}
		if out, err := importIdP("entra", entra); err != nil || !strings.Contains(out, "imported 2 sign-ins (0 already stored") {
			t.Fatalf("entra import: %v\n%s", err, out)
		}
		if out, err := importIdP("entra", entra); err != nil || !strings.Contains(out, "imported 0 sign-ins (2 already stored") {
			t.Fatalf("entra import again: %v\n%s", err, out)
		}

		after := devices()
		alerts := map[string][]string{}
		var far map[string]any
		for _, a := range s.api(t, "GET", "/api/v1/alerts?limit=500", viewer, "", 200)["alerts"].([]any) {
			m := a.(map[string]any)
			id := m["rule_id"].(string)
			if !strings.HasPrefix(id, "idp_") {
				continue
			}
			alerts[m["person"].(string)] = append(alerts[m["person"].(string)], id)
			if id == "idp_signin_far_from_laptop" && m["person"] == "ana@example.com" {
				far = m
			}
		}
		if got := alerts["ana@example.com"]; !slices.Contains(got, "idp_signin_far_from_laptop") {
			t.Errorf("ana: idp alerts %v, want idp_signin_far_from_laptop", got)
		} else if ev := far["evidence"].(map[string]any); ev["signin_country"] != "CN" || ev["signin_city"] != "Shenyang" ||
			ev["laptop_city"] != "Phoenix" || ev["laptop_ip"] != "127.0.1.2" || ev["distance_km"].(float64) < 9000 || ev["signin_location_source"] != "collector" {
			t.Errorf("ana: evidence %v", ev)
		}
		if got := alerts["bo@example.com"]; len(got) != 0 {
			t.Errorf("bo signed in from his laptop's own address and got %v", got)
		}
		cy, di := after["cy@example.com"]["cluster_id"], after["di@example.com"]["cluster_id"]
		if cy == "" || cy != di {
			t.Fatalf("cy (%v) and di (%v) not linked by their sign-in address", cy, di)
		}
		if after["ana@example.com"]["cluster_id"] == cy {
			t.Errorf("ana joined cy and di's cluster")
		}
		farm := s.api(t, "GET", "/api/v1/farms/"+cy.(string), viewer, "", 200)
		if links, _ := farm["links"].([]any); !slices.Contains(links, any("signin_ip")) {
			t.Errorf("cluster links %v, want signin_ip", farm["links"])
		}
	})
}

// TestIdPServeConnector: `serve --idp` polls a loopback server speaking
// Okta's System Log API (serving the documented example LogEvents) with
// the token from the environment, and GET /api/v1/idp shows the
// connector's state.
func TestIdPServeConnector(t *testing.T) {
	_, collector := binaries(t)
	doc, err := os.ReadFile("internal/idp/testdata/okta.json")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	okta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "SSWS tok-123" {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		hits.Add(1)
		w.Header().Set("Link", `<http://`+r.Host+`/api/v1/logs?after=end>; rel="next"`)
		if r.URL.Query().Get("after") == "end" {
			io.WriteString(w, "[]")
			return
		}
		w.Write(doc)
	}))
	defer okta.Close()
	storetest.Engines(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "idp.yaml")
		os.WriteFile(cfg, []byte("connectors:\n  - {name: okta-main, provider: okta, base_url: "+okta.URL+", token_env: BONAFIDE_TEST_OKTA_TOKEN, poll_interval: 10s}\n"), 0o600)
		t.Setenv("BONAFIDE_TEST_OKTA_TOKEN", "tok-123")
		args := []string{"--idp", cfg}
		if strings.HasPrefix(dsn, "postgres") {
			args = append(args, "--db", dsn)
		}
		s := startServerArgs(t, collector, t.TempDir(), args...)
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		deadline := time.Now().Add(2 * time.Minute)
		for {
			cs := s.api(t, "GET", "/api/v1/idp", viewer, "", 200)["connectors"].([]any)
			if len(cs) == 1 {
				c := cs[0].(map[string]any)
				if c["events"].(float64) == 3 && c["name"] == "okta-main" && strings.Contains(c["cursor"].(string), "after=end") {
					if c["last_error"] != nil || c["lag_seconds"].(float64) < 0 {
						t.Errorf("connector state %v", c)
					}
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("connector state %v\n%s", cs, s.log)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestIdPImportFormats: `idp import` of each provider's example document
// (internal/idp/testdata) reports every bad record with its position,
// keeps the good ones, exits non-zero, and a second import stores nothing
// twice.
func TestIdPImportFormats(t *testing.T) {
	_, collector := binaries(t)
	for _, tc := range []struct {
		format        string
		good, refused int
		bad           string
	}{
		{"okta", 3, 3, "record 4 (f3333333-598c-11ef-8478-2b7584bf8d5a): published"},
		{"entra", 3, 4, "record 5 (f0f0f0f0-6301-4ee5-be62-ff5a759b0105): no status.errorCode"},
		{"google", 2, 2, "record 3 (18/login_success): id.time"},
	} {
		dir := t.TempDir()
		file := filepath.Join("internal/idp/testdata", tc.format+".json")
		for i, want := range []string{
			fmt.Sprintf("imported %d sign-ins (0 already stored", tc.good),
			fmt.Sprintf("imported 0 sign-ins (%d already stored", tc.good),
		} {
			out, err := exec.Command(collector, "idp", "import", "--format", tc.format, file, "--data-dir", dir).CombinedOutput()
			if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), tc.bad) ||
				!strings.Contains(string(out), fmt.Sprintf("%d records refused", tc.refused)) {
				t.Errorf("%s import %d: %v\n%s", tc.format, i+1, err, out)
			}
		}
	}
	out, err := exec.Command(collector, "idp", "import", "--format", "ldap", "internal/idp/testdata/okta.json", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `format "ldap"`) {
		t.Errorf("unknown format: %v\n%s", err, out)
	}
}
