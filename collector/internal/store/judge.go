package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// verdict is what the rules found about a device: the findings, and the
// auto-resolving rules that were evaluated and did not fire. Reaching it
// reads nothing and writes nothing, so it can be reached outside the
// writer (see prejudge).
type verdict struct {
	findings []detect.Finding
	// encoded are the findings encoded as stored (encodeFindings) when
	// the verdict was reached outside the writer, else nil.
	encoded []alertRow
	// cleared is nil when a rule failed (it must not resolve anything)
	// or the device never reported (the other rules did not run).
	cleared []string
	// counted says open is the number of the device's open or
	// acknowledged alerts when the writer locked its row (withOpen).
	counted bool
	open    int64
}

// decide runs the device rules on facts (and, with a snapshot, the
// snapshot rules).
func (s *Store) decide(ctx context.Context, ev Evaluator, facts *detect.DeviceFacts, sn *agentv1.HostSnapshot, now time.Time) verdict {
	// A device that never reported has only its enrollment to judge.
	never := facts.LastSeen.IsZero()
	findings, evalErr := evaluateReport(ctx, ev, detect.Facts{Device: facts, Snapshot: sn, Now: now, NeverReported: never})
	if evalErr != nil {
		// A broken rule must not lose the report: store it, log the rule.
		s.log.Warn("rule evaluation failed", "device", facts.ID, "err", evalErr)
	}
	v := verdict{findings: findings}
	if evalErr == nil && !never {
		cleared := ev.AutoResolve(detect.ScopeDevice)
		if sn != nil {
			cleared = append(cleared, ev.AutoResolve(detect.ScopeSnapshot)...)
		}
		v.cleared = slices.DeleteFunc(cleared, func(id string) bool {
			return slices.ContainsFunc(findings, func(f detect.Finding) bool { return f.RuleID == id })
		})
	}
	return v
}

// reportEvaluator is an Evaluator that runs a report's device and
// snapshot rules in one evaluation, adapting the facts to CEL once
// (detect.Engine and detect.Live are).
type reportEvaluator interface {
	EvaluateReport(ctx context.Context, f detect.Facts) ([]detect.Finding, error)
}

// evaluateReport runs the device rules on f and, when f has a snapshot,
// the snapshot rules: in one evaluation when ev is a reportEvaluator,
// else one per scope.
func evaluateReport(ctx context.Context, ev Evaluator, f detect.Facts) ([]detect.Finding, error) {
	if re, ok := ev.(reportEvaluator); ok {
		return re.EvaluateReport(ctx, f)
	}
	findings, err := ev.Evaluate(ctx, detect.ScopeDevice, detect.Facts{Device: f.Device, Now: f.Now, NeverReported: f.NeverReported})
	if f.Snapshot != nil {
		more, snapErr := ev.Evaluate(ctx, detect.ScopeSnapshot, detect.Facts{Device: f.Device, Snapshot: f.Snapshot, Now: f.Now})
		findings, err = append(findings, more...), errors.Join(err, snapErr)
	}
	return findings, err
}

// judge records a verdict on a device (see record) and then evaluates the
// rules on the other members of the clusters in moved and, when the
// device's alerts changed, of its own cluster, whose co-signals changed
// with them. Every path that raises or resolves alerts goes through here,
// so a cluster's stored view (suspected, co-signals) always follows its
// members' alerts. views are the clusters read in the transaction since
// it last wrote to them (nil: none), each as a fresh read shows it.
func (s *Store) judge(ctx context.Context, tx wtx, facts *detect.DeviceFacts, v verdict, moved []string, now time.Time, ev Evaluator, views clusterViews) error {
	_, err := s.judgeChanged(ctx, tx, facts, v, moved, now, ev, views)
	return err
}

// judgeChanged is judge, reporting whether the device's alerts changed
// (see record).
func (s *Store) judgeChanged(ctx context.Context, tx wtx, facts *detect.DeviceFacts, v verdict, moved []string, now time.Time, ev Evaluator, views clusterViews) (bool, error) {
	changed, err := s.recordIn(ctx, tx, facts, v, now, views)
	if err != nil {
		return false, err
	}
	var own []string // the device's cluster, when only its alerts changed
	if changed && facts.Cluster.ID != "" && !slices.Contains(moved, facts.Cluster.ID) {
		own = []string{facts.Cluster.ID}
	}
	if (len(moved) > 0 || len(own) > 0) && !tx.clusters {
		// Taken late (a rare deadlock is retried) so that the reports of
		// a steady cluster's members are stored in parallel.
		if err := s.lockClusters(ctx, tx.Tx); err != nil {
			return changed, err
		}
	}
	return changed, s.reevaluateClusters(ctx, tx, moved, own, []string{facts.ID}, now, ev, views)
}

