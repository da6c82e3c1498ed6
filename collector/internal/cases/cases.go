// Package cases assembles what a case holds into one record of facts —
// who, which laptops, where they really were, what drove them, when —
// and exports it as an evidence package for HR and legal: a printable
// HTML report and a JSON bundle of the same facts, with a SHA-256
// manifest signed by the collector's Ed25519 key (package.go). The store
// groups the alerts (store/cases.go); this package only reads.
package cases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/snapdiff"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Format names the JSON bundle's layout.
const Format = "bonafide-evidence/1"

// Bounds of what one record holds, whatever the case's size and its
// laptops' history; Record.Capped says which were reached.
const (
	maxAlerts    = 1000
	maxDevices   = 200
	egressRows   = 50   // per device
	snapshotRows = 50   // per device: the latest stored snapshots, each diffed against the one before
	changeRows   = 500  // per device: the newest changes of those snapshots
	maxChanges   = 2000 // per case: the newest snapshot changes of all its devices
	signinRows   = 50   // per person
)

// Record is every fact of a case, as the evidence package carries it.
type Record struct {
	Format      string     `json:"format"`
	GeneratedAt time.Time  `json:"generated_at"`
	GeneratedBy string     `json:"generated_by"`
	Case        store.Case `json:"case"`
	// Story is the case in plain language, a paragraph a string.
	Story    []string           `json:"story"`
	People   []Person           `json:"people"`
	Devices  []Device           `json:"devices"`
	Alerts   []store.Alert      `json:"alerts"`
	Where    []Place            `json:"where"`
	Activity []Activity         `json:"activity"`
	Farm     *Farm              `json:"farm,omitempty"`
	Timeline []Event            `json:"timeline"`
	Notes    []store.CaseNote   `json:"notes"`
	Audit    []store.AuditEntry `json:"audit"`
	// Capped says, a sentence each, what the record leaves out because
	// a bound was reached (empty when it holds every fact).
	Capped []string `json:"capped"`
}

// Person is what HR declared about someone the case concerns.
type Person struct {
	Email     string  `json:"email"`
	Name      string  `json:"name"`
	Country   string  `json:"country"`
	Region    string  `json:"region"`
	City      string  `json:"city"`
	Timezone  string  `json:"timezone"`
	WorkHours string  `json:"work_hours"`
	Located   bool    `json:"located"`
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
	Risk      int     `json:"risk_score"`
	Source    string  `json:"source"`
}

