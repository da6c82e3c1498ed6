package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/jackc/pgx/v5/pgconn"
)

// Evaluator runs detection rules; *detect.Engine implements it.
type Evaluator interface {
	Evaluate(ctx context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error)
	// AutoResolve lists the rules of scope whose alerts resolve when the
	// condition clears.
	AutoResolve(scope detect.Scope) []string
}

// IngestReport is one validated report, ready to store.
type IngestReport struct {
	ReportID       string
	Sequence       uint64
	CreatedAt      time.Time
	DroppedReports uint64
	Identity       DeviceIdentity
	// Snapshot is nil for a heartbeat.
	Snapshot *agentv1.HostSnapshot
	// Data is the snapshot's deterministic encoding, Digest its hex SHA-256
	// (without scan times) and Sections the digest of each signal family.
	Data     []byte
	Digest   string
	Sections map[string]string
	// PeripheralSerials are the snapshot's peripherals worth correlating
	// across the fleet.
	PeripheralSerials []policies.PeripheralSerial
	// Activity are the reported activity hours (snapshot or heartbeat).
	Activity []activity.Hour

	// What storing the snapshot needs, worked out by Ingest before the
	// writer takes the report (see prepareSnapshot).
	users        []string
	sorted       sectionList // Sections, sorted by name
	sectionsJSON string
	changes      *sectionChanges
}

// IngestBatch is one Report call of one agent.
type IngestBatch struct {
	Agent Agent
	IP    string
	// Egress is what the collector knows of IP (its Since is ignored).
	Egress     detect.Egress
	ReceivedAt time.Time
	// ReportInterval is how often the agent is told to report.
	ReportInterval time.Duration
	Reports        []IngestReport
	// Quota bounds what the agent stores per day: a batch that would pass
	// it is refused whole with ErrOverQuota. Zero: unbounded.
	Quota Quota

	// egressJSON is Egress as the device row keeps it and egressRow the
	// same decoded, as the row's facts are built from it (prepareBatch).
	egressJSON string
	egressRow  detect.Egress
}

// Ingest stores a batch of reports and raises alerts for the findings of
// the rules. A report already stored (same agent and report id) is skipped.
// It returns the ids of all reports of the batch now durably stored; on
// error nothing of the batch is stored.
//
// Concurrent calls are committed together (group commit): a writer takes
// every batch waiting, stores each under its own savepoint, so that a failing
// batch is rolled back alone, and commits once. Each call returns only after
// that commit, so an acknowledgement still means durable, while one fsync
// serves many agents.
func (s *Store) Ingest(ctx context.Context, b IngestBatch, ev Evaluator) ([]string, error) {
	req := &ingestReq{ctx: ctx, batch: &b, ev: ev, done: make(chan ingestResult, 1)}
	s.hold(b.Agent.DeviceID, 1)
	defer s.hold(b.Agent.DeviceID, -1)
	prepareBatch(&b)
	if len(b.Reports) > 0 {
		select {
		case s.judging <- struct{}{}:
			req.prejudged(s.prejudge(ctx, &b, ev))
			<-s.judging
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	q := s.ingestQ
	if req.clusters() {
		q = s.clusterQ
	}
	select {
	case q <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stop:
		return nil, errClosed
	}
	select {
	case r := <-req.done:
		return r.acked, r.err
	case <-ctx.Done():
		// The group may still commit it; a retry is deduplicated.
		return nil, ctx.Err()
	case <-s.stop:
		return nil, errClosed
	}
}

var errClosed = errors.New("store closed")

// hold counts a device's reports waiting to be stored up (+1) or down (-1).
func (s *Store) hold(deviceID string, n int) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = map[string]int{}
	}
	if s.pending[deviceID] += n; s.pending[deviceID] <= 0 {
		delete(s.pending, deviceID)
	}
}

// waiting reports whether a report of the device is waiting to be stored.
func (s *Store) waiting(deviceID string) bool {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return s.pending[deviceID] > 0
}

// maxGroup bounds how many batches one transaction takes.
const maxGroup = 64

// maxJudging bounds how many reports are judged outside the writer at
// once (prejudge): enough to keep the cores busy, few enough that the
// reads do not crowd the writers out of the database's connections.
const maxJudging = 4

type ingestReq struct {
	ctx   context.Context
	batch *IngestBatch
	ev    Evaluator
	// pre is the verdict on the batch's first report reached before the
	// writer took it, nil when the writer must decide.
	pre *prejudged
	// moving is, when pre is nil, the device's row as read before the
	// writer took a report that moves it (prejudged.moves), nil when not
	// read.
	moving *prejudged
	done   chan ingestResult
}

// prejudged keeps what prejudge returned: a verdict (pre) or the row of
// a device the report moves (moving).
func (r *ingestReq) prejudged(p *prejudged) {
	if p != nil && p.moves {
		r.moving = p
		return
	}
	r.pre = p
}

// clusters says whether storing the batch may well touch other devices'
// rows: the report may move the device between clusters (prejudge could
// not rule it out). A device already in a cluster touches its members
// only when its alerts change; judge takes the lock then.
func (r *ingestReq) clusters() bool {
	return r.pre == nil
}

type ingestResult struct {
	acked []string
	err   error
}

// startWriters starts n group-commit writers (one on SQLite, which has a
// single writer connection; several on PostgreSQL). With cluster, one more
// writer takes the reports that may move their devices between clusters
// (clusters), on a queue of their own (PostgreSQL): their transactions
// hold the cluster lock, so several writers taking them queued on it one
// behind another, each with a group of a few, while one writer, busy with
// a group, lets the next gather every such report waiting, whose cluster
// work it does once for all (storeMoving). The other reports keep the
// other writers, which no longer wait for the lock behind them. Without
// cluster (SQLite), they share the one queue.
func (s *Store) startWriters(n int, cluster bool) {
	s.judging = make(chan struct{}, maxJudging)
	s.ingestQ = make(chan *ingestReq)
	s.clusterQ = s.ingestQ
	s.stop = make(chan struct{})
	for range n {
		s.writers.Go(func() { s.writer(s.ingestQ) })
	}
	if cluster {
		s.clusterQ = make(chan *ingestReq)
		s.writers.Go(func() { s.writer(s.clusterQ) })
	}
}

func (s *Store) writer(q <-chan *ingestReq) {
	for {
		group, ok := nextGroup(q, s.stop)
		if !ok {
			return
		}
		s.commitGroup(group)
	}
}

// nextGroup waits for a request on q, then takes those already waiting
// behind it, up to maxGroup in all: what one transaction commits. It
// returns false when stop is closed.
func nextGroup[T any](q <-chan T, stop <-chan struct{}) ([]T, bool) {
	var group []T
	select {
	case r := <-q:
		group = append(group, r)
	case <-stop:
		return nil, false
	}
	for len(group) < maxGroup {
		select {
		case r := <-q:
			group = append(group, r)
		default:
			return group, true
		}
	}
	return group, true
}

func (s *Store) commitGroup(group []*ingestReq) {
	// The transaction is shared, so it must not die with one caller's context.
	ctx := context.Background()
	var results []ingestResult
	var err error
	savepoints := false
	for attempt := 0; ; attempt++ {
		results, err = s.tryGroup(ctx, group, savepoints)
		if errors.Is(err, errBatchFailed) {
			// Run the group again with each batch under a savepoint, so
			// that the failing one is rolled back alone.
			savepoints = true
			results, err = s.tryGroup(ctx, group, true)
		}
		if !retryable(err) || attempt == maxGroupRetries {
			break
		}
		// Another writer won a deadlock over rows both touched (devices
		// of one cluster): start again; stored reports are skipped.
		time.Sleep(time.Duration(1+mathrand.IntN(10*(attempt+1))) * time.Millisecond)
	}
	for i, r := range group {
		if err != nil {
			results[i] = ingestResult{err: err}
		}
		r.done <- results[i]
	}
}

// maxGroupRetries bounds how often a group is tried again after a
// deadlock or serialization failure (PostgreSQL).
const maxGroupRetries = 5

// retryable reports whether err is a PostgreSQL deadlock or serialization
// failure, after which the whole transaction can be run again.
func retryable(err error) bool {
	if err == nil {
		return false // before pe, which escapes: no allocation per batch
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// errBatchFailed: a batch of a group tried without savepoints failed, and
// with it the group's transaction (or a fold sent ahead missed its guard
// before others sent with it were stored; see tryGroup). The group runs
// again with a savepoint per batch, which sends nothing ahead.
var errBatchFailed = errors.New("a batch of the group failed")

// tryGroup stores a group in one transaction. With savepoints, each batch
// runs under its own, so that a failing batch is rolled back alone;
// without, a failing batch fails the transaction with errBatchFailed, and
// the caller tries the group again with savepoints. Batches rarely fail,
// and a savepoint costs a batch two statements and a copy of each page it
// changes. A group of one batch needs none: its failure rolls the
// transaction back. A batch that fails for a retryable reason fails the
// whole transaction, which the caller runs again. On PostgreSQL, without
// savepoints, a group that may be stored in one round trip (inOneTrip) is
// tried so first (storeInOneTrip); otherwise, or when that was rolled
// back, the fold statements of the batches that can go ahead are sent in
// one round trip first (foldsAhead).
func (s *Store) tryGroup(ctx context.Context, group []*ingestReq, savepoints bool) ([]ingestResult, error) {
	results := make([]ingestResult, len(group))
	for _, r := range group {
		if r.pre != nil {
			r.pre.fold, r.pre.kept = nil, false // of an attempt rolled back
		}
		if r.moving != nil {
			r.moving.fold = nil
		}
	}
	if s.dialect == Postgres && !savepoints && inOneTrip(group) {
		if results, err := s.storeInOneTrip(ctx, group); !errors.Is(err, errNotOneTrip) {
			return results, err
		}
	}
	// On PostgreSQL the fold statements of the reports that may go ahead
	// are sent together, on the transaction's connection (see foldAhead).
	var ahead []int
	db := beginner(s.w)
	if s.dialect == Postgres && !savepoints {
		ahead = foldsAhead(group)
	}
	var conn *sql.Conn
	// The cluster work of a report that may move its device sends
	// statements together too (applyPipelined).
	clusters := slices.ContainsFunc(group, (*ingestReq).clusters)
	if len(ahead) > 0 || clusters && s.dialect == Postgres {
		var err error
		if conn, err = s.w.Conn(ctx); err != nil {
			return results, fmt.Errorf("begin: %w", err)
		}
		defer conn.Close()
		db = conn
	}
	err := s.txOn(ctx, db, func(sqltx *sql.Tx) error {
		tx := wtx{Tx: sqltx, s: s, conn: conn}
		if err := s.checkCached(ctx, tx, group); err != nil {
			return err
		}
		var together []int
		if !savepoints {
			together = movingTogether(group)
		}
		// When the whole group is stored together on a connection that
		// sends statements together, the cluster lock is taken by the
		// group's first round trip, before its fold statements lock any
		// row (foldMoving): a round trip less inside the lock.
		lockFirst := clusters && tx.conn != nil && len(together) == len(group)
		if clusters {
			if !lockFirst {
				if err := s.lockClusters(ctx, sqltx); err != nil {
					return err
				}
			}
			tx.clusters = true
		}
		if len(group) == 1 && len(together) == 0 {
			r := group[0]
			if err := r.ctx.Err(); err != nil {
				return err
			}
			acked, err := s.ingestBatch(ctx, tx, r)
			results[0].acked = acked
			return err
		}
		if len(ahead) > 0 {
			if err := s.foldAhead(ctx, tx, group, ahead); err != nil {
				if retryable(err) {
					return err
				}
				return errBatchFailed
			}
		}
		// The batches sent ahead are stored first: the others may touch
		// their devices, which then had to be read again. The reports
		// whose cluster work is done together come last.
		order := slices.Clone(ahead)
		for i := range group {
			if !slices.Contains(ahead, i) && !slices.Contains(together, i) {
				order = append(order, i)
			}
		}
		for k, i := range order {
			r := group[i]
			sent := k < len(ahead)
			// A batch sent ahead is written: it is stored to the end,
			// or a retry would find it stored and judge nothing.
			if err := r.ctx.Err(); err != nil && !sent {
				results[i].err = err
				continue
			}
			if !savepoints {
				acked, err := s.ingestBatch(ctx, tx, r)
				if retryable(err) {
					return err
				}
				if err != nil {
					return errBatchFailed
				}
				results[i].acked = acked
				if sent && r.pre.fold.row.inserted != 0 && !r.pre.kept && k+1 < len(ahead) {
					// Its guard missed, and judging it again may have
					// changed the devices of the folds sent after it
					// (moved them between clusters, raised their
					// alerts): the group runs again, one batch after
					// another (rare: another writer changed the device
					// since prejudge read it).
					return errBatchFailed
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT ingest"); err != nil {
				return err
			}
			acked, err := s.ingestBatch(ctx, tx, r)
			if retryable(err) {
				return err
			}
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT ingest"); rerr != nil {
					return rerr
				}
				results[i].err = err
			}
			results[i].acked = acked
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT ingest"); err != nil {
				return err
			}
		}
		if len(together) > 0 {
			if err := s.storeMoving(ctx, tx, group, together, results, lockFirst); err != nil {
				if retryable(err) {
					return err
				}
				return errBatchFailed
			}
		}
		return nil
	}, func(ok bool) { s.storedGroup(group, results, ok) })
	return results, err
}

// movingTogether lists the places of a group's batches whose cluster work
// storeMoving does together: those that may move their device (clusters),
// of one report each, whose device has no other batch in the group. The
// others are stored one after another, as ever.
func movingTogether(group []*ingestReq) []int {
	devices := make(map[string]int, len(group))
	for _, r := range group {
		devices[r.batch.Agent.DeviceID]++
	}
	var out []int
	for i, r := range group {
		if r.clusters() && len(r.batch.Reports) == 1 && devices[r.batch.Agent.DeviceID] == 1 {
			out = append(out, i)
		}
	}
	return out
}

// storeMoving stores reports that may move their devices (see
// movingTogether) and does their cluster work once for all of them, in
// phases: each report's writes (sent together, foldMoving) and keys; one
// re-clustering from all their seeds; each reporter judged on the clusters
// as they now are (and as the reporters judged before it left their
// alerts), and judged again when a reporter judged after it changed what
// it saw; then the members of the changed clusters, reporters excepted,
// judged once each, and every changed cluster's row refreshed once. One
// after another, each report re-clustered from its own seeds, read the
// clusters it changed, judged their members and refreshed their rows: a
// group of n moving reports into one farm did all of that n times, each a
// round trip inside the cluster lock on PostgreSQL. The outcome is that of
// the reports stored one after another (the moves of a group are written
// in device order, and devices that form a cluster together found it
// together, in one "formed" entry). The group's transaction holds the
// cluster lock (tryGroup), or takes it first (lock; see foldMoving). An
// error fails the group, which tryGroup then runs again one batch after
// another.
func (s *Store) storeMoving(ctx context.Context, tx wtx, group []*ingestReq, idx []int, results []ingestResult, lock bool) error {
	var reporters []reporter
	var keyed []keysOf
	current := map[string]string{}
	var now time.Time
	var live []int
	for _, i := range idx {
		if err := group[i].ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		live = append(live, i)
	}
	if err := s.foldMoving(ctx, tx, group, live, lock); err != nil {
		return err
	}
	for _, i := range live {
		req := group[i]
		b := req.batch
		r := &b.Reports[0]
		w, kept, err := s.storeReport(ctx, tx, b, r, req.moving)
		if err != nil {
			return fmt.Errorf("report %s: %w", r.ReportID, err)
		}
		results[i].acked = []string{r.ReportID}
		if !w.stored {
			continue // by an earlier attempt
		}
		k := keysOf{id: b.Agent.DeviceID, egress: b.Egress}
		if m := req.moving; m != nil {
			k.keys, k.digest, k.snapKeys, k.signins = m.keys, m.keysDigest, m.keysSnap, m.signins
			// The device was still at the version read: its UPDATE set
			// the keys' digest (setsKeys).
			k.set = kept != nil
		}
		keyed = append(keyed, k)
		// See ingestOne: what record compares with.
		reporters = append(reporters, reporter{req, w.openAlerts})
		if b.ReceivedAt.After(now) {
			now = b.ReceivedAt
		}
	}
	seeds, err := s.newKeys(ctx, tx, keyed, current)
	if err != nil {
		return err
	}
	views := clusterViews{}
	var moved []string
	if len(seeds) > 0 {
		if moved, err = s.recluster(ctx, tx, seeds, current, now, views); err != nil {
			return err
		}
	}
	var owns, except []string
	var ev Evaluator
	// What each reporter saw of its cluster (its facts digest, with the
	// reporter's own alerts), to tell whether reporters judged after it
	// changed it.
	type sight struct{ cluster, digest string }
	saw := map[string]sight{}
	rows, err := s.reportersRows(ctx, tx, reporters, views)
	if err != nil {
		return err
	}
	// The reporters' activity histograms, on PostgreSQL sent together
	// once they are judged (one round trip, not one each).
	var activity []sent
	for _, rp := range reporters {
		b, r := rp.req.batch, &rp.req.batch.Reports[0]
		id := b.Agent.DeviceID
		row, ok := rows[id]
		if !ok {
			return fmt.Errorf("report %s: device %s gone", r.ReportID, id)
		}
		fr, err := s.factsFrom(ctx, tx, row, b.ReceivedAt, r.Activity, views)
		if err != nil {
			return fmt.Errorf("report %s: %w", r.ReportID, err)
		}
		if fr.hours && bytes.Equal(fr.deviceHist, row.hist) {
			// The report's UPDATE stored it (prejudged.activity), and
			// adding its hours again changed nothing; or they were in
			// the histogram already.
			fr.deviceStored = true
		}
		if fr.hours && !fr.deviceStored && tx.conn != nil {
			// Nothing reads the device's histogram before the reporters
			// are judged: sent with the others' after.
			activity = append(activity, sent{query: s.q(deviceActivitySQL), args: []any{fr.deviceHist, id}})
			fr.deviceStored = true
		}
		if err := s.writeFacts(ctx, tx, id, fr); err != nil {
			return fmt.Errorf("report %s: %w", r.ReportID, err)
		}
		facts := fr.facts
		v := s.decide(ctx, rp.req.ev, facts, r.Snapshot, b.ReceivedAt)
		changed, err := s.recordIn(ctx, tx, facts, v.withOpen(rp.open), b.ReceivedAt, views)
		if err != nil {
			return fmt.Errorf("report %s: %w", r.ReportID, err)
		}
		c := facts.Cluster.ID
		// As judge: a reporter whose alerts changed changes what its
		// cluster's members see, unless their cluster changed anyway.
		if changed && c != "" && !slices.Contains(moved, c) && !slices.Contains(owns, c) {
			owns = append(owns, c)
		}
		if c != "" {
			saw[id] = sight{c, views[c].view().factsDigest()}
		}
		except = append(except, id)
		ev = rp.req.ev // the last reporter's, as its judge would have used
	}
	if len(activity) > 0 {
		if err := tx.pipeline(ctx, activity); err != nil {
			return fmt.Errorf("activity: %w", err)
		}
	}
	// A reporter whose cluster the reporters judged after it changed (one
	// of them now flagged, say) is judged again, as the last report's
	// judging judged the earlier reporters, its members then, one after
	// another: on its row as judging left it.
	for _, rp := range reporters {
		id := rp.req.batch.Agent.DeviceID
		if sg, ok := saw[id]; !ok || views[sg.cluster].view().factsDigest() == sg.digest {
			continue
		}
		row, err := s.readDevice(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		if err := s.rejudge(ctx, tx, row, now, ev, views); err != nil {
			return err
		}
	}
	if len(moved) == 0 && len(owns) == 0 {
		return nil
	}
	return s.reevaluateClusters(ctx, tx, moved, owns, except, now, ev, views)
}

// foldMoving sends the fold statements of the reports at idx that were
// read before the writer took them (ingestReq.moving) in one round trip on
// PostgreSQL (see foldAhead), where each report's writes were four round
// trips inside the cluster lock; storeReport finds their rows there. Each
// is guarded as a prejudged report's is: what changed since the read is
// written after it. With lock, the cluster lock (lockClusters) goes first
// in the same round trip, before any fold locks a row, or alone when
// there is no fold to send.
func (s *Store) foldMoving(ctx context.Context, tx wtx, group []*ingestReq, idx []int, lock bool) error {
	if tx.conn == nil {
		return nil
	}
	var stmts []sent
	if lock {
		stmts = append(stmts, sent{query: lockClustersSQL, args: []any{int64(clusterLockKey)}})
	}
	var folds []*prejudged
	for _, i := range idx {
		r := group[i]
		if r.moving == nil {
			continue
		}
		f, err := s.foldStatement(ctx, tx, r.batch, &r.batch.Reports[0], r.moving, false)
		if err != nil {
			return err
		}
		r.moving.fold = f
		stmts = append(stmts, sent{query: f.query, args: f.args, read: oneRow(f.row.dest()...)})
		folds = append(folds, r.moving)
	}
	if err := tx.send(ctx, stmts); err != nil {
		for _, p := range folds {
			p.fold = nil
		}
		return fmt.Errorf("store reports: %w", err)
	}
	return nil
}

// reporter is a report storeMoving stored, with its device's open or
// acknowledged alerts when the report's write locked its row.
type reporter struct {
	req  *ingestReq
	open int64
}

// reportersRows gives the rows of the reporters' devices (see readDevice):
// from views when re-clustering read them with the clusters (see
// applyPipelined), the others in one statement, by device id: one after
// another they were a round trip each inside the cluster lock. Judging a
// reporter writes nothing another's row is read from (see
// reevaluateClusters).
func (s *Store) reportersRows(ctx context.Context, tx wtx, reporters []reporter, views clusterViews) (map[string]deviceRow, error) {
	out := make(map[string]deviceRow, len(reporters))
	var ids []string
	for _, rp := range reporters {
		id := rp.req.batch.Agent.DeviceID
		if d, ok := views.row(id); ok {
			out[id] = d
		} else {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	query, args := s.rowsStatement(ids)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("load device facts: %w", err)
	}
	defer rows.Close()
	read, err := scanMembers(rows)
	if err != nil {
		return nil, err
	}
	for _, d := range read {
		out[d.id] = d
	}
	return out, nil
}

// ingestBatch stores one Report call inside the group's transaction.
func (s *Store) ingestBatch(ctx context.Context, tx wtx, req *ingestReq) ([]string, error) {
	b := req.batch
	acked := make([]string, 0, len(b.Reports))
	for i := range b.Reports {
		pre := req.pre
		if i > 0 {
			pre = nil // read before the first report changed the device
		}
		if err := s.ingestOne(ctx, tx, b, &b.Reports[i], req.ev, pre); err != nil {
			return nil, fmt.Errorf("report %s: %w", b.Reports[i].ReportID, err)
		}
		acked = append(acked, b.Reports[i].ReportID)
	}
	return acked, nil
}

// ingestOne stores one report and judges the device: with the verdict
// reached before (pre) when the device's version shows that nothing the
// verdict was built on changed since, else on facts read here.
func (s *Store) ingestOne(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, ev Evaluator, pre *prejudged) error {
	w, pre, err := s.storeReport(ctx, tx, b, r, pre)
	if err != nil || !w.stored {
		return err // !stored: stored by an earlier attempt
	}
	// The device's open or acknowledged alerts when its row was locked
	// above: until record resolves, only the findings' rules (never
	// cleared ones) open alerts on it, so when all of these are the
	// findings' rules there is nothing to resolve (see record).
	// (open_alerts is kept by triggers on alerts, migration 00039.)
	open := w.openAlerts
	var moved []string
	// The clusters read below, kept for judging the device and their
	// members (see judge).
	views := clusterViews{}
	if pre == nil {
		if moved, err = s.updateKeys(ctx, tx, b.Agent.DeviceID, b.Egress, b.ReceivedAt, views); err != nil {
			return err
		}
	} else if pre.facts != nil {
		ok := w.factsKept
		if !w.factsTried {
			if ok, err = s.keepFacts(ctx, tx, b.Agent.DeviceID, pre.facts, pre.stamp); err != nil {
				return err
			}
		}
		if ok {
			pre.kept = true
			changed, err := s.judgeChanged(ctx, tx, pre.facts.facts, pre.verdict.withOpen(open), nil, b.ReceivedAt, ev, nil)
			if pre.next != nil {
				// When no alert of the device was raised, re-opened or
				// resolved, its open_alerts is still the one the UPDATE
				// found; else it is not known here. (The guard that
				// uses it checks it: a wrong one only misses.)
				pre.next.pre.openAlerts = -1
				if !changed {
					pre.next.pre.openAlerts = open
				}
			}
			return err
		}
	}
	facts, err := s.deviceFacts(ctx, tx, b.Agent.DeviceID, b.ReceivedAt, r.Activity, views)
	if err != nil {
		return err
	}
	v := s.decide(ctx, ev, facts, r.Snapshot, b.ReceivedAt)
	return s.judge(ctx, tx, facts, v.withOpen(open), moved, b.ReceivedAt, ev, views)
}

// storeReport writes a report (the report row, its agent, its device row,
// the egress history and the snapshot), without judging it. It returns
// the prejudged verdict still valid (nil when the write shows the device
// changed since it was read).
func (s *Store) storeReport(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged) (reportWrite, *prejudged, error) {
	write := s.writeReport
	if s.dialect == Postgres && pre != nil {
		write = s.foldReport
	}
	w, err := write(ctx, tx, b, r, pre)
	if err != nil || !w.stored {
		return w, pre, err
	}
	if err := s.recordEgress(ctx, tx, b.Agent.DeviceID, b.IP, b.Egress, b.ReceivedAt, w.egressSince); err != nil {
		return w, pre, err
	}
	// The verdict reached before holds when only this write changed the
	// device since it was read (RETURNING reads the row under its lock).
	// The snapshot and keys stored are then the ones prejudge read, and the
	// keys stay the same (prejudge checked).
	if pre != nil && w.version != pre.version+1 {
		pre = nil
	}
	if pre != nil && pre.facts != nil {
		pre.facts.deviceStored = pre.facts.hours
	}
	if r.Snapshot != nil && !w.snapshotStored {
		var stored *storedDigests
		if w.version == w.sd.version+1 {
			stored = &w.sd.stored // read at the version the UPDATE found
		}
		if err := s.storeSnapshot(ctx, tx, b, r, stored, stored != nil && w.sd.expect >= 0); err != nil {
			return w, pre, err
		}
	}
	return w, pre, nil
}

// reportWrite is what storing a report and updating its device returned.
type reportWrite struct {
	// stored: the report is new (else an earlier attempt stored it, and
	// nothing was written).
	stored bool
	sd     snapshotWrite
	// The device row as the UPDATE left it.
	version, openAlerts, egressSince int64
	// snapshotStored: the snapshot's history entry and latest row were
	// written too; factsTried: what keepFacts does was done too, and
	// factsKept is its answer (see foldReport).
	snapshotStored, factsTried, factsKept bool
}

// writeReport stores a report, charges its agent's quota and updates its
// device, one statement after another.
func (s *Store) writeReport(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged) (reportWrite, error) {
	var w reportWrite
	now := micros(b.ReceivedAt)
	n, err := s.insertReport(ctx, tx, b, r, now)
	if n == 0 || err != nil && !errors.Is(err, ErrOverQuota) {
		return w, err
	}
	w.stored = true
	if err != nil {
		return w, err
	}
	// A snapshot whose content differs from the stored one also sets the
	// device's snapshot columns in the same UPDATE, while the device's
	// snapshot is still the one whose digests were read (sd.stored);
	// otherwise storeSnapshot sets them itself.
	if w.sd, err = s.snapshotDevice(ctx, tx, b.Agent.DeviceID, r, pre); err != nil {
		return w, err
	}
	if ok, err := s.guardedUpdate(ctx, tx, b, r, pre, &w); ok || err != nil {
		return w, err
	}
	// The host name is set only when it changed: an UPDATE that sets a
	// column rewrites the index entries on it, same value or not. The
	// statement that leaves it alone applies only where it is unchanged;
	// else (no row) the one that sets it runs.
	err = s.updateDevice(ctx, tx, b, r, pre, &w, false)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.updateDevice(ctx, tx, b, r, pre, &w, true)
	}
	return w, err
}

// updateDevice runs a report's UPDATE of its device row (see
// deviceUpdate), into w.
func (s *Store) updateDevice(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged, w *reportWrite, hostname bool) error {
	query := deviceUpdateSQL[boolInt(hostname)][boolInt(w.sd.expect >= 0)][setsActivity(pre)][boolInt(setsKeys(pre))]
	err := tx.QueryRowContext(ctx, s.q(query), deviceUpdateArgs(b, r, w.sd, pre, hostname)...).Scan(&w.version, &w.openAlerts, &w.egressSince)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("update device: %w", err)
	}
	return err
}

// guardedUpdate runs a prejudged report's UPDATE of its device row
// (SQLite) where the row still holds what prejudge read (pre.guard) and
// the host name is unchanged, without RETURNING: what it would read back
// (the version, open_alerts, egress_since) is then known, and SQLite
// spares the temporary table RETURNING costs it, the writer a result set.
// It reports false, having changed nothing, when there is no guard or the
// row no longer matches it; updateDevice then runs.
func (s *Store) guardedUpdate(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged, w *reportWrite) (bool, error) {
	if pre == nil || pre.guard == nil || s.dialect == Postgres || pre.hostname != r.Identity.Hostname {
		return false, nil
	}
	g := pre.guard
	query := deviceGuardedSQL[boolInt(w.sd.expect >= 0)][setsActivity(pre)][boolInt(setsKeys(pre))]
	args := append(deviceUpdateArgs(b, r, w.sd, pre, false), pre.version, g.open, g.lastIP, g.since)
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("update device: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	s.guarded.Add(1)
	w.version, w.openAlerts, w.egressSince = pre.version+1, g.open, g.since
	if g.lastIP != b.IP {
		w.egressSince = micros(b.ReceivedAt)
	}
	return true, nil
}

// deviceGuardedSQL are guardedUpdate's statements, indexed as
// deviceUpdateSQL's that leave the host name alone.
var deviceGuardedSQL = func() (t [2][3][2]string) {
	for _, snapshot := range []bool{false, true} {
		for _, activity := range []activitySet{activityNone, activityAtVersion, activityOnRead} {
			for _, keys := range []bool{false, true} {
				t[boolInt(snapshot)][activity][boolInt(keys)] = deviceUpdateText(false, snapshot, activity, keys) +
					` AND version = ? AND open_alerts = ? AND last_ip = ? AND egress_since = ?`
			}
		}
	}
	return t
}()

// deviceUpdateSQL are updateDevice's statements, indexed by whether they
// set the host name and the snapshot columns (boolInt), how they set the
// activity histogram (activitySet) and whether they set the keys digest
// (setsKeys), each built once: the single writer would otherwise build
// about a kilobyte of text for every report, and the statement cache hash
// a new copy of it.
var deviceUpdateSQL = func() (t [2][2][3][2]string) {
	for _, hostname := range []bool{false, true} {
		for _, snapshot := range []bool{false, true} {
			for _, activity := range []activitySet{activityNone, activityAtVersion, activityOnRead} {
				for _, keys := range []bool{false, true} {
					t[boolInt(hostname)][boolInt(snapshot)][activity][boolInt(keys)] = deviceUpdateText(hostname, snapshot, activity, keys) + deviceReturning
				}
			}
		}
	}
	return t
}()

// setsKeys says whether a report's UPDATE of its device sets the keys
// digest prejudge worked out (prejudged.keysDigest).
func setsKeys(pre *prejudged) bool {
	return pre != nil && pre.moves
}

// activitySet is whether and on what condition a report's UPDATE of its
// device sets the activity histogram prejudge worked out (setsActivity).
type activitySet int

const (
	activityNone activitySet = iota
	// activityAtVersion: while the device is still at the version read,
	// as a verdict's facts (the verdict holds then; else writeFacts
	// stores the one worked out in the writer).
	activityAtVersion
	// activityOnRead: while the stored histogram is still the one read,
	// as a report that moves its device (prejudged.activity): the
	// histogram depends on nothing else, and the device's version moves
	// whenever a report moves another device into or out of its cluster.
	activityOnRead
)

// setsActivity says whether and how a report's UPDATE of its device sets
// the activity histogram prejudge worked out (see deviceUpdate).
func setsActivity(pre *prejudged) activitySet {
	switch {
	case pre == nil:
		return activityNone
	case pre.facts != nil && pre.facts.hours:
		return activityAtVersion
	case pre.moves && pre.activity != nil:
		return activityOnRead
	}
	return activityNone
}

// deviceUpdate is a report's UPDATE of its device row, where cond (an SQL
// condition, "" for none) holds, with its arguments; hostname: the
// variant that sets the host name (else it applies only where the host
// name is unchanged). A new egress address moves the current egress to
// the previous one, with the last time a report came from it (SET reads
// the old row), and sets egress_since to now, which tells recordEgress.
// readFacts' overlay does the same to the row as read. The activity
// histogram prejudge worked out (pre) is set too (see activitySet), and
// the keys digest (see setsKeys) while the device is at the version read.
func deviceUpdate(b *IngestBatch, r *IngestReport, sd snapshotWrite, pre *prejudged, hostname bool, cond string) (string, []any) {
	query := deviceUpdateText(hostname, sd.expect >= 0, setsActivity(pre), setsKeys(pre))
	if cond != "" {
		query += " AND " + cond
	}
	return query, deviceUpdateArgs(b, r, sd, pre, hostname)
}

// deviceUpdateText is the text of deviceUpdate's statement without a
// condition: snapshot when the report's snapshot sets the device's
// snapshot columns (sd.expect >= 0), activity how it sets the activity
// histogram (setsActivity), keys when it sets the keys digest (setsKeys).
func deviceUpdateText(hostname, snapshot bool, activity activitySet, keys bool) string {
	hostSet, hostWhere := "", " AND hostname = ?"
	if hostname {
		hostSet, hostWhere = "hostname = ?, ", ""
	}
	snapshotSet := ""
	if snapshot {
		snapshotSet = `snapshot_digest = CASE WHEN snapshot_digest = ? THEN ? ELSE snapshot_digest END,
		snapshot_at = CASE WHEN snapshot_digest = ? THEN ? ELSE snapshot_at END,
		snapshot_keys = CASE WHEN snapshot_digest = ? THEN ? ELSE snapshot_keys END,
		internal_display_active_at = CASE WHEN snapshot_digest = ? AND ? THEN ? ELSE internal_display_active_at END,`
	}
	// What prejudge worked out: the activity histogram, the keys digest.
	prejudgedSet := ""
	switch activity {
	case activityAtVersion:
		prejudgedSet = `activity = CASE WHEN version = ? THEN ? ELSE activity END, `
	case activityOnRead:
		prejudgedSet = `activity = CASE WHEN activity = ? THEN ? ELSE activity END, `
	}
	if keys {
		prejudgedSet += `keys_digest = CASE WHEN version = ? THEN ? ELSE keys_digest END, `
	}
	return `UPDATE devices SET ` + hostSet + `os_family = ?, os_name = ?, os_version = ?,
		hardware_vendor = ?, hardware_model = ?, agent_id = ?, agent_version = ?, last_seen = ?, last_ip = ?,
		report_interval = ?, dropped_reports = ?, clock_skew = ?,
		prev_egress = CASE WHEN last_ip <> ? AND last_ip <> '' THEN egress ELSE prev_egress END,
		prev_egress_at = CASE WHEN last_ip <> ? AND last_ip <> '' THEN last_seen ELSE prev_egress_at END,
		egress_since = CASE WHEN last_ip <> ? THEN ? ELSE egress_since END,
		egress = ?, ` + snapshotSet + prejudgedSet + ` version = version + 1
		WHERE id = ?` + hostWhere
}

// deviceUpdateArgs are the arguments of deviceUpdateText's statement, in
// one allocation. A value passed several times is boxed once: each
// conversion to any of a string or a number allocates.
func deviceUpdateArgs(b *IngestBatch, r *IngestReport, sd snapshotWrite, pre *prejudged, hostname bool) []any {
	id, now, ip := r.Identity, any(micros(b.ReceivedAt)), any(b.IP)
	skew := b.ReceivedAt.Sub(r.CreatedAt)
	args := make([]any, 0, 30)
	if hostname {
		args = append(args, id.Hostname)
	}
	args = append(args, id.OSFamily, id.OSName, id.OSVersion, id.HardwareVendor, id.HardwareModel, b.Agent.ID, id.AgentVersion,
		now, ip, b.ReportInterval.Microseconds(), int64(r.DroppedReports), skew.Microseconds(),
		ip, ip, ip, now, b.egressJSON)
	if sd.expect >= 0 {
		read := any(sd.stored.digest)
		args = append(args, read, r.Digest, read, now, read, sd.keys, read, sd.panel, now)
	}
	switch setsActivity(pre) {
	case activityAtVersion:
		args = append(args, pre.version, pre.facts.deviceHist)
	case activityOnRead:
		args = append(args, pre.hist, pre.activity)
	}
	if setsKeys(pre) {
		args = append(args, pre.version, pre.keysDigest)
	}
	args = append(args, b.Agent.DeviceID)
	if !hostname {
		args = append(args, id.Hostname)
	}
	return args
}

// deviceReturning is what ingestOne reads back from the device's UPDATE.
const deviceReturning = ` RETURNING version, open_alerts, egress_since`

// insertReportSQL stores a report, unless an earlier attempt stored it.
const insertReportSQL = `INSERT INTO reports (agent_id, report_id, device_id, sequence, kind, created_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, report_id) DO NOTHING`

// reportArgs are the arguments of insertReportSQL.
func reportArgs(b *IngestBatch, r *IngestReport, now int64) []any {
	kind := "heartbeat"
	if r.Snapshot != nil {
		kind = "snapshot"
	}
	return []any{b.Agent.ID, r.ReportID, b.Agent.DeviceID, int64(r.Sequence), kind, micros(r.CreatedAt), now}
}

// touchAgent is the UPDATE of a new report's agent row, with its
// arguments: its last_seen and, when the batch has a quota, the day's
// count (quotaSet), where the report stays within the quota (quotaWhere;
// counted says so): one UPDATE of the row, which a condition may follow.
func touchAgent(b *IngestBatch, r *IngestReport, now int64) (query string, args []any, counted bool) {
	set, where, counted := quotaArgs(b, r)
	if !counted {
		return `UPDATE agents SET last_seen = ? WHERE id = ?`, []any{now, b.Agent.ID}, false
	}
	return `UPDATE agents SET last_seen = ?, ` + quotaSet + ` WHERE id = ?` + quotaWhere,
		slices.Concat([]any{now}, set, []any{b.Agent.ID}, where), true
}

// insertReport stores a report and touches its agent (touchAgent), unless
// an earlier attempt stored the report: it returns the number of reports
// inserted (0: stored before, nothing touched), and ErrOverQuota when the
// report would pass its agent's quota. On PostgreSQL the two are one
// data-modifying WITH, one round trip instead of two, the agent's UPDATE
// conditioned on the insert's row; on SQLite, where statements are
// prepared and local, they run one by one.
func (s *Store) insertReport(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, now int64) (int64, error) {
	args := reportArgs(b, r, now)
	agent, agentArgs, counted := touchAgent(b, r, now)
	var inserted, touched int64
	if s.dialect == Postgres {
		if err := tx.QueryRowContext(ctx, s.q(`WITH r AS (`+insertReportSQL+` RETURNING 1),
			a AS (`+agent+` AND EXISTS (SELECT FROM r) RETURNING 1) SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM a)`),
			append(args, agentArgs...)...).Scan(&inserted, &touched); err != nil {
			return 0, fmt.Errorf("insert report: %w", err)
		}
	} else {
		res, err := tx.ExecContext(ctx, insertReportSQL, args...)
		if err != nil {
			return 0, fmt.Errorf("insert report: %w", err)
		}
		if inserted, _ = res.RowsAffected(); inserted == 0 {
			return 0, nil
		}
		if res, err = tx.ExecContext(ctx, agent, agentArgs...); err != nil {
			return 0, fmt.Errorf("update agent: %w", err)
		}
		touched, _ = res.RowsAffected()
	}
	if inserted > 0 && counted && touched == 0 {
		return inserted, ErrOverQuota
	}
	return inserted, nil
}

// snapshotWrite is what the device row takes from a report's snapshot
// when its content differs from the stored one.
type snapshotWrite struct {
	// version is the device version the stored digests were read at (-1:
	// not read); expect is version when the report's snapshot differs
	// from the stored one, else -1. The device's snapshot columns are set
	// only while its snapshot digest is still the one read (stored): a
	// write that leaves the snapshot alone (a move between clusters, say)
	// moves the version, not what the snapshot is stored on.
	version, expect int64
	stored          storedDigests
	keys            string
	panel           bool
}

// snapshotDevice reads (or takes from pre) the stored snapshot's digests
// and, when the report's snapshot differs, what the device row takes from
// it.
func (s *Store) snapshotDevice(ctx context.Context, tx wtx, deviceID string, r *IngestReport, pre *prejudged) (snapshotWrite, error) {
	w := snapshotWrite{version: -1, expect: -1}
	if r.Snapshot == nil {
		return w, nil
	}
	if pre != nil {
		w.version, w.stored = pre.version, pre.snapshot
	} else if err := tx.QueryRowContext(ctx, s.q(`SELECT d.version, COALESCE(sn.digest, ''), COALESCE(sn.section_digests, '')
		FROM devices d LEFT JOIN snapshots sn ON sn.device_id = d.id WHERE d.id = ?`), deviceID).
		Scan(&w.version, &w.stored.digest, &w.stored.sections); err != nil {
		return w, fmt.Errorf("load snapshot: %w", err)
	}
	if w.stored.digest == r.Digest {
		return w, nil // storeSnapshot stores nothing
	}
	w.expect = w.version
	if pre != nil && pre.snapshotKeys != "" {
		w.keys, w.panel = pre.snapshotKeys, pre.panel
		return w, nil
	}
	w.keys = snapshotKeysJSON(r)
	w.panel = panelActive(r.Snapshot)
	return w, nil
}

// snapshotKeysJSON is the device row's snapshot_keys for a report's
// snapshot.
func snapshotKeysJSON(r *IngestReport) string {
	keys, _ := json.Marshal(fleet.SnapshotKeys(r.Snapshot, r.PeripheralSerials))
	return string(keys)
}

// panelActive says whether a snapshot shows the built-in panel active.
func panelActive(sn *agentv1.HostSnapshot) bool {
	return slices.ContainsFunc(sn.GetDisplays().GetDisplays(), func(d *agentv1.Display) bool { return d.GetInternal() && d.GetActive() })
}

// storedDigests are the digests of a device's stored snapshot ("" when
// none).
type storedDigests struct {
	digest, sections string
}

// A snapshot's history entry and the latest snapshot, which names the
// entry (history_id), each followed by its VALUES or SELECT.
const (
	insertHistorySQL     = `INSERT INTO snapshot_history (device_id, report_id, created_at, received_at, digest, changed, data)`
	upsertSnapshotSQL    = `INSERT INTO snapshots (device_id, report_id, created_at, received_at, digest, section_digests, data, history_id)`
	upsertSnapshotEndSQL = ` ON CONFLICT (device_id) DO UPDATE SET report_id = excluded.report_id,
		created_at = excluded.created_at, received_at = excluded.received_at, digest = excluded.digest,
		section_digests = excluded.section_digests, data = excluded.data, history_id = excluded.history_id`
)

// storeSnapshot stores a snapshot unless its content is the stored one,
// with its history entry, and what derives from it. stored are the stored
// snapshot's digests when the caller knows them (nil: read them);
// deviceSet says the caller already set the device's snapshot columns
// (see snapshotDevice).
func (s *Store) storeSnapshot(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, stored *storedDigests, deviceSet bool) error {
	if stored == nil {
		stored = &storedDigests{}
		err := tx.QueryRowContext(ctx, s.q(`SELECT digest, section_digests FROM snapshots WHERE device_id = ?`), b.Agent.DeviceID).
			Scan(&stored.digest, &stored.sections)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load snapshot: %w", err)
		}
	}
	if stored.digest == r.Digest {
		return nil // same content: nothing changed since the stored snapshot
	}
	c := r.changes
	if c == nil || c.from != stored.sections {
		c = diffSections(stored.sections, r)
	}
	// The data is stored once, in the history entry, which the latest
	// snapshot names (history_id; migration 00042).
	now := micros(b.ReceivedAt)
	// On PostgreSQL the history entry and the latest snapshot are one
	// statement (one round trip), the entry's id flowing into the
	// snapshot row; SQLite runs them one by one.
	history, latest := snapshotArgs(b, r, c)
	var device []sent // the device's snapshot columns, unless the caller set them
	if !deviceSet {
		device = []sent{{query: s.q(`UPDATE devices SET snapshot_digest = ?, snapshot_at = ?, snapshot_keys = ?,
			internal_display_active_at = CASE WHEN ? THEN ? ELSE internal_display_active_at END WHERE id = ?`),
			args: []any{r.Digest, now, snapshotKeysJSON(r), panelActive(r.Snapshot), now, b.Agent.DeviceID}}}
	}
	if s.dialect == Postgres {
		// With the device's snapshot columns, in one round trip where the
		// transaction can send statements together.
		stmts := append([]sent{{query: s.q(`WITH h AS (` + insertHistorySQL + ` VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id) ` +
			upsertSnapshotSQL + ` SELECT ?, ?, ?, ?, ?, ?, ?, id FROM h` + upsertSnapshotEndSQL), args: append(history, latest...)}}, device...)
		if err := tx.send(ctx, stmts); err != nil {
			return fmt.Errorf("store snapshot: %w", err)
		}
	} else {
		// The entry's id is the rowid the insert reports: RETURNING
		// would cost SQLite a temporary table and the caller a result
		// set per snapshot.
		res, err := tx.ExecContext(ctx, insertHistorySQL+` VALUES (?, ?, ?, ?, ?, ?, ?)`, history...)
		if err != nil {
			return fmt.Errorf("snapshot history: %w", err)
		}
		historyID, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("snapshot history: %w", err)
		}
		if _, err := tx.ExecContext(ctx, upsertSnapshotSQL+` VALUES (?, ?, ?, ?, ?, ?, ?, ?)`+upsertSnapshotEndSQL, append(latest, historyID)...); err != nil {
			return fmt.Errorf("store snapshot: %w", err)
		}
		for _, d := range device {
			if _, err := tx.ExecContext(ctx, d.query, d.args...); err != nil {
				return fmt.Errorf("update device: %w", err)
			}
		}
	}
	if c.users {
		if err := s.storeDeviceUsers(ctx, tx, b.Agent.DeviceID, r.users); err != nil {
			return err
		}
	}
	if c.serials {
		return s.storePeripheralSerials(ctx, tx, b.Agent.DeviceID, r.PeripheralSerials)
	}
	return nil
}

