package store_test

import (
	"bytes"
	"database/sql"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// Migration 00043 moves the activity histograms onto the devices' rows
// and back down.
func TestMigrateDeviceActivity(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		driver, conn, d := "sqlite", "file:"+dsn+"?_pragma=foreign_keys(1)", store.SQLite
		if store.IsPostgres(dsn) {
			driver, conn, d = "pgx", dsn, store.Postgres
		}
		db, err := sql.Open(driver, conn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, store.Rebind(d, q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		migrate := func(version int64) {
			t.Helper()
			if err := store.MigrateForTest(ctx, db, d, version); err != nil {
				t.Fatalf("migrate to %d: %v", version, err)
			}
		}
		hist := bytes.Repeat([]byte{7}, 680)
		migrate(42)
		exec(`INSERT INTO devices (id, hardware_key, first_seen) VALUES ('dev_a', 'hw:a', 1), ('dev_b', 'hw:b', 1)`)
		exec(`INSERT INTO device_activity (device_id, histogram) VALUES ('dev_a', ?)`, hist)

		migrate(43)
		for id, want := range map[string][]byte{"dev_a": hist, "dev_b": {}} {
			var got []byte
			if err := db.QueryRowContext(ctx, store.Rebind(d, `SELECT activity FROM devices WHERE id = ?`), id).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("up: %s's activity is %d bytes, want %d", id, len(got), len(want))
			}
		}
		if _, err := db.ExecContext(ctx, `SELECT 1 FROM device_activity`); err == nil {
			t.Fatal("up: device_activity is still there")
		}

		migrate(42)
		rows, err := db.QueryContext(ctx, `SELECT device_id, histogram FROM device_activity`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id string
			var got []byte
			if err := rows.Scan(&id, &got); err != nil {
				t.Fatal(err)
			}
			if n++; id != "dev_a" || !bytes.Equal(got, hist) {
				t.Fatalf("down: device_activity row %s of %d bytes, want dev_a's %d", id, len(got), len(hist))
			}
		}
		if err := rows.Err(); err != nil || n != 1 {
			t.Fatalf("down: %d device_activity rows (%v), want 1", n, err)
		}
		if _, err := db.ExecContext(ctx, `SELECT activity FROM devices`); err == nil {
			t.Fatal("down: devices.activity is still there")
		}
	})
}
