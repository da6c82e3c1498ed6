package store

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// This file exports internals to the external test package store_test,
// which cannot be package store because it imports storetest (which
// imports store).

// HoldForTest counts a report of the device as waiting in Ingest (+1) or
// stored (-1).
func (s *Store) HoldForTest(deviceID string, n int) { s.hold(deviceID, n) }

// LiveAgentForTest is a liveAgent with exported fields.
type LiveAgentForTest struct {
	ID                 string
	Enrolled, LastSeen time.Time
}

// LiveAgents runs liveAgents.
func LiveAgents(in []LiveAgentForTest, now time.Time, window time.Duration) []string {
	agents := make([]liveAgent, len(in))
	for i, a := range in {
		agents[i] = liveAgent{id: a.ID, enrolled: a.Enrolled, lastSeen: a.LastSeen}
	}
	return liveAgents(agents, now, window)
}

// Rebind runs the placeholder rebinding of a store of dialect d.
func Rebind(d Dialect, query string) string { return (&Store{dialect: d}).q(query) }

// HistoryEntry is one row of snapshot_history.
type HistoryEntry struct {
	ReportID string
	Digest   string
	Changed  string
}

// SnapshotHistory lists a device's snapshot history, oldest first. No
// production code reads the table yet.
func (s *Store) SnapshotHistory(ctx context.Context, deviceID string) ([]HistoryEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT report_id, digest, changed FROM snapshot_history WHERE device_id = ? ORDER BY id`), deviceID)
	if err != nil {
		return nil, fmt.Errorf("snapshot history: %w", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.ReportID, &h.Digest, &h.Changed); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// SeedFleet inserts n devices that reported at now with their keys (as
// the incremental path would have stored them) and alerts, without
// clusters: a third alone at home, offices without linking keys,
// households of two, farms of eight behind one address and BSSID with two
// high alerts each. For BenchmarkRecomputeFleet.
func (s *Store) SeedFleet(ctx context.Context, n int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		const chunk = 500
		for start := 0; start < n; start += chunk {
			var dev, keys, alerts strings.Builder
			var dargs, kargs, aargs []any
			for i := start; i < min(n, start+chunk); i++ {
				id := fmt.Sprintf("dev_%08d", i)
				if dev.Len() > 0 {
					dev.WriteString(", ")
				}
				dev.WriteString("(?, ?, ?, ?, ?)")
				dargs = append(dargs, id, "hw-"+id, "host-"+id, micros(now), micros(now))
				ks := []string{fmt.Sprintf("peripheral usb 0x046d:0xc52b K%07d", i)}
				switch i % 10 {
				case 0, 1, 2:
					ks = append(ks, fmt.Sprintf("egress_ip e%d", i), fmt.Sprintf("gateway_mac g%d", i))
				case 3, 4:
					ks = append(ks, fmt.Sprintf("egress_ip h%d", i/10), fmt.Sprintf("gateway_mac hg%d", i/10))
				case 5:
					ks = append(ks, fmt.Sprintf("egress_ip f%d", i/80), fmt.Sprintf("bssid fb%d", i/80))
					for _, r := range []string{"remote_session_active", "laptop_farm_suspected"} {
						if alerts.Len() > 0 {
							alerts.WriteString(", ")
						}
						alerts.WriteString("(?, ?, 'title', 'high', 'remote_access', ?, ?, ?)")
						aargs = append(aargs, r, id, micros(now), micros(now), micros(now))
					}
				}
				for _, k := range ks {
					if keys.Len() > 0 {
						keys.WriteString(", ")
					}
					keys.WriteString("(?, ?, 1)")
					kargs = append(kargs, id, k)
				}
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO devices (id, hardware_key, hostname, first_seen, last_seen) VALUES ` + dev.String(), dargs},
				{`INSERT INTO device_keys (device_id, key, link) VALUES ` + keys.String(), kargs},
				{`INSERT INTO alerts (rule_id, device_id, title, severity, category, first_seen, last_seen, updated_at) VALUES ` + alerts.String(), aargs},
			} {
				if len(q.args) == 0 {
					continue
				}
				if _, err := tx.ExecContext(ctx, s.q(q.sql), q.args...); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// RecomputeFleetInSlices runs a full recompute in slices of size,
// calling afterSlice after each committed slice.
func (s *Store) RecomputeFleetInSlices(ctx context.Context, now time.Time, size int, afterSlice func()) (FleetStats, error) {
	return s.recomputeFleet(ctx, now, size, afterSlice)
}

// PruneInBatches runs Prune with batches of batch rows.
func (s *Store) PruneInBatches(ctx context.Context, now time.Time, r Retention, batch int) (PruneStats, error) {
	return s.prune(ctx, now, r, batch)
}

// AddClusterEvent appends an entry to a cluster's timeline.
func (s *Store) AddClusterEvent(ctx context.Context, clusterID string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return s.clusterEvent(ctx, wtx{Tx: tx, s: s}, clusterID, at, "joined", map[string]any{"device_id": "d"})
	})
}

