package store_test

import (
	"bytes"
	"database/sql"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// migrationDB is a database migrated step by step with the store's
// migrations (not opened as a Store).
type migrationDB struct {
	*testing.T
	db *sql.DB
	d  store.Dialect
}

func openMigrationDB(t *testing.T, dsn string) *migrationDB {
	driver, conn, d := "sqlite", "file:"+dsn+"?_pragma=foreign_keys(1)", store.SQLite
	if store.IsPostgres(dsn) {
		driver, conn, d = "pgx", dsn, store.Postgres
	}
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return &migrationDB{T: t, db: db, d: d}
}

func (m *migrationDB) migrate(version int64) {
	m.Helper()
	if err := store.MigrateForTest(m.Context(), m.db, m.d, version); err != nil {
		m.Fatalf("migrate to %d: %v", version, err)
	}
}

func (m *migrationDB) exec(q string, args ...any) {
	m.Helper()
	if _, err := m.db.ExecContext(m.Context(), store.Rebind(m.d, q), args...); err != nil {
		m.Fatalf("%s: %v", q, err)
	}
}

func (m *migrationDB) row(q string, args []any, dest ...any) {
	m.Helper()
	if err := m.db.QueryRowContext(m.Context(), store.Rebind(m.d, q), args...).Scan(dest...); err != nil {
		m.Fatalf("%s: %v", q, err)
	}
}

// gone fails unless query fails (names a table or column dropped).
func (m *migrationDB) gone(query string) {
	m.Helper()
	if _, err := m.db.ExecContext(m.Context(), query); err == nil {
		m.Fatalf("%s: still there", query)
	}
}

// Migration 00043 moves the activity histograms onto the devices' rows
// and back down.
func TestMigrateDeviceActivity(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		m := openMigrationDB(t, dsn)
		hist := bytes.Repeat([]byte{7}, 680)
		m.migrate(42)
		m.exec(`INSERT INTO devices (id, hardware_key, first_seen) VALUES ('dev_a', 'hw:a', 1), ('dev_b', 'hw:b', 1)`)
		m.exec(`INSERT INTO device_activity (device_id, histogram) VALUES ('dev_a', ?)`, hist)

		m.migrate(43)
		for id, want := range map[string][]byte{"dev_a": hist, "dev_b": {}} {
			var got []byte
			m.row(`SELECT activity FROM devices WHERE id = ?`, []any{id}, &got)
			if !bytes.Equal(got, want) {
				t.Fatalf("up: %s's activity is %d bytes, want %d", id, len(got), len(want))
			}
		}
		m.gone(`SELECT 1 FROM device_activity`)

		m.migrate(42)
		var n int
		var got []byte
		if m.row(`SELECT COUNT(*) FROM device_activity`, nil, &n); n != 1 {
			t.Fatalf("down: %d device_activity rows, want dev_a's", n)
		}
		if m.row(`SELECT histogram FROM device_activity WHERE device_id = 'dev_a'`, nil, &got); !bytes.Equal(got, hist) {
			t.Fatalf("down: dev_a's histogram is %d bytes, want %d", len(got), len(hist))
		}
		m.gone(`SELECT activity FROM devices`)
	})
}

