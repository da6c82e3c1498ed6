package api_test

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// TestCasesAPI: the farm rule's alert opened a farm case holding both
// alerts; the plain alert listing still lists both while the grouped one
// lists the case and no single alert; an analyst assigns the case, adds a
// note, ticks a step and closes it with an outcome (which resolves the
// alerts); a case is made by hand from an alert; the evidence package
// downloads and verifies against the collector's key; a viewer can read
// but not export; bad input is invalid_argument.
func TestCasesAPI(t *testing.T) {
	f := newFixture(t)
	list := f.call("GET", "/api/v1/cases", "", 200)["cases"].([]any)
	if len(list) != 1 {
		t.Fatalf("cases %v, want the farm's", list)
	}
	c := list[0].(map[string]any)
	if c["kind"] != "farm" || c["subject"] != "c-0123456789ab" || c["alerts"] != 2.0 || c["status"] != "open" {
		t.Errorf("farm case %v", c)
	}
	path := fmt.Sprintf("/api/v1/cases/%v", c["id"])
	if n := len(f.call("GET", "/api/v1/alerts", "", 200)["alerts"].([]any)); n != 2 {
		t.Errorf("GET /api/v1/alerts: %d alerts, want every one (2)", n)
	}
	grouped := f.call("GET", "/api/v1/alerts?grouped=true", "", 200)
	if len(grouped["alerts"].([]any)) != 0 || len(grouped["cases"].([]any)) != 1 {
		t.Errorf("grouped queue %v, want the case and no single alert", grouped)
	}
	if n := len(f.call("GET", fmt.Sprintf("/api/v1/alerts?case_id=%v", c["id"]), "", 200)["alerts"].([]any)); n != 2 {
		t.Errorf("alerts of the case: %d", n)
	}

	got := f.call("PATCH", path, `{"owner": "ana", "status": "investigating", "note": "looking"}`, 200)
	if got["owner"] != "ana" || got["status"] != "investigating" || len(got["notes"].([]any)) != 1 || len(got["alert_list"].([]any)) != 2 {
		t.Errorf("after PATCH: %v", got)
	}
	e := f.call("PATCH", path, `{"status": "closed"}`, 400)["error"].(map[string]any)
	if !strings.Contains(e["message"].(string), "needs an outcome") {
		t.Errorf("closing without an outcome: %v", e)
	}
	f.call("PATCH", path, `{"status": "closed", "outcome": "guilty"}`, 400)
	f.call("PATCH", path, `{"colour": "red"}`, 400)
	f.call("POST", path+"/notes", `{"text": ""}`, 400)
	f.call("POST", path+"/notes", `{"text": "HR told"}`, 200)
	step := f.call("POST", path+"/checklist/report_ic3", `{"note": "IC3 complaint filed"}`, 200)
	var ic3 map[string]any
	for _, s := range step["checklist"].([]any) {
		if s := s.(map[string]any); s["id"] == "report_ic3" {
			ic3 = s
		}
	}
	if ic3["done"] != true || !strings.HasPrefix(ic3["done_by"].(string), "token:") || ic3["note"] != "IC3 complaint filed" {
		t.Errorf("ticked step %v", ic3)
	}
	f.call("POST", path+"/checklist/bogus", `{}`, 400)
	f.call("GET", "/api/v1/cases/999", "", 404)
	f.call("GET", "/api/v1/cases?status=bogus", "", 400)
	f.call("GET", "/api/v1/cases?kind=team", "", 400)

	// The package: a zip that verifies against the collector's key.
	req, _ := http.NewRequest("GET", f.srv.URL+path+"/package", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zip, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("package: %s %s", resp.Status, zip)
	}
	key, err := f.st.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cases.Verify(zip, key.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("the downloaded package does not verify: %v", err)
	}
	viewer, _, err := accounts.New(f.st).CreateToken(t.Context(), "viewer", accounts.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", f.srv.URL+path+"/package", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's export: %v %v", resp.Status, err)
	}

	closed := f.call("PATCH", path, `{"status": "closed", "outcome": "confirmed_fraud"}`, 200)
	if closed["status"] != "closed" || closed["open_alerts"] != nil && closed["open_alerts"] != 0.0 {
		t.Errorf("closed case %v", closed)
	}
	for _, a := range closed["alert_list"].([]any) {
		if a.(map[string]any)["status"] != "resolved" {
			t.Errorf("alert of the closed case: %v", a)
		}
	}
	var actions []string
	for _, a := range closed["audit"].([]any) {
		if a := a.(map[string]any); a["target_type"] == "case" {
			actions = append(actions, a["action"].(string))
		}
	}
	if want := "opened update note note checklist export update"; strings.Join(actions, " ") != want {
		t.Errorf("case audit %q, want %q", actions, want)
	}

	// By hand.
	alerts := f.call("GET", "/api/v1/alerts", "", 200)["alerts"].([]any)
	id := alerts[0].(map[string]any)["id"]
	manual := f.call("POST", "/api/v1/cases", fmt.Sprintf(`{"title": "By hand", "alert_ids": [%v]}`, id), 200)
	if manual["kind"] != "manual" || manual["title"] != "By hand" || manual["alerts"] != 1.0 {
		t.Errorf("manual case %v", manual)
	}
	f.call("POST", "/api/v1/cases", `{"alert_ids": [123456]}`, 404)
	f.call("POST", "/api/v1/cases", `{"alert_ids": []}`, 400)
}