// Device is a laptop of the case as its agent and the collector saw it.
type Device struct {
	ID           string    `json:"id"`
	Hostname     string    `json:"hostname"`
	Serial       string    `json:"serial_number"`
	Model        string    `json:"model"`
	OS           string    `json:"os"`
	Person       string    `json:"person"`
	Binding      string    `json:"person_binding"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	EgressIP     string    `json:"egress_ip"`
	EgressPlace  string    `json:"egress_place"`
	NetworkClass string    `json:"network_class"`
	// EgressLocated says whether GeoIP gave the last egress a city's
	// coordinates (EgressLatitude, EgressLongitude).
	EgressLocated   bool    `json:"egress_located"`
	EgressLatitude  float64 `json:"egress_latitude,omitempty"`
	EgressLongitude float64 `json:"egress_longitude,omitempty"`
	Risk            int     `json:"risk_score"`
	ClusterID       string  `json:"cluster_id,omitempty"`
}

// Farm is the cluster a farm case is about.
type Farm struct {
	ID        string                `json:"id"`
	Score     int                   `json:"score"`
	People    int                   `json:"people"`
	Devices   int                   `json:"devices"`
	Links     []string              `json:"links"`
	CoSignals []string              `json:"co_signals"`
	Shared    []store.SharedKey     `json:"shared_keys"`
	Members   []store.ClusterMember `json:"members"`
}

// Event is one dated fact of the timeline, with where it came from.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // alert, device, network, signin, case
	// Family is the signal family a device event changed (remote access,
	// USB, displays, network, locale, sessions …).
	Family string `json:"family,omitempty"`
	Device string `json:"device,omitempty"` // host name
	Text   string `json:"text"`
	Source string `json:"source"`
}

// Activity is when a person's (or an unbound device's) laptops were in
// use over the last 14 days, by hour of the day in their declared zone.
type Activity struct {
	Subject string `json:"subject"`
	Zone    string `json:"zone"`
	// Hours are active minutes by hour of the day (0–23) in Zone.
	Hours     [24]int `json:"active_minutes_by_hour"`
	WorkHours string  `json:"declared_work_hours,omitempty"`
	// OutsideShare is the share of active minutes outside the declared
	// work hours (-1 when unknown).
	OutsideShare float64 `json:"outside_hours_share"`
	Source       string  `json:"source"`
}

// Build reads case id and everything it concerns.
func Build(ctx context.Context, st *store.Store, id int64, actor string, now time.Time) (*Record, error) {
	c, err := st.GetCase(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &Record{Format: Format, GeneratedAt: now.UTC().Truncate(time.Second), GeneratedBy: actor, Case: c,
		People: []Person{}, Devices: []Device{}, Where: []Place{}, Activity: []Activity{}, Timeline: []Event{}, Capped: []string{}}
	if r.Alerts, err = st.ListAlerts(ctx, store.AlertFilter{CaseID: id, Limit: maxAlerts}); err != nil {
		return nil, err
	}
	if len(r.Alerts) == maxAlerts && c.Alerts > maxAlerts {
		r.Capped = append(r.Capped, fmt.Sprintf("Only %d of the case's %d alerts are included.", maxAlerts, c.Alerts))
	}
	deviceIDs := []string{}
	seen := map[string]bool{}
	left := 0 // devices beyond maxDevices
	addDevice := func(id string) {
		switch {
		case seen[id]:
		case len(deviceIDs) < maxDevices:
			deviceIDs = append(deviceIDs, id)
		default:
			left++
		}
		seen[id] = true
	}
	for _, a := range r.Alerts {
		addDevice(a.DeviceID)
	}
	if c.Kind == store.CaseFarm {
		cl, err := st.GetCluster(ctx, c.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			r.Farm = &Farm{ID: cl.ID, Score: cl.Score, People: cl.People, Devices: cl.Devices, Links: cl.Links, CoSignals: cl.CoSignals,
				Shared: cl.Evidence, Members: cl.Members}
			for _, m := range cl.Members {
				addDevice(m.DeviceID)
			}
		}
	}
	if left > 0 {
		r.Capped = append(r.Capped, fmt.Sprintf("Only %d laptops are included; %d more of the case are left out.", maxDevices, left))
	}
	people := map[string]*Person{}
	hosts := map[string]string{}
	for _, did := range deviceIDs {
		d, err := st.GetDevice(ctx, did)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		hosts[d.ID] = cmp.Or(d.Hostname, d.ID)
		r.Devices = append(r.Devices, Device{ID: d.ID, Hostname: d.Hostname, Serial: d.SerialNumber,
			Model: strings.TrimSpace(d.HardwareVendor + " " + d.HardwareModel), OS: strings.TrimSpace(d.OSName + " " + d.OSVersion),
			Person: d.Person, Binding: d.PersonBinding, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, RevokedAt: d.RevokedAt,
			EgressIP: d.Egress.IP, EgressPlace: placeName(d.Egress.City, d.Egress.Region, d.Egress.Country), NetworkClass: d.Egress.NetworkClass,
			EgressLocated: d.Egress.HasLocation, EgressLatitude: d.Egress.Latitude, EgressLongitude: d.Egress.Longitude,
			Risk: d.Risk.Score, ClusterID: d.ClusterID})
		if d.Person != "" && people[d.Person] == nil {
			p, err := st.GetPerson(ctx, d.Person)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			people[d.Person] = &Person{Email: d.Person, Name: p.Name, Country: p.Country, Region: p.Region, City: p.City, Timezone: p.Timezone,
				WorkHours: p.WorkHours, Located: p.Location == "ok", Latitude: p.Latitude, Longitude: p.Longitude, Risk: p.Risk.Score,
				Source: "HR export (people import), as of " + p.UpdatedAt.UTC().Format(time.RFC3339)}
		}
	}
	for _, e := range slices.Sorted(maps.Keys(people)) {
		r.People = append(r.People, *people[e])
	}
	for i := range r.Alerts {
		if h, ok := hosts[r.Alerts[i].DeviceID]; ok && r.Alerts[i].Hostname == "" {
			r.Alerts[i].Hostname = h
		}
	}
	if err := r.readHistory(ctx, st, people); err != nil {
		return nil, err
	}
	if err := r.readActivity(ctx, st, people, now); err != nil {
		return nil, err
	}
	if r.Notes, err = st.CaseNotes(ctx, id); err != nil {
		return nil, err
	}
	if r.Audit, err = st.CaseAudit(ctx, id); err != nil {
		return nil, err
	}
	if err := r.readSignins(ctx, st, people); err != nil {
		return nil, err
	}
	r.addAlertEvents()
	r.addCaseEvents()
	slices.SortStableFunc(r.Timeline, func(a, b Event) int { return a.At.Compare(b.At) })
	r.Story = story(r)
	return r, nil
}

// readHistory adds each device's egress history (the where view and
// network events) and its snapshot changes (device events), the newest
// maxChanges of them.
func (r *Record) readHistory(ctx context.Context, st *store.Store, people map[string]*Person) error {
	var changes []Event
	for _, d := range r.Devices {
		// One more than shown: the predecessor of the oldest shown.
		eg, err := st.EgressHistory(ctx, d.ID, time.Time{}, egressRows+1)
		if err != nil {
			return err
		}
		if len(eg) > egressRows {
			r.Capped = append(r.Capped, fmt.Sprintf("Laptop %s: only its latest %d egress changes are included (from %s).",
				cmp.Or(d.Hostname, d.ID), egressRows, eg[egressRows-1].At.UTC().Format(time.RFC3339)))
		}
		for i, e := range eg[:min(len(eg), egressRows)] {
			pl := place(st, e, d.ID, d.Hostname, d.Person, people[d.Person], current{d.EgressIP, d.EgressLocated, d.EgressLatitude, d.EgressLongitude})
			r.Where = append(r.Where, pl)
			text := fmt.Sprintf("reported from %s (%s, %s network)", e.IP, cmp.Or(pl.Place, "location unknown"), cmp.Or(e.NetworkClass, "unknown"))
			if i+1 < len(eg) {
				text = fmt.Sprintf("egress changed from %s to %s (%s, %s network)", eg[i+1].IP, e.IP, cmp.Or(pl.Place, "location unknown"), cmp.Or(e.NetworkClass, "unknown"))
			}
			if pl.DistanceKM >= 0 {
				text += fmt.Sprintf(", %.0f km from the declared %s", pl.DistanceKM, pl.Declared)
			}
			r.Timeline = append(r.Timeline, Event{At: e.At, Kind: "network", Device: d.Hostname, Text: text, Source: pl.Source})
		}
		cs, err := r.deviceChanges(ctx, st, d)
		if err != nil {
			return err
		}
		changes = append(changes, cs...)
	}
	if len(changes) > maxChanges {
		slices.SortStableFunc(changes, func(a, b Event) int { return b.At.Compare(a.At) })
		r.Capped = append(r.Capped, fmt.Sprintf("Only the newest %d changes of the laptops' snapshots are included (from %s); %d older ones are left out.",
			maxChanges, changes[maxChanges-1].At.UTC().Format(time.RFC3339), len(changes)-maxChanges))
		changes = changes[:maxChanges]
	}
	r.Timeline = append(r.Timeline, changes...)
	slices.SortStableFunc(r.Where, func(a, b Place) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Hostname, b.Hostname)) })
	return nil
}

// deviceChanges lists what a device's latest snapshotRows snapshots
// changed, item by item, each against the one before it (snapdiff: what
// the device page shows), at most changeRows changes, the newest.
func (r *Record) deviceChanges(ctx context.Context, st *store.Store, d Device) ([]Event, error) {
	// One more than diffed: the predecessor of the oldest.
	hist, err := st.DeviceSnapshots(ctx, d.ID, 0, snapshotRows+1)
	if err != nil {
		return nil, err
	}
	snaps := make([]*agentv1.HostSnapshot, len(hist))
	for i, h := range hist {
		if snaps[i], _, err = snapdiff.Decode(h.Data); err != nil {
			return nil, fmt.Errorf("device %s snapshot %d: %w", d.ID, h.ID, err)
		}
	}
	host := cmp.Or(d.Hostname, d.ID)
	if len(hist) > snapshotRows {
		r.Capped = append(r.Capped, fmt.Sprintf("Laptop %s: only the changes of its latest %d snapshots are included (from %s); its device page has the older ones.",
			host, snapshotRows, hist[snapshotRows-1].ReceivedAt.UTC().Format(time.RFC3339)))
	}
	var out []Event
	left := 0
	for i, cs := range snapdiff.Changes(snaps, snapshotRows) {
		src := "agent snapshot, report " + hist[i].ReportID
		if i+1 < len(hist) {
			src += ", compared with report " + hist[i+1].ReportID
		}
		for _, c := range cs {
			if len(out) == changeRows {
				left++
				continue
			}
			out = append(out, Event{At: hist[i].ReceivedAt, Kind: "device", Family: c.Family, Device: d.Hostname, Text: c.Text, Source: src})
		}
	}
	if left > 0 {
		r.Capped = append(r.Capped, fmt.Sprintf("Laptop %s: only the newest %d changes of its snapshots are included; %d older ones are left out.",
			host, changeRows, left))
	}
	return out, nil
}

// readSignins adds each person's identity-provider sign-ins: an event of
// kind "signin" on the timeline and a place of the where view, located
// by the collector's own GeoIP as laptop egress is (the provider's
// location is not used here).
func (r *Record) readSignins(ctx context.Context, st *store.Store, people map[string]*Person) error {
	for _, email := range slices.Sorted(maps.Keys(people)) {
		p := people[email]
		sis, err := st.PersonSignins(ctx, email, time.Time{}, signinRows+1)
		if err != nil {
			return err
		}
		if len(sis) > signinRows {
			r.Capped = append(r.Capped, fmt.Sprintf("%s: only their latest %d sign-ins are included (from %s).",
				email, signinRows, sis[signinRows-1].At.UTC().Format(time.RFC3339)))
		}
		for _, si := range sis[:min(len(sis), signinRows)] {
			e := si.Egress
			pl := Place{At: si.At, Hostname: "sign-in (" + si.Provider + ")", Person: email, IP: si.IP,
				Place: placeName(e.City, e.Region, e.Country), NetworkClass: e.NetworkClass, NetworkName: e.NetworkName,
				Located: e.HasLocation, Latitude: e.Latitude, Longitude: e.Longitude, DistanceKM: -1,
				Source: fmt.Sprintf("identity provider %s, event %s; located by the collector's GeoIP", si.Provider, si.EventID)}
			if p != nil {
				pl.Declared = placeName(p.City, p.Region, p.Country)
				if p.Located && e.HasLocation {
					pl.DistanceKM = Distance(p.Latitude, p.Longitude, e.Latitude, e.Longitude)
				}
			}
			r.Where = append(r.Where, pl)
			text := fmt.Sprintf("%s signed in to %s (%s) from %s (%s, %s network)", email, si.Provider, cmp.Or(si.Result, "result unknown"),
				cmp.Or(si.IP, "no address"), cmp.Or(pl.Place, "location unknown"), cmp.Or(e.NetworkClass, "unknown"))
			if pl.DistanceKM >= 0 {
				text += fmt.Sprintf(", %.0f km from the declared %s", pl.DistanceKM, pl.Declared)
			}
			r.Timeline = append(r.Timeline, Event{At: si.At, Kind: "signin", Text: text, Source: pl.Source})
		}
	}
	slices.SortStableFunc(r.Where, func(a, b Place) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Hostname, b.Hostname)) })
	return nil
}

// readActivity adds each person's activity by hour in their zone (and
// that of devices bound to no one, in UTC).
func (r *Record) readActivity(ctx context.Context, st *store.Store, people map[string]*Person, now time.Time) error {
	const source = "the agents' once-a-minute idleness samples, last 14 days"
	for _, e := range slices.Sorted(maps.Keys(people)) {
		p := people[e]
		h, err := st.PersonActivity(ctx, e)
		if err != nil {
			return err
		}
		if h == nil {
			continue
		}
		r.Activity = append(r.Activity, activityOf(e, h, p.Timezone, p.WorkHours, source))
	}
	for _, d := range r.Devices {
		if d.Person != "" {
			continue
		}
		h, err := st.DeviceActivity(ctx, d.ID)
		if err != nil {
			return err
		}
		if h != nil {
			r.Activity = append(r.Activity, activityOf(d.Hostname, h, "", "", source))
		}
	}
	return nil
}

func activityOf(subject string, h *activity.Histogram, zone, work, source string) Activity {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		loc, zone = time.UTC, "UTC"
	}
	a := Activity{Subject: subject, Zone: zone, WorkHours: work, OutsideShare: -1, Source: source}
	start := h.End - activity.Window
	for i := range activity.Window {
		if h.Active[i] == 0 {
			continue
		}
		t := time.Unix((start+int64(i))*3600+1800, 0).In(loc)
		a.Hours[t.Hour()] += int(h.Active[i])
	}
	if zone != "UTC" || work != "" {
		if w, err := activity.ParseWorkHours(loc, work); err == nil {
			a.OutsideShare = h.Compute(w).OutsideHoursShare
		}
	}
	return a
}

func (r *Record) addAlertEvents() {
	for _, a := range r.Alerts {
		r.Timeline = append(r.Timeline, Event{At: a.FirstSeen, Kind: "alert", Device: a.Hostname,
			Text: fmt.Sprintf("%s alert raised: %s (rule %s)", a.Severity, a.Title, a.RuleID), Source: "detection rule " + a.RuleID + ", alert " + fmt.Sprint(a.ID)})
		if a.Count > 1 && a.LastSeen.After(a.FirstSeen) {
			r.Timeline = append(r.Timeline, Event{At: a.LastSeen, Kind: "alert", Device: a.Hostname,
				Text: fmt.Sprintf("%s last fired (%d times in all)", a.Title, a.Count), Source: "detection rule " + a.RuleID + ", alert " + fmt.Sprint(a.ID)})
		}
	}
}

// addCaseEvents adds the analysts' work on the case from the audit log.
func (r *Record) addCaseEvents() {
	for _, e := range r.Audit {
		if e.TargetType != "case" {
			continue
		}
		text := e.Action
		switch e.Action {
		case store.ActionOpened:
			text = "case opened"
		case "note":
			text = fmt.Sprintf("note: %v", e.Detail["note"])
		case "checklist":
			text = fmt.Sprintf("checklist step %v: done=%v", e.Detail["step"], e.Detail["done"])
		case "update":
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(e.Detail)) {
				if ch, ok := e.Detail[k].(map[string]any); ok {
					parts = append(parts, fmt.Sprintf("%s %v → %v", k, cmp.Or(fmt.Sprint(ch["from"]), "none"), ch["to"]))
				}
			}
			text = "case changed: " + strings.Join(parts, "; ")
		case "add_alerts":
			text = "alerts joined the case"
		case "merge":
			text = "case merged"
		case "export":
			text = "evidence package exported"
		}
		r.Timeline = append(r.Timeline, Event{At: e.At, Kind: "case", Text: text + " (by " + e.Actor + ")",
			Source: fmt.Sprintf("audit log entry %d", e.ID)})
	}
}

// placeName joins the known parts of a place.
func placeName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

// place is an egress history entry located, against home (nil: the
// device's person is unknown).
// current is a device's current egress and its GeoIP coordinates.
type current struct {
	ip       string
	located  bool
	lat, lon float64
}

// place is an egress history entry located — by GeoIP's coordinates
// when it is the device's current egress, else by the gazetteer's of its
// city — against home (nil: the device's person is unknown).
func place(st *store.Store, e store.EgressChange, deviceID, hostname, person string, home *Person, cur current) Place {
	pl := Place{At: e.At, DeviceID: deviceID, Hostname: hostname, Person: person, IP: e.IP,
		Place: placeName(e.City, e.Region, e.Country), NetworkClass: e.NetworkClass, NetworkName: e.NetworkName, DistanceKM: -1,
		Source: "the collector: source address of the laptop's reports, located with GeoIP"}
	if e.IP == cur.ip && cur.located {
		pl.Located, pl.Latitude, pl.Longitude = true, cur.lat, cur.lon
	} else if lat, lon, ok := st.Locate(e.Country, e.Region, e.City); ok {
		pl.Located, pl.Latitude, pl.Longitude = true, lat, lon
	}
	if home != nil {
		pl.Declared = placeName(home.City, home.Region, home.Country)
		if home.Located && pl.Located {
			pl.DistanceKM = Distance(home.Latitude, home.Longitude, pl.Latitude, pl.Longitude)
		}
	}
	return pl
}

// FarmPlaces lists where a farm's members reported from (their egress
// history, at most egressRows each), against their people's declared
// cities, in time order: the farm page's "where" view.
func FarmPlaces(ctx context.Context, st *store.Store, members []store.ClusterMember) ([]Place, error) {
	out := []Place{}
	homes := map[string]*Person{}
	for _, m := range members[:min(len(members), maxDevices)] {
		if m.Person != "" && homes[m.Person] == nil {
			p, err := st.GetPerson(ctx, m.Person)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			homes[m.Person] = &Person{City: p.City, Region: p.Region, Country: p.Country, Located: p.Location == "ok",
				Latitude: p.Latitude, Longitude: p.Longitude}
		}
		d, err := st.GetDevice(ctx, m.DeviceID)
		if err != nil {
			return nil, err
		}
		eg, err := st.EgressHistory(ctx, m.DeviceID, time.Time{}, egressRows)
		if err != nil {
			return nil, err
		}
		cur := current{d.Egress.IP, d.Egress.HasLocation, d.Egress.Latitude, d.Egress.Longitude}
		for _, e := range eg {
			out = append(out, place(st, e, m.DeviceID, cmp.Or(m.Hostname, m.DeviceID), m.Person, homes[m.Person], cur))
		}
	}
	slices.SortStableFunc(out, func(a, b Place) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Hostname, b.Hostname)) })
	return out, nil
}
