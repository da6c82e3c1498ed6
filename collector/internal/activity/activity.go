// Package activity keeps each device's rolling activity histogram (active
// and sampled minutes per UTC hour over the last 14 days) and derives what
// the rules need: the share of activity outside the person's declared work
// hours, the working UTC offset that best explains the activity, the
// longest continuous active stretch, the busiest day and the weekend share.
// Daylight saving time is handled by evaluating the declared zone hour by
// hour; travel shows as a change of the inferred offset.
package activity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Window is how many hours a histogram keeps.
const Window = 14 * 24

// MinActiveHours is how much activity inference needs before it says
// anything (about a working week).
const MinActiveHours = 20

// Histogram holds active/sampled minutes for the Window hours ending with
// the hour End (exclusive), as unix hours (seconds / 3600).
type Histogram struct {
	End     int64 // first hour after the window
	Active  [Window]uint8
	Sampled [Window]uint8
}

// Hour is one reported hour.
type Hour struct {
	Start           time.Time // start of the UTC hour
	Active, Sampled uint32
}

func unixHour(t time.Time) int64 { return t.Unix() / 3600 }

// Update records reported hours (a report carries the agent's counts for
// each hour it kept; a later count for the same hour replaces the earlier
// one). Hours older than the window before now or in the future are
// ignored; the window slides to now.
func (h *Histogram) Update(now time.Time, hours []Hour) {
	h.slide(unixHour(now) + 1)
	for _, r := range hours {
		u := unixHour(r.Start)
		i := u - (h.End - Window)
		if i < 0 || i >= Window {
			continue
		}
		s := min(r.Sampled, 60)
		h.Sampled[i] = uint8(s)
		h.Active[i] = uint8(min(r.Active, s))
	}
}

// Merge records hours reported by one of several devices of a person: a
// count only grows, so the person's hour is as active as their most active
// device in it.
func (h *Histogram) Merge(now time.Time, hours []Hour) {
	h.slide(unixHour(now) + 1)
	for _, r := range hours {
		i := unixHour(r.Start) - (h.End - Window)
		if i < 0 || i >= Window {
			continue
		}
		s := min(r.Sampled, 60)
		h.Sampled[i] = max(h.Sampled[i], uint8(s))
		h.Active[i] = max(h.Active[i], uint8(min(r.Active, s)))
	}
}

// slide moves the window so that it ends at end, dropping older hours.
func (h *Histogram) slide(end int64) {
	shift := end - h.End
	switch {
	case h.End == 0 || shift >= Window:
		*h = Histogram{End: end}
	case shift > 0:
		copy(h.Active[:], h.Active[shift:])
		copy(h.Sampled[:], h.Sampled[shift:])
		clear(h.Active[Window-shift:])
		clear(h.Sampled[Window-shift:])
		h.End = end
	}
}

// MarshalBinary encodes the histogram compactly (8 + 2×Window bytes).
func (h *Histogram) MarshalBinary() ([]byte, error) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+2*Window), uint64(h.End))
	b = append(b, h.Active[:]...)
	return append(b, h.Sampled[:]...), nil
}

// UnmarshalBinary decodes MarshalBinary's form.
func (h *Histogram) UnmarshalBinary(b []byte) error {
	if len(b) != 8+2*Window {
		return fmt.Errorf("activity histogram: %d bytes, want %d", len(b), 8+2*Window)
	}
	h.End = int64(binary.BigEndian.Uint64(b))
	copy(h.Active[:], b[8:8+Window])
	copy(h.Sampled[:], b[8+Window:])
	for i := range Window {
		if h.Active[i] > 60 || h.Sampled[i] > 60 || h.Active[i] > h.Sampled[i] {
			return errors.New("activity histogram: counts out of range")
		}
	}
	return nil
}

// WorkHours is a declared working day in a zone: minutes after midnight;
// End < Start is a night shift across midnight.
type WorkHours struct {
	Zone       *time.Location
	Start, End int
}