// recordIn records a verdict (see record) and rereads the device in the
// views that show it (see rereadJudged), as every judging of a device
// inside cluster work does. It returns whether the device's alerts changed.
func (s *Store) recordIn(ctx context.Context, tx wtx, facts *detect.DeviceFacts, v verdict, now time.Time, views clusterViews) (bool, error) {
	changed, err := s.record(ctx, tx, facts, v, now)
	if err != nil {
		return false, err
	}
	return changed, s.rereadJudged(ctx, tx, views, facts, v, changed)
}

// record raises or re-opens the alerts of a verdict's findings, resolves
// the alerts of its cleared rules and refreshes the risk scores. It
// reports whether any alert was raised, re-opened or resolved.
func (s *Store) record(ctx context.Context, tx wtx, facts *detect.DeviceFacts, v verdict, now time.Time) (bool, error) {
	changed, open, err := s.upsertAlerts(ctx, tx, facts, v.findings, v.encoded, now)
	if err != nil {
		return false, err
	}
	cleared := v.cleared
	if v.counted && int64(open) == v.open {
		// Each of the device's open or acknowledged alerts is one of the
		// findings' rules, which are never cleared ones: there is nothing
		// to resolve, and a farm laptop, whose rules fire on every
		// report, skips the statement.
		cleared = nil
	}
	resolved, err := s.resolveCleared(ctx, tx, facts.ID, cleared, now)
	if err != nil {
		return false, err
	}
	if changed || resolved {
		_, err := s.refreshRisk(ctx, tx, facts.ID, now)
		return true, err
	}
	return false, nil
}

