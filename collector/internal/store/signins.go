package store

// Identity-provider sign-ins (collector/internal/idp parses and enriches
// them): stored idempotently by the provider's event id, bound to people
// by email, read back as the `person` facts rules see (sign-ins beside
// where the person's laptops were), and turned into fleet keys.

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
)

// Signin is one identity-provider sign-in as stored. Egress is the
// collector's own view of IP (GeoIP and networks catalog); the Provider*
// location is what the provider said.
type Signin struct {
	ID            int64     `json:"id,omitempty"`
	Provider      string    `json:"provider"`
	EventID       string    `json:"event_id"`
	At            time.Time `json:"at"`
	Email         string    `json:"email"`
	Result        string    `json:"result"`
	Reason        string    `json:"reason,omitempty"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	DeviceID      string    `json:"device_id,omitempty"`
	MFAFactor     string    `json:"mfa_factor,omitempty"`
	MFADevice     string    `json:"mfa_device,omitempty"`
	ProviderProxy bool      `json:"provider_proxy,omitempty"`
	ProviderRisk  string    `json:"provider_risk,omitempty"`

	ProviderCountry   string  `json:"provider_country,omitempty"`
	ProviderRegion    string  `json:"provider_region,omitempty"`
	ProviderCity      string  `json:"provider_city,omitempty"`
	ProviderLatitude  float64 `json:"provider_latitude,omitempty"`
	ProviderLongitude float64 `json:"provider_longitude,omitempty"`

	Egress     detect.Egress `json:"egress"`
	ReceivedAt time.Time     `json:"received_at,omitzero"`
}

// Providers are the identity providers sign-ins come from.
var Providers = []string{"okta", "entra", "google"}

// Sign-in results.
const (
	SigninSuccess   = "success"
	SigninFailure   = "failure"
	SigninChallenge = "challenge"
)

// Field caps: ids and addresses are refused beyond them, free text (user
// agent, reason, risk, places) is cut.
const (
	maxSigninID   = 256
	maxSigninText = 512
	maxEmail      = 320
)

// Validate checks and normalises a sign-in: known provider and result, an
// event id, an email or UPN (lower-cased), a time, a parseable address
// (when there is one); over-long free text is cut to maxSigninText bytes
// of whole characters. The error names the field.
func (si *Signin) Validate() error {
	if !slices.Contains(Providers, si.Provider) {
		return fmt.Errorf("provider %q: want okta, entra or google", si.Provider)
	}
	if si.EventID = strings.TrimSpace(si.EventID); si.EventID == "" || len(si.EventID) > maxSigninID || !utf8.ValidString(si.EventID) {
		return fmt.Errorf("event id: empty, longer than %d bytes or not UTF-8", maxSigninID)
	}
	si.Email = strings.ToLower(strings.TrimSpace(si.Email))
	if si.Email == "" || len(si.Email) > maxEmail || !utf8.ValidString(si.Email) || strings.ContainsAny(si.Email, " \t\r\n") {
		return fmt.Errorf("user %q: not an email or UPN", cut(si.Email, 64))
	}
	switch si.Result {
	case SigninSuccess, SigninFailure, SigninChallenge:
	default:
		return fmt.Errorf("result %q: want success, failure or challenge", cut(si.Result, 64))
	}
	if si.At.IsZero() || si.At.Year() < 2000 || si.At.Year() > 9999 {
		return fmt.Errorf("time %s: out of range", si.At.Format(time.RFC3339))
	}
	si.At = si.At.UTC()
	if si.IP = strings.TrimSpace(si.IP); si.IP != "" {
		a, err := netip.ParseAddr(si.IP)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("ip %q: not an address", cut(si.IP, 64))
		}
		si.IP = a.Unmap().String()
	}
	for _, f := range []*string{&si.DeviceID, &si.MFADevice, &si.MFAFactor} {
		if *f = strings.TrimSpace(*f); len(*f) > maxSigninID || !utf8.ValidString(*f) {
			return fmt.Errorf("device or factor id: longer than %d bytes or not UTF-8", maxSigninID)
		}
	}
	for _, f := range []*string{&si.UserAgent, &si.Reason, &si.ProviderRisk, &si.ProviderCountry, &si.ProviderRegion, &si.ProviderCity} {
		*f = cut(strings.ToValidUTF8(*f, "\uFFFD"), maxSigninText)
	}
	if !validLatLon(si.ProviderLatitude, si.ProviderLongitude) {
		si.ProviderLatitude, si.ProviderLongitude = 0, 0
	}
	return nil
}

func validLatLon(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// LocationSource says who located a sign-in: "collector" when the
// collector's GeoIP databases know the address, "provider" when only the
// provider's geolocation does, "" when nobody.
func (si *Signin) LocationSource() string {
	switch {
	case si.Egress.Status == "ok":
		return "collector"
	case si.Egress.Country != "" || si.Egress.HasLocation:
		return "provider"
	}
	return ""
}

// SigninResult says what AddSignins did.
type SigninResult struct {
	Added     int `json:"added"`
	Duplicate int `json:"duplicate"` // already stored (same provider event id)
	// People are the known people whose sign-ins were added; their
	// devices were re-keyed and judged again.
	People []string `json:"people"`
}

// AddSignins stores sign-ins (each already Validated) in one transaction,
// skipping those stored before (same provider and event id). Then, for
// every known person among them, it refreshes the sign-in keys of the
// person's devices (and so their clusters) and evaluates the rules on the
// devices again, with ev (nil: keys only).
func (s *Store) AddSignins(ctx context.Context, signins []Signin, ev Evaluator, now time.Time) (SigninResult, error) {
	var res SigninResult
	emails := map[string]bool{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i := range signins {
			si := &signins[i]
			egress, _ := json.Marshal(si.Egress)
			r, err := tx.ExecContext(ctx, s.q(`INSERT INTO signins (provider, event_id, at, email, result, reason, ip, user_agent,
				device_id, mfa_factor, mfa_device, provider_proxy, provider_risk, provider_country, provider_region, provider_city,
				provider_latitude, provider_longitude, egress, received_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, event_id) DO NOTHING`),
				si.Provider, si.EventID, micros(si.At), si.Email, si.Result, si.Reason, si.IP, si.UserAgent,
				si.DeviceID, si.MFAFactor, si.MFADevice, boolInt(si.ProviderProxy), si.ProviderRisk, si.ProviderCountry, si.ProviderRegion,
				si.ProviderCity, si.ProviderLatitude, si.ProviderLongitude, string(egress), micros(now))
			if err != nil {
				return fmt.Errorf("store sign-in %s/%s: %w", si.Provider, si.EventID, err)
			}
			if n, _ := r.RowsAffected(); n == 0 {
				res.Duplicate++
				continue
			}
			res.Added++
			emails[si.Email] = true
		}
		return nil
	})
	if err != nil {
		return SigninResult{}, err
	}
	for _, email := range slices.Sorted(func(yield func(string) bool) {
		for e := range emails {
			if !yield(e) {
				return
			}
		}
	}) {
		known, err := s.RefreshPersonSignins(ctx, email, ev, now)
		if err != nil {
			return res, err
		}
		if known {
			res.People = append(res.People, email)
		}
	}
	return res, nil
}

// signinKeyWindow is how recent a sign-in must be for its address to key
// the person's devices: as long as a device counts in a cluster.
const signinKeyWindow = clusterWindow

// RefreshPersonSignins brings the devices of a person up to date with the
// person's sign-ins: each device's sign-in keys (re-clustering it when
// they changed) and, with ev, its alerts (the rules evaluated again).
// It reports whether the person is known.
func (s *Store) RefreshPersonSignins(ctx context.Context, email string, ev Evaluator, now time.Time) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM people WHERE email = ?`), email).Scan(&n); err != nil {
		return false, fmt.Errorf("sign-in person: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM devices WHERE person = ? AND revoked_at = 0 ORDER BY id LIMIT ?`), email, maxPersonDevices)
	if err != nil {
		return true, fmt.Errorf("sign-in devices: %w", err)
	}
	ids, err := scanColumn[string](rows)
	if err != nil {
		return true, err
	}
	for _, id := range ids {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if err := s.lockClusters(ctx, tx); err != nil {
				return err
			}
			w := wtx{Tx: tx, s: s, clusters: true}
			views := clusterViews{} // the clusters re-keying reads, for judging
			moved, err := s.refreshSigninKeys(ctx, w, id, email, now, views)
			if err != nil {
				return err
			}
			if ev == nil {
				return s.refreshViews(ctx, w, views, moved, now)
			}
			facts, err := s.deviceFacts(ctx, w, id, now, nil, views)
			if err != nil {
				return err
			}
			return s.judge(ctx, w, facts, s.decide(ctx, ev, facts, nil, now), moved, now, ev, views)
		})
		if err != nil {
			return true, fmt.Errorf("sign-ins of %s: device %s: %w", email, id, err)
		}
	}
	return true, nil
}