// TimesIn lists the times in column of table's rows, oldest first.
func (s *Store) TimesIn(ctx context.Context, table, column string) ([]time.Time, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+column+` FROM `+table+` ORDER BY `+column)
	if err != nil {
		return nil, err
	}
	ats, err := scanColumn[int64](rows)
	out := make([]time.Time, len(ats))
	for i, at := range ats {
		out[i] = fromMicros(at)
	}
	return out, err
}

// SeedCrowd inserts n devices first seen and last seen at, each holding
// the linking keys, without clusters: a crowd of laptops as stored before
// any re-clustering sees them. For TestFleetCrowdedKey.
func (s *Store) SeedCrowd(ctx context.Context, n int, at time.Time, keys ...string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			id := fmt.Sprintf("dev_crowd%04d", i)
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO devices (id, hardware_key, hostname, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)`),
				id, "hw-"+id, fmt.Sprintf("crowd-%04d", i), micros(at), micros(at)); err != nil {
				return err
			}
			for _, k := range keys {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO device_keys (device_id, key, link) VALUES (?, ?, 1)`), id, k); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO link_keys (key, holders) VALUES (?, 1)
					ON CONFLICT (key) DO UPDATE SET holders = link_keys.holders + 1`), k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ReevaluateCluster judges the members of cluster id again, as a report
// that changed it does (reevaluateClusters), with ev. As each member is
// judged it also reads the cluster afresh in the same transaction and
// returns, for each member in the order judged, the cluster facts it saw
// and those a fresh read showed then. For TestReevaluateSeesFreshCluster.
func (s *Store) ReevaluateCluster(ctx context.Context, id string, now time.Time, ev Evaluator) (seen, fresh []detect.Cluster, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		w := wtx{Tx: tx, s: s}
		return s.reevaluateClusters(ctx, w, []string{id}, nil, nil, now, checkingEvaluator{ev, func(f *detect.DeviceFacts) error {
			c, err := s.clusterView(ctx, w, f.Cluster.ID, now)
			if err != nil {
				return err
			}
			got := f.Cluster
			got.AgeHours = 0
			seen, fresh = append(seen, got), append(fresh, clusterFacts(c, f.ID))
			return nil
		}}, nil)
	})
	return seen, fresh, err
}

type checkingEvaluator struct {
	Evaluator
	check func(*detect.DeviceFacts) error
}

func (c checkingEvaluator) Evaluate(ctx context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope == detect.ScopeDevice {
		if err := c.check(f.Device); err != nil {
			return nil, err
		}
	}
	return c.Evaluator.Evaluate(ctx, scope, f)
}

// OpenAlertsForTest returns a device's open_alerts column and its open and
// acknowledged alerts counted.
func (s *Store) OpenAlertsForTest(ctx context.Context, deviceID string) (stored, counted int64, err error) {
	err = s.r.QueryRowContext(ctx, s.q(`SELECT open_alerts, (SELECT COUNT(*) FROM alerts
		WHERE device_id = ? AND status IN ('open', 'acknowledged')) FROM devices WHERE id = ?`), deviceID, deviceID).Scan(&stored, &counted)
	return stored, counted, err
}

// PendingStmtsForTest counts the writer's statements noted for preparing
// and not prepared yet.
func (s *Store) PendingStmtsForTest() int {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return len(s.stmts.pending)
}

// StmtsBoundForTest runs query, a write statement, through the writer's
// statement cache twice in each of three transactions, and returns how
// many distinct statements of its transaction each ran it with (0: it ran
// unprepared).
func (s *Store) StmtsBoundForTest(ctx context.Context, query string, args ...any) ([]int, error) {
	var used []int
	for range 3 {
		seen := map[*sql.Stmt]bool{}
		err := s.tx(ctx, func(tx *sql.Tx) error {
			w := wtx{Tx: tx, s: s}
			for range 2 {
				if st := w.stmt(ctx, s.q(query)); st != nil {
					seen[st] = true
				}
				if _, err := w.ExecContext(ctx, s.q(query), args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return used, err
		}
		used = append(used, len(seen))
	}
	return used, nil
}

// IngestGroup stores batches as the writer stores batches that waited
// together: in one group commit (commitGroup), each with its own result.
func (s *Store) IngestGroup(ctx context.Context, ev Evaluator, batches ...IngestBatch) ([][]string, []error) {
	group := make([]*ingestReq, len(batches))
	for i := range batches {
		prepareBatch(&batches[i])
		group[i] = &ingestReq{ctx: ctx, batch: &batches[i], ev: ev, done: make(chan ingestResult, 1)}
	}
	s.commitGroup(group)
	acked, errs := make([][]string, len(group)), make([]error, len(group))
	for i, r := range group {
		res := <-r.done
		acked[i], errs[i] = res.acked, res.err
	}
	return acked, errs
}

// IngestAlone stores a batch on its own, as the writer stores each batch
// of a group that failed (under a savepoint): its reports judged one
// after another, each doing its own cluster work (ingestOne).
func (s *Store) IngestAlone(ctx context.Context, ev Evaluator, b IngestBatch) ([]string, error) {
	prepareBatch(&b)
	group := []*ingestReq{{ctx: ctx, batch: &b, ev: ev}}
	results, err := s.tryGroup(ctx, group, true)
	if err != nil {
		return nil, err
	}
	return results[0].acked, results[0].err
}

// IngestPrejudged stores batches as the writer stores batches that
// waited together, each judged first outside the writer as Ingest judges
// it (prejudge): between runs after the judging, before the group is
// committed (commitGroup). ahead are the batches whose fold statements
// the writer sends together (PostgreSQL; see foldsAhead).
func (s *Store) IngestPrejudged(ctx context.Context, ev Evaluator, between func(), batches ...IngestBatch) (acked [][]string, errs []error, ahead []int) {
	group := make([]*ingestReq, len(batches))
	for i := range batches {
		prepareBatch(&batches[i])
		group[i] = &ingestReq{ctx: ctx, batch: &batches[i], ev: ev, done: make(chan ingestResult, 1)}
		group[i].prejudged(s.prejudge(ctx, &batches[i], ev))
	}
	if between != nil {
		between()
	}
	if s.dialect == Postgres {
		ahead = foldsAhead(group)
	}
	s.commitGroup(group)
	acked, errs = make([][]string, len(group)), make([]error, len(group))
	for i, r := range group {
		res := <-r.done
		acked[i], errs[i] = res.acked, res.err
	}
	return acked, errs, ahead
}

// CachedRowForTest returns the version of the device's row in the rowCache
// (ok false when it holds none).
func (s *Store) CachedRowForTest(deviceID string) (version int64, ok bool) {
	r, ok, _ := s.rows.get(deviceID)
	return r.pre.version, ok
}

// DeviceVersionForTest reads the device's version.
func (s *Store) DeviceVersionForTest(ctx context.Context, deviceID string) (int64, error) {
	var v int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT version FROM devices WHERE id = ?`), deviceID).Scan(&v)
	return v, err
}

