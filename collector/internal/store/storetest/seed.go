package storetest

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SeedQueue fills the empty database at dsn with a big fleet for
// benchmarks: devices devices (id dev-N, host host-N, serial SN-N) with
// perDevice alerts each (at most 35: one per rule rule_0 … rule_34), of
// every severity and status (about one in seven open), last seen over the
// 30 days before now. The rows are generated inside the database, so a
// million alerts take seconds.
func SeedQueue(tb testing.TB, dsn string, devices, perDevice int, now time.Time) {
	tb.Helper()
	if perDevice > 35 {
		tb.Fatal("SeedQueue: at most 35 alerts per device")
	}
	// $1 is the row count, $2 now; SQLite numbers them ?1 and ?2. In
	// SQLite || binds tighter than arithmetic, hence the parentheses.
	driver, series, db := "pgx", `SELECT %s FROM generate_series(0::bigint, $1::bigint - 1) AS n(i)`, dsn
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		driver, series, db = "sqlite", `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1) SELECT %s FROM n`,
			"file:"+dsn+"?_pragma=busy_timeout(10000)"
	}
	conn, err := sql.Open(driver, db)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	at := now.UnixMicro()
	for _, q := range []struct {
		insert, cols string
		n            int
	}{
		{`INSERT INTO devices (id, hardware_key, hostname, serial_number, os_family, agent_version, first_seen, last_seen)`,
			`'dev-' || i, 'hw-' || i, 'host-' || i, 'SN-' || i, 'linux', '1.0.0', $2, $2`, devices},
		{`INSERT INTO alerts (rule_id, device_id, title, severity, status, category, evidence, first_seen, last_seen, updated_at)`,
			`'rule_' || (((i / ` + itoa(perDevice) + `) * 3 + i % ` + itoa(perDevice) + `) % 35), 'dev-' || (i / ` + itoa(perDevice) + `),
			'Seeded alert ' || i, CASE i % 10 WHEN 0 THEN 'critical' WHEN 1 THEN 'high' WHEN 2 THEN 'high' WHEN 3 THEN 'medium'
			WHEN 4 THEN 'medium' WHEN 5 THEN 'medium' ELSE 'low' END,
			CASE WHEN i % 7 = 0 THEN 'open' WHEN i % 13 = 1 THEN 'acknowledged' ELSE 'resolved' END, 'seed',
			'{"seed": ' || i || '}', $2 - 2592000000000, $2 - (i * 7919 % 2592000) * 1000000, $2`, devices * perDevice},
	} {
		query := q.insert + " " + strings.Replace(series, "%s", q.cols, 1)
		if driver == "sqlite" {
			query = strings.ReplaceAll(query, "$", "?")
		}
		if _, err := conn.Exec(query, q.n, at); err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}
	// Statistics, as autovacuum would gather them after such a load.
	if _, err := conn.Exec("ANALYZE"); err != nil {
		tb.Fatalf("seed: analyze: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