// resolveCleared resolves the device's open or acknowledged alerts of
// rules that were evaluated and no longer fire (rules with auto_resolve),
// each with a timeline entry by the system.
func (s *Store) resolveCleared(ctx context.Context, tx wtx, deviceID string, rules []string, at time.Time) (bool, error) {
	if len(rules) == 0 {
		return false, nil
	}
	// The rule list changes only with the rule set, so the statement
	// caches well.
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE alerts SET status = 'resolved', updated_at = ?
		WHERE device_id = ? AND status IN ('open', 'acknowledged') AND rule_id IN (`+marks(len(rules))+`) RETURNING id`),
		append([]any{micros(at), deviceID}, anys(rules)...)...)
	if err != nil {
		return false, fmt.Errorf("auto-resolve: %w", err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if err := s.audit(ctx, tx, "system", "resolve", "alert", fmt.Sprint(id), map[string]any{
			"status": map[string]string{"to": StatusResolved}, "note": "the condition cleared"}); err != nil {
			return false, err
		}
	}
	return len(ids) > 0, nil
}

// prejudged is a verdict on a report reached outside the writer, on the
// device as read at version (and, on PostgreSQL, under the fact stamp
// stamp: see rowCache).
type prejudged struct {
	version  int64
	stamp    int64
	snapshot storedDigests
	cluster  string // the device's cluster, as read
	hostname string // the device's host name, as read
	// snapshotKeys and panel are what the device row takes from the
	// report's snapshot when it differs from the stored one ("" when it
	// does not): computed here, off the writer.
	snapshotKeys string
	panel        bool
	// facts are the device's facts as read (with the report applied),
	// verdict the rules' verdict on them.
	facts   *factsRead
	verdict verdict
	// next is the device's row as storing the report leaves it, for the
	// rowCache (nil when the writer may change the row further: the
	// device is in a cluster, or its person changes); epoch is the
	// cache's when the row was read. kept is set by the writer when it
	// stored the report with this verdict (ingestOne). cached says the
	// row came from the cache (see checkCached).
	next         *cachedRow
	epoch        uint64
	kept, cached bool
	// fold is the report's fold statement and its row when the writer
	// sent it ahead with others of its group (see foldAhead), else nil.
	fold *folded
	// moves: the report changes the device's keys, and so may move it
	// between clusters. There is no verdict (facts is nil): only the row
	// as read, from which the writer builds the report's fold statement,
	// sent with the others of its group (storeMoving). Ingest keeps it
	// apart (ingestReq.moving), so that nothing takes it for a verdict.
	moves bool
	// activity is, when moves and the report has activity hours, the
	// device's activity histogram with them added to hist, the one read:
	// the report's UPDATE sets it while the stored one is still hist
	// (activityOnRead), where it was an UPDATE more of the device's row
	// after judging, inside the cluster lock.
	hist, activity []byte
	// keys are, when moves, the device's keys as the report leaves them
	// at the version read, and keysDigest their digest, which the
	// report's UPDATE sets while the device is at that version: the keys
	// are then these (newKeys), and their digest was an UPDATE more of
	// the device's row (replaceKeys).
	keys       []fleet.DeviceKey
	keysDigest string
	// keysSnap and signins are the snapshot keys and sign-in keys the
	// keys are made of, as the device's row keeps them once the report
	// is stored (see replaceKeysPostgres).
	keysSnap, signins string
	// guard is what the device's row held at version that the report's
	// UPDATE would read back (SQLite; see guardedUpdate), nil when not
	// known.
	guard *deviceGuard
}

// deviceGuard is what a device's row held when prejudge read it: its
// open or acknowledged alerts (open_alerts), its egress address and since
// when (last_ip, egress_since).
type deviceGuard struct {
	open, since int64
	lastIP      string
}

// prejudge reads the facts of a batch's first report on the read pool, as
// the report will leave the device (see overlay), and decides on them,
// outside the writers (one on SQLite, four on PostgreSQL: there the facts
// read in the writer's transaction were one more statement a report
// inside the group) and concurrently with other batches. The writer keeps
// the verdict only if the device's version is still the one read here
// (ingestOne) and, on PostgreSQL, the fact stamp (see rowCache). It
// returns nil, leaving the writer to decide, when the report changes what
// the facts are built from in ways only the writer sees: the device's
// keys (and so its cluster), its user names (and so its person binding)
// or its peripherals (and so the shared ones), or when reading failed
// (the writer then meets the error). The batch is prepared
// (prepareBatch).
func (s *Store) prejudge(ctx context.Context, b *IngestBatch, ev Evaluator) *prejudged {
	r := &b.Reports[0]
	q := s.reader()
	// The version is read with the device row: whatever changes the facts
	// read after it changes the version too.
	var pre prejudgeRow
	var row deviceRow
	var epoch uint64
	var hit bool // the row came from the rowCache
	var cached cachedRow
	if cached, hit, epoch = s.rows.get(b.Agent.DeviceID); hit {
		row, pre = cached.row, cached.pre
	} else {
		var read prejudgeRow // scanned into: on the heap, so declared here
		var err error
		if row, err = s.readDevice(ctx, q, b.Agent.DeviceID, &read); err != nil {
			return nil
		}
		pre = read
	}
	cluster := row.clusterID
	version, snapKeys, keysDigest, signins, stored := pre.version, pre.snapKeys, pre.keysDigest, pre.signins, pre.snapshot
	panel := false
	newSnapshot := r.Snapshot != nil && r.Digest != stored.digest // storeSnapshot will store it
	if newSnapshot {
		// What it changes against the stored snapshot, which
		// storeSnapshot reuses while that is still the stored one.
		if r.changes = diffSections(stored.sections, r); r.changes.users || r.changes.serials {
			return nil
		}
		panel = panelActive(r.Snapshot)
	}
	// The keys the report leaves are the stored ones when they are made
	// of what gave the stored keys digest: the snapshot's keys (those of
	// the stored snapshot, unless one of the sections they derive from
	// changed), the egress and the sign-in keys. A cached row remembers
	// what its digest was found from (cachedRow.keys).
	keys := keysInput{snapKeys: snapKeys, egressIP: b.Egress.IP, egressClass: b.Egress.NetworkClass, signins: signins, digest: keysDigest}
	if !hit || cached.keys != keys || newSnapshot && r.changes.keys {
		var snap []fleet.Key
		if newSnapshot {
			// The keys storeSnapshot will store (as JSON, which gives
			// the same keys back: they are valid UTF-8).
			snap = fleet.SnapshotKeys(r.Snapshot, r.PeripheralSerials)
		} else {
			json.Unmarshal([]byte(snapKeys), &snap)
		}
		newKeys := fleet.Keys(snap, b.Egress.IP, b.Egress.NetworkClass, signinKeys(signins)...)
		if digest := fleet.Digest(newKeys); digest != keysDigest {
			// updateKeys will re-cluster: no verdict, only what the
			// writer's fold statement needs (see prejudged.moves). A
			// cached row is left out: it may lack a change the version
			// does not count (see checkCached).
			if hit {
				return nil
			}
			p := &prejudged{version: version, snapshot: stored, cluster: cluster, hostname: row.hostname, panel: panel, moves: true,
				keys: newKeys, keysDigest: digest, keysSnap: snapKeys, signins: signins}
			if len(r.Activity) > 0 {
				h := deviceActivity(row.hist, b.ReceivedAt, r.Activity)
				p.hist = append([]byte{}, row.hist...) // empty, not NULL, when none
				p.activity, _ = h.MarshalBinary()
			}
			if newSnapshot {
				keys, _ := json.Marshal(snap)
				p.snapshotKeys, p.keysSnap = string(keys), string(keys)
			}
			return p
		}
	}
	p := &prejudged{version: version, stamp: pre.stamp, snapshot: stored, cluster: cluster, hostname: row.hostname, panel: panel}
	if s.dialect != Postgres && pre.openAlerts >= 0 {
		p.guard = &deviceGuard{open: pre.openAlerts, since: row.since, lastIP: row.lastIP}
	}
	if newSnapshot {
		// The new snapshot's keys give the stored keys digest (checked
		// above), so they are the stored ones: the device row keeps them.
		p.snapshotKeys = snapKeys
	}
	o := &overlay{agentID: b.Agent.ID, identity: r.Identity, ip: b.IP, egress: b.egressRow,
		interval: b.ReportInterval.Microseconds(), dropped: int64(r.DroppedReports),
		skew: b.ReceivedAt.Sub(r.CreatedAt).Microseconds(), panelActive: panel}
	next := row.after(o, b.ReceivedAt)
	fr, err := s.factsFrom(ctx, q, next, b.ReceivedAt, r.Activity, nil)
	if err != nil {
		return nil
	}
	p.facts, p.verdict, p.epoch, p.cached = fr, s.decide(ctx, ev, fr.facts, r.Snapshot, b.ReceivedAt), epoch, hit
	p.verdict.encoded = encodeFindings(p.verdict.findings)
	if cluster == "" && fr.facts.Person == fr.storedPerson && (!newSnapshot || p.snapshotKeys != "") {
		// What the writer stores with this verdict (ingestOne, writeFacts
		// and storeSnapshot), and nothing else changes the row: the keys
		// stay (checked above; a device's first snapshot sets them, and
		// is left out), and judging a device in no cluster touches no
		// other device.
		n := &cachedRow{row: next, pre: pre, keys: keys}
		n.pre.version++
		n.pre.openAlerts = -1 // known once the writer judged the report (ingestOne)
		if fr.hours {
			n.row.hist = fr.deviceHist
		}
		if newSnapshot {
			n.pre.snapshot = storedDigests{digest: r.Digest, sections: r.sectionsJSON}
		}
		p.next = n
	}
	return p
}

// keepFacts stores what building prejudged facts changed (writeFacts),
// unless the person's activity histogram changed since it was read
// (another device of the person reported) or, on PostgreSQL, the fact
// stamp is no longer the one the device's row was read under (stamp; see
// rowCache): the facts are stale then, and it reports false.
func (s *Store) keepFacts(ctx context.Context, tx wtx, deviceID string, r *factsRead, stamp int64) (bool, error) {
	if s.dialect == Postgres {
		var cur int64
		if err := tx.QueryRowContext(ctx, `SELECT `+factStampSQL).Scan(&cur); err != nil {
			return false, fmt.Errorf("fact stamp: %w", err)
		}
		if cur != stamp {
			return false, nil
		}
	}
	if p := r.facts.Person; p != "" {
		var cur []byte
		err := tx.QueryRowContext(ctx, s.q(`SELECT histogram FROM person_activity WHERE email = ?`+s.forUpdate()), p).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("person activity: %w", err)
		}
		if !bytes.Equal(cur, r.personHistRead) {
			return false, nil
		}
	}
	return true, s.writeFacts(ctx, tx, deviceID, r)
}

// forUpdate locks the rows a PostgreSQL query reads until the transaction
// ends (SQLite's single writer needs no lock).
func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// clusterLockKey names the transaction lock of cluster work (PostgreSQL).
const clusterLockKey = 0x626f6e6166696403

// lockClustersSQL takes the cluster lock (lockClusters).
const lockClustersSQL = `SELECT pg_advisory_xact_lock($1)`

// lockClusters makes a PostgreSQL transaction that may touch the rows of
// several devices (re-clustering, re-evaluating a cluster's members) wait
// for any other doing the same, before it locks any row: such
// transactions then lock rows one after another instead of in opposite
// orders, which deadlocked. Transactions that touch only their own
// device's rows do not take it. SQLite has a single writer.
func (s *Store) lockClusters(ctx context.Context, tx *sql.Tx) error {
	if s.dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, lockClustersSQL, int64(clusterLockKey)); err != nil {
		return fmt.Errorf("cluster lock: %w", err)
	}
	return nil
}

// withOpen is the verdict on a device that had open alerts open or
// acknowledged when the writer locked its row (see record).
func (v verdict) withOpen(open int64) verdict {
	v.counted, v.open = true, open
	return v
}