// refreshSigninKeys recomputes a device's sign-in keys from its person's
// recent successful sign-ins and, when they changed, stores them (a new
// device version, so that verdicts reached before are not kept) and
// re-keys the device. It returns the clusters whose membership changed,
// keeping their reads in views (see updateKeys).
func (s *Store) refreshSigninKeys(ctx context.Context, tx wtx, deviceID, email string, now time.Time, views clusterViews) ([]string, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT ip, egress FROM signins WHERE email = ? AND at >= ? AND result = 'success' AND ip <> ''
		ORDER BY at DESC LIMIT 200`), email, micros(now.Add(-signinKeyWindow)))
	if err != nil {
		return nil, fmt.Errorf("sign-in keys: %w", err)
	}
	addrs, err := scanRows(rows, func(sc scanner) (fleet.SigninAddr, error) {
		var ip, egress string
		err := sc.Scan(&ip, &egress)
		var e detect.Egress
		json.Unmarshal([]byte(egress), &e)
		return fleet.SigninAddr{IP: ip, NetworkClass: e.NetworkClass}, err
	})
	if err != nil {
		return nil, err
	}
	keys := []byte{}
	if k := fleet.SigninKeys(addrs); len(k) > 0 {
		keys, _ = json.Marshal(k)
	}
	var stored string
	var egress string
	if err := tx.QueryRowContext(ctx, s.q(`SELECT signin_keys, egress FROM devices WHERE id = ?`), deviceID).Scan(&stored, &egress); err != nil {
		return nil, fmt.Errorf("sign-in keys: %w", err)
	}
	if stored == string(keys) {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET signin_keys = ?, version = version + 1 WHERE id = ?`), string(keys), deviceID); err != nil {
		return nil, fmt.Errorf("sign-in keys: %w", err)
	}
	var e detect.Egress
	json.Unmarshal([]byte(egress), &e)
	return s.updateKeys(ctx, tx, deviceID, e, now, views)
}

