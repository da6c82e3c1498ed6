package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
)

// FleetStats says what a full recompute found and changed.
type FleetStats struct {
	Devices  int `json:"devices"`  // live devices
	Clusters int `json:"clusters"` // clusters of two or more
	Moved    int `json:"moved"`    // devices whose cluster changed
	Scores   int `json:"scores"`   // device scores that changed
}

// fleetSlice bounds the work of one transaction of a full recompute:
// devices moved, re-bound or re-scored, link keys written, or (a tenth of
// it) clusters refreshed. Ingest waits at most one slice behind it.
const fleetSlice = 500

// sliceBudget bounds the work of one slice of a full recompute (a few
// items more may finish after it). The slice then holds the writer for
// its commit too (an fsync, 30–70 ms on a busy machine), so the budget is
// a quarter of the 100 ms a report may wait behind it.
const sliceBudget = 25 * time.Millisecond

// RecomputeFleet finds every cluster again from the stored keys and
// recomputes every risk score. Reports update clusters and scores
// incrementally; this full pass catches what they cannot see: devices
// that stopped reporting and fell out of the window, people re-bound by
// an HR import, edited rule severities, keys crowded past fleet.MaxHolders.
//
// It reads the fleet on the read pool and computes outside any write
// transaction, then writes what changed in slices (fleetSlice), each its
// own short transaction, so that reports are stored between them. A slice
// changes a device only if it is as the recompute read it: where a report
// changed it since, the report's incremental update is the newer one.
func (s *Store) RecomputeFleet(ctx context.Context, now time.Time) (FleetStats, error) {
	return s.recomputeFleet(ctx, now, fleetSlice, nil)
}

