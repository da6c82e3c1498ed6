package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// egressRule fires on every device evaluation with the previous egress
// address it was given as evidence, and counts its evaluations. pause,
// when set, holds the next evaluation until released: the report's rules
// then run while another report of the device is stored.
type egressRule struct {
	mu     sync.Mutex
	calls  int
	paused chan struct{} // closed when an evaluation is held
	resume chan struct{}
}

func (*egressRule) AutoResolve(detect.Scope) []string { return nil }

func (r *egressRule) Evaluate(_ context.Context, scope detect.Scope, f detect.Facts) ([]detect.Finding, error) {
	if scope != detect.ScopeDevice {
		return nil, nil
	}
	r.mu.Lock()
	r.calls++
	paused, resume := r.paused, r.resume
	r.paused, r.resume = nil, nil
	r.mu.Unlock()
	if paused != nil {
		close(paused)
		<-resume
	}
	fd := finding("egress_moved", "low")
	fd.Evidence = map[string]any{"previous": f.Device.PreviousEgress.IP}
	return []detect.Finding{fd}, nil
}

func (r *egressRule) pause() (paused, resume chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused, r.resume = make(chan struct{}), make(chan struct{})
	return r.paused, r.resume
}

func (r *egressRule) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// TestStaleVerdict: a report's rules run outside the writer on the device
// as read. When another report of the device is stored meanwhile, the
// writer does not store that verdict: it evaluates again on the device as
// it now is. When nothing intervened, the verdict reached outside is kept
// (the rules ran once). Both engines judge outside their writers.
func TestStaleVerdict(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, freshDSN(t, dsn))
		dev := e.enroll("agent-1", "hw:1", "host-1")
		rule := &egressRule{}
		from := func(ip string, at time.Time, r store.IngestReport) store.IngestBatch {
			b := e.batch("agent-1", at, r)
			b.IP, b.Egress = ip, detect.Egress{IP: ip, NetworkClass: "residential"}
			return b
		}
		evidence := func() any {
			a := e.alerts(store.AlertFilter{DeviceID: dev})
			if len(a) != 1 {
				t.Fatalf("alerts: %+v, want one", a)
			}
			return a[0].Evidence["previous"]
		}

		// Nothing intervenes: one evaluation, kept.
		if _, err := e.st.Ingest(e.ctx, from("203.0.113.1", t0, e.heartbeat("10000000-0000-4000-8000-000000000001", "host-1", t0)), rule); err != nil {
			t.Fatal(err)
		}
		if n := rule.count(); n != 1 {
			t.Fatalf("rules ran %d times for one report, want once (the verdict reached outside the writer kept)", n)
		}

		// Report A (from the same address) is evaluated; before it is
		// stored, report B from another address is.
		paused, resume := rule.pause()
		done := make(chan error, 1)
		at := t0.Add(time.Minute)
		go func() {
			_, err := e.st.Ingest(e.ctx, from("203.0.113.1", at, e.heartbeat("10000000-0000-4000-8000-00000000000a", "host-1", at)), rule)
			done <- err
		}()
		<-paused
		if _, err := e.st.Ingest(e.ctx, from("198.51.100.2", at, e.heartbeat("10000000-0000-4000-8000-00000000000b", "host-1", at)), rule); err != nil {
			t.Fatal(err)
		}
		if got := evidence(); got != "203.0.113.1" {
			t.Fatalf("after B: previous egress %v, want 203.0.113.1", got)
		}
		calls := rule.count()
		close(resume)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// A read the device before B moved it to another address; stored
		// after B, A moved it back, so its previous egress is B's.
		if got := evidence(); got != "198.51.100.2" {
			t.Fatalf("after A: the alert's evidence says previous egress %v, want 198.51.100.2 (a verdict on the device as it was before B was stored)", got)
		}
		if n := rule.count() - calls; n != 1 {
			t.Fatalf("the writer evaluated A %d times again, want once", n)
		}
		if n := e.reportCount(dev); n != 3 {
			t.Fatalf("%d reports stored, want 3", n)
		}
	})
}
