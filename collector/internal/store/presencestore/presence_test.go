package presencestore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

var monday10 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// TestChallengeSingleUse: a ceremony's challenge answers one response and
// none once expired; taking an expired one removes it all the same.
func TestChallengeSingleUse(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		ps := presencestore.New(storetest.Open(t, dsn))
		if err := ps.SaveChallenge(ctx, "check:1", []byte(`{"challenge":"a"}`), monday10.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if b, err := ps.TakeChallenge(ctx, "check:1", monday10); err != nil || string(b) != `{"challenge":"a"}` {
			t.Fatalf("take: %s %v", b, err)
		}
		if _, err := ps.TakeChallenge(ctx, "check:1", monday10); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("taken twice: %v", err)
		}
		ps.SaveChallenge(ctx, "check:2", []byte(`{}`), monday10)
		if _, err := ps.TakeChallenge(ctx, "check:2", monday10); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired challenge: %v", err)
		}
		if _, err := ps.TakeChallenge(ctx, "check:2", monday10.Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an expired challenge taken stays: %v", err)
		}
	})
}
