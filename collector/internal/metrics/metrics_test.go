package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type fakeStore struct {
	g   store.Gauges
	err error
}

func (f *fakeStore) Gauges(context.Context, time.Time) (store.Gauges, error) { return f.g, f.err }

// scrape GETs /metrics from h and returns each sample line's value by
// series ("name{labels}").
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func call(m *Metrics, method string, req any, err error) {
	info := &grpc.UnaryServerInfo{FullMethod: method}
	m.UnaryInterceptor(context.Background(), req, info, func(context.Context, any) (any, error) { return nil, err })
}

func reports(n int) *agentv1.ReportRequest {
	return &agentv1.ReportRequest{Reports: make([]*agentv1.Report, n)}
}

func TestMetricsCountCallsByResult(t *testing.T) {
	m := New(&fakeStore{}, slog.New(slog.DiscardHandler))
	report, enroll := agentv1.AgentService_Report_FullMethodName, agentv1.AgentService_Enroll_FullMethodName
	call(m, report, reports(3), nil)
	call(m, report, reports(2), nil)
	call(m, report, reports(1), status.Error(codes.InvalidArgument, "bad"))
	call(m, report, reports(4), status.Error(codes.Unauthenticated, "who"))
	call(m, report, reports(1), status.Error(codes.Unavailable, "db"))
	call(m, enroll, &agentv1.EnrollRequest{}, nil)
	call(m, enroll, &agentv1.EnrollRequest{}, status.Error(codes.PermissionDenied, "secret"))
	call(m, enroll, &agentv1.EnrollRequest{}, status.Error(codes.ResourceExhausted, "slow down"))
	call(m, agentv1.AgentService_CheckIn_FullMethodName, &agentv1.CheckInRequest{}, nil)
	m.FleetRecomputed(30 * time.Millisecond)
	m.OutputBacklog("siem", 7)
	m.OutputFailed("siem")
	m.OutputFailed("siem")
	m.OutputBacklog("chat", 1)
	m.OutputFailed("chat")
	m.OutputRemoved("chat")

	got := scrape(t, m.Handler())
	for series, want := range map[string]float64{
		`bonafide_reports_total{result="stored"}`:                     5,
		`bonafide_reports_total{result="rejected"}`:                   1,
		`bonafide_reports_total{result="refused"}`:                    4,
		`bonafide_reports_total{result="failed"}`:                     1,
		`bonafide_enrollments_total{result="enrolled"}`:               1,
		`bonafide_enrollments_total{result="refused"}`:                2,
		`bonafide_enrollments_total{result="rejected"}`:               0,
		`bonafide_ingest_duration_seconds_count`:                      5,
		`bonafide_ingest_queue_depth`:                                 0,
		`bonafide_fleet_recompute_duration_seconds_count`:             1,
		`bonafide_fleet_recompute_duration_seconds_bucket{le="0.04"}`: 1,
		`bonafide_output_backlog{output="siem"}`:                      7,
		`bonafide_output_delivery_failures_total{output="siem"}`:      2,
		`bonafide_agents_connected`:                                   0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	for _, gone := range []string{`bonafide_output_backlog{output="chat"}`, `bonafide_output_delivery_failures_total{output="chat"}`} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s still served after OutputRemoved", gone)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go collector metrics")
	}
	if _, ok := got["process_open_fds"]; !ok {
		t.Error("no process collector metrics")
	}
}

// TestMetricsQueueDepth holds a Report call inside the handler and sees it
// queued.
func TestMetricsQueueDepth(t *testing.T) {
	m := New(&fakeStore{}, slog.New(slog.DiscardHandler))
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.UnaryInterceptor(context.Background(), reports(1), &grpc.UnaryServerInfo{FullMethod: agentv1.AgentService_Report_FullMethodName},
			func(context.Context, any) (any, error) { close(inside); <-release; return nil, nil })
	}()
	<-inside
	if v := scrape(t, m.Handler())["bonafide_ingest_queue_depth"]; v != 1 {
		t.Errorf("queue depth %v with one call inside, want 1", v)
	}
	close(release)
	<-done
	if v := scrape(t, m.Handler())["bonafide_ingest_queue_depth"]; v != 0 {
		t.Errorf("queue depth %v after the call, want 0", v)
	}
}

func TestMetricsGaugesFromStore(t *testing.T) {
	st := &fakeStore{g: store.Gauges{
		Alerts: []store.AlertCount{
			{RuleID: "remote_tool", Severity: "high", Status: "open", N: 3},
			{RuleID: "remote_tool", Severity: "high", Status: "resolved", N: 2},
			{RuleID: "agent_silent", Severity: "medium", Status: "acknowledged", N: 1},
		},
		ConnectedAgents: 4,
		AgentVersions:   []store.Count{{Key: "1.2.0", N: 3}, {Key: "", N: 1}},
	}}
	m := New(st, slog.New(slog.DiscardHandler))
	got := scrape(t, m.Handler())
	for series, want := range map[string]float64{
		`bonafide_alerts_raised_total{rule="remote_tool",severity="high"}`:    5,
		`bonafide_alerts_raised_total{rule="agent_silent",severity="medium"}`: 1,
		`bonafide_alerts_open{severity="high"}`:                               3,
		`bonafide_alerts_open{severity="medium"}`:                             0,
		`bonafide_alerts_open{severity="critical"}`:                           0,
		`bonafide_agents_connected`:                                           4,
		`bonafide_agent_versions{version="1.2.0"}`:                            3,
		`bonafide_agent_versions{version="unknown"}`:                          1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}

	// The database failing leaves its metrics out; the rest is served.
	st.err = errors.New("database is locked")
	got = scrape(t, m.Handler())
	if _, ok := got["bonafide_agents_connected"]; ok {
		t.Error("gauges served although the store failed")
	}
	if _, ok := got[`bonafide_reports_total{result="stored"}`]; !ok {
		t.Error("a failing store hid the other metrics")
	}
}

// A nil *Metrics (no --metrics-listen) does nothing and passes calls on.
func TestMetricsNil(t *testing.T) {
	var m *Metrics
	called := false
	m.UnaryInterceptor(context.Background(), reports(1), &grpc.UnaryServerInfo{FullMethod: agentv1.AgentService_Report_FullMethodName},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	m.FleetRecomputed(time.Second)
	m.OutputBacklog("x", 1)
	m.OutputFailed("x")
	m.OutputRemoved("x")
	if !called {
		t.Error("the handler was not called")
	}
}