// RefreshSigninKeys recomputes the sign-in keys of every device that
// holds some or whose person signed in within the key window: keys age
// out, and devices bound to a person after their sign-ins arrived (or
// bound to someone else since) get theirs. Run it before a full fleet
// recompute, on one replica at a time. It returns how many devices it
// looked at.
func (s *Store) RefreshSigninKeys(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, person FROM devices WHERE revoked_at = 0 AND (signin_keys <> ''
		OR person IN (SELECT email FROM signins WHERE at >= ? AND result = 'success')) ORDER BY id`), micros(now.Add(-signinKeyWindow)))
	if err != nil {
		return 0, fmt.Errorf("sign-in keys: %w", err)
	}
	type device struct{ id, person string }
	devices, err := scanRows(rows, func(sc scanner) (device, error) {
		var d device
		err := sc.Scan(&d.id, &d.person)
		return d, err
	})
	if err != nil {
		return 0, err
	}
	for i, d := range devices {
		if err := s.tx(ctx, func(tx *sql.Tx) error {
			if err := s.lockClusters(ctx, tx); err != nil {
				return err
			}
			w, views := wtx{Tx: tx, s: s, clusters: true}, clusterViews{}
			moved, err := s.refreshSigninKeys(ctx, w, d.id, d.person, now, views)
			if err != nil {
				return err
			}
			return s.refreshViews(ctx, w, views, moved, now)
		}); err != nil {
			return i, fmt.Errorf("sign-in keys of %s: %w", d.id, err)
		}
	}
	return len(devices), nil
}

// signinKeys decodes a device's stored sign-in keys.
func signinKeys(stored string) []fleet.DeviceKey {
	var keys []fleet.DeviceKey
	if stored != "" {
		json.Unmarshal([]byte(stored), &keys)
	}
	return keys
}

const signinColumns = `id, provider, event_id, at, email, result, reason, ip, user_agent, device_id, mfa_factor, mfa_device,
	provider_proxy, provider_risk, provider_country, provider_region, provider_city, provider_latitude, provider_longitude,
	egress, received_at`

func scanSignin(sc interface{ Scan(...any) error }) (Signin, error) {
	var si Signin
	var at, received int64
	var proxy int
	var egress string
	if err := sc.Scan(&si.ID, &si.Provider, &si.EventID, &at, &si.Email, &si.Result, &si.Reason, &si.IP, &si.UserAgent,
		&si.DeviceID, &si.MFAFactor, &si.MFADevice, &proxy, &si.ProviderRisk, &si.ProviderCountry, &si.ProviderRegion,
		&si.ProviderCity, &si.ProviderLatitude, &si.ProviderLongitude, &egress, &received); err != nil {
		return Signin{}, err
	}
	si.At, si.ReceivedAt, si.ProviderProxy = fromMicros(at), fromMicros(received), proxy != 0
	json.Unmarshal([]byte(egress), &si.Egress)
	return si, nil
}

// PersonSignins lists a person's sign-ins newest first, at most limit,
// those before a time when it is not zero.
func (s *Store) PersonSignins(ctx context.Context, email string, before time.Time, limit int) ([]Signin, error) {
	until := int64(1<<63 - 1)
	if !before.IsZero() {
		until = micros(before)
	}
	return s.querySignins(ctx, s.r, `email = ? AND at < ?`, []any{strings.ToLower(email), until}, PageLimit(limit))
}

func (s *Store) querySignins(ctx context.Context, q querier, where string, args []any, limit int) ([]Signin, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+signinColumns+` FROM signins WHERE `+where+` ORDER BY at DESC, id DESC LIMIT ?`),
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sign-ins: %w", err)
	}
	return scanRows(rows, scanSignin)
}

// sharedFactorWindow is how far back sign-ins count when looking for an
// MFA device or provider device id used by several people.
const sharedFactorWindow = 30 * 24 * time.Hour

// personFacts reads what rules see of a person (detect.PersonFacts): the
// recent sign-ins, each with the person's laptops' reports nearest to it,
// the travel speed from the previous sign-in and the other people sharing
// its MFA or provider device, and the laptops' egress history. deviceID
// is the device being judged and cur its current egress; it counts as
// reporting from cur at now (the report being judged may not be stored
// yet).
func (s *Store) personFacts(ctx context.Context, q querier, email, deviceID string, cur detect.Egress, now time.Time) (*detect.PersonFacts, error) {
	return s.personSpan(ctx, q, email, deviceID, cur, now, detect.SigninFactsWindow, detect.MaxSigninFacts)
}

// PersonSigninView is what the person page shows: the person's sign-ins
// of the span before now (at most limit), each beside the laptops'
// reports nearest to it, and the laptops' egress over the same time.
func (s *Store) PersonSigninView(ctx context.Context, email string, now time.Time, span time.Duration, limit int) (*detect.PersonFacts, error) {
	return s.personSpan(ctx, s.r, strings.ToLower(email), "", detect.Egress{}, now, span, min(PageLimit(limit), 200))
}

func (s *Store) personSpan(ctx context.Context, q querier, email, deviceID string, cur detect.Egress, now time.Time, span time.Duration, limit int) (*detect.PersonFacts, error) {
	p := &detect.PersonFacts{Email: email}
	stored, err := s.querySignins(ctx, q, `email = ? AND at >= ? AND at <= ?`,
		[]any{email, micros(now.Add(-span)), micros(now.Add(time.Hour))}, limit)
	if err != nil || len(stored) == 0 {
		return p, err
	}
	oldest, newest := stored[len(stored)-1].At, stored[0].At
	from, to := oldest.Add(-detect.LaptopWindow), newest.Add(detect.LaptopWindow)

	laptops, err := s.personLaptops(ctx, q, email, deviceID, cur, from, to, now)
	if err != nil {
		return nil, err
	}
	p.Signins = make([]detect.Signin, len(stored))
	for i, si := range stored {
		d := detect.Signin{Provider: si.Provider, EventID: si.EventID, At: si.At, Result: si.Result, Reason: si.Reason, IP: si.IP,
			UserAgent: si.UserAgent, DeviceID: si.DeviceID, MFAFactor: si.MFAFactor, MFADevice: si.MFADevice,
			ProviderProxy: si.ProviderProxy, ProviderRisk: si.ProviderRisk, Egress: si.Egress, LocationSource: si.LocationSource(),
			TravelKmh: -1, TravelKm: -1}
		for _, l := range laptops {
			if pos, ok := l.nearest(si.At); ok {
				pos.DistanceKm = -1
				if pos.HasLocation && d.Egress.HasLocation {
					pos.DistanceKm = math.Round(geo.DistanceKm(pos.Latitude, pos.Longitude, d.Egress.Latitude, d.Egress.Longitude))
				}
				pos.SameIP = pos.IP != "" && pos.IP == si.IP
				d.Laptops = append(d.Laptops, pos)
			}
		}
		p.Signins[i] = d
	}
	travel(p.Signins)
	if err := s.sharedFactors(ctx, q, email, p.Signins, now); err != nil {
		return nil, err
	}
	for _, l := range laptops { // each from the entry in force at from
		p.EgressHistory = append(p.EgressHistory, l.egress...)
	}
	slices.SortStableFunc(p.EgressHistory, func(a, b detect.LaptopEgress) int { return b.At.Compare(a.At) })
	if len(p.EgressHistory) > 200 {
		p.EgressHistory = p.EgressHistory[:200]
	}
	return p, nil
}

// laptop is one of a person's devices over a span: its egress history
// (oldest first) and the times it reported.
type laptop struct {
	id, hostname string
	egress       []detect.LaptopEgress
	reports      []time.Time // sorted
}

// maxLaptopReports bounds the report times read per laptop.
const maxLaptopReports = 5000

// personLaptops reads the person's devices' egress history and report
// times between from and to.
func (s *Store) personLaptops(ctx context.Context, q querier, email, deviceID string, cur detect.Egress, from, to, now time.Time) ([]*laptop, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT id, hostname FROM devices WHERE (person = ? OR id = ?) AND revoked_at = 0 ORDER BY id LIMIT ?`),
		email, deviceID, maxPersonDevices)
	if err != nil {
		return nil, fmt.Errorf("person laptops: %w", err)
	}
	out, err := scanRows(rows, func(sc scanner) (*laptop, error) {
		l := &laptop{}
		err := sc.Scan(&l.id, &l.hostname)
		return l, err
	})
	if err != nil {
		return nil, err
	}
	for _, l := range out {
		// The entry in force at from, and every later one up to to.
		rows, err := q.QueryContext(ctx, s.q(`SELECT at, ip, country, city, network_class, has_location, latitude, longitude
			FROM egress_history WHERE device_id = ? AND at <= ? AND at >= COALESCE(
				(SELECT MAX(at) FROM egress_history WHERE device_id = ? AND at <= ?), 0)
			ORDER BY at, id LIMIT ?`), l.id, micros(to), l.id, micros(from), keepEgress)
		if err != nil {
			return nil, fmt.Errorf("person laptops: %w", err)
		}
		if l.egress, err = scanRows(rows, func(sc scanner) (detect.LaptopEgress, error) {
			e := detect.LaptopEgress{DeviceID: l.id, Hostname: l.hostname}
			var at int64
			var has int
			err := sc.Scan(&at, &e.IP, &e.Country, &e.City, &e.NetworkClass, &has, &e.Latitude, &e.Longitude)
			e.At, e.HasLocation = fromMicros(at), has != 0
			return e, err
		}); err != nil {
			return nil, err
		}
		rows, err = q.QueryContext(ctx, s.q(`SELECT received_at FROM reports WHERE device_id = ? AND received_at >= ? AND received_at <= ?
			ORDER BY received_at LIMIT ?`), l.id, micros(from), micros(to), maxLaptopReports)
		if err != nil {
			return nil, fmt.Errorf("person laptops: %w", err)
		}
		times, err := scanColumn[int64](rows)
		if err != nil {
			return nil, err
		}
		for _, t := range times {
			l.reports = append(l.reports, fromMicros(t))
		}
		if l.id == deviceID && !now.Before(from) && !now.After(to) {
			l.reports = append(l.reports, now)
			slices.SortFunc(l.reports, time.Time.Compare)
			if n := len(l.egress); cur.IP != "" && (n == 0 || l.egress[n-1].IP != cur.IP) {
				l.egress = append(l.egress, detect.LaptopEgress{DeviceID: l.id, Hostname: l.hostname, At: now, IP: cur.IP,
					Country: cur.Country, City: cur.City, NetworkClass: cur.NetworkClass, HasLocation: cur.HasLocation,
					Latitude: cur.Latitude, Longitude: cur.Longitude})
			}
		}
	}
	return out, nil
}

