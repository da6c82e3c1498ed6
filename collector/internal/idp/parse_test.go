package idp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

func parseFile(t *testing.T, format string) Parsed {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", format+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Parse(format, f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", format, err)
	}
	return p
}

func errorIndexes(p Parsed) []int {
	var out []int
	for _, e := range p.Errors {
		out = append(out, e.Index)
	}
	return out
}

func TestParseOkta(t *testing.T) {
	p := parseFile(t, Okta)
	if len(p.Signins) != 3 {
		t.Fatalf("signins = %+v, want 3", p.Signins)
	}
	if got := errorIndexes(p); len(got) != 3 || got[0] != 4 || got[1] != 5 || got[2] != 6 {
		t.Errorf("refused records %v (%v), want 4, 5 and 6", got, p.Errors)
	}
	if p.Skipped != 1 {
		t.Errorf("skipped = %d, want 1 (the token grant)", p.Skipped)
	}
	first := p.Signins[0]
	want := store.Signin{Provider: "okta", EventID: "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
		At: time.Date(2017, 9, 30, 22, 23, 7, 777e6, time.UTC), Email: "john.doe@example.com", Result: "success",
		IP: "198.51.100.20", UserAgent: first.UserAgent, ProviderCountry: "United States", ProviderRegion: "New York",
		ProviderCity: "New York", ProviderLatitude: 40.3157, ProviderLongitude: -74.01}
	if first != want {
		t.Errorf("first = %+v\nwant    %+v", first, want)
	}
	mfa := p.Signins[1]
	if mfa.Email != "john.doe@example.com" || !mfa.ProviderProxy || mfa.DeviceID != "guo4a5u7YAHhjXrMK0g4" ||
		mfa.MFAFactor != "OKTA_VERIFY_PUSH" || mfa.ProviderRisk != "{level=HIGH}" {
		t.Errorf("MFA event = %+v", mfa)
	}
	if f := p.Signins[2]; f.Result != "failure" || f.Reason != "INVALID_CREDENTIALS" {
		t.Errorf("failure = %+v", f)
	}
	if !strings.Contains(p.Errors[0].Err, "published") || !strings.Contains(p.Errors[1].Err, "ip") {
		t.Errorf("errors = %v", p.Errors)
	}
}

func TestParseEntra(t *testing.T) {
	p := parseFile(t, Entra)
	if len(p.Signins) != 3 {
		t.Fatalf("signins = %+v, want 3", p.Signins)
	}
	if got := errorIndexes(p); len(got) != 4 || got[0] != 3 || got[3] != 6 {
		t.Errorf("refused records %v (%v), want 3 to 6", got, p.Errors)
	}
	ok := p.Signins[0]
	if ok.EventID != "66ea54eb-6301-4ee5-be62-ff5a759b0100" || ok.Email != "testaccount1@contoso.com" || ok.Result != "success" ||
		ok.IP != "131.107.159.37" || ok.ProviderCountry != "US" || ok.ProviderCity != "Redmond" || ok.ProviderLatitude != 47.68050003051758 ||
		ok.UserAgent != "Edge 80.0.361 on Windows 10" || ok.ProviderProxy || ok.ProviderRisk != "" {
		t.Errorf("first = %+v", ok)
	}
	risky := p.Signins[1]
	if risky.Email != "testaccount2@contoso.com" || risky.Result != "challenge" || !risky.ProviderProxy ||
		risky.ProviderRisk != "high anonymizedIPAddress" || risky.DeviceID != "2c0a7f8e-1111-4b2a-9d3e-5f6a7b8c9d0e" ||
		risky.MFADevice != "a9b8c7d6-2222-4e5f-8a9b-0c1d2e3f4a5b" {
		t.Errorf("risky = %+v", risky)
	}
	if f := p.Signins[2]; f.Result != "failure" || !strings.HasPrefix(f.Reason, "50126: ") {
		t.Errorf("failure = %+v", f)
	}
}

func TestParseGoogle(t *testing.T) {
	p := parseFile(t, Google)
	if len(p.Signins) != 2 {
		t.Fatalf("signins = %+v, want 2", p.Signins)
	}
	if got := errorIndexes(p); len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Errorf("refused records %v (%v), want 3 and 4", got, p.Errors)
	}
	if p.Skipped != 1 {
		t.Errorf("skipped = %d, want 1 (the logout)", p.Skipped)
	}
	s := p.Signins[0]
	if s.EventID != "-3218452147789945617/login_success" || s.Email != "liz@example.com" || s.Result != "success" ||
		s.IP != "203.0.113.10" || s.MFAFactor != "password,google_authenticator" || s.ProviderRisk != "" ||
		!s.At.Equal(time.Date(2024, 1, 15, 14, 3, 9, 0, time.UTC)) {
		t.Errorf("first = %+v", s)
	}
	f := p.Signins[1]
	if f.Result != "failure" || f.Reason != "login_failure_invalid_password" || f.ProviderRisk != "suspicious" ||
		f.IP != "2001:db8::5" || f.ProviderCountry != "KP" || f.Email != "liz@example.com" {
		t.Errorf("failure = %+v", f)
	}
}

// Documents that are not the provider's form are refused whole.
func TestParseNotTheFormat(t *testing.T) {
	for _, tc := range []struct{ format, doc string }{
		{Okta, `{"value": []}`},
		{Okta, `[{"uuid": 1}`},
		{Entra, `[]`},
		{Entra, `{"value": {"id": "x"}}`},
		{Google, `"items"`},
		{"ldap", `[]`},
	} {
		if _, err := Parse(tc.format, strings.NewReader(tc.doc)); err == nil {
			t.Errorf("Parse(%s, %s): no error", tc.format, tc.doc)
		}
	}
	// An empty page is a page.
	for _, tc := range []struct{ format, doc string }{{Okta, `[]`}, {Entra, `{"value": []}`}, {Google, `{"kind": "admin#reports#activities"}`}} {
		if p, err := Parse(tc.format, strings.NewReader(tc.doc)); err != nil || len(p.Signins)+len(p.Errors) != 0 {
			t.Errorf("Parse(%s, %s) = %+v, %v", tc.format, tc.doc, p, err)
		}
	}
}

// Over-long fields: ids are refused, free text is cut.
func TestParseCaps(t *testing.T) {
	long := strings.Repeat("é", 400)
	doc := `[{"uuid": "` + strings.Repeat("a", 300) + `", "eventType": "user.session.start", "published": "2024-01-01T00:00:00Z",
		"actor": {"type": "User", "alternateId": "a@example.com"}, "outcome": {"result": "SUCCESS"}},
		{"uuid": "ok", "eventType": "user.session.start", "published": "2024-01-01T00:00:00Z",
		"actor": {"type": "User", "alternateId": "a@example.com"}, "outcome": {"result": "SUCCESS"},
		"client": {"userAgent": {"rawUserAgent": "` + long + `"}}}]`
	p, err := ParseOkta([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) != 1 || p.Errors[0].Index != 0 || len(p.Signins) != 1 {
		t.Fatalf("got %+v", p)
	}
	if ua := p.Signins[0].UserAgent; len(ua) > 512 || !strings.HasPrefix(long, ua) {
		t.Errorf("user agent not cut on a character: %d bytes", len(ua))
	}
}
