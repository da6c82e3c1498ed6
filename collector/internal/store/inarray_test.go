package store

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInArrayOneText: a test of membership in an array (inArray, the
// component search's) is one statement text whatever the number of ids,
// so that PostgreSQL's driver prepares it, and the server plans it, as one
// statement, not one per number of ids; and it selects the ids given, on
// both engines.
func TestInArrayOneText(t *testing.T) {
	dbs := map[Dialect]string{SQLite: "file:" + filepath.Join(t.TempDir(), "in.db")}
	if dsn := os.Getenv("BONAFIDE_TEST_POSTGRES"); dsn != "" {
		dbs[Postgres] = dsn
	} else if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
		t.Fatal("PostgreSQL missing (set BONAFIDE_TEST_POSTGRES to a DSN) and BONAFIDE_REQUIRE_ALL=1")
	}
	for dialect, dsn := range dbs {
		s := &Store{dialect: dialect}
		driver := map[Dialect]string{SQLite: "sqlite", Postgres: "pgx"}[dialect]
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var text string
		for _, ids := range [][]string{{"b"}, {"a", "c"}, {"a", "b", "c", `d"'\`, "x"}} {
			in, arg := s.inArray(ids)
			query := s.q(`SELECT id FROM (SELECT 'a' AS id UNION ALL SELECT 'b' UNION ALL SELECT 'c' UNION ALL SELECT 'd"''\') v
				WHERE id ` + in + ` ORDER BY id`)
			if text == "" {
				text = query
			} else if query != text {
				t.Errorf("%s: %d ids: statement %q, %q for another number", driver, len(ids), query, text)
			}
			rows, err := db.QueryContext(t.Context(), query, arg)
			if err != nil {
				t.Fatalf("%s: %v", driver, err)
			}
			var got []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			rows.Close()
			want := slices.DeleteFunc(slices.Sorted(slices.Values(ids)), func(id string) bool { return id == "x" })
			if !slices.Equal(got, want) {
				t.Errorf("%s: %q selected %q", driver, ids, got)
			}
		}
	}
}
