package ingest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// holdWriter blocks the collector's writes from another connection until
// the returned function is called: SQLite's write lock, or on PostgreSQL
// the tables an enrollment and a report write first. It also returns
// whether a statement of the collector is waiting for it (always false on
// SQLite, which does not tell).
func holdWriter(t *testing.T, dsn string) (release func(), waiting func() bool) {
	t.Helper()
	driver, source, lock := "sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)", "BEGIN IMMEDIATE"
	if store.IsPostgres(dsn) {
		driver, source, lock = "pgx", dsn, "BEGIN; LOCK TABLE agents, reports IN EXCLUSIVE MODE"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, lock); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
			db.Close()
		}
	}
	t.Cleanup(release)
	waiting = func() bool {
		if driver != "pgx" {
			return false
		}
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	return release, waiting
}

// wantBusy checks that err is ResourceExhausted with a positive
// retry-after hint.
func wantBusy(t *testing.T, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("got %v, want ResourceExhausted", err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return
		}
	}
	t.Fatalf("%v carries no retry-after hint: %v", err, st.Details())
}

// TestOverloadRefusedEarly: with one report and one enrollment allowed in
// progress and the database writer held, the call that got in waits and
// every other is refused at once with ResourceExhausted and a retry-after
// hint; once the writer is free, everything acknowledged is stored,
// nothing refused is, and the refused calls succeed when retried.
func TestOverloadRefusedEarly(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		c := startCollectorOn(t, dsn, func(cfg *ingest.Config) { cfg.MaxInFlightReports, cfg.MaxEnrollments = 1, 1 })
		ctx := context.Background()
		const n = 4
		agents := make([]*agent, n)
		for i := range agents {
			agents[i] = c.enroll(t, fmt.Sprint("SN", i))
			if _, err := agents[i].rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{agents[i].snapshot(fmt.Sprint("SN", i))}}); err != nil {
				t.Fatalf("report before the overload: %v", err)
			}
		}

		// Reports.
		release, _ := holdWriter(t, dsn)
		type result struct {
			i   int
			rep *agentv1.Report
			err error
		}
		results := make(chan result, n)
		for i, a := range agents {
			rep := a.snapshot(fmt.Sprint("SN", i))
			go func() {
				_, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}})
				results <- result{i, rep, err}
			}()
		}
		var refused []result
		for range n - 1 { // all but the one holding the slot, which waits
			r := <-results
			wantBusy(t, r.err)
			refused = append(refused, r)
		}
		release()
		if r := <-results; r.err != nil {
			t.Fatalf("the report admitted during the overload: %v", r.err)
		} else if got := c.reportCount(t, agents[r.i].deviceID); got != 2 {
			t.Fatalf("device of the admitted report has %d reports, want 2", got)
		}
		for _, r := range refused {
			if got := c.reportCount(t, agents[r.i].deviceID); got != 1 {
				t.Fatalf("device of a refused report has %d reports, want the 1 acknowledged before", got)
			}
			if _, err := agents[r.i].rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{r.rep}}); err != nil {
				t.Fatalf("retried report: %v", err)
			}
			if got := c.reportCount(t, agents[r.i].deviceID); got != 2 {
				t.Fatalf("after the retry the device has %d reports, want 2", got)
			}
		}

		// Enrollments.
		release, _ = holdWriter(t, dsn)
		type enrolled struct {
			req *agentv1.EnrollRequest
			err error
		}
		done := make(chan enrolled, n)
		rpc := c.conn(t, nil)
		for i := range n {
			_, der := csr(t)
			req := &agentv1.EnrollRequest{Secret: c.secret, Identity: identity(fmt.Sprint("NEW", i)), Csr: der}
			go func() {
				_, err := rpc.Enroll(ctx, req)
				done <- enrolled{req, err}
			}()
		}
		var refusedEnroll []*agentv1.EnrollRequest
		for range n - 1 {
			r := <-done
			wantBusy(t, r.err)
			refusedEnroll = append(refusedEnroll, r.req)
		}
		release()
		if r := <-done; r.err != nil {
			t.Fatalf("the enrollment admitted during the overload: %v", r.err)
		}
		for _, req := range refusedEnroll {
			if _, err := rpc.Enroll(ctx, req); err != nil {
				t.Fatalf("retried enrollment: %v", err)
			}
		}
		devices, err := c.store.ListDevices(ctx, store.DeviceFilter{})
		if err != nil || len(devices) != 2*n {
			t.Fatalf("%d devices, %v; want %d", len(devices), err, 2*n)
		}
		for _, d := range devices {
			if as, err := c.store.DeviceAgents(ctx, d.ID); err != nil || len(as) != 1 {
				t.Fatalf("device %s has agents %+v, %v; want one", d.ID, as, err)
			}
		}
	})
}

