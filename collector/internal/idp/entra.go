package idp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// entraSignin is the part of a Microsoft Graph signIn resource a sign-in
// needs (https://learn.microsoft.com/graph/api/resources/signin; the beta
// fields authenticationAppDeviceDetails and userAgent are read when
// present).
type entraSignin struct {
	ID                string `json:"id"`
	CreatedDateTime   string `json:"createdDateTime"`
	UserPrincipalName string `json:"userPrincipalName"`
	IPAddress         string `json:"ipAddress"`
	ClientAppUsed     string `json:"clientAppUsed"`
	UserAgent         string `json:"userAgent"`
	Status            *struct {
		ErrorCode     *int   `json:"errorCode"`
		FailureReason string `json:"failureReason"`
	} `json:"status"`
	DeviceDetail *struct {
		DeviceID        string `json:"deviceId"`
		OperatingSystem string `json:"operatingSystem"`
		Browser         string `json:"browser"`
	} `json:"deviceDetail"`
	Location *struct {
		City            string `json:"city"`
		State           string `json:"state"`
		CountryOrRegion string `json:"countryOrRegion"`
		GeoCoordinates  *struct {
			Latitude  *float64 `json:"latitude"`
			Longitude *float64 `json:"longitude"`
		} `json:"geoCoordinates"`
	} `json:"location"`
	RiskLevelDuringSignIn string   `json:"riskLevelDuringSignIn"`
	RiskEventTypes        []string `json:"riskEventTypes"`
	RiskEventTypesV2      []string `json:"riskEventTypes_v2"`
	MFADetail             *struct {
		AuthMethod string `json:"authMethod"`
	} `json:"mfaDetail"`
	AuthenticationDetails []struct {
		AuthenticationMethod string `json:"authenticationMethod"`
		Succeeded            *bool  `json:"succeeded"`
	} `json:"authenticationDetails"`
	AuthenticationAppDeviceDetails *struct {
		DeviceID string `json:"deviceId"`
	} `json:"authenticationAppDeviceDetails"`
}

// entraChallenge are the sign-in error codes that ask for a second
// factor rather than refuse (AADSTS50074, 50076, 50079).
var entraChallenge = []int{50074, 50076, 50079}

// ParseEntra reads a Microsoft Graph response to GET
// /auditLogs/signIns: a JSON object whose `value` is a list of signIn
// resources.
func ParseEntra(data []byte) (Parsed, error) {
	recs, err := records(data, "value")
	if err != nil {
		return Parsed{}, fmt.Errorf("entra: %w", err)
	}
	var p Parsed
	for i, raw := range recs {
		var ev entraSignin
		if err := json.Unmarshal(raw, &ev); err != nil {
			p.Errors = append(p.Errors, RecordError{Index: i, Err: "not a signIn: " + jsonError(err)})
			continue
		}
		si, err := ev.signin()
		p.keep(i, si, err)
	}
	return p, nil
}

func (ev *entraSignin) signin() (store.Signin, error) {
	si := store.Signin{Provider: Entra, EventID: ev.ID, Email: ev.UserPrincipalName, IP: ev.IPAddress, UserAgent: ev.UserAgent}
	t, err := time.Parse(time.RFC3339Nano, ev.CreatedDateTime)
	if err != nil {
		return si, fmt.Errorf("createdDateTime %q: not an RFC 3339 time", clip(ev.CreatedDateTime, 64))
	}
	si.At = t
	if ev.Status == nil || ev.Status.ErrorCode == nil {
		return si, fmt.Errorf("no status.errorCode")
	}
	switch code := *ev.Status.ErrorCode; {
	case code == 0:
		si.Result = store.SigninSuccess
	case slices.Contains(entraChallenge, code):
		si.Result, si.Reason = store.SigninChallenge, ev.Status.FailureReason
	default:
		si.Result, si.Reason = store.SigninFailure, fmt.Sprintf("%d: %s", code, ev.Status.FailureReason)
	}
	if d := ev.DeviceDetail; d != nil {
		si.DeviceID = d.DeviceID
		if si.UserAgent == "" && (d.Browser != "" || d.OperatingSystem != "") {
			si.UserAgent = strings.TrimSpace(d.Browser + " on " + d.OperatingSystem)
		}
	}
	if l := ev.Location; l != nil {
		si.ProviderCountry, si.ProviderRegion, si.ProviderCity = l.CountryOrRegion, l.State, l.City
		if g := l.GeoCoordinates; g != nil && g.Latitude != nil && g.Longitude != nil {
			si.ProviderLatitude, si.ProviderLongitude = *g.Latitude, *g.Longitude
		}
	}
	risks := append(slices.Clone(ev.RiskEventTypesV2), ev.RiskEventTypes...)
	slices.Sort(risks)
	risks = slices.Compact(risks)
	si.ProviderProxy = slices.Contains(risks, "anonymizedIPAddress")
	var words []string
	if r := ev.RiskLevelDuringSignIn; r != "" && r != "none" && r != "hidden" {
		words = append(words, r)
	}
	si.ProviderRisk = strings.Join(append(words, risks...), " ")
	if m := ev.MFADetail; m != nil && m.AuthMethod != "" {
		si.MFAFactor = m.AuthMethod
	}
	for _, a := range ev.AuthenticationDetails {
		if si.MFAFactor == "" && a.AuthenticationMethod != "" && a.AuthenticationMethod != "Password" &&
			!strings.HasPrefix(a.AuthenticationMethod, "Previously satisfied") && (a.Succeeded == nil || *a.Succeeded) {
			si.MFAFactor = a.AuthenticationMethod
		}
	}
	if a := ev.AuthenticationAppDeviceDetails; a != nil {
		si.MFADevice = a.DeviceID
	}
	return si, nil
}
