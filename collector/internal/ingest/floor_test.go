package ingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest/ingesttest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BenchmarkIngestFloor is the floor of the ingest benchmarks: the rows a
// report writes, inserted by a plain group commit (one writer on SQLite,
// four on PostgreSQL, up to 64 reports a transaction, acknowledged after
// the commit) on the same engine, with the same devices and goroutines, and
// nothing else: no validation, facts, rules or reads. snapshot writes what
// a changed snapshot writes (the report, the agent's and the device's
// last_seen, the history entry with the data and the latest snapshot
// naming it, and the device's activity histogram on its row); farm adds
// an upsert of each alert BenchmarkIngest's farm snapshot raises (the
// default rules' own, read from one report ingested before the timer
// starts, with their evidence); heartbeat writes the report
// and the last_seen updates. An ingest figure divided by its floor says how
// much of the engine's write capacity ingest leaves unused.
//
// On PostgreSQL each statement is a round trip of its own, between BEGIN
// and COMMIT: the floor issue 16's goals were set against. Ingest sends a
// group of prejudged reports in one round trip (storeInOneTrip), so
// postgres-pipelined is the floor written that way too: each group's
// statements in one pgx batch, one implicit transaction committed at its
// end.
func BenchmarkIngestFloor(b *testing.B) {
	for _, mode := range []string{"snapshot", "farm", "heartbeat"} {
		b.Run(mode, func(b *testing.B) {
			b.Run("sqlite", func(b *testing.B) { benchFloor(b, filepath.Join(b.TempDir(), "bonafide.db"), mode, false) })
			b.Run("postgres", func(b *testing.B) { benchFloor(b, storetest.PostgresDSN(b), mode, false) })
			b.Run("postgres-pipelined", func(b *testing.B) { benchFloor(b, storetest.PostgresDSN(b), mode, true) })
		})
	}
}

type floorDevice struct {
	agentID, deviceID string
	snap              *agentv1.HostSnapshot
	// hist is an activity histogram of the snapshot's hours, as ingest
	// stores on the device's row (worked out once: the floor computes
	// nothing per report).
	hist []byte
	seq  uint64
}

type floorReq struct {
	d    *floorDevice
	data []byte
	done chan error
}

