package api_test

import (
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// TestIdPEndpoints: a person's sign-ins newest first with the collector's
// location, paged by time; the connectors' state; refusals.
func TestIdPEndpoints(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.st.UpsertPerson(ctx, store.Person{Email: "ana@example.com"}, "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var batch []store.Signin
	for i, ip := range []string{"198.51.100.7", "203.0.113.9"} {
		si := store.Signin{Provider: "okta", EventID: "ev-" + ip, At: now.Add(time.Duration(i-2) * time.Hour), Email: "ANA@example.com",
			Result: "success", IP: ip, Egress: detect.Egress{IP: ip, Status: "ok", Country: "KR", NetworkClass: "vpn"}}
		if err := si.Validate(); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, si)
	}
	if _, err := f.st.CommitIdPPage(ctx, "okta-main", "okta", "https://o.example/api/v1/logs?after=2", batch, nil, now); err != nil {
		t.Fatal(err)
	}

	got := f.call("GET", "/api/v1/people/ana@example.com/signins", "", 200)["signins"].([]any)
	if len(got) != 2 {
		t.Fatalf("signins %v", got)
	}
	first := got[0].(map[string]any)
	if first["ip"] != "203.0.113.9" || first["email"] != "ana@example.com" || first["egress"].(map[string]any)["network_class"] != "vpn" {
		t.Errorf("newest sign-in %v", first)
	}
	older := f.call("GET", "/api/v1/people/ana@example.com/signins?limit=5&before="+first["at"].(string), "", 200)["signins"].([]any)
	if len(older) != 1 || older[0].(map[string]any)["ip"] != "198.51.100.7" {
		t.Errorf("before the newest: %v", older)
	}
	f.call("GET", "/api/v1/people/nobody@example.com/signins", "", 404)
	f.call("GET", "/api/v1/people/ana@example.com/signins?before=yesterday", "", 400)
	f.call("GET", "/api/v1/people/ana@example.com/signins?since=1", "", 400)

	cs := f.call("GET", "/api/v1/idp", "", 200)["connectors"].([]any)
	if len(cs) != 1 {
		t.Fatalf("connectors %v", cs)
	}
	c := cs[0].(map[string]any)
	if c["name"] != "okta-main" || c["events"] != 2.0 || c["cursor"] != "https://o.example/api/v1/logs?after=2" || c["lag_seconds"] != 3600.0 {
		t.Errorf("connector %v", c)
	}
	f.call("GET", "/api/v1/idp?x=1", "", 400)
}