// FactStampForTest reads PostgreSQL's fact stamp (migration 00046).
func (s *Store) FactStampForTest(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT `+factStampSQL).Scan(&n)
	return n, err
}

// CachedRowMatchesForTest compares the device's cached row with the row
// read from the database now: cached says whether the cache holds one at
// the device's current version, err what differs.
func (s *Store) CachedRowMatchesForTest(ctx context.Context, deviceID string) (cached bool, err error) {
	c, ok, _ := s.rows.get(deviceID)
	var pre prejudgeRow
	row, err := s.readDevice(ctx, s.reader(), deviceID, &pre)
	if err != nil || !ok || pre.version != c.pre.version {
		return false, err
	}
	if c.pre.openAlerts < 0 {
		pre.openAlerts = -1 // not known (see guardedUpdate)
	}
	if !reflect.DeepEqual(row, c.row) || pre != c.pre {
		return true, fmt.Errorf("cached %+v %+v, database %+v %+v", c.row, c.pre, row, pre)
	}
	return true, nil
}

// LinkKeysForTest returns link_keys' holder counts and, beside them, the
// counts its definition gives: how many devices hold each key as a
// linking key in device_keys.
func (s *Store) LinkKeysForTest(ctx context.Context) (stored, counted map[string]int64, err error) {
	stored, counted = map[string]int64{}, map[string]int64{}
	for q, m := range map[string]map[string]int64{
		`SELECT key, holders FROM link_keys`:                                stored,
		`SELECT key, COUNT(*) FROM device_keys WHERE link = 1 GROUP BY key`: counted,
	} {
		rows, err := s.r.QueryContext(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return nil, nil, err
			}
			m[k] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return stored, counted, nil
}

// MigrateForTest migrates db, a database of dialect d, up or down to
// version.
func MigrateForTest(ctx context.Context, db *sql.DB, d Dialect, version int64) error {
	p, err := migrations(db, d)
	if err != nil {
		return err
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return err
	}
	if version >= cur {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.DownTo(ctx, version)
	}
	return err
}

// ClusterRowAndFresh returns a cluster's stored summary and facts digest,
// and those a fresh read of its members at now computes.
func (s *Store) ClusterRowAndFresh(ctx context.Context, id string, now time.Time) (stored, fresh string, err error) {
	var summary, facts string
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT summary, facts FROM clusters WHERE id = ?`), id).Scan(&summary, &facts); err != nil {
		return "", "", err
	}
	c, err := s.clusterView(ctx, s.r, id, now)
	if err != nil {
		return "", "", err
	}
	return summary + "\n" + facts, c.summary() + "\n" + c.factsDigest(), nil
}

