// Package storetest gives tests a fresh database on each engine.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// Missing skips the test because a component is absent, or fails it when
// BONAFIDE_REQUIRE_ALL=1 (as in CI), naming what is missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is required (BONAFIDE_REQUIRE_ALL=1) but missing", what)
	}
	t.Skipf("skipping: %s missing", what)
}

// PostgresDSN creates an empty database on the PostgreSQL server named by
// BONAFIDE_TEST_POSTGRES and drops it when the test ends.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("BONAFIDE_TEST_POSTGRES")
	if base == "" {
		Missing(t, "PostgreSQL (set BONAFIDE_TEST_POSTGRES to a DSN)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "bonafide_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database on %s: %v", base, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("BONAFIDE_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Engines lists the DSNs a store test runs against: a SQLite file in a
// temporary directory, and a fresh PostgreSQL database.
func Engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "bonafide.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresDSN(t)) })
}

// Open opens a store on dsn and closes it when the test ends.
func Open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