func benchFloor(b *testing.B, dsn, mode string, pipelined bool) {
	ctx := context.Background()
	st := storetest.Open(b, dsn) // the schema, and the enrolled devices
	_, sec, err := st.CreateSecret(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	devices := make([]*floorDevice, benchDevices)
	for i := range devices {
		agentID := uuid.NewString()
		sn := benchSnapshot(i, agentID)
		id := sn.GetIdentity()
		dev, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: sec.ID, IP: fmt.Sprintf("203.0.113.%d", i),
			HardwareKey: store.HardwareKey(id.GetHardwareUuid(), id.GetSerialNumber(), id.GetMachineId()),
			Identity:    deviceIdentity(id), CertSerial: fmt.Sprint(i), CertNotAfter: time.Now().AddDate(1, 0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		var h activity.Histogram
		h.Update(time.Now(), activityHours(sn.GetActivity()))
		hist, _ := h.MarshalBinary()
		devices[i] = &floorDevice{agentID: agentID, deviceID: dev, snap: sn, hist: hist}
	}
	var farm []floorAlert
	if mode == "farm" {
		farm = farmAlerts(b, st, sec.ID)
	}
	driver, conn, writers, rebind := "sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_txlock=immediate", 1, func(q string) string { return q }
	lastID := "last_insert_rowid()" // the history entry just inserted
	if store.IsPostgres(dsn) {
		driver, conn, writers, rebind, lastID = "pgx", dsn, 4, dollars, "lastval()"
	}
	db, err := sql.Open(driver, conn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(writers)

	type stmt struct {
		q    string
		args []any
	}
	statements := func(r *floorReq) []stmt {
		d, now := r.d, time.Now().UnixMicro()
		kind := "heartbeat"
		device, deviceArgs := `UPDATE devices SET last_seen = ?, last_ip = ? WHERE id = ?`, []any{now, "203.0.113.9", d.deviceID}
		if mode != "heartbeat" {
			kind = "snapshot"
			// The snapshot's activity hours update the device's
			// histogram, kept on its row (migration 00043).
			device, deviceArgs = `UPDATE devices SET last_seen = ?, last_ip = ?, activity = ? WHERE id = ?`,
				[]any{now, "203.0.113.9", d.hist, d.deviceID}
		}
		stmts := []stmt{
			{`INSERT INTO reports (agent_id, report_id, device_id, sequence, kind, created_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (agent_id, report_id) DO NOTHING`, []any{d.agentID, uuid.NewString(), d.deviceID, int64(d.seq), kind, now, now}},
			{`UPDATE agents SET last_seen = ? WHERE id = ?`, []any{now, d.agentID}},
			{device, deviceArgs},
		}
		if mode != "heartbeat" {
			stmts = append(stmts, []stmt{
				// The data once, in the history entry the latest snapshot
				// names, as ingest stores it (migration 00042).
				{`INSERT INTO snapshot_history (device_id, report_id, created_at, received_at, digest, changed, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
					[]any{d.deviceID, uuid.NewString(), now, now, fmt.Sprint(d.seq), "sessions", r.data}},
				{`INSERT INTO snapshots (device_id, report_id, created_at, received_at, digest, section_digests, data, history_id)
					VALUES (?, ?, ?, ?, ?, ?, ?, ` + lastID + `) ON CONFLICT (device_id) DO UPDATE SET report_id = excluded.report_id,
					created_at = excluded.created_at, received_at = excluded.received_at, digest = excluded.digest,
					section_digests = excluded.section_digests, data = excluded.data, history_id = excluded.history_id`,
					[]any{d.deviceID, uuid.NewString(), now, now, fmt.Sprint(d.seq), "{}", []byte{}}},
			}...)
		}
		for _, a := range farm {
			stmts = append(stmts, stmt{`INSERT INTO alerts (rule_id, device_id, title, severity, description, tags, evidence, first_seen, last_seen, count, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (rule_id, device_id) DO UPDATE SET
				evidence = excluded.evidence, last_seen = excluded.last_seen, count = alerts.count + 1`,
				[]any{a.rule, d.deviceID, a.title, a.severity, a.description, a.tags, a.evidence, now, now, now}})
		}
		for i := range stmts {
			stmts[i].q = rebind(stmts[i].q)
		}
		return stmts
	}
	// commit stores a group: in a transaction, a statement a round trip;
	// or pipelined, in one pgx batch (PostgreSQL).
	commit := func(group []*floorReq) error {
		if pipelined {
			var batch pgx.Batch
			for _, r := range group {
				for _, st := range statements(r) {
					batch.Queue(st.q, st.args...)
				}
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			return conn.Raw(func(dc any) error { return dc.(*stdlib.Conn).Conn().SendBatch(ctx, &batch).Close() })
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for _, r := range group {
			for _, st := range statements(r) {
				if _, err := tx.Exec(st.q, st.args...); err != nil {
					tx.Rollback()
					return err
				}
			}
		}
		return tx.Commit()
	}
	queue := make(chan *floorReq)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for r := range queue {
				group := []*floorReq{r}
			drain:
				for len(group) < 64 {
					select {
					case r, ok := <-queue:
						if !ok {
							break drain
						}
						group = append(group, r)
					default:
						break drain
					}
				}
				err := commit(group)
				for _, r := range group {
					r.done <- err
				}
			}
		})
	}
	defer wg.Wait()
	defer close(queue)

	par := max(1, min(8, benchDevices/runtime.GOMAXPROCS(0)))
	workers := par * runtime.GOMAXPROCS(0)
	var nextWorker atomic.Int64
	b.SetParallelism(par)
	b.ResetTimer()
	cpu := ingesttest.ProcessCPU()
	b.RunParallel(func(pb *testing.PB) {
		w := int(nextWorker.Add(1) - 1)
		var mine []*floorDevice
		for i := w; i < benchDevices; i += workers {
			mine = append(mine, devices[i])
		}
		if len(mine) == 0 {
			mine = devices[w%benchDevices : w%benchDevices+1]
		}
		done := make(chan error, 1)
		for n := 0; pb.Next(); n++ {
			d := mine[n%len(mine)]
			d.seq++
			r := &floorReq{d: d, done: done}
			if mode != "heartbeat" {
				r.data, _, _ = Digest(d.snap) // the same bytes ingest stores
			}
			queue <- r
			if err := <-done; err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(ingesttest.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
	unit := "heartbeats/s"
	if mode != "heartbeat" {
		unit = "snapshots/s"
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// dollars rewrites ? placeholders to PostgreSQL's $n.
func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// floorAlert is an alert the farm floor upserts on each report.
type floorAlert struct {
	rule, title, severity, description, tags, evidence string
}

// farmAlerts ingests one BenchmarkIngest farm snapshot of a device of its
// own through the real service and default rules, and returns the alerts
// it raised, as the farm floor writes them for its devices.
func farmAlerts(b *testing.B, st *store.Store, secretID string) []floorAlert {
	svc := benchService(b, st, io.Discard)
	a := enrollBenchAgent(b, st, secretID, benchDevices, false)
	a.change()
	rep := &agentv1.Report{ReportId: uuid.NewString(), Sequence: 1, CreatedAt: timestamppb.Now(), Body: &agentv1.Report_Snapshot{Snapshot: a.snap}}
	if _, err := svc.Report(a.ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}}); err != nil {
		b.Fatal(err)
	}
	alerts, err := st.ListAlerts(context.Background(), store.AlertFilter{DeviceID: a.ctx.Value(agentKey{}).(store.Agent).DeviceID})
	if err != nil || len(alerts) == 0 {
		b.Fatalf("the farm snapshot raised %d alerts (%v)", len(alerts), err)
	}
	var out []floorAlert
	var fired []string
	for _, al := range alerts {
		fired = append(fired, al.RuleID)
		evidence, _ := json.Marshal(al.Evidence)
		tags, _ := json.Marshal(al.Tags)
		out = append(out, floorAlert{rule: al.RuleID, title: al.Title, severity: al.Severity, description: al.Description,
			tags: string(tags), evidence: string(evidence)})
	}
	b.Logf("the farm floor upserts %d alerts a report: %s", len(out), strings.Join(fired, ", "))
	return out
}
