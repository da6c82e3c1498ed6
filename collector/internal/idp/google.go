package idp

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// googleActivity is the part of a Reports API activity
// (https://developers.google.com/admin-sdk/reports/v1/reference/activities)
// of application login a sign-in needs; its events are described in the
// Login Audit activity reference
// (https://developers.google.com/admin-sdk/reports/v1/appendix/activity/login).
type googleActivity struct {
	ID *struct {
		Time            string          `json:"time"`
		UniqueQualifier json.RawMessage `json:"uniqueQualifier"`
		ApplicationName string          `json:"applicationName"`
	} `json:"id"`
	Actor struct {
		Email string `json:"email"`
	} `json:"actor"`
	IPAddress   string `json:"ipAddress"`
	NetworkInfo *struct {
		RegionCode string `json:"regionCode"`
	} `json:"networkInfo"`
	Events []struct {
		Type       string `json:"type"`
		Name       string `json:"name"`
		Parameters []struct {
			Name       string   `json:"name"`
			Value      string   `json:"value"`
			BoolValue  *bool    `json:"boolValue"`
			MultiValue []string `json:"multiValue"`
		} `json:"parameters"`
	} `json:"events"`
}

// ParseGoogle reads a Reports API response to activities.list for
// application login: a JSON object whose `items` are activities. Each
// login_success, login_failure, login_challenge or login_verification
// event is a sign-in; other events (logout, account changes) are skipped.
func ParseGoogle(data []byte) (Parsed, error) {
	recs, err := records(data, "items")
	if err != nil {
		return Parsed{}, fmt.Errorf("google: %w", err)
	}
	var p Parsed
	for i, raw := range recs {
		var a googleActivity
		if err := json.Unmarshal(raw, &a); err != nil {
			p.Errors = append(p.Errors, RecordError{Index: i, Err: "not an activity: " + jsonError(err)})
			continue
		}
		if a.ID == nil {
			p.Errors = append(p.Errors, RecordError{Index: i, Err: "no id"})
			continue
		}
		if a.ID.ApplicationName != "" && a.ID.ApplicationName != "login" {
			p.Skipped++
			continue
		}
		q := strings.Trim(string(a.ID.UniqueQualifier), `"`)
		t, terr := time.Parse(time.RFC3339Nano, a.ID.Time)
		n := 0
		for _, ev := range a.Events {
			si := store.Signin{Provider: Google, EventID: q + "/" + ev.Name, Email: a.Actor.Email, IP: a.IPAddress}
			switch ev.Name {
			case "login_success":
				si.Result = store.SigninSuccess
			case "login_failure":
				si.Result = store.SigninFailure
			case "login_challenge", "login_verification":
				si.Result = store.SigninChallenge
			default:
				continue
			}
			n++
			if q == "" {
				p.keep(i, si, fmt.Errorf("no id.uniqueQualifier"))
				continue
			}
			if terr != nil {
				p.keep(i, si, fmt.Errorf("id.time %q: not an RFC 3339 time", clip(a.ID.Time, 64)))
				continue
			}
			si.At = t
			if a.NetworkInfo != nil {
				si.ProviderCountry = a.NetworkInfo.RegionCode
			}
			for _, prm := range ev.Parameters {
				switch prm.Name {
				case "login_failure_type", "login_challenge_status":
					si.Reason = prm.Value
				case "login_challenge_method":
					si.MFAFactor = strings.Join(prm.MultiValue, ",")
					if si.MFAFactor == "" {
						si.MFAFactor = prm.Value
					}
				case "is_suspicious":
					if prm.BoolValue != nil && *prm.BoolValue {
						si.ProviderRisk = "suspicious"
					}
				}
			}
			p.keep(i, si, nil)
		}
		if n == 0 {
			p.Skipped++
		}
	}
	return p, nil
}
