package cases

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// story tells a record in plain language, for readers who are not
// analysts: who, which laptops, where they really were, what drove them,
// when. Every sentence rests on facts listed in the record.
func story(r *Record) []string {
	var out []string
	// Who and which laptops.
	var who []string
	for _, p := range r.People {
		s := cmp.Or(p.Name, p.Email)
		if p.Name != "" {
			s += " (" + p.Email + ")"
		}
		if home := placeName(p.City, p.Country); home != "" {
			s += ", declared to work from " + home
		}
		who = append(who, s)
	}
	var laptops []string
	for _, d := range r.Devices {
		l := cmp.Or(d.Hostname, d.ID)
		if d.Serial != "" {
			l += " (serial " + d.Serial + ")"
		}
		laptops = append(laptops, l)
	}
	switch {
	case r.Case.Kind == "farm" && r.Farm != nil:
		out = append(out, fmt.Sprintf("This case is about a suspected laptop farm: %d company laptops issued to %d people, which the collector found linked to each other (shared %s).",
			len(r.Devices), max(len(r.People), r.Farm.People), cmp.Or(strings.Join(r.Farm.Links, ", "), "evidence")))
	case r.Case.Kind == "person" && len(r.People) > 0:
		out = append(out, fmt.Sprintf("This case is about one person whose laptops raised enough alerts to reach a risk score of %d of 100.", r.People[0].Risk))
	default:
		out = append(out, fmt.Sprintf("This case groups %d alerts on %d laptops, selected by an analyst.", len(r.Alerts), len(r.Devices)))
	}
	if len(who) > 0 {
		out = append(out, "Who: "+strings.Join(who, "; ")+".")
	}
	if len(laptops) > 0 {
		out = append(out, "Which laptops: "+strings.Join(laptops, ", ")+".")
	}
	// Where they really were.
	if w := whereSentence(r); w != "" {
		out = append(out, w)
	}
	// What drove them.
	drove := map[string]bool{}
	other := map[string]bool{}
	for _, a := range r.Alerts {
		switch category(a.RuleID, a.Tags) {
		case "drive":
			drove[a.Title] = true
		default:
			other[a.Title] = true
		}
	}
	if len(drove) > 0 {
		out = append(out, "What drove them: the agents saw "+strings.Join(slices.Sorted(maps.Keys(drove)), "; ")+".")
	}
	if len(other) > 0 {
		out = append(out, "Other findings: "+strings.Join(slices.Sorted(maps.Keys(other)), "; ")+".")
	}
	// When.
	if !r.Case.FirstSeen.IsZero() {
		out = append(out, fmt.Sprintf("When: the first alert was raised on %s and the latest fired on %s (UTC).",
			r.Case.FirstSeen.UTC().Format("2 January 2006 15:04"), r.Case.LastSeen.UTC().Format("2 January 2006 15:04")))
	}
	for _, a := range r.Activity {
		peak, total := 0, 0
		for h, v := range a.Hours {
			total += v
			if v > a.Hours[peak] {
				peak = h
			}
		}
		if total == 0 {
			continue
		}
		s := fmt.Sprintf("%s's laptops were busiest at %02d:00–%02d:00 %s", a.Subject, peak, (peak+1)%24, a.Zone)
		if a.OutsideShare >= 0 {
			s += fmt.Sprintf("; %.0f%% of their activity fell outside the declared working hours (%s)", 100*a.OutsideShare, cmp.Or(a.WorkHours, "09:00-17:00"))
		}
		out = append(out, s+".")
	}
	out = append(out, fmt.Sprintf("The case is %s%s. Every fact behind these sentences follows, each with its time and source; this report was generated on %s by %s.",
		r.Case.Status, onlyIf(r.Case.Outcome != "", " ("+strings.ReplaceAll(r.Case.Outcome, "_", " ")+")"),
		r.GeneratedAt.UTC().Format(time.RFC1123), r.GeneratedBy))
	return out
}

// whereSentence says where the laptops reported from, against the
// declared cities.
func whereSentence(r *Record) string {
	latest := map[string]Place{}
	for _, p := range r.Where {
		latest[p.DeviceID] = p // r.Where is in time order
	}
	if len(latest) == 0 {
		return ""
	}
	places := map[string][]string{}
	far := 0.0
	for _, p := range latest {
		where := cmp.Or(p.Place, "an unknown place")
		if p.IP != "" {
			where += " (address " + p.IP + ")"
		}
		places[where] = append(places[where], p.Hostname)
		far = max(far, p.DistanceKM)
	}
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(places)) {
		hosts := places[w]
		slices.Sort(hosts)
		parts = append(parts, fmt.Sprintf("%d from %s", len(hosts), w))
	}
	s := "Where they really were: the laptops last reported " + strings.Join(parts, "; ")
	if far > 0 {
		s += fmt.Sprintf(", up to %s km from where their people declared they live", thousands(far))
	}
	return s + "."
}

// category sorts an alert into what drove the laptops (remote access,
// KVMs, jigglers) or other findings, by its rule id and tags.
func category(rule string, tags []string) string {
	for _, k := range []string{"remote", "kvm", "anydesk", "teamviewer", "rdp", "vnc", "hid", "jiggler", "stay_awake", "tunnel", "session"} {
		if strings.Contains(rule, k) {
			return "drive"
		}
	}
	return "other"
}

func onlyIf(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}
