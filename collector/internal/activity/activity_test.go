package activity

import (
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// week builds the hours of a person active from..to (local hours) on
// working days in zone, over the days ending at end.
func days(zone *time.Location, end time.Time, n, from, to int, weekdaysOnly bool) []Hour {
	var out []Hour
	for d := n; d >= 1; d-- {
		day := end.In(zone).AddDate(0, 0, -d)
		if wd := day.Weekday(); weekdaysOnly && (wd == time.Saturday || wd == time.Sunday) {
			continue
		}
		for h := from; h != to; h = (h + 1) % 24 {
			start := time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, zone)
			if h < from { // a night shift's second half is the next calendar day
				start = start.AddDate(0, 0, 1)
			}
			out = append(out, Hour{Start: start.UTC(), Active: 45, Sampled: 60})
		}
	}
	return out
}

func TestOffsetInference(t *testing.T) {
	ny, seoul := mustZone(t, "America/New_York"), mustZone(t, "Asia/Seoul")
	now := time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)
	work, _ := ParseWorkHours(ny, "09:00-17:00")

	// A "New York" hire active 09:00–17:00 Korea time.
	var h Histogram
	h.Update(now, days(seoul, now, 10, 9, 17, true))
	st := h.Compute(work)
	if st.InferredOffsetSeconds != 9*3600 || st.OffsetConfidence < 0.9 || st.OutsideHoursShare < 0.9 {
		t.Fatalf("Seoul worker: %+v", st)
	}

	// The real New York hire.
	h = Histogram{}
	h.Update(now, days(ny, now, 10, 9, 17, true))
	st = h.Compute(work)
	if st.InferredOffsetSeconds != -5*3600 || st.OutsideHoursShare != 0 || st.WeekendShare != 0 {
		t.Fatalf("New York worker: %+v", st)
	}

	// A declared night shift (22:00–06:00 New York), worked as declared.
	night, _ := ParseWorkHours(ny, "22:00-06:00")
	h = Histogram{}
	h.Update(now, days(ny, now, 10, 22, 6, true))
	st = h.Compute(night)
	if st.InferredOffsetSeconds != -5*3600 || st.OutsideHoursShare != 0 {
		t.Fatalf("night shift: %+v", st)
	}

	// Too little data: no inference.
	h = Histogram{}
	h.Update(now, days(seoul, now, 2, 9, 17, false))
	if st := h.Compute(work); st.OffsetConfidence != 0 || st.ActiveHours != 16 {
		t.Fatalf("little data: %+v", st)
	}
}

// TestDSTWeek: a New York person working 09:00–17:00 local across the
// March DST change is inside their hours all along, and the inferred
// offset is New York's (−4 h or −5 h), not an alert's 4 h away.
func TestDSTWeek(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) // DST began 2026-03-08
	work, _ := ParseWorkHours(ny, "")
	var h Histogram
	h.Update(now, days(ny, now, 12, 9, 17, true))
	st := h.Compute(work)
	if st.OutsideHoursShare != 0 {
		t.Fatalf("outside share %v across DST", st.OutsideHoursShare)
	}
	if off := st.InferredOffsetSeconds / 3600; off != -4 && off != -5 {
		t.Fatalf("inferred offset %dh", off)
	}
}

func TestAroundTheClock(t *testing.T) {
	now := time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)
	var h Histogram
	var hours []Hour
	for i := 1; i <= 7*24; i++ {
		if i%24 < 22 { // 22 of 24 hours every day
			hours = append(hours, Hour{Start: now.Add(-time.Duration(i) * time.Hour).Truncate(time.Hour), Active: 30, Sampled: 60})
		}
	}
	h.Update(now, hours)
	st := h.Compute(WorkHours{})
	if st.WeekHoursOfDay < 20 || st.MaxDayActiveHours < 20 || st.LongestStretchHours < 20 {
		t.Fatalf("shared laptop: %+v", st)
	}
}

func TestUpdateWindowAndEncoding(t *testing.T) {
	now := time.Date(2026, 2, 14, 12, 30, 0, 0, time.UTC)
	var h Histogram
	h.Update(now, []Hour{
		{Start: now.Truncate(time.Hour), Active: 70, Sampled: 90},     // capped to 60
		{Start: now.Add(-15 * 24 * time.Hour), Active: 5, Sampled: 5}, // too old
		{Start: now.Add(2 * time.Hour), Active: 5, Sampled: 5},        // future
		{Start: now.Add(-time.Hour).Truncate(time.Hour), Active: 50, Sampled: 10},
	})
	if h.Active[Window-1] != 60 || h.Sampled[Window-1] != 60 || h.Active[Window-2] != 10 {
		t.Fatalf("last hours %v/%v", h.Active[Window-2:], h.Sampled[Window-2:])
	}
	if st := h.Compute(WorkHours{}); st.ActiveMinutes != 70 {
		t.Fatalf("active %d", st.ActiveMinutes)
	}
	// A day later the window has slid by 24 hours.
	h.Update(now.Add(24*time.Hour), nil)
	if h.Active[Window-25] != 60 || h.Active[Window-1] != 0 {
		t.Fatal("window did not slide")
	}
	b, _ := h.MarshalBinary()
	var g Histogram
	if err := g.UnmarshalBinary(b); err != nil || g != h {
		t.Fatalf("round trip: %v", err)
	}
	b[10] = 200
	if err := g.UnmarshalBinary(b); err == nil {
		t.Fatal("out-of-range counts accepted")
	}
	if err := g.UnmarshalBinary(b[:5]); err == nil {
		t.Fatal("short blob accepted")
	}
}

func TestMergeKeepsTheMostActiveDevice(t *testing.T) {
	now := time.Date(2026, 2, 14, 12, 30, 0, 0, time.UTC)
	hour := now.Truncate(time.Hour)
	var h Histogram
	h.Merge(now, []Hour{{Start: hour, Active: 20, Sampled: 60}})
	h.Merge(now, []Hour{{Start: hour, Active: 45, Sampled: 50}}) // another device
	h.Merge(now, []Hour{{Start: hour, Active: 10, Sampled: 60}})
	if h.Active[Window-1] != 45 || h.Sampled[Window-1] != 60 {
		t.Fatalf("merged %d/%d", h.Active[Window-1], h.Sampled[Window-1])
	}
}

func TestParseWorkHours(t *testing.T) {
	for _, s := range []string{"9-5", "25:00-10:00", "09:60-17:00", "x"} {
		if _, err := ParseWorkHours(time.UTC, s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	var h Histogram
	h.Update(time.Now(), []Hour{{Start: time.Now(), Active: 3, Sampled: 4}})
	b, _ := h.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Histogram
		if g.UnmarshalBinary(b) == nil {
			g.Compute(WorkHours{Zone: time.UTC, Start: 540, End: 1020})
		}
	})
}

// BenchmarkFleet updates the histograms of 100,000 devices by one hour
// (a report) and computes their statistics with offset inference.
func BenchmarkFleet(b *testing.B) {
	const devices = 100_000
	ny := mustZone(b, "America/New_York")
	work, _ := ParseWorkHours(ny, "09:00-17:00")
	now := time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)
	seed := days(ny, now, 14, 9, 17, true)
	fleet := make([]Histogram, devices)
	for i := range fleet {
		fleet[i].Update(now, seed)
	}
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		t := now.Add(time.Duration(n) * time.Hour)
		for i := range fleet {
			fleet[i].Update(t, []Hour{{Start: t.Truncate(time.Hour), Active: uint32(i % 61), Sampled: 60}})
			fleet[i].Compute(work)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/devices, "ns/device")
}
