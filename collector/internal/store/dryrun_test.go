package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestDryRunBudgetAndNoWrites: a dry-run over the fleet stores nothing
// (no device's person binding, no alert), and one whose request's deadline
// passes stops with ErrInvalid saying so instead of running on.
func TestDryRunBudgetAndNoWrites(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		now := time.Now().Truncate(time.Second)
		if err := e.st.SeedFleet(e.ctx, 40, now); err != nil {
			t.Fatal(err)
		}
		db := storetest.Open(t, dsn) // a second handle reads what the dry-run left
		snapshot := func() string {
			var b strings.Builder
			for _, d := range mustDevices(t, db) {
				b.WriteString(d.ID + "=" + d.Person + "/" + d.PersonBinding + ";")
			}
			n, err := db.ListAlerts(context.Background(), store.AlertFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.Repeat("a", len(n)))
			return b.String()
		}
		before := snapshot()
		hits, devices, err := e.st.DryRun(e.ctx, defaultRules(t), now)
		if err != nil || devices == 0 {
			t.Fatalf("dry-run: %d hits on %d devices, %v", len(hits), devices, err)
		}
		if after := snapshot(); after != before {
			t.Errorf("the dry-run stored something:\nbefore %s\nafter  %s", before, after)
		}

		ctx, cancel := context.WithTimeout(e.ctx, time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		_, _, err = e.st.DryRun(ctx, defaultRules(t), now)
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "budget") {
			t.Fatalf("dry-run past its deadline: %v, want ErrInvalid naming the budget", err)
		}
	})
}

func mustDevices(t *testing.T, st *store.Store) []store.Device {
	t.Helper()
	d, err := st.ListDevices(context.Background(), store.DeviceFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
