package fleet

import (
	"cmp"
	"math"
	"slices"
)

// Risk score formula (documented in the README).
//
// Every open or acknowledged alert weighs by its severity: low 0.05,
// medium 0.15, high 0.35, critical 0.60. Alerts combine like independent
// pieces of evidence (a noisy-OR): score = round(100 × (1 − Π(1 − w))).
// One high alert scores 35, two 58, a high and a critical 74; no number
// of alerts reaches 100. A rule counts once per subject, at its highest
// severity: a person's score combines the alerts of all their devices.
// Resolved alerts and false positives do not count.
var severityWeight = map[string]float64{"low": 0.05, "medium": 0.15, "high": 0.35, "critical": 0.60}

// Contribution is one alert's part in a score.
type Contribution struct {
	RuleID   string `json:"rule_id"`
	Severity string `json:"severity"`
	Category string `json:"category,omitempty"`
	// Device is the device the alert is on (in a person's score).
	Device string `json:"device,omitempty"`
	// Points is round(100 × weight): the score this alert alone gives.
	Points int `json:"points"`
}

// Risk scores a subject from its alerts' contributions (Points is filled
// in here). It returns the score and the contributions that count, one per
// rule, highest first.
func Risk(in []Contribution) (int, []Contribution) {
	best := map[string]Contribution{}
	for _, c := range in {
		c.Points = int(math.Round(100 * severityWeight[c.Severity]))
		if c.Points == 0 {
			continue
		}
		if b, ok := best[c.RuleID]; !ok || c.Points > b.Points || (c.Points == b.Points && c.Device < b.Device) {
			best[c.RuleID] = c
		}
	}
	out := make([]Contribution, 0, len(best))
	keep := 1.0
	for _, c := range best {
		out = append(out, c)
		keep *= 1 - severityWeight[c.Severity]
	}
	slices.SortFunc(out, func(a, b Contribution) int {
		return cmp.Or(b.Points-a.Points, cmp.Compare(a.RuleID, b.RuleID))
	})
	return int(math.Round(100 * (1 - keep))), out
}

// Farm score of a cluster, 0–100 (documented in the README): a noisy-OR
// of 0.20 for every distinct person beyond the first, 0.25 when the
// devices share a physical network (not only hardware or a tool id), and
// 0.20 for every kind of co-signal on the members (remote access, IP-KVM
// and peripherals, location, activity, agent integrity). Two people at
// home score 40; eight people behind one router 84, 90 with two
// co-signals.
func FarmScore(people int, sharedNetwork bool, coSignals int) int {
	keep := math.Pow(0.8, float64(max(people-1, 0)))
	if sharedNetwork {
		keep *= 0.75
	}
	keep *= math.Pow(0.8, float64(coSignals))
	return int(math.Round(100 * (1 - keep)))
}
