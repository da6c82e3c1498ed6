package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestEnrollIdempotent: an enrollment retried with the same key, one after
// the other or many at once, gets the agent the first one created and
// writes nothing more; the key cannot be taken over by another device.
func TestEnrollIdempotent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		enroll := func(ctx context.Context, agentID, key, hw string) (store.Enrolled, error) {
			return e.st.EnrollAgent(ctx, store.Enrollment{AgentID: agentID, SecretID: e.secretID, IP: "198.51.100.1",
				HardwareKey: hw, Identity: identity("laptop-" + hw), Key: key, Certificate: []byte("cert-" + agentID),
				CertSerial: "c-" + agentID, CertNotAfter: certNotAfter})
		}

		first, err := enroll(e.ctx, "a1", "key-1", "hw:/SN1")
		if err != nil || !first.Created || first.AgentID != "a1" || string(first.Certificate) != "cert-a1" {
			t.Fatalf("first enrollment: %+v, %v", first, err)
		}
		again, err := enroll(e.ctx, "a1-retry", "key-1", "hw:/SN1")
		if err != nil || again.Created || again.AgentID != "a1" || again.DeviceID != first.DeviceID || string(again.Certificate) != "cert-a1" {
			t.Fatalf("retry: %+v, %v; want agent a1 and its certificate", again, err)
		}

		// Many attempts with one key at once (they meet in one group or in
		// several): one agent.
		var wg sync.WaitGroup
		got := make([]store.Enrolled, 16)
		errs := make([]error, len(got))
		for i := range got {
			wg.Go(func() { got[i], errs[i] = enroll(e.ctx, fmt.Sprint("b", i), "key-2", "hw:/SN2") })
		}
		wg.Wait()
		created := 0
		for i := range got {
			if errs[i] != nil || got[i].AgentID != got[0].AgentID || string(got[i].Certificate) != "cert-"+got[0].AgentID {
				t.Fatalf("attempt %d: %+v, %v; attempt 0: %+v", i, got[i], errs[i], got[0])
			}
			if got[i].Created {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%d attempts with one key created an agent, want 1", created)
		}
		agents, err := e.st.DeviceAgents(e.ctx, got[0].DeviceID)
		if err != nil || len(agents) != 1 {
			t.Fatalf("agents of the device: %+v, %v; want one", agents, err)
		}
		secrets, err := e.st.ListSecrets(e.ctx)
		if err != nil || len(secrets) != 1 || secrets[0].Uses != 2 {
			t.Fatalf("secrets %+v, %v; want 2 uses (two agents)", secrets, err)
		}

		// An attempt whose caller gave up before it was committed stores
		// nothing; its retry enrolls.
		cancelled, cancel := context.WithCancel(e.ctx)
		cancel()
		if _, err := enroll(cancelled, "c1", "key-3", "hw:/SN3"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled enrollment: %v", err)
		}
		if r, err := enroll(e.ctx, "c2", "key-3", "hw:/SN3"); err != nil || !r.Created || r.AgentID != "c2" {
			t.Fatalf("retry of a cancelled enrollment: %+v, %v", r, err)
		}

		// The key of another device's agent is refused.
		if r, err := enroll(e.ctx, "d1", "key-1", "hw:/SN4"); !errors.Is(err, store.ErrKeyEnrolled) {
			t.Fatalf("key of another device: %+v, %v; want ErrKeyEnrolled", r, err)
		}
		// A revoked device's agent is returned as revoked.
		if err := e.st.RevokeDevice(e.ctx, first.DeviceID, "test"); err != nil {
			t.Fatal(err)
		}
		if r, err := enroll(e.ctx, "a1-late", "key-1", "hw:/SN1"); err != nil || !r.Revoked || r.AgentID != "a1" {
			t.Fatalf("retry after revocation: %+v, %v; want a1, revoked", r, err)
		}
	})
}

// BenchmarkEnrollOffice: enrollments from one office address with one
// secret into a database that already holds 5,000 from them (an office
// behind one NAT address in a stampede). Each enrollment counts the
// devices enrolled from the address in the last day and with the secret
// in the last hour (mass_enrollment), over what those 5,000 left.
func BenchmarkEnrollOffice(b *testing.B) {
	const before = 5000
	engines := map[string]func() string{
		"sqlite":   func() string { return filepath.Join(b.TempDir(), "bonafide.db") },
		"postgres": func() string { return storetest.PostgresDSN(b) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st := storetest.Open(b, engines[name]())
			_, sec, err := st.CreateSecret(b.Context(), "office")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			enroll := func() {
				n++
				id := fmt.Sprint("a", n)
				if _, err := st.EnrollAgent(b.Context(), store.Enrollment{AgentID: id, SecretID: sec.ID, IP: "198.51.100.1",
					HardwareKey: "hw:/SN" + id, Identity: identity("laptop-" + id), Key: "key-" + id, Certificate: []byte("cert"),
					CertSerial: "c-" + id, CertNotAfter: certNotAfter}); err != nil {
					b.Fatal(err)
				}
			}
			for range before {
				enroll()
			}
			b.ResetTimer()
			for b.Loop() {
				enroll()
			}
		})
	}
}