// nearest is the laptop's report nearest to t, within LaptopWindow, with
// the egress in force then.
func (l *laptop) nearest(t time.Time) (detect.LaptopPosition, bool) {
	i := sort.Search(len(l.reports), func(i int) bool { return !l.reports[i].Before(t) })
	var best time.Time
	gap := time.Duration(math.MaxInt64)
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(l.reports) {
			continue
		}
		if g := absDuration(l.reports[j].Sub(t)); g < gap {
			best, gap = l.reports[j], g
		}
	}
	if gap > detect.LaptopWindow {
		return detect.LaptopPosition{}, false
	}
	pos := detect.LaptopPosition{DeviceID: l.id, Hostname: l.hostname, GapMinutes: math.Round(gap.Minutes())}
	for _, e := range l.egress { // oldest first: the last at or before best
		if e.At.After(best) {
			break
		}
		pos.IP, pos.Country, pos.City, pos.NetworkClass = e.IP, e.Country, e.City, e.NetworkClass
		pos.HasLocation, pos.Latitude, pos.Longitude = e.HasLocation, e.Latitude, e.Longitude
	}
	if pos.IP == "" {
		return detect.LaptopPosition{}, false // reported from an address the history no longer holds
	}
	return pos, true
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// minTravelHours is the shortest time a move between two sign-ins counts
// as taking: GeoIP places one address tens of km apart in two databases,
// and sign-ins minutes apart would otherwise "travel" at absurd speeds.
const minTravelHours = 0.25