// ParseWorkHours parses "HH:MM-HH:MM" ("" means 09:00-17:00).
func ParseWorkHours(zone *time.Location, s string) (WorkHours, error) {
	w := WorkHours{Zone: zone, Start: 9 * 60, End: 17 * 60}
	if s == "" {
		return w, nil
	}
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(s, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil || n != 4 ||
		h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0 {
		return w, fmt.Errorf("work hours %q: want HH:MM-HH:MM", s)
	}
	w.Start, w.End = h1*60+m1, h2*60+m2
	return w, nil
}

// Contains reports whether t falls in the working day in its zone (UTC
// when the zone is nil).
func (w WorkHours) Contains(t time.Time) bool {
	if w.Zone != nil {
		t = t.In(w.Zone)
	}
	return w.contains(t.Hour()*60 + t.Minute())
}

// contains reports whether minute-of-day m falls in the working day.
func (w WorkHours) contains(m int) bool {
	if w.Start <= w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End // across midnight
}

// Stats is what the rules see about a histogram.
type Stats struct {
	// ActiveMinutes and ActiveHours (hours with any activity) in the window.
	ActiveMinutes int `cel:"active_minutes" json:"active_minutes"`
	ActiveHours   int `cel:"active_hours" json:"active_hours"`
	// OutsideHoursShare is the share of active minutes outside the declared
	// work hours in the declared zone (DST-aware); -1 without a declared
	// zone or activity.
	OutsideHoursShare float64 `cel:"outside_hours_share" json:"outside_hours_share"`
	// InferredOffsetSeconds is the fixed UTC offset that puts the most
	// activity inside the declared working day (09:00–17:00 when none is
	// declared); OffsetConfidence the share of activity it explains, 0 when
	// there is too little data (fewer than MinActiveHours active hours).
	InferredOffsetSeconds int     `cel:"inferred_offset_seconds" json:"inferred_offset_seconds"`
	OffsetConfidence      float64 `cel:"offset_confidence" json:"offset_confidence"`
	// LongestStretchHours is the longest run of consecutive active hours.
	LongestStretchHours int `cel:"longest_stretch_hours" json:"longest_stretch_hours"`
	// MaxDayActiveHours is the most active hours in one UTC day;
	// WeekHoursOfDay how many of the 24 hours of the day (UTC) saw activity
	// over the last 7 days.
	MaxDayActiveHours int `cel:"max_day_active_hours" json:"max_day_active_hours"`
	WeekHoursOfDay    int `cel:"week_hours_of_day" json:"week_hours_of_day"`
	// WeekendShare is the share of active minutes on Saturday and Sunday
	// in the declared zone (UTC without one); -1 without activity.
	WeekendShare float64 `cel:"weekend_share" json:"weekend_share"`
}

// Compute derives the statistics; work.Zone may be nil (nothing declared).
func (h *Histogram) Compute(work WorkHours) Stats {
	st := Stats{OutsideHoursShare: -1, WeekendShare: -1}
	start := h.End - Window
	zone := work.Zone
	if zone == nil {
		zone = time.UTC
	}
	// Per-offset alignment: minutes inside the working day for each fixed
	// offset from -12 h to +14 h.
	var inside [27]int
	var outside, weekend int
	run, day := 0, int64(-1)
	dayHours := 0
	var week [24]bool
	for i := range Window {
		a := int(h.Active[i])
		u := start + int64(i)
		if u/24 != day {
			day, dayHours = u/24, 0
		}
		if a == 0 {
			run = 0
			continue
		}
		st.ActiveMinutes += a
		st.ActiveHours++
		run++
		dayHours++
		st.LongestStretchHours = max(st.LongestStretchHours, run)
		st.MaxDayActiveHours = max(st.MaxDayActiveHours, dayHours)
		if i >= Window-7*24 {
			week[u%24] = true
		}
		t := time.Unix(u*3600+1800, 0) // the middle of the hour
		local := t.In(zone)
		if wd := local.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekend += a
		}
		if work.Zone != nil {
			if !work.contains(local.Hour()*60 + local.Minute()) {
				outside += a
			}
		}
		for k := range inside {
			m := int((u%24+24+int64(k-12))%24)*60 + 30
			if work.contains(m) {
				inside[k] += a
			}
		}
	}
	for _, w := range week {
		if w {
			st.WeekHoursOfDay++
		}
	}
	if st.ActiveMinutes == 0 {
		return st
	}
	total := float64(st.ActiveMinutes)
	st.WeekendShare = round(float64(weekend) / total)
	if work.Zone != nil {
		st.OutsideHoursShare = round(float64(outside) / total)
	}
	if st.ActiveHours >= MinActiveHours {
		best, decl := 0, 0
		if work.Zone != nil {
			decl = declaredHours(work.Zone, h.End)
		}
		for k := range inside {
			// On a tie, prefer the offset nearest the declared one.
			if inside[k] > inside[best] || inside[k] == inside[best] && abs(k-12-decl) < abs(best-12-decl) {
				best = k
			}
		}
		st.InferredOffsetSeconds = (best - 12) * 3600
		st.OffsetConfidence = round(float64(inside[best]) / total)
	}
	return st
}

// declaredHours is the zone's offset in whole hours at the end of the
// window.
func declaredHours(z *time.Location, end int64) int {
	_, off := time.Unix(end*3600, 0).In(z).Zone()
	return int(math.Round(float64(off) / 3600))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }
