package store

// The fold path of PostgreSQL's ingest writer: a prejudged report stored by
// one statement (foldStatement), the statements of a group's reports sent
// ahead together in its transaction (foldAhead), or the whole group in one
// round trip when nothing but the folds is left to do (storeInOneTrip).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// foldsAhead picks, on PostgreSQL, the batches of a group whose fold
// statements (foldReport) the writer sends together in one round trip
// (see foldAhead) rather than one each: those of one prejudged report of
// a device in no cluster, whose storing with its verdict touches no other
// device's rows, and which no other batch of the group is for, so that
// storing them first keeps each device's reports in order. It returns
// their places in the group, none when fewer than two would go: one
// statement is one round trip either way.
func foldsAhead(group []*ingestReq) []int {
	if ahead := foldable(group); len(ahead) >= 2 {
		return ahead
	}
	return nil
}

// foldable lists the places of the batches of a group whose fold
// statements may be sent ahead of the rest (see foldsAhead).
func foldable(group []*ingestReq) []int {
	devices := make(map[string]int, len(group))
	for _, r := range group {
		devices[r.batch.Agent.DeviceID]++
	}
	var ahead []int
	for i, r := range group {
		if r.pre != nil && r.pre.cluster == "" && len(r.batch.Reports) == 1 && devices[r.batch.Agent.DeviceID] == 1 && r.ctx.Err() == nil {
			ahead = append(ahead, i)
		}
	}
	return ahead
}

// inOneTrip says whether a group may be stored in one round trip
// (storeInOneTrip): every batch's fold statement may go ahead (foldable),
// and what the writer does after it can be told before it is sent, or by
// the statement itself (see foldStatement's check). Told before: the
// verdict has no findings (no alert to raise or touch, and so nothing for
// the device's risk score) and leaves the device's person binding as it
// is (keepFacts would write it).
func inOneTrip(group []*ingestReq) bool {
	if len(foldable(group)) != len(group) {
		return false
	}
	for _, r := range group {
		if fr := r.pre.facts; fr == nil || len(r.pre.verdict.findings) > 0 || fr.facts.Person != fr.storedPerson {
			return false
		}
	}
	return true
}

// errNotOneTrip: a group tried in one round trip (storeInOneTrip) holds a
// report that the writer must store with more than its fold statement,
// known before sending (nothing was sent) or raised by a fold statement
// (the round trip was rolled back whole). The group is stored the usual
// way, which reads and judges again what changed.
var errNotOneTrip = errors.New("the group needs more than its fold statements")

// storeInOneTrip stores a group of prejudged reports (see inOneTrip) in a
// single round trip on PostgreSQL: their fold statements in one pipeline,
// ending in one Sync, which makes them one implicit transaction,
// committed at the Sync when every statement succeeded and rolled back
// when one failed. Explicit BEGIN and COMMIT would be two statements more
// for the server to run, and a statement failing between them would leave
// the connection in a failed transaction, to be rolled back in another
// round trip. Each fold statement checks that the writer has nothing more
// to do for its report, and raises an error otherwise (see foldStatement),
// which rolls the whole group back: it then returns errNotOneTrip, as on
// any error that cannot be retried whole (the usual way meets it again, and
// tells which batch failed). The results are returned once committed.
func (s *Store) storeInOneTrip(ctx context.Context, group []*ingestReq) ([]ingestResult, error) {
	results := make([]ingestResult, len(group))
	stmts := make([]sent, len(group))
	folds := make([]*folded, len(group))
	for i, r := range group {
		// With a verdict, building the statement reads nothing.
		f, err := s.foldStatement(ctx, wtx{s: s}, r.batch, &r.batch.Reports[0], r.pre, true)
		if err != nil {
			return results, err
		}
		if f.snapshotLeft {
			return results, errNotOneTrip
		}
		stmts[i] = sent{query: f.query, args: f.args, read: oneRow(append(f.row.dest(), nil)...)}
		folds[i] = f
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return results, fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	if err := sendAll(ctx, conn, stmts); err != nil {
		if !foldChecked(err) {
			// Perhaps the commit's: its outcome is unknown, and so are
			// the group's devices' rows (a fold check's error rolled
			// everything back).
			s.storedGroup(group, results, false)
		}
		if retryable(err) {
			return results, err
		}
		return results, errNotOneTrip
	}
	for i, r := range group {
		results[i].acked = []string{r.batch.Reports[0].ReportID}
		// Stored with its verdict, unless an earlier attempt stored it.
		r.pre.kept = folds[i].row.inserted != 0
	}
	s.storedGroup(group, results, true)
	s.oneTrips.Add(1)
	return results, nil
}

// foldChecked reports whether err is a fold statement's check raising
// (ingest_fold_check, migration 00045: SQLSTATE BF001).
func foldChecked(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "BF001"
}

// foldAhead sends the fold statements of the group's batches at ahead
// (see foldsAhead) in one pipeline on the transaction's connection, and
// keeps each row it returned on the report's verdict (prejudged.fold),
// where foldReport takes it from. Every round trip costs client and
// server a write, a read and a wake-up each, on cores they share.
func (s *Store) foldAhead(ctx context.Context, tx wtx, group []*ingestReq, ahead []int) error {
	stmts := make([]sent, len(ahead))
	folds := make([]*folded, len(ahead))
	for k, i := range ahead {
		r := group[i]
		f, err := s.foldStatement(ctx, tx, r.batch, &r.batch.Reports[0], r.pre, false)
		if err != nil {
			return err
		}
		stmts[k] = sent{query: f.query, args: f.args, read: oneRow(f.row.dest()...)}
		folds[k] = f
	}
	if err := tx.pipeline(ctx, stmts); err != nil {
		return fmt.Errorf("store reports: %w", err)
	}
	for k, i := range ahead {
		group[i].pre.fold = folds[k]
	}
	return nil
}

// foldReport is writeReport on PostgreSQL for a prejudged report, where
// every statement is a round trip and costs the server a start and an end
// of its own: the report, its agent's last_seen and quota, the device's
// UPDATE and, when the device is still at the version prejudge read (the
// rows they write then are the ones ingestOne would write), the
// snapshot's history entry and latest row and the device's activity
// histogram, in one data-modifying WITH. A report stored before writes
// nothing: every part depends on the report's insert. When the host name
// changed since prejudge read it (the UPDATE, guarded on it, found no
// row), the UPDATE that sets it runs on its own, and ingestOne writes the
// rest as writeReport leaves it. The writer may have sent the statement
// ahead, with those of other reports of its group (foldAhead): its row
// is then on pre.
func (s *Store) foldReport(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged) (reportWrite, error) {
	f := pre.fold
	if f == nil { // not sent ahead with the group's (see foldAhead)
		var err error
		if f, err = s.foldStatement(ctx, tx, b, r, pre, false); err != nil {
			return reportWrite{}, err
		}
		if err := tx.QueryRowContext(ctx, f.query, f.args...).Scan(f.row.dest()...); err != nil {
			return f.w, fmt.Errorf("store report: %w", err)
		}
	}
	w, row := f.w, f.row
	w.version, w.openAlerts, w.egressSince = row.version, row.openAlerts, row.egressSince
	if row.inserted == 0 {
		return w, nil
	}
	w.stored = true
	if row.quota == 0 {
		return w, ErrOverQuota
	}
	if w.version < 0 { // the host name changed since prejudge read it
		w.factsTried = false
		return w, s.updateDevice(ctx, tx, b, r, pre, &w, true)
	}
	w.snapshotStored, w.factsKept = row.snapshots > 0, row.kept > 0
	if !w.snapshotStored && row.readVersion >= 0 && row.readVersion != w.sd.expect && row.version == row.readVersion+1 {
		// The statement read the stored snapshot at the version the
		// UPDATE found: storeSnapshot stores on it without reading it,
		// and sets the device's snapshot columns unless the UPDATE,
		// guarded on the digest prejudge read, set them.
		if row.read.digest != w.sd.stored.digest {
			w.sd.expect = -1
		}
		w.sd.version, w.sd.stored = row.readVersion, row.read
	}
	return w, nil
}

// folded is a prejudged report's fold statement (see foldReport), what
// building it set of the report's write, and the row it returned.
// snapshotLeft says the statement leaves a new snapshot's rows to
// storeSnapshot.
type folded struct {
	query        string
	args         []any
	w            reportWrite
	row          foldRow
	snapshotLeft bool
}

// foldRow is the row a fold statement returns: the reports inserted, the
// agents charged, the device row as the UPDATE left it (version -1: no
// row), the snapshots stored, whether the facts were kept, and the
// device's version and stored snapshot's digests before the statement
// (readVersion -1: not read).
type foldRow struct {
	inserted, quota, version, openAlerts, egressSince, snapshots, kept int64
	readVersion                                                        int64
	read                                                               storedDigests
}

func (r *foldRow) dest() []any {
	return []any{&r.inserted, &r.quota, &r.version, &r.openAlerts, &r.egressSince, &r.snapshots, &r.kept,
		&r.readVersion, &r.read.digest, &r.read.sections}
}

// foldStatement builds a prejudged report's fold statement (foldReport).
// checked: the statement ends by raising an error (ingest_fold_check,
// migration 00045) when the report it stored needs the writer to run
// another statement after it (see storeInOneTrip): when the quota refused
// the report, the device is not at the version the verdict was reached at
// (or its host name changed since), the egress changed (recordEgress), the
// facts were not kept (keepFacts), or the device has an open alert of a
// rule the verdict cleared (resolveCleared). A report stored before
// raises nothing: the writer does nothing more for it either. What else
// the writer may do after the fold, the group's batches were chosen not to
// need (inOneTrip), but for a new snapshot's rows, which snapshotLeft
// tells.
func (s *Store) foldStatement(ctx context.Context, tx wtx, b *IngestBatch, r *IngestReport, pre *prejudged, checked bool) (*folded, error) {
	f := &folded{}
	var err error
	if f.w.sd, err = s.snapshotDevice(ctx, tx, b.Agent.DeviceID, r, pre); err != nil { // reads nothing with pre
		return nil, err
	}
	var sb strings.Builder
	add := func(query string, a ...any) {
		sb.WriteString(query)
		f.args = append(f.args, a...)
	}
	now := micros(b.ReceivedAt)
	agent, agentArgs, counted := touchAgent(b, r, now)
	add(`WITH r AS (`+insertReportSQL+` RETURNING 1), a AS (`+agent+` AND EXISTS (SELECT FROM r) RETURNING 1)`,
		append(reportArgs(b, r, now), agentArgs...)...)
	charged := "1"
	if counted {
		charged = "(SELECT count(*) FROM a)"
	}
	query, a := deviceUpdate(b, r, f.w.sd, pre, pre.hostname != r.Identity.Hostname, "EXISTS (SELECT FROM r)")
	add(`, d AS (`+query+deviceReturning+`, snapshot_digest)`, a...)
	// The snapshot rows storeSnapshot writes when the UPDATE also set the
	// device's snapshot columns (see snapshotDevice): the stored snapshot
	// is still the one read, whose digest the statement read before its
	// writes, also when the device moved on since (a report moved it
	// between clusters), with the section changes prejudge worked out
	// against the digests read. When it moved on, storeSnapshot had
	// stored them, with a second UPDATE of the device.
	snapshot := "0"
	if c := r.changes; r.Snapshot != nil && f.w.sd.expect >= 0 && c != nil && c.from == f.w.sd.stored.sections && !c.users && !c.serials {
		history, latest := snapshotArgs(b, r, c)
		add(`, h AS (`+insertHistorySQL+` SELECT ?, ?, ?, ?, ?, ?, ? FROM d WHERE d.snapshot_digest = ?
			AND COALESCE((SELECT digest FROM snapshots WHERE device_id = ?), '') = ? RETURNING id)`,
			append(history, r.Digest, b.Agent.DeviceID, f.w.sd.stored.digest)...)
		add(`, sn AS (`+upsertSnapshotSQL+` SELECT ?, ?, ?, ?, ?, ?, ?, id FROM h`+upsertSnapshotEndSQL+`)`, latest...)
		snapshot = "(SELECT count(*) FROM h)"
	}
	f.snapshotLeft = r.Snapshot != nil && f.w.sd.expect >= 0 && snapshot == "0"
	// What keepFacts does when the device's person binding stays: the
	// facts are kept (kept has a row) while the fact stamp is the one the
	// device's row was read under and the person's activity histogram,
	// locked, is still the one read (another device of theirs may have
	// written it since), and then the activity histograms are written
	// (writeFacts).
	facts := "0"
	if fr := pre.facts; fr != nil && fr.facts.Person == fr.storedPerson {
		person := fr.facts.Person
		check, checkArgs := " AND "+factStampSQL+" = ?", []any{pre.version + 1, pre.stamp}
		if person != "" {
			add(`, pa AS (SELECT histogram FROM person_activity WHERE email = ? FOR UPDATE)`, person)
			check, checkArgs = check+` AND (SELECT histogram FROM pa) IS NOT DISTINCT FROM ?`, append(checkArgs, fr.personHistRead)
		}
		add(`, kept AS (SELECT FROM d WHERE d.version = ?`+check+`)`, checkArgs...)
		// The device's histogram is set by its UPDATE (deviceUpdate).
		if fr.hours && person != "" {
			add(`, pact AS (`+personActivitySQL+` SELECT ?, ? FROM kept`+personActivityEndSQL+`)`, person, fr.personHist)
		}
		facts = "(SELECT count(*) FROM kept)"
		f.w.factsTried = true
	}
	// The snapshot stored and the device's version when the statement
	// started (every part of one statement reads the rows as they were
	// before its writes): when the device moved past the version prejudge
	// read (a report moved it between clusters, say), the snapshot's rows
	// are left to storeSnapshot, which then needs no read of its own (see
	// foldReport). A checked statement is rolled back instead.
	stored := `-1, '', ''`
	if !checked && r.Snapshot != nil && f.w.sd.expect >= 0 {
		add(`, pv AS (SELECT v.version, COALESCE(sn.digest, '') AS digest, COALESCE(sn.section_digests, '') AS sections
			FROM devices v LEFT JOIN snapshots sn ON sn.device_id = v.id WHERE v.id = ?)`, b.Agent.DeviceID)
		stored = `COALESCE((SELECT version FROM pv), -1), COALESCE((SELECT digest FROM pv), ''), COALESCE((SELECT sections FROM pv), '')`
	}
	add(` SELECT (SELECT count(*) FROM r), ` + charged + `, COALESCE(d.version, -1), COALESCE(d.open_alerts, 0),
		COALESCE(d.egress_since, 0), ` + snapshot + `, ` + facts + `, ` + stored)
	if checked {
		missed := charged + ` = 0 OR COALESCE(d.version, -1) <> ? OR COALESCE(d.egress_since, 0) = ?`
		if f.w.factsTried {
			missed += ` OR ` + facts + ` = 0`
		}
		add(`, ingest_fold_check((SELECT count(*) FROM r) = 1 AND (`+missed+`), ?, COALESCE(d.open_alerts, 0), CAST(CAST(? AS TEXT) AS TEXT[]))`,
			pre.version+1, now, b.Agent.DeviceID, textArray(pre.verdict.cleared))
	}
	add(` FROM (SELECT) one LEFT JOIN d ON true`)
	f.query = s.q(sb.String())
	return f, nil
}

// textArray is ss as a PostgreSQL text[] literal, for a statement to cast:
// sent as one text value, it spares pgx encoding an array.
func textArray(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(s) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
