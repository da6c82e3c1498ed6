package idp

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// oktaEvent is the part of an Okta System Log LogEvent a sign-in needs
// (https://developer.okta.com/docs/reference/api/system-log/, the
// LogEvent object).
type oktaEvent struct {
	UUID      string `json:"uuid"`
	Published string `json:"published"`
	EventType string `json:"eventType"`
	Actor     struct {
		Type        string `json:"type"`
		AlternateID string `json:"alternateId"`
	} `json:"actor"`
	Outcome *struct {
		Result string `json:"result"`
		Reason string `json:"reason"`
	} `json:"outcome"`
	Client struct {
		IPAddress string `json:"ipAddress"`
		UserAgent struct {
			RawUserAgent string `json:"rawUserAgent"`
		} `json:"userAgent"`
		GeographicalContext *struct {
			City        string `json:"city"`
			State       string `json:"state"`
			Country     string `json:"country"`
			Geolocation *struct {
				Lat float64 `json:"lat"`
				Lon float64 `json:"lon"`
			} `json:"geolocation"`
		} `json:"geographicalContext"`
	} `json:"client"`
	Device *struct {
		ID string `json:"id"`
	} `json:"device"`
	SecurityContext *struct {
		IsProxy *bool `json:"isProxy"`
	} `json:"securityContext"`
	AuthenticationContext *struct {
		CredentialType string `json:"credentialType"`
	} `json:"authenticationContext"`
	DebugContext *struct {
		DebugData map[string]any `json:"debugData"`
	} `json:"debugContext"`
}

// oktaSigninEvents are the LogEvent types that are a user signing in or
// proving it: a session started, an app reached through single sign-on,
// an MFA factor used.
var oktaSigninEvents = map[string]bool{
	"user.session.start":               true,
	"user.authentication.sso":          true,
	"user.authentication.auth_via_mfa": true,
	"user.authentication.verify":       true,
}

// ParseOkta reads the System Log API's response: a JSON array of LogEvent
// objects. Events of other types are skipped.
func ParseOkta(data []byte) (Parsed, error) {
	recs, err := records(data, "")
	if err != nil {
		return Parsed{}, fmt.Errorf("okta: %w", err)
	}
	var p Parsed
	for i, raw := range recs {
		var ev oktaEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			p.Errors = append(p.Errors, RecordError{Index: i, Err: "not a LogEvent: " + jsonError(err)})
			continue
		}
		if !oktaSigninEvents[ev.EventType] {
			p.Skipped++
			continue
		}
		si, err := ev.signin()
		if err == errSkip {
			p.Skipped++
			continue
		}
		p.keep(i, si, err)
	}
	return p, nil
}

// errSkip marks an event that is not a sign-in after all.
var errSkip = fmt.Errorf("not a sign-in")

func (ev *oktaEvent) signin() (store.Signin, error) {
	si := store.Signin{Provider: Okta, EventID: ev.UUID, Email: ev.Actor.AlternateID, IP: ev.Client.IPAddress,
		UserAgent: ev.Client.UserAgent.RawUserAgent}
	if ev.Actor.Type != "" && ev.Actor.Type != "User" {
		return si, errSkip
	}
	t, err := time.Parse(time.RFC3339Nano, ev.Published)
	if err != nil {
		return si, fmt.Errorf("published %q: not an RFC 3339 time", clip(ev.Published, 64))
	}
	si.At = t
	if ev.Outcome == nil {
		return si, fmt.Errorf("no outcome")
	}
	switch strings.ToUpper(ev.Outcome.Result) {
	case "SUCCESS", "ALLOW":
		si.Result = store.SigninSuccess
	case "FAILURE", "DENY":
		si.Result = store.SigninFailure
	case "CHALLENGE":
		si.Result = store.SigninChallenge
	default: // SKIPPED, UNKNOWN: nothing happened
		return si, errSkip
	}
	si.Reason = ev.Outcome.Reason
	if g := ev.Client.GeographicalContext; g != nil {
		si.ProviderCountry, si.ProviderRegion, si.ProviderCity = g.Country, g.State, g.City
		if g.Geolocation != nil {
			si.ProviderLatitude, si.ProviderLongitude = g.Geolocation.Lat, g.Geolocation.Lon
		}
	}
	if ev.Device != nil {
		si.DeviceID = ev.Device.ID
	}
	if sc := ev.SecurityContext; sc != nil && sc.IsProxy != nil && *sc.IsProxy {
		si.ProviderProxy = true
	}
	if ev.DebugContext != nil {
		if f, ok := ev.DebugContext.DebugData["factor"].(string); ok {
			si.MFAFactor = f
		}
		if r, ok := ev.DebugContext.DebugData["risk"].(string); ok {
			si.ProviderRisk = r
		}
	}
	if si.MFAFactor == "" && ev.AuthenticationContext != nil && ev.EventType == "user.authentication.auth_via_mfa" {
		si.MFAFactor = ev.AuthenticationContext.CredentialType
	}
	return si, nil
}