// snapshotArgs are the arguments of a snapshot's history entry and of its
// latest row, but for the entry's id, which latest has room for. The
// values both take are boxed once (see deviceUpdateArgs).
func snapshotArgs(b *IngestBatch, r *IngestReport, c *sectionChanges) (history, latest []any) {
	history = []any{b.Agent.DeviceID, r.ReportID, micros(r.CreatedAt), micros(b.ReceivedAt), r.Digest, c.changed, r.Data}
	return history, append(append(make([]any, 0, 8), history[:5]...), r.sectionsJSON, []byte{})
}

// prepareBatch works out what storing a batch needs that does not depend
// on what is stored, before the writer takes it: the single writer is the
// bottleneck.
func prepareBatch(b *IngestBatch) {
	egress, _ := json.Marshal(&b.Egress)
	b.egressJSON = string(egress)
	b.egressRow = egressAsStored(b.Egress, egress)
	for i := range b.Reports {
		prepareSnapshot(&b.Reports[i])
	}
}

// egressAsStored is e as readDevice decodes it from its JSON encoding:
// without UTCOffsetSeconds, which the encoding leaves out, nor Since (the
// row's columns say since when), and with invalid UTF-8 replaced (when a
// string holds any, the encoding is decoded).
func egressAsStored(e detect.Egress, encoded []byte) detect.Egress {
	for _, s := range [...]string{e.IP, e.Status, e.Country, e.Region, e.City, e.Org, e.NetworkClass, e.NetworkName, e.TimeZone} {
		if !utf8.ValidString(s) {
			var d detect.Egress
			json.Unmarshal(encoded, &d)
			e = d
			break
		}
	}
	e.Since, e.UTCOffsetSeconds = time.Time{}, 0
	return e
}