// Migration 00044 moves each agent's last counted day onto its row and
// back down.
func TestMigrateAgentUsage(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		m := openMigrationDB(t, dsn)
		m.migrate(43)
		m.exec(`INSERT INTO devices (id, hardware_key, first_seen) VALUES ('dev_a', 'hw:a', 1)`)
		m.exec(`INSERT INTO agents (id, device_id, enrolled_at) VALUES ('a1', 'dev_a', 1), ('a2', 'dev_a', 1)`)
		m.exec(`INSERT INTO agent_usage (agent_id, day, reports, bytes, flagged) VALUES ('a1', 100, 7, 700, 1), ('a1', 200, 3, 300, 0)`)

		m.migrate(44)
		for id, want := range map[string][4]int64{"a1": {200, 3, 300, 0}, "a2": {}} {
			var got [4]int64
			m.row(`SELECT usage_day, usage_reports, usage_bytes, usage_flagged FROM agents WHERE id = ?`, []any{id},
				&got[0], &got[1], &got[2], &got[3])
			if got != want {
				t.Fatalf("up: %s's usage %v, want %v", id, got, want)
			}
		}
		m.gone(`SELECT 1 FROM agent_usage`)

		m.migrate(43)
		var n int
		var got [3]int64
		m.row(`SELECT COUNT(*), MAX(day), MAX(reports), MAX(bytes) FROM agent_usage`, nil, &n, &got[0], &got[1], &got[2])
		if n != 1 || got != [3]int64{200, 3, 300} {
			t.Fatalf("down: %d agent_usage rows, max %v, want a1's last day", n, got)
		}
		m.gone(`SELECT usage_day FROM agents`)
	})
}

// Migration 00047 leaves half of each page of devices free on PostgreSQL
// (its fill factor), and back down.
func TestMigrateDevicesFillFactor(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		if !store.IsPostgres(dsn) {
			t.Skip("a PostgreSQL storage parameter")
		}
		m := openMigrationDB(t, dsn)
		options := func() string {
			var o string
			m.row(`SELECT COALESCE(array_to_string(reloptions, ','), '') FROM pg_class WHERE relname = 'devices'`, nil, &o)
			return o
		}
		m.migrate(47)
		if o := options(); o != "fillfactor=50" {
			t.Fatalf("up: devices' options %q, want fillfactor=50", o)
		}
		m.migrate(44)
		if o := options(); o != "" {
			t.Fatalf("down: devices' options %q, want none", o)
		}
	})
}

// Migration 00048 (PostgreSQL) moves last_seen's index to device_seen:
// the devices already there are copied, the triggers keep it equal to
// devices.last_seen for new devices and every update, and down brings the
// index back onto devices.
func TestMigrateDeviceSeen(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		if !store.IsPostgres(dsn) {
			t.Skip("PostgreSQL's schema; SQLite keeps the index on devices")
		}
		m := openMigrationDB(t, dsn)
		m.migrate(47)
		m.exec(`INSERT INTO devices (id, hardware_key, first_seen, last_seen) VALUES ('d1', 'hw:1', 1, 100)`)
		m.migrate(48)
		seen := func(id string) int64 {
			m.Helper()
			var at int64
			m.row(`SELECT last_seen FROM device_seen WHERE device_id = ?`, []any{id}, &at)
			return at
		}
		if at := seen("d1"); at != 100 {
			t.Fatalf("copied last_seen %d, want 100", at)
		}
		m.exec(`UPDATE devices SET last_seen = 200 WHERE id = 'd1'`)
		m.exec(`UPDATE devices SET version = version + 1 WHERE id = 'd1'`)
		m.exec(`INSERT INTO devices (id, hardware_key, first_seen, last_seen) VALUES ('d2', 'hw:2', 1, 300)`)
		if a, b := seen("d1"), seen("d2"); a != 200 || b != 300 {
			t.Fatalf("device_seen %d and %d, want 200 and 300", a, b)
		}
		var indexed int
		m.row(`SELECT count(*) FROM pg_indexes WHERE indexname = 'devices_last_seen_id'`, nil, &indexed)
		if indexed != 0 {
			t.Fatal("up: devices_last_seen_id still on devices")
		}
		m.migrate(47)
		m.gone(`SELECT 1 FROM device_seen`)
		m.row(`SELECT count(*) FROM pg_indexes WHERE indexname = 'devices_last_seen_id'`, nil, &indexed)
		if indexed != 1 {
			t.Fatal("down: devices_last_seen_id not back on devices")
		}
		m.exec(`UPDATE devices SET last_seen = 400 WHERE id = 'd1'`)
	})
}
