// Package idp brings identity-provider sign-ins into the collector: it
// parses each provider's own API response (Okta System Log LogEvents,
// Microsoft Graph signIn resources, Google Workspace Reports login
// activities), enriches the sign-in addresses with the collector's own
// GeoIP databases and networks catalog (the same Locator as laptop
// egress), and pulls them from the providers' APIs (Connector). Storage is
// the store's; judgement the rules'.
package idp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// Formats (and providers).
const (
	Okta   = "okta"
	Entra  = "entra"
	Google = "google"
)

// MaxDocument bounds a document Parse reads.
const MaxDocument = 64 << 20

// ErrTooLarge is returned for a document over MaxDocument.
var ErrTooLarge = errors.New("document larger than 64 MiB")

// RecordError is one record of a document that was refused.
type RecordError struct {
	Index int    `json:"index"` // 0-based position in the document's list
	ID    string `json:"id,omitempty"`
	Err   string `json:"error"`
}

func (e RecordError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("record %d (%s): %s", e.Index, e.ID, e.Err)
	}
	return fmt.Sprintf("record %d: %s", e.Index, e.Err)
}

// Parsed is what a document held: the sign-ins (validated, not yet
// enriched), the records refused, and how many records were events of
// other kinds (not sign-ins), skipped.
type Parsed struct {
	Signins []store.Signin
	Errors  []RecordError
	Skipped int
}

// Parse reads a provider's API response document: Okta's JSON array of
// LogEvent objects, a Microsoft Graph response whose `value` holds signIn
// resources, or a Reports API response whose `items` hold login
// activities. A document not of that form is an error; a bad record is a
// RecordError and the others are kept.
func Parse(format string, r io.Reader) (Parsed, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocument+1))
	if err != nil {
		return Parsed{}, err
	}
	if len(data) > MaxDocument {
		return Parsed{}, ErrTooLarge
	}
	switch format {
	case Okta:
		return ParseOkta(data)
	case Entra:
		return ParseEntra(data)
	case Google:
		return ParseGoogle(data)
	}
	return Parsed{}, fmt.Errorf("format %q: want okta, entra or google", format)
}

// records decodes a JSON array (key "") or the array under key of a JSON
// object into its raw elements.
func records(data []byte, key string) ([]json.RawMessage, error) {
	data = bytes.TrimPrefix(bytes.TrimSpace(data), []byte("\ufeff"))
	if key == "" {
		if len(data) == 0 || data[0] != '[' {
			return nil, errors.New("not a JSON array")
		}
		var out []json.RawMessage
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("not a JSON array: %w", err)
		}
		return out, nil
	}
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("not a JSON object with %q", key)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	raw, ok := doc[key]
	if !ok {
		// An empty page may leave the key out (Reports does).
		return nil, nil
	}
	var out []json.RawMessage
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%q: not a JSON array: %w", key, err)
	}
	return out, nil
}

// keep validates a converted sign-in and adds it, or its error.
func (p *Parsed) keep(i int, si store.Signin, err error) {
	if err == nil {
		err = si.Validate()
	}
	if err != nil {
		p.Errors = append(p.Errors, RecordError{Index: i, ID: clip(si.EventID, 80), Err: err.Error()})
		return
	}
	p.Signins = append(p.Signins, si)
}

// jsonError says briefly why a record did not decode.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: a JSON %s where a %s belongs", te.Field, te.Value, te.Type.Kind())
	}
	return err.Error()
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// Enricher locates and classifies sign-in addresses with the collector's
// own databases: Locator returns the locator laptop egress goes through
// now (the networks catalog is reloaded with the policies; nil: nothing
// is known); CountryCode turns a provider's country name into an ISO code
// (nil: only two-letter codes are kept).
type Enricher struct {
	Locator     func() *ingest.Locator
	CountryCode func(string) (string, bool)
}

// Enrich sets each sign-in's Egress: what the collector's GeoIP databases
// and networks catalog say of its address; where the databases know
// nothing, the provider's country, city and coordinates are used (with
// the collector's network class still).
func (e *Enricher) Enrich(signins []store.Signin) {
	var loc *ingest.Locator
	if e.Locator != nil {
		loc = e.Locator()
	}
	for i := range signins {
		si := &signins[i]
		ip, err := netip.ParseAddr(si.IP)
		if err != nil {
			si.Egress = detect.Egress{Status: ingest.EgressNotFound, NetworkClass: "unknown"}
		} else {
			si.Egress = loc.Egress(ip)
		}
		if si.Egress.Status == "ok" {
			continue
		}
		if cc := e.country(si.ProviderCountry); cc != "" {
			si.Egress.Country, si.Egress.Region, si.Egress.City = cc, si.ProviderRegion, si.ProviderCity
			if si.ProviderCity != "" && (si.ProviderLatitude != 0 || si.ProviderLongitude != 0) {
				si.Egress.HasLocation, si.Egress.Latitude, si.Egress.Longitude = true, si.ProviderLatitude, si.ProviderLongitude
			}
		}
	}
}

func (e *Enricher) country(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' {
		return s
	}
	if e.CountryCode != nil {
		if cc, ok := e.CountryCode(s); ok {
			return cc
		}
	}
	return ""
}
