package ingest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// footprintLaptops is how many laptops BenchmarkStorageFootprint simulates.
const footprintLaptops = 20

// BenchmarkStorageFootprint measures what a laptop costs in the database:
// footprintLaptops laptops report for two simulated days through Report,
// as the agent does at the collector's default intervals (a scan every
// 5 minutes; a heartbeat when nothing changed, a full snapshot when
// something did), with activity during a working day. The second day's
// growth, per table, is what a laptop costs a day; with the default
// retention (store.DefaultRetention) each history table holds at most its
// retention's worth of days, which gives the size a laptop settles at after
// a year (the audit log, kept for ever by default, grows on).
//
// Two profiles: steady, a laptop whose snapshot changes four times a day
// (a login, a network change) and otherwise sends heartbeats, which is
// what most of a fleet does; busy, a laptop whose snapshot changes at
// every scan, the worst case (every snapshot is kept in the history).
//
// Run it with -benchtime 1x: one iteration is the whole simulation.
func BenchmarkStorageFootprint(b *testing.B) {
	for _, p := range []struct {
		name    string
		changes int // snapshots a day whose content changed
	}{{"steady", 4}, {"busy", 288}} {
		b.Run(p.name+"/sqlite", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bonafide.db")
			footprint(b, path, "sqlite", "file:"+path, p.changes)
		})
		b.Run(p.name+"/postgres", func(b *testing.B) {
			dsn := storetest.PostgresDSN(b)
			footprint(b, dsn, "pgx", dsn, p.changes)
		})
	}
}

// retainedDays is how many days of each history table the default
// retention keeps (store.Prune), 0 for ever.
func retainedDays(table string) (float64, bool) {
	r := store.DefaultRetention
	keep, ok := map[string]time.Duration{"reports": r.Reports, "snapshot_history": r.Snapshots, "risk_history": r.Risk,
		"cluster_events": r.ClusterEvents, "egress_history": r.Egress, "audit_log": r.Audit, "signins": r.Signins}[table]
	return keep.Hours() / 24, ok
}

func footprint(b *testing.B, dsn, driver, conn string, changes int) {
	ctx := context.Background()
	for range b.N {
		st := storetest.Open(b, dsn)
		rules, err := detect.Load(policies.FS())
		if err != nil {
			b.Fatal(err)
		}
		svc, err := New(st, nil, rules, Config{ScanInterval: 5 * time.Minute, HeartbeatInterval: 5 * time.Minute, CheckInInterval: time.Hour},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		// Simulated days from tomorrow: every time in the snapshots
		// (benchSnapshot's, around now) is then in the past.
		start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
		var clock atomic.Int64
		clock.Store(start.UnixMicro())
		svc.now = func() time.Time { return time.UnixMicro(clock.Load()).UTC() }
		_, sec, err := st.CreateSecret(ctx, "footprint")
		if err != nil {
			b.Fatal(err)
		}
		laptops := make([]*benchAgent, footprintLaptops)
		for i := range laptops {
			laptops[i] = enrollBenchAgent(b, st, sec.ID, i, true) // an ordinary laptop
		}
		db, err := sql.Open(driver, conn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()

		const tick = 5 * time.Minute
		ticks := int(24 * time.Hour / tick)
		var dayOne map[string]int64
		b.ResetTimer()
		for t := range 2 * ticks {
			now := start.Add(time.Duration(t) * tick)
			clock.Store(now.UnixMicro())
			changed := t == 0 || changedAt(t%ticks, changes, ticks)
			var wg sync.WaitGroup
			for _, a := range laptops {
				wg.Go(func() { footprintReport(b, svc, a, now, changed) })
			}
			wg.Wait()
			if t == ticks-1 {
				dayOne = tableBytes(b, db, driver)
			}
		}
		b.StopTimer()
		dayTwo := tableBytes(b, db, driver)
		var perDay, perYear, fixed float64
		var tables []string
		for table, size := range dayTwo {
			grew := float64(size-dayOne[table]) / footprintLaptops
			if grew != 0 {
				tables = append(tables, fmt.Sprintf("%s %.1f KB", table, grew/1024))
			}
			perDay += grew
			if days, ok := retainedDays(table); ok {
				if days == 0 || days > 365 {
					days = 365
				}
				perYear += grew * days
			} else {
				fixed += float64(size) / footprintLaptops
			}
		}
		slices.Sort(tables)
		b.Logf("a laptop's day, by table: %s", strings.Join(tables, ", "))
		b.ReportMetric(perDay/1024, "KB/laptop/day")
		b.ReportMetric((perYear+fixed)/(1<<20), "MB/laptop/year")
		if perDay <= 0 {
			b.Fatalf("the database did not grow on the second day: %v then %v", dayOne, dayTwo)
		}
	}
}

// changedAt reports whether a laptop whose snapshot changes perDay times a
// day (spread over a working day, 9:00 to 17:00 UTC) sends a changed one at
// tick t of the day.
func changedAt(t, perDay, ticks int) bool {
	if perDay >= ticks {
		return true
	}
	first, every := 9*ticks/24, 8*ticks/24/perDay
	k := t - first
	return k >= 0 && k%every == 0 && k/every < perDay
}

// footprintReport sends one laptop's report of a scan at now: a snapshot
// when changed, else a heartbeat, each with the activity of the hour.
func footprintReport(b *testing.B, svc *Server, a *benchAgent, now time.Time, changed bool) {
	a.seq++
	active := uint32(0)
	if h := now.Hour(); h >= 9 && h < 17 {
		active = uint32(now.Minute()) // someone at the laptop all day
	}
	act := &agentv1.Activity{IdleThresholdSeconds: 60, Hours: []*agentv1.ActivityHour{{
		Hour: timestamppb.New(now.Truncate(time.Hour)), ActiveMinutes: active, SampledMinutes: uint32(now.Minute())}}}
	rep := &agentv1.Report{ReportId: uuid.NewString(), Sequence: a.seq, CreatedAt: timestamppb.New(now)}
	if changed {
		a.snap.ScanStartedAt, a.snap.ScanFinishedAt = timestamppb.New(now.Add(-2*time.Second)), timestamppb.New(now)
		a.snap.GetSessions().HistoryCursor = fmt.Sprintf("wtmp:%d", 1000+a.seq) // a login: the sessions changed
		a.snap.Activity = act
		rep.Body = &agentv1.Report_Snapshot{Snapshot: a.snap}
	} else {
		rep.Body = &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
			SnapshotDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Identity: a.snap.GetIdentity(), Activity: act}}
	}
	if _, err := svc.Report(a.ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}}); err != nil {
		b.Errorf("Report: %v", err)
	}
}

// tableBytes is the space each table takes with its indexes: SQLite's
// pages (dbstat), PostgreSQL's relation sizes with TOAST and indexes.
func tableBytes(b *testing.B, db *sql.DB, driver string) map[string]int64 {
	q := `SELECT s.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name GROUP BY s.tbl_name`
	if driver == "pgx" {
		q = `SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`
	}
	rows, err := db.Query(q)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			b.Fatal(err)
		}
		out[name] = size
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}
