package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
)

// The people list and the person page: what the HR export says of a
// person, their devices, their risk over all of them, their combined
// activity and the open alerts on their devices.

// personAlerts is how many open alerts the person page shows, and
// presenceChecks how many presence checks.
const (
	personAlerts   = 50
	presenceChecks = 20
)

var peopleSorts = [][2]string{{"email", "by email"}, {"risk", "highest risk first"}}

// peopleList is the people list page's data.
type peopleList struct {
	Filter url.Values // q, sort
	Sorts  [][2]string
	People []personRow
	Next   url.Values // the next page's query; nil on the last page
}

type personRow struct {
	store.Person
	URL string
}

// people lists people: searched by a prefix of the email or name, or a
// user name, by email or by risk, 50 a page.
func (s *Server) people(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	q := r.URL.Query()
	pq := store.PeopleQuery{Search: strings.TrimSpace(q.Get("q")), Sort: cmp.Or(q.Get("sort"), "email"), Cursor: q.Get("cursor"), Limit: pageSize}
	page, err := s.store.SearchPeople(r.Context(), pq)
	if err != nil {
		return err
	}
	data := peopleList{Filter: url.Values{"q": {pq.Search}, "sort": {pq.Sort}}, Sorts: peopleSorts}
	for _, p := range page.People {
		data.People = append(data.People, personRow{Person: p, URL: personURL(p.Email)})
	}
	if page.Next != "" {
		data.Next = url.Values{"q": {pq.Search}, "sort": {pq.Sort}, "cursor": {page.Next}}
	}
	return s.render(w, r, http.StatusOK, "people", "People", data)
}

// personPage is the person page's data.
type personPage struct {
	Person      store.Person
	Declared    string // the declared location in words
	Devices     []store.Device
	Alerts      []store.Alert
	RiskHistory []store.RiskPoint
	Activity    *heatmap
	// Presence credentials (enrolment) and checks, newest first.
	Credentials    []presencestore.Credential
	PresenceChecks []presencestore.Check
	// Timeline is the person's identity-provider sign-ins and their
	// laptops' egress changes of the last signinSpan, newest first.
	Timeline []timelineRow
}

// signinSpan is how far back the person page's sign-in timeline reaches.
const signinSpan = 30 * 24 * time.Hour

// timelineRow is one sign-in, or one change of a laptop's egress, on the
// person page's timeline.
type timelineRow struct {
	At      time.Time
	Signin  bool   // a sign-in; else a laptop's egress change
	Source  string // the provider, or the laptop's host name
	Result  string
	IP      string
	Place   string
	Network string
	// For a sign-in: the laptop nearest in time (host, place, gap) and
	// the distance to it ("" when unknown).
	Laptop   string
	Distance string
	Far      bool // more than farKm away
}

// farKm marks a sign-in far from the laptop (the default max_km of
// idp_signin_far_from_laptop).
const farKm = 500

// signinTimeline merges sign-ins and laptop egress changes, newest first.
func signinTimeline(pf *detect.PersonFacts) []timelineRow {
	var rows []timelineRow
	for _, si := range pf.Signins {
		r := timelineRow{At: si.At, Signin: true, Source: si.Provider, Result: si.Result, IP: si.IP,
			Place: joinNonEmpty(", ", si.Egress.City, si.Egress.Country), Network: si.Egress.NetworkClass}
		if si.LocationSource == "provider" {
			r.Place += " (provider's)"
		}
		if si.ProviderProxy {
			r.Network = joinNonEmpty(", ", r.Network, "provider: proxy")
		}
		best := -1
		for i, l := range si.Laptops {
			if best < 0 || l.GapMinutes < si.Laptops[best].GapMinutes {
				best = i
			}
		}
		if best >= 0 {
			l := si.Laptops[best]
			r.Laptop = fmt.Sprintf("%s at %s, %s (%.0f min apart)", l.Hostname, l.IP, joinNonEmpty(", ", l.City, l.Country), l.GapMinutes)
			if l.DistanceKm >= 0 {
				r.Distance = fmt.Sprintf("%.0f km", l.DistanceKm)
				r.Far = l.DistanceKm > farKm && !l.SameIP
			}
			if l.SameIP {
				r.Distance = "same address"
			}
		}
		rows = append(rows, r)
	}
	for _, e := range pf.EgressHistory {
		rows = append(rows, timelineRow{At: e.At, Source: e.Hostname, IP: e.IP, Place: joinNonEmpty(", ", e.City, e.Country),
			Network: e.NetworkClass})
	}
	slices.SortStableFunc(rows, func(a, b timelineRow) int { return b.At.Compare(a.At) })
	return rows
}

func (s *Server) person(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	ctx := r.Context()
	p, err := s.store.GetPerson(ctx, strings.ToLower(r.PathValue("email")))
	if err != nil {
		return err
	}
	data := personPage{Person: p, Declared: declaredPlace(p)}
	if data.Devices, err = s.store.PersonDevices(ctx, p); err != nil {
		return err
	}
	ids := make([]string, len(data.Devices))
	for i, d := range data.Devices {
		ids[i] = d.ID
	}
	if data.Alerts, err = s.store.OpenAlertsOf(ctx, ids, personAlerts); err != nil {
		return err
	}
	if data.RiskHistory, err = s.store.RiskHistory(ctx, "person", p.Email); err != nil {
		return err
	}
	data.RiskHistory = data.RiskHistory[:min(len(data.RiskHistory), riskPoints)]
	if data.Credentials, err = presencestore.New(s.store).Credentials(ctx, p.Email); err != nil {
		return err
	}
	if data.PresenceChecks, err = presencestore.New(s.store).ListChecks(ctx, p.Email, presenceChecks); err != nil {
		return err
	}
	h, err := s.store.PersonActivity(ctx, p.Email)
	if err != nil {
		return err
	}
	zone, zoneName := time.UTC, ""
	if loc, err := time.LoadLocation(p.Timezone); err == nil && p.Timezone != "" {
		zone, zoneName = loc, p.Timezone
	}
	data.Activity = newHeatmap(h, zone, zoneName)
	pf, err := s.store.PersonSigninView(ctx, p.Email, time.Now(), signinSpan, 100)
	if err != nil {
		return err
	}
	data.Timeline = signinTimeline(pf)
	if zoneName == "" {
		data.Activity.Note = "No time zone is declared for this person."
	}
	return s.render(w, r, http.StatusOK, "person", cmp.Or(p.Name, p.Email), data)
}

// declaredPlace says where a person declared to work, and whether the
// gazetteer found it.
func declaredPlace(p store.Person) string {
	place := joinNonEmpty(", ", p.City, p.Region, p.Country)
	switch {
	case place == "":
		return "not declared"
	case p.Location == "ok":
		return place
	case p.Location == "country only":
		return place + " (no city declared)"
	}
	return place + " (not located)"
}
