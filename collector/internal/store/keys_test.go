package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestKeyMaterial: key material is added once (replicas starting at once
// each try; all end with the first one's), read back as stored, and
// replaced only by a compare-and-swap on the certificate it replaces.
func TestKeyMaterial(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := storetest.Open(t, dsn), storetest.Open(t, dsn)
		if _, err := a.KeyMaterial(ctx, "ca"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("empty database: %v", err)
		}
		var wg sync.WaitGroup
		got := make([]store.KeyMaterial, 8)
		for i := range got {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				k, err := st.AddKeyMaterial(ctx, store.KeyMaterial{Name: "ca", CertPEM: []byte{'A' + byte(i)}, SealedKey: []byte{byte(i), 0}})
				if err != nil {
					t.Error(err)
				}
				got[i] = k
			})
		}
		wg.Wait()
		for _, k := range got {
			if string(k.CertPEM) != string(got[0].CertPEM) || string(k.SealedKey) != string(got[0].SealedKey) || k.UpdatedAt.IsZero() {
				t.Fatalf("replicas disagree on the stored CA: %+v and %+v", k, got[0])
			}
		}
		first := got[0]
		next := store.KeyMaterial{Name: "ca", CertPEM: []byte("next"), SealedKey: []byte{9, 9}}
		if ok, err := b.ReplaceKeyMaterial(ctx, next, []byte("stale")); ok || err != nil {
			t.Fatalf("replaced over a stale certificate: %v %v", ok, err)
		}
		if ok, err := b.ReplaceKeyMaterial(ctx, next, first.CertPEM); !ok || err != nil {
			t.Fatalf("replace: %v %v", ok, err)
		}
		if k, err := a.KeyMaterial(ctx, "ca"); err != nil || string(k.CertPEM) != "next" || string(k.SealedKey) != "\x09\x09" {
			t.Fatalf("after replace: %+v %v", k, err)
		}
		if _, err := a.AddKeyMaterial(ctx, store.KeyMaterial{Name: "server", CertPEM: make([]byte, 70<<10), SealedKey: []byte{1}}); err == nil {
			t.Error("stored 70 KiB of key material")
		}
	})
}

// TestLease: on PostgreSQL one replica holds a job's lease from run to
// run and the other never gets it; when the holder's session dies (its
// process was killed: here its connection is terminated) the other takes
// it at its next try, and the old holder, alive again, does not. Released,
// it passes back. With SQLite the one collector always holds it.
func TestLease(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := storetest.Open(t, dsn), storetest.Open(t, dsn)
		la, lb := a.Lease(42), b.Lease(42)
		defer la.Release()
		defer lb.Release()
		hold := func(l *store.Lease) bool {
			t.Helper()
			ok, err := l.Hold(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !storeIsPostgres(dsn) {
			if !hold(la) || !hold(lb) {
				t.Fatal("SQLite: the lease is not always held")
			}
			return
		}
		if !hold(la) {
			t.Fatal("a free lease was not taken")
		}
		for range 3 {
			if !hold(la) || hold(lb) {
				t.Fatal("the lease moved while its holder lives")
			}
		}
		if other := b.Lease(43); !hold(other) {
			t.Fatal("another job's lease is not free")
		} else {
			other.Release()
		}
		// The holder's session ends as a killed process's would.
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND granted`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminate the holder: %d sessions, %v", n, err)
		}
		// The lock goes when the backend has exited; poll generously.
		for i := 0; !hold(lb); i++ {
			if i == 200 {
				t.Fatal("the lease was not taken over after its holder died")
			}
			db.Exec("SELECT pg_sleep(0.05)")
		}
		if hold(la) {
			t.Fatal("the dead holder still holds the lease")
		}
		lb.Release()
		if !hold(la) {
			t.Fatal("a released lease was not taken")
		}
	})
}

func storeIsPostgres(dsn string) bool { return store.IsPostgres(dsn) }

// TestReplicas: a replica's row is added, then refreshed; listing keeps
// the replicas seen since a time.
func TestReplicas(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := storetest.Open(t, dsn)
		t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
		see := func(name string, at time.Time, hb string) {
			t.Helper()
			if err := st.SeeReplica(ctx, store.Replica{Name: name, Settings: map[string]string{"heartbeat_interval": hb}, StartedAt: t0, SeenAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		see("a 127.0.0.1:1", t0, "5m0s")
		see("b 127.0.0.1:2", t0, "5m0s")
		see("a 127.0.0.1:1", t0.Add(time.Minute), "4m0s")
		got, err := st.Replicas(ctx, t0.Add(30*time.Second))
		if err != nil || len(got) != 1 || got[0].Name != "a 127.0.0.1:1" || got[0].Settings["heartbeat_interval"] != "4m0s" ||
			!got[0].SeenAt.Equal(t0.Add(time.Minute)) || !got[0].StartedAt.Equal(t0) {
			t.Fatalf("replicas seen lately: %+v %v", got, err)
		}
		if all, err := st.Replicas(ctx, t0); err != nil || len(all) != 2 {
			t.Fatalf("all replicas: %+v %v", all, err)
		}
		if err := st.SeeReplica(ctx, store.Replica{Name: strings.Repeat("x", 600), SeenAt: t0}); err == nil {
			t.Error("stored a 600-byte replica name")
		}
	})
}