// GuardedUpdatesForTest counts the device UPDATEs of prejudged reports
// that applied under their guard (see guardedUpdate).
func (s *Store) GuardedUpdatesForTest() int64 {
	return s.guarded.Load()
}

// CachedOpenAlertsForTest returns the open_alerts of the device's row in
// the rowCache (-1: not known; ok false when it holds none).
func (s *Store) CachedOpenAlertsForTest(deviceID string) (open int64, ok bool) {
	r, ok, _ := s.rows.get(deviceID)
	return r.pre.openAlerts, ok
}

// OneTripsForTest counts the groups stored in one round trip (see
// storeInOneTrip).
func (s *Store) OneTripsForTest() int64 {
	return s.oneTrips.Load()
}

// FleetDevice is a device SeedDevices inserts: its linking keys, when it
// was first and last seen and whether it is revoked.
type FleetDevice struct {
	ID                  string
	FirstSeen, LastSeen time.Time
	Revoked             bool
	Keys                []string
	ClusterID           string
}

// SeedDevices inserts devices with their linking keys (and the keys'
// holder counts) and cluster ids. For TestComponentsOfSeeds.
func (s *Store) SeedDevices(ctx context.Context, devs []FleetDevice) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range devs {
			var revoked int64
			if d.Revoked {
				revoked = micros(d.LastSeen)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO devices (id, hardware_key, hostname, first_seen, last_seen, revoked_at, cluster_id)
				VALUES (?, ?, ?, ?, ?, ?, ?)`), d.ID, "hw-"+d.ID, d.ID, micros(d.FirstSeen), micros(d.LastSeen), revoked, d.ClusterID); err != nil {
				return err
			}
			for _, k := range d.Keys {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO device_keys (device_id, key, link) VALUES (?, ?, 1)`), d.ID, k); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO link_keys (key, holders) VALUES (?, 1)
					ON CONFLICT (key) DO UPDATE SET holders = link_keys.holders + 1`), k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ComponentsForTest runs the re-clustering search (components) from the
// seeds at now, and returns the components it found.
func (s *Store) ComponentsForTest(ctx context.Context, seeds []string, now time.Time) (groups [][]string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		groups, err = s.components(ctx, wtx{Tx: tx, s: s}, seeds, now, map[string]string{})
		return err
	})
	return groups, err
}

// ApplyClustersForTest applies the plan re-clustering makes of groups
// from current (each device's cluster as the plan believes it) on a
// transaction of the kind the engine's ingest writer has (statements sent
// together on PostgreSQL), and returns the clusters it changed, with the
// timeline entries then stored ("cluster kind detail", in order).
func (s *Store) ApplyClustersForTest(ctx context.Context, groups [][]string, current map[string]string, now time.Time) (changed, events []string, err error) {
	var conn *sql.Conn
	db := beginner(s.w)
	if s.dialect == Postgres {
		if conn, err = s.w.Conn(ctx); err != nil {
			return nil, nil, err
		}
		defer conn.Close()
		db = conn
	}
	err = s.txOn(ctx, db, func(tx *sql.Tx) error {
		w := wtx{Tx: tx, s: s, conn: conn}
		if changed, err = s.applyClusters(ctx, w, groups, current, now, clusterViews{}); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT cluster_id || ' ' || kind || ' ' || detail FROM cluster_events ORDER BY id`)
		if err != nil {
			return err
		}
		events, err = scanColumn[string](rows)
		return err
	}, func(bool) {})
	return changed, events, err
}
