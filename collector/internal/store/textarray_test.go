package store

import (
	"database/sql"
	"os"
	"slices"
	"testing"
)

// TestTextArray: PostgreSQL reads textArray's literal back as the strings
// it was made of, quotes, backslashes, commas and braces included.
func TestTextArray(t *testing.T) {
	dsn := os.Getenv("BONAFIDE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("skipping: PostgreSQL missing (set BONAFIDE_TEST_POSTGRES to a DSN)")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ss := range [][]string{nil, {"r1"}, {"r1", "remote_access"}, {`a"b`, `c\d`, "e,f", "{g}", " h ", "NULL", ""}} {
		var got []string
		rows, err := db.QueryContext(t.Context(), `SELECT unnest(CAST(CAST($1 AS TEXT) AS TEXT[]))`, textArray(ss))
		if err != nil {
			t.Fatalf("%q: %v", ss, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		rows.Close()
		if !slices.Equal(got, ss) {
			t.Errorf("%q read back as %q", ss, got)
		}
	}
}