// travel sets each located successful sign-in's speed from the previous
// one (signins are newest first).
func travel(signins []detect.Signin) {
	var prev *detect.Signin
	for i := len(signins) - 1; i >= 0; i-- {
		si := &signins[i]
		if si.Result != SigninSuccess || !si.Egress.HasLocation {
			continue
		}
		if prev != nil {
			km := geo.DistanceKm(prev.Egress.Latitude, prev.Egress.Longitude, si.Egress.Latitude, si.Egress.Longitude)
			hours := max(si.At.Sub(prev.At).Hours(), minTravelHours)
			si.TravelKm, si.TravelKmh, si.TravelFrom = math.Round(km), math.Round(km/hours), prev.IP
		}
		prev = si
	}
}

// sharedFactors sets, on each sign-in with an MFA device or provider
// device id, the other people whose sign-ins used it.
func (s *Store) sharedFactors(ctx context.Context, q querier, email string, signins []detect.Signin, now time.Time) error {
	since := micros(now.Add(-sharedFactorWindow))
	cache := map[[2]string][]string{}
	for i := range signins {
		si := &signins[i]
		var others []string
		for _, f := range [][2]string{{"mfa_device", si.MFADevice}, {"device_id", si.DeviceID}} {
			if f[1] == "" {
				continue
			}
			got, ok := cache[f]
			if !ok {
				rows, err := q.QueryContext(ctx, s.q(`SELECT DISTINCT email FROM signins WHERE `+f[0]+` = ? AND `+f[0]+` <> ''
					AND email <> ? AND at >= ? ORDER BY email LIMIT 20`), f[1], email, since)
				if err != nil {
					return fmt.Errorf("shared factors: %w", err)
				}
				if got, err = scanColumn[string](rows); err != nil {
					return err
				}
				cache[f] = got
			}
			others = append(others, got...)
		}
		slices.Sort(others)
		si.SharedWith = slices.Compact(others)
	}
	return nil
}

