package store_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
)

// BenchmarkPersonFacts: what reading the facts of a report costs when
// the device's person has identity-provider sign-ins (100 in the last 72
// hours, two laptops reporting every 5 minutes), against the same read
// for a bound person without any (the floor, measured in the same run).
// People are declared with a time zone and work hours, and the egress
// located with its time zone, as HR exports and GeoIP databases give them.
func BenchmarkPersonFacts(b *testing.B) {
	st := storetest.Open(b, filepath.Join(b.TempDir(), "bonafide.db"))
	ctx := b.Context()
	_, sec, err := st.CreateSecret(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	home := detect.Egress{IP: "198.51.100.10", Status: "ok", Country: "US", City: "Phoenix", HasLocation: true, Latitude: 33.45, Longitude: -112.07,
		NetworkClass: policies.NetClassResidential, TimeZone: "America/Phoenix"}
	device := func(person, host string) string {
		if _, err := st.UpsertPerson(ctx, store.Person{Email: person, DeviceSerial: "SN-" + host, Timezone: "America/Phoenix", WorkHours: "09:00-17:00"}, "bench"); err != nil {
			b.Fatal(err)
		}
		id, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-" + host, SecretID: sec.ID, IP: home.IP, HardwareKey: "hw-" + host,
			Identity:   store.DeviceIdentity{SerialNumber: "SN-" + host, Hostname: host, OSFamily: "linux", AgentVersion: "1.0.0"},
			CertSerial: "c-" + host, CertNotAfter: now.AddDate(1, 0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		a, err := st.AgentByID(ctx, "agent-"+host)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: home.IP, Egress: home, ReceivedAt: now.Add(-80 * time.Hour),
			ReportInterval: 5 * time.Minute, Reports: []store.IngestReport{{ReportID: "r0", Sequence: 1, CreatedAt: now.Add(-80 * time.Hour),
				Identity: store.DeviceIdentity{SerialNumber: "SN-" + host, Hostname: host, OSFamily: "linux", AgentVersion: "1.0.0"}}}}, &personFactsSeen{last: map[string]*detect.PersonFacts{}}); err != nil {
			b.Fatal(err)
		}
		var times []time.Time
		for at := now.Add(-85 * time.Hour); at.Before(now); at = at.Add(5 * time.Minute) {
			times = append(times, at)
		}
		if err := st.SeedReportsForTest(ctx, id, times); err != nil {
			b.Fatal(err)
		}
		return id
	}
	floor := device("floor@example.com", "floor-1")
	busy := device("busy@example.com", "busy-1")
	device("busy2@example.com", "busy-2")
	if _, err := st.UpsertPerson(ctx, store.Person{Email: "busy@example.com", DeviceSerial: "SN-busy-1", Timezone: "America/Phoenix", WorkHours: "09:00-17:00"}, "bench"); err != nil {
		b.Fatal(err)
	}
	var signins []store.Signin
	for i := range 100 {
		si := store.Signin{Provider: "okta", EventID: fmt.Sprint("ev-", i), At: now.Add(-time.Duration(i) * 40 * time.Minute),
			Email: "busy@example.com", Result: "success", IP: "192.0.2.10", MFADevice: "phone-1",
			Egress: detect.Egress{IP: "192.0.2.10", Status: "ok", HasLocation: true, Latitude: 41.8, Longitude: 123.4, NetworkClass: "residential"}}
		if err := si.Validate(); err != nil {
			b.Fatal(err)
		}
		signins = append(signins, si)
	}
	if _, err := st.AddSignins(ctx, signins, nil, now); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, id string }{{"floor no sign-ins", floor}, {"100 sign-ins", busy}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				f, err := st.DeviceFactsForTest(ctx, c.id, now)
				if err != nil {
					b.Fatal(err)
				}
				if c.id == busy && (f.PersonFacts == nil || len(f.PersonFacts.Signins) != 100 || len(f.PersonFacts.Signins[0].Laptops) == 0) {
					b.Fatalf("facts %+v", f.PersonFacts)
				}
			}
		})
	}
}
