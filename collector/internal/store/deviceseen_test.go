package store_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestDeviceSeen: on PostgreSQL, a device's last_seen is indexed on the
// narrow device_seen table (migration 00048), which follows every report;
// so a heartbeat's UPDATE of the device changes no indexed column and
// stays on its page (HOT). devices_pkey then holds one entry for the
// device however many heartbeats it sent: with last_seen indexed on
// devices, each heartbeat added a new version of the row with an entry in
// every index (six here, until a vacuum).
func TestDeviceSeen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	e := newEnv(t, dsn)
	dev := e.enroll("agent-1", "hw:1", "host-1")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(e.ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Fatal(err)
	}
	at := t0
	for i := range 5 {
		at = at.Add(time.Minute)
		e.ingest("agent-1", at, noRules, e.heartbeat(fmt.Sprintf("60000000-0000-4000-8000-%012d", i+1), "host-1", at))
		var seen, indexed int64
		if err := db.QueryRowContext(e.ctx, `SELECT d.last_seen, s.last_seen FROM devices d JOIN device_seen s ON s.device_id = d.id
			WHERE d.id = $1`, dev).Scan(&seen, &indexed); err != nil {
			t.Fatal(err)
		}
		if seen != at.UnixMicro() || indexed != seen {
			t.Fatalf("heartbeat %d: devices.last_seen %d, device_seen.last_seen %d, want both %d", i+1, seen, indexed, at.UnixMicro())
		}
	}
	var entries int
	if err := db.QueryRowContext(e.ctx, `SELECT count(*) FROM bt_page_items('devices_pkey', 1)`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 1 {
		t.Errorf("devices_pkey holds %d entries for the one device after 5 heartbeats, want 1 (the updates were not HOT)", entries)
	}
}