// pruneSignins deletes the sign-ins that happened before cutoff, batch at
// a time (by time: imports add old sign-ins late, so ids are not in time
// order).
func (s *Store) pruneSignins(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		var n int64
		err := s.tx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, s.q(`DELETE FROM signins WHERE id IN (SELECT id FROM signins WHERE at < ? ORDER BY at LIMIT ?)`),
				micros(cutoff), batch)
			if err != nil {
				return err
			}
			n, _ = r.RowsAffected()
			return nil
		})
		total += int(n)
		if err != nil {
			return total, fmt.Errorf("prune signins: %w", err)
		}
		if int(n) < batch {
			return total, nil
		}
	}
}

// IdPConnector is a pull connector's state (serve --idp), as GET
// /api/v1/idp and the UI show it.
type IdPConnector struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// Cursor is where the next poll starts (the provider's own form).
	Cursor      string    `json:"cursor"`
	LastEventAt time.Time `json:"last_event_at,omitzero"`
	LastPollAt  time.Time `json:"last_poll_at,omitzero"`
	LastSuccess time.Time `json:"last_success_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Events      int64     `json:"events"`
	// LagSeconds is how far the newest stored event is behind the last
	// successful poll; -1 when no event came yet.
	LagSeconds int64 `json:"lag_seconds"`
}

// IdPConnectors lists the connectors' states by name.
func (s *Store) IdPConnectors(ctx context.Context) ([]IdPConnector, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT name, provider, cursor, last_event_at, last_poll_at, last_success_at, last_error,
		last_error_at, events FROM idp_connectors ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("idp connectors: %w", err)
	}
	return scanRows(rows, func(sc scanner) (IdPConnector, error) {
		var c IdPConnector
		var ev, poll, ok, errAt int64
		if err := sc.Scan(&c.Name, &c.Provider, &c.Cursor, &ev, &poll, &ok, &c.LastError, &errAt, &c.Events); err != nil {
			return c, err
		}
		c.LastEventAt, c.LastPollAt, c.LastSuccess, c.LastErrorAt = fromMicros(ev), fromMicros(poll), fromMicros(ok), fromMicros(errAt)
		c.LagSeconds = -1
		if !c.LastEventAt.IsZero() && !c.LastSuccess.IsZero() {
			c.LagSeconds = max(0, int64(c.LastSuccess.Sub(c.LastEventAt).Seconds()))
		}
		return c, nil
	})
}

// IdPCursor returns a connector's stored cursor ("" when it never
// polled).
func (s *Store) IdPCursor(ctx context.Context, name string) (string, error) {
	var c string
	err := s.w.QueryRowContext(ctx, s.q(`SELECT cursor FROM idp_connectors WHERE name = ?`), name).Scan(&c)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("idp cursor: %w", err)
	}
	return c, nil
}

// CommitIdPPage stores one page of a connector's sign-ins (as AddSignins)
// and then its new cursor, so that a restart resumes after the events
// stored; a page stored twice adds nothing (the events are idempotent by
// id).
func (s *Store) CommitIdPPage(ctx context.Context, name, provider, cursor string, signins []Signin, ev Evaluator, now time.Time) (SigninResult, error) {
	var newest time.Time
	for _, si := range signins {
		if si.At.After(newest) {
			newest = si.At
		}
	}
	// The events go first, in their own transaction, the cursor after:
	// a crash between them re-reads the page, which adds nothing.
	res, err := s.AddSignins(ctx, signins, ev, now)
	if err != nil {
		return res, err
	}
	_, err = s.exec(ctx, `INSERT INTO idp_connectors (name, provider, cursor, last_event_at, last_poll_at, last_success_at, events)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, cursor = excluded.cursor,
		last_event_at = CASE WHEN excluded.last_event_at > idp_connectors.last_event_at THEN excluded.last_event_at ELSE idp_connectors.last_event_at END,
		last_poll_at = excluded.last_poll_at, last_success_at = excluded.last_success_at,
		events = idp_connectors.events + excluded.events`,
		name, provider, cursor, micros(newest), micros(now), micros(now), int64(res.Added))
	if err != nil {
		return res, fmt.Errorf("idp cursor: %w", err)
	}
	return res, nil
}

// IdPError records a connector's failed poll.
func (s *Store) IdPError(ctx context.Context, name, provider, msg string, now time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO idp_connectors (name, provider, last_poll_at, last_error, last_error_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET last_poll_at = excluded.last_poll_at, last_error = excluded.last_error,
		last_error_at = excluded.last_error_at`, name, provider, micros(now), cut(msg, 1024), micros(now))
	if err != nil {
		return fmt.Errorf("idp state: %w", err)
	}
	return nil
}

// signinOrder sorts sign-ins oldest first (ties by provider and id).
func signinOrder(a, b Signin) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Provider, b.Provider), strings.Compare(a.EventID, b.EventID))
}

// SortSignins sorts sign-ins oldest first.
func SortSignins(ss []Signin) { slices.SortFunc(ss, signinOrder) }