// TestEnrollRetryAfterClientTimeout: an agent whose enrollment timed out
// (before or after the collector committed it) and that retries with the
// same key gets one agent, whose certificate is for its key.
func TestEnrollRetryAfterClientTimeout(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		c := startCollectorOn(t, dsn)
		rpc := c.conn(t, nil)
		enrollAgain := func(req *agentv1.EnrollRequest) *agentv1.EnrollResponse {
			t.Helper()
			resp, err := rpc.Enroll(context.Background(), req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			return resp
		}
		check := func(serial string, req *agentv1.EnrollRequest, resp *agentv1.EnrollResponse) {
			t.Helper()
			leaf, err := x509.ParseCertificate(resp.GetCertificate())
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := x509.ParseCertificateRequest(req.GetCsr())
			if id, _ := ca.AgentID(leaf); id != resp.GetAgentId() || string(leaf.RawSubjectPublicKeyInfo) != string(csr.RawSubjectPublicKeyInfo) {
				t.Fatalf("%s: certificate for agent %q, response agent %q, or not for the key asked", serial, id, resp.GetAgentId())
			}
			agents, err := c.store.DeviceAgents(context.Background(), resp.GetDeviceId())
			if err != nil || len(agents) != 1 || agents[0].ID != resp.GetAgentId() {
				t.Fatalf("%s: agents %+v, %v; want only %s", serial, agents, err, resp.GetAgentId())
			}
		}

		// Deadlines from far too short to about what an enrollment takes:
		// the first attempt fails before, during or after the commit.
		for i := range 8 {
			serial := fmt.Sprint("SN", i)
			_, der := csr(t)
			req := &agentv1.EnrollRequest{Secret: c.secret, Identity: identity(serial), Csr: der}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1<<i)*time.Millisecond)
			rpc.Enroll(ctx, req)
			cancel()
			check(serial, req, enrollAgain(req))
			check(serial, req, enrollAgain(req)) // and once more
		}

		if !store.IsPostgres(dsn) {
			return
		}
		// On PostgreSQL the commit can be made to come after the client
		// gave up: the enrollment waits on a lock, the client cancels, the
		// lock goes, the enrollment commits; the retry gets that agent.
		release, waiting := holdWriter(t, dsn)
		_, der := csr(t)
		req := &agentv1.EnrollRequest{Secret: c.secret, Identity: identity("LATE"), Csr: der}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := rpc.Enroll(ctx, req); errc <- err }()
		for !waiting() {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-errc; status.Code(err) != codes.Canceled {
			t.Fatalf("cancelled enrollment: %v", err)
		}
		release()
		var orphan store.AgentInfo // what was committed for the client that left
		for orphan.ID == "" {
			devices, err := c.store.ListDevices(context.Background(), store.DeviceFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range devices {
				if d.Hostname == "laptop-LATE" {
					agents, err := c.store.DeviceAgents(context.Background(), d.ID)
					if err != nil || len(agents) != 1 {
						t.Fatalf("agents %+v, %v", agents, err)
					}
					orphan = agents[0]
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		resp := enrollAgain(req)
		check("LATE", req, resp)
		if resp.GetAgentId() != orphan.ID {
			t.Fatalf("retry got agent %s, want %s, enrolled after its client gave up", resp.GetAgentId(), orphan.ID)
		}
	})
}

// TestOverBoundConnRefusedWithRetryAfter: past the bound of connections
// without a certificate from one address, a connection is not cut off
// after its handshake: its calls are refused with ResourceExhausted and a
// retry-after hint, and it is closed soon after, so the client's retry
// dials again; once the address has room, the retry enrolls.
func TestOverBoundConnRefusedWithRetryAfter(t *testing.T) {
	c := startCollector(t, func(cfg *ingest.Config) { cfg.Limits.MaxUnauthConnsPerAddress = 1 })
	ctx := context.Background()
	dial := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: c.ca.Pool(), ServerName: "127.0.0.1"})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	// The address's one connection, held.
	first := dial()
	if _, err := healthpb.NewHealthClient(first).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	second := agentv1.NewAgentServiceClient(dial())
	_, der := csr(t)
	req := &agentv1.EnrollRequest{Secret: c.secret, Identity: identity("BUSY"), Csr: der}
	_, err := second.Enroll(ctx, req)
	wantBusy(t, err)
	devices, err := c.store.ListDevices(ctx, store.DeviceFilter{})
	if err != nil || len(devices) != 0 {
		t.Fatalf("devices after the refusal: %v, %v; want none", devices, err)
	}

	// The address has room again: the retry goes through (on a new
	// connection, once the refused one is closed).
	first.Close()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := second.Enroll(ctx, req)
		if err == nil {
			if as, err := c.store.DeviceAgents(ctx, resp.GetDeviceId()); err != nil || len(as) != 1 {
				t.Fatalf("agents %+v, %v; want one", as, err)
			}
			break
		}
		if code := status.Code(err); code != codes.ResourceExhausted && code != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("retry: %v", err)
		}
	}
}