// prepareSnapshot works out what storing a report's snapshot writes
// besides its data: the user names seen (kept as the pseudo-section
// "users" of the section digests, so that the users table is written
// only when they change) and the section digests as stored.
func prepareSnapshot(r *IngestReport) {
	if r.Snapshot == nil {
		return
	}
	if r.Sections == nil {
		r.Sections = map[string]string{}
	}
	r.users, r.Sections["users"] = deviceUsers(r.Snapshot)
	r.sorted = sortedSections(r.Sections)
	r.sectionsJSON = r.sorted.json()
}

// sectionChanges is what a snapshot changes against a stored one whose
// section digests are from (JSON).
type sectionChanges struct {
	from string
	// changed lists the changed signal sections, comma-separated (as
	// snapshot_history keeps them).
	changed string
	// users: the user names seen changed; serials: a section the
	// peripheral serials derive from changed (the peripherals section
	// carries the catalog version): unchanged sections, unchanged serials;
	// keys: a section the snapshot's fleet keys derive from changed (the
	// serials' or the network's, the remote-access tools').
	users, serials, keys bool
}

// diffSections compares a prepared snapshot (prepareSnapshot) with the
// stored section digests from: a section is changed when its digest
// differs (a missing one is ""), or when the stored snapshot has it and
// this one has not. Both lists are sorted by name, so one pass over them
// finds the changed sections in order.
func diffSections(from string, r *IngestReport) *sectionChanges {
	var buf [32]section
	prev, cur := parseSections(from, buf[:0]), r.sorted
	c := &sectionChanges{from: from}
	var changed strings.Builder
	for len(prev) > 0 || len(cur) > 0 {
		var name, was, is string
		onlyPrev := false
		switch {
		case len(cur) == 0 || len(prev) > 0 && prev[0].name < cur[0].name:
			name, was, onlyPrev = prev[0].name, prev[0].digest, true
			prev = prev[1:]
		case len(prev) == 0 || cur[0].name < prev[0].name:
			name, is = cur[0].name, cur[0].digest
			cur = cur[1:]
		default:
			name, was, is = cur[0].name, prev[0].digest, cur[0].digest
			prev, cur = prev[1:], cur[1:]
		}
		switch name {
		case "users":
			c.users = was != is
			continue
		case "usb", "displays", "peripherals":
			c.serials = c.serials || was != is
			c.keys = c.keys || was != is
		case "network", "remote_access":
			c.keys = c.keys || was != is
		}
		if was != is || onlyPrev {
			if changed.Len() > 0 {
				changed.WriteByte(',')
			}
			changed.WriteString(name)
		}
	}
	c.changed = changed.String()
	return c
}