// recomputeFleet is RecomputeFleet with slices of size, calling
// afterSlice (when not nil) after each committed slice.
func (s *Store) recomputeFleet(ctx context.Context, now time.Time, size int, afterSlice func()) (FleetStats, error) {
	var st FleetStats
	// inSlices runs fn over [0, n) in transactions of at most size items
	// and sliceBudget of work: fn takes a few items at a time, and the
	// slice commits when either bound is reached, so that a slow part of
	// the fleet (or a slow machine) cannot hold the writer longer.
	inSlices := func(n int, fn func(tx wtx, lo, hi int) error) error {
		step := max(1, size/50)
		for lo := 0; lo < n; {
			if err := s.tx(ctx, func(tx *sql.Tx) error {
				if err := s.lockClusters(ctx, tx); err != nil {
					return err
				}
				start, end := time.Now(), min(n, lo+size)
				for first := true; lo < end && (first || time.Since(start) < sliceBudget); first = false {
					hi := min(end, lo+step)
					if err := fn(wtx{Tx: tx, s: s}, lo, hi); err != nil {
						return err
					}
					lo = hi
				}
				return nil
			}); err != nil {
				return fmt.Errorf("recompute: %w", err)
			}
			if afterSlice != nil {
				afterSlice()
			}
		}
		return nil
	}

	// Devices, with their person binding recomputed.
	type dev struct {
		cluster, person, oldPerson, risk string
		score                            int
		firstSeen                        int64
		live, revoked                    bool
	}
	devs := map[string]*dev{}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT d.id, d.cluster_id, d.person, COALESCE(`+personOfDevice+`, ''),
		d.risk_score, d.risk_contributors, d.revoked_at = 0 AND d.last_seen > ?, d.revoked_at <> 0, d.first_seen FROM devices d`), micros(now.Add(-clusterWindow)))
	if err != nil {
		return st, fmt.Errorf("recompute: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		d := &dev{}
		if err := rows.Scan(&id, &d.cluster, &d.oldPerson, &d.person, &d.score, &d.risk, &d.live, &d.revoked, &d.firstSeen); err != nil {
			rows.Close()
			return st, err
		}
		devs[id] = d
		ids = append(ids, id)
		if d.live {
			st.Devices++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	// In order of seniority, as a crowded key links its most senior
	// holders (fleet.Components; component does the same in SQL).
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(devs[a].firstSeen, devs[b].firstSeen), strings.Compare(a, b))
	})
	index := make(map[string]int, len(ids))
	live := make([]bool, len(ids))
	for i, id := range ids {
		index[id] = i
		live[i] = devs[id].live
	}

	// Link keys and clusters.
	keys := make([][]fleet.Key, len(ids))
	holders := map[fleet.Key]int{}
	rows, err = s.r.QueryContext(ctx, s.q(`SELECT device_id, key FROM device_keys WHERE link = 1`))
	if err != nil {
		return st, fmt.Errorf("recompute: %w", err)
	}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			rows.Close()
			return st, err
		}
		k := fleet.Key(key)
		holders[k]++
		if i, ok := index[id]; ok {
			keys[i] = append(keys[i], k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	if err := s.syncLinkKeys(ctx, holders, inSlices); err != nil {
		return st, err
	}
	comps := fleet.Components(keys, live)
	st.Clusters = len(comps)
	groups := make([][]string, len(comps))
	current := map[string]string{}
	for i, c := range comps {
		for _, j := range c {
			groups[i] = append(groups[i], ids[j])
			current[ids[j]] = devs[ids[j]].cluster
		}
	}
	for id, d := range devs {
		if d.cluster != "" {
			current[id] = d.cluster
		}
	}
	plan := planClusters(groups, current)

	// Clusters to refresh: those whose membership changes, and those of
	// devices re-bound to another person or whose score changed (alert
	// changes refresh clusters as they happen).
	dirty := map[string]bool{}
	var rebound []string
	for _, id := range ids {
		if d := devs[id]; d.person != d.oldPerson {
			rebound = append(rebound, id)
			dirty[d.cluster] = true
		}
	}
	if err := inSlices(len(rebound), func(tx wtx, lo, hi int) error {
		for _, id := range rebound[lo:hi] {
			d := devs[id]
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET person = ?, version = version + 1 WHERE id = ? AND person = ?`),
				d.person, id, d.oldPerson); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return st, err
	}
	movers := plan.movers()
	if err := inSlices(len(movers), func(tx wtx, lo, hi int) error {
		n, err := s.moveDevices(ctx, tx, plan, movers[lo:hi], now, dirty)
		st.Moved += n
		return err
	}); err != nil {
		return st, err
	}

	// Risk scores: computed from the alerts as read; where one differs
	// from the stored score, refreshRisk scores the device again from its
	// alerts as they are when its slice is written.
	rows, err = s.r.QueryContext(ctx, s.q(`SELECT device_id, rule_id, severity, category FROM alerts WHERE status IN ('open', 'acknowledged')`))
	if err != nil {
		return st, fmt.Errorf("recompute risk: %w", err)
	}
	alerts := map[string][]fleet.Contribution{}
	for rows.Next() {
		var id string
		var c fleet.Contribution
		if err := rows.Scan(&id, &c.RuleID, &c.Severity, &c.Category); err != nil {
			rows.Close()
			return st, err
		}
		alerts[id] = append(alerts[id], c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	var rescore []string
	byPerson := map[string][]fleet.Contribution{}
	for _, id := range ids {
		d := devs[id]
		score, contrib := fleet.Risk(alerts[id])
		if d.person != "" && !d.revoked { // as refreshPersonRisk
			for _, c := range contrib {
				c.Device = id
				byPerson[d.person] = append(byPerson[d.person], c)
			}
		}
		if js, _ := json.Marshal(contrib); score != d.score || string(js) != d.risk {
			rescore = append(rescore, id)
		}
	}
	if err := inSlices(len(rescore), func(tx wtx, lo, hi int) error {
		for _, id := range rescore[lo:hi] {
			changed, err := s.refreshRisk(ctx, tx, id, now)
			if err != nil {
				return err
			}
			if changed {
				st.Scores++
				dirty[devs[id].cluster] = true
			}
		}
		return nil
	}); err != nil {
		return st, err
	}
	people, err := s.peopleToRescore(ctx, byPerson)
	if err != nil {
		return st, err
	}
	if err := inSlices(len(people), func(tx wtx, lo, hi int) error {
		for _, p := range people[lo:hi] {
			if err := s.refreshPersonRisk(ctx, tx, p, now); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return st, err
	}

	// A cluster's refresh reads all its members: a tenth of a slice.
	delete(dirty, "")
	refresh := slices.Sorted(maps.Keys(dirty))
	size = max(1, size/10)
	err = inSlices(len(refresh), func(tx wtx, lo, hi int) error {
		for _, id := range refresh[lo:hi] {
			if _, err := s.refreshCluster(ctx, tx, id, now); err != nil {
				return err
			}
		}
		return nil
	})
	return st, err
}

// peopleToRescore lists the people whose stored score differs from the
// one their devices' contributions (byPerson) give.
func (s *Store) peopleToRescore(ctx context.Context, byPerson map[string][]fleet.Contribution) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT email, risk_score, risk_contributors FROM people ORDER BY email`))
	if err != nil {
		return nil, fmt.Errorf("recompute risk: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var email, stored string
		var score int
		if err := rows.Scan(&email, &score, &stored); err != nil {
			return nil, err
		}
		s, contrib := fleet.Risk(byPerson[email])
		if js, _ := json.Marshal(contrib); s != score || string(js) != stored {
			out = append(out, email)
		}
	}
	return out, rows.Err()
}

// syncLinkKeys makes link_keys hold the given holder counts, writing only
// the differences, in slices.
func (s *Store) syncLinkKeys(ctx context.Context, holders map[fleet.Key]int, inSlices func(int, func(wtx, int, int) error) error) error {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT key, holders FROM link_keys`))
	if err != nil {
		return fmt.Errorf("link keys: %w", err)
	}
	stored := map[fleet.Key]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return err
		}
		stored[fleet.Key(k)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	type op struct {
		key  string
		n    int
		kind int // 0 delete, 1 update, 2 insert
	}
	var ops []op
	for k, n := range stored {
		if _, ok := holders[k]; !ok {
			ops = append(ops, op{string(k), 0, 0})
		} else if holders[k] != n {
			ops = append(ops, op{string(k), holders[k], 1})
		}
	}
	for k, n := range holders {
		if _, ok := stored[k]; !ok {
			ops = append(ops, op{string(k), n, 2})
		}
	}
	return inSlices(len(ops), func(tx wtx, lo, hi int) error {
		for _, o := range ops[lo:hi] {
			var err error
			switch o.kind {
			case 0:
				_, err = tx.ExecContext(ctx, s.q(`DELETE FROM link_keys WHERE key = ?`), o.key)
			case 1:
				_, err = tx.ExecContext(ctx, s.q(`UPDATE link_keys SET holders = ? WHERE key = ?`), o.n, o.key)
			default:
				_, err = tx.ExecContext(ctx, s.q(`INSERT INTO link_keys (key, holders) VALUES (?, ?)
					ON CONFLICT (key) DO UPDATE SET holders = excluded.holders`), o.key, o.n)
			}
			if err != nil {
				return fmt.Errorf("link keys: %w", err)
			}
		}
		return nil
	})
}
