package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
)

// personFactsSeen records the person facts each device was judged with.
type personFactsSeen struct {
	mu   sync.Mutex
	last map[string]*detect.PersonFacts
}

func (p *personFactsSeen) Evaluate(_ context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice && f.Device != nil {
		p.mu.Lock()
		p.last[f.Device.ID] = f.Device.PersonFacts
		p.mu.Unlock()
	}
	return nil, nil
}

func (p *personFactsSeen) AutoResolve(detect.Scope) []string { return nil }

// TestSignins: sign-ins are stored once per provider event, bound to
// people by email whatever its case; the people's devices are judged
// again with each sign-in beside the laptop's nearest report, the travel
// between sign-ins and the people sharing an MFA device; a residential
// sign-in address shared by two people links their laptops until it
// ages out; retention prunes sign-ins by their time.
func TestSignins(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		for _, p := range []store.Person{{Email: "ana@example.com", DeviceSerial: "SN-lap-a"}, {Email: "bo@example.com", DeviceSerial: "SN-lap-b"}} {
			if _, err := e.st.UpsertPerson(e.ctx, p, "test"); err != nil {
				t.Fatal(err)
			}
		}
		seen := &personFactsSeen{last: map[string]*detect.PersonFacts{}}
		phoenix := detect.Egress{IP: "198.51.100.10", Status: "ok", Country: "US", City: "Phoenix", HasLocation: true,
			Latitude: 33.4484, Longitude: -112.0740, NetworkClass: policies.NetClassResidential}
		dallas := detect.Egress{IP: "198.51.100.20", Status: "ok", Country: "US", City: "Dallas", HasLocation: true,
			Latitude: 32.7767, Longitude: -96.7970, NetworkClass: policies.NetClassResidential}
		a, b := e.enroll("agent-a", "hw-a", "lap-a"), e.enroll("agent-b", "hw-b", "lap-b")
		e.reportFrom("agent-a", phoenix.IP, t0, phoenix, seen, e.heartbeat("a1", "lap-a", t0))
		e.reportFrom("agent-b", dallas.IP, t0, dallas, seen, e.heartbeat("b1", "lap-b", t0))
		if e.device(a).ClusterID != "" || e.device(b).ClusterID != "" {
			t.Fatal("laptops in different places linked before any sign-in")
		}

		house := detect.Egress{IP: "192.0.2.10", Status: "ok", Country: "CN", City: "Shenyang", HasLocation: true,
			Latitude: 41.8057, Longitude: 123.4315, NetworkClass: policies.NetClassResidential}
		signin := func(id, email string, at time.Time, mfa string) store.Signin {
			si := store.Signin{Provider: "okta", EventID: id, At: at, Email: email, Result: "success", IP: house.IP, Egress: house, MFADevice: mfa}
			if err := si.Validate(); err != nil {
				t.Fatal(err)
			}
			return si
		}
		batch := []store.Signin{
			signin("e1", "ANA@example.com", t0.Add(5*time.Minute), "phone-1"),
			signin("e2", "bo@Example.com", t0.Add(6*time.Minute), "phone-1"),
			signin("e3", "carl@example.com", t0.Add(7*time.Minute), ""), // nobody in the HR export (yet)
		}
		now := t0.Add(10 * time.Minute)
		res, err := e.st.AddSignins(e.ctx, batch, seen, now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Added != 3 || res.Duplicate != 0 || len(res.People) != 2 {
			t.Fatalf("first add: %+v", res)
		}
		if res, err := e.st.AddSignins(e.ctx, batch, seen, now); err != nil || res.Added != 0 || res.Duplicate != 3 {
			t.Fatalf("again: %+v, %v", res, err)
		}
		if ss, err := e.st.PersonSignins(e.ctx, "Ana@Example.com", time.Time{}, 10); err != nil || len(ss) != 1 || ss[0].EventID != "e1" || ss[0].Egress.City != "Shenyang" {
			t.Fatalf("ana's sign-ins: %+v, %v", ss, err)
		}

		pf := seen.last[a]
		if pf == nil || pf.Email != "ana@example.com" || len(pf.Signins) != 1 {
			t.Fatalf("ana's laptop judged with %+v", pf)
		}
		si := pf.Signins[0]
		if len(si.Laptops) != 1 || si.Laptops[0].DeviceID != a || si.Laptops[0].GapMinutes != 5 || si.Laptops[0].IP != phoenix.IP ||
			si.Laptops[0].DistanceKm < 9000 || si.Laptops[0].SameIP || si.LocationSource != "collector" {
			t.Errorf("ana's sign-in beside her laptop: %+v", si)
		}
		if len(si.SharedWith) != 1 || si.SharedWith[0] != "bo@example.com" {
			t.Errorf("ana's MFA device shared with %v, want bo", si.SharedWith)
		}
		if len(pf.EgressHistory) != 1 || pf.EgressHistory[0].City != "Phoenix" || !pf.EgressHistory[0].HasLocation {
			t.Errorf("ana's laptops' egress: %+v", pf.EgressHistory)
		}
		// One house, two people: their laptops are linked.
		ca, cb := e.device(a).ClusterID, e.device(b).ClusterID
		if ca == "" || ca != cb {
			t.Fatalf("laptops of people signing in from one house not linked: %q %q", ca, cb)
		}
		c, err := e.st.GetCluster(e.ctx, ca)
		if err != nil || len(c.Links) != 1 || c.Links[0] != "signin_ip" {
			t.Errorf("cluster %+v, %v", c, err)
		}

		// A second sign-in of Ana from Phoenix an hour later: travel.
		home := signin("e4", "ana@example.com", t0.Add(65*time.Minute), "")
		home.IP, home.Egress = phoenix.IP, phoenix
		e.reportFrom("agent-a", phoenix.IP, t0.Add(64*time.Minute), phoenix, seen, e.heartbeat("a2", "lap-a", t0.Add(64*time.Minute)))
		if _, err := e.st.AddSignins(e.ctx, []store.Signin{home}, seen, t0.Add(66*time.Minute)); err != nil {
			t.Fatal(err)
		}
		pf = seen.last[a]
		if len(pf.Signins) != 2 || pf.Signins[0].EventID != "e4" || pf.Signins[0].TravelKm < 9000 || pf.Signins[0].TravelKmh < 9000 ||
			pf.Signins[0].TravelFrom != house.IP || !pf.Signins[0].Laptops[0].SameIP || pf.Signins[0].Laptops[0].GapMinutes != 1 {
			t.Errorf("ana's second sign-in: %+v", pf.Signins[0])
		}

		// Eight days on, both laptops still report from their homes: the
		// shared sign-in address has aged out and no longer links them.
		later := t0.Add(8 * 24 * time.Hour)
		e.reportFrom("agent-a", phoenix.IP, later, phoenix, seen, e.heartbeat("a3", "lap-a", later))
		e.reportFrom("agent-b", dallas.IP, later, dallas, seen, e.heartbeat("b3", "lap-b", later))
		if n, err := e.st.RefreshSigninKeys(e.ctx, later); err != nil || n != 2 {
			t.Fatalf("RefreshSigninKeys: %d, %v", n, err)
		}
		if ca := e.device(a).ClusterID; ca != "" {
			t.Errorf("still linked after the sign-ins aged out: %q", ca)
		}

		st, err := e.st.Prune(e.ctx, t0.Add(91*24*time.Hour), store.Retention{Signins: 90 * 24 * time.Hour})
		if err != nil || st.Signins != 4 {
			t.Errorf("prune: %+v, %v", st, err)
		}
	})
}