// storePeripheralSerials replaces a device's peripheral serials: one
// delete and one multi-row insert per 500 serials.
func (s *Store) storePeripheralSerials(ctx context.Context, tx wtx, deviceID string, serials []policies.PeripheralSerial) error {
	s.rows.othersChanged() // the devices sharing them
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM peripheral_serials WHERE device_id = ?`), deviceID); err != nil {
		return fmt.Errorf("peripheral serials: %w", err)
	}
	for chunk := range slices.Chunk(serials, 500) {
		var sb strings.Builder
		args := make([]any, 0, 3*len(chunk))
		sb.WriteString(`INSERT INTO peripheral_serials (device_id, key, location) VALUES `)
		for i, p := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?)")
			args = append(args, deviceID, p.Key, p.Device)
		}
		sb.WriteString(` ON CONFLICT (device_id, key) DO NOTHING`)
		if _, err := tx.Tx.ExecContext(ctx, s.q(sb.String()), args...); err != nil {
			return fmt.Errorf("peripheral serials: %w", err)
		}
	}
	// Re-pair this device with every other device holding one of its
	// serials, in both directions.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM peripheral_shares WHERE device_id = ? OR other_id = ?`), deviceID, deviceID); err != nil {
		return fmt.Errorf("peripheral shares: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO peripheral_shares (device_id, key, other_id)
		SELECT p.device_id, p.key, o.device_id FROM peripheral_serials p
		JOIN peripheral_serials o ON o.key = p.key AND o.device_id <> p.device_id WHERE p.device_id = ?
		UNION SELECT o.device_id, o.key, p.device_id FROM peripheral_serials p
		JOIN peripheral_serials o ON o.key = p.key AND o.device_id <> p.device_id WHERE p.device_id = ?`), deviceID, deviceID); err != nil {
		return fmt.Errorf("peripheral shares: %w", err)
	}
	return nil
}

// deviceUsers returns the user names seen in a snapshot (with keyboard
// layouts or logged in, as UsernameKey), sorted, and a key of the set.
func deviceUsers(sn *agentv1.HostSnapshot) ([]string, string) {
	layouts, current := sn.GetLocale().GetKeyboardLayouts(), sn.GetSessions().GetCurrent()
	var users []string
	if n := len(layouts) + len(current); n > 0 {
		users = make([]string, 0, n)
	}
	add := func(user string) {
		if u := UsernameKey(user); u != "" {
			users = append(users, u)
		}
	}
	for _, k := range layouts {
		add(k.GetUser())
	}
	for _, l := range current {
		add(l.GetUser())
	}
	slices.Sort(users)
	users = slices.Compact(users)
	// The key is the SHA-256 of the names, one a line; gathered on the
	// stack.
	var buf [512]byte
	in := buf[:0]
	for i, u := range users {
		if i > 0 {
			in = append(in, '\n')
		}
		in = append(in, u...)
	}
	sum := sha256.Sum256(in)
	return users, hex.EncodeToString(sum[:8])
}

// storeDeviceUsers replaces the user names seen on a device.
func (s *Store) storeDeviceUsers(ctx context.Context, tx wtx, deviceID string, users []string) error {
	s.rows.othersChanged() // the person binding of devices with the same names
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM device_users WHERE device_id = ?`), deviceID); err != nil {
		return fmt.Errorf("device users: %w", err)
	}
	for _, u := range users {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO device_users (device_id, username) VALUES (?, ?)`), deviceID, u); err != nil {
			return fmt.Errorf("device users: %w", err)
		}
	}
	return nil
}
