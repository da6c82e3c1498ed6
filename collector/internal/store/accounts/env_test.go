package accounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// env is a fresh database (db) and the accounts kept in it (st).
type env struct {
	*testing.T
	ctx context.Context
	db  *store.Store
	st  *accounts.Store
}

func newEnv(t *testing.T, dsn string) *env {
	db := storetest.Open(t, dsn)
	return &env{T: t, ctx: t.Context(), db: db, st: accounts.New(db)}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}
