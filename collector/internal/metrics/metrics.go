// Package metrics owns the collector's Prometheus registry and metric
// definitions. The edges call it: the gRPC interceptor counts enrollments
// and reports, serve times fleet recomputes, outputs report their backlog
// and failures; what the database knows (alerts, connected agents, agent
// versions) is read from the store at each scrape.
//
// Every method works on a nil *Metrics and does nothing, so a collector
// without --metrics-listen carries no instrumentation.
package metrics

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store is what a scrape reads from the database; *store.Store implements it.
type Store interface {
	Gauges(ctx context.Context, now time.Time) (store.Gauges, error)
}

// Outputs is what the alert outputs report; *Metrics implements it.
type Outputs interface {
	// OutputBacklog sets how many events wait for delivery to output.
	OutputBacklog(output string, n int)
	// OutputFailed counts one failed delivery attempt to output.
	OutputFailed(output string)
	// OutputRemoved drops the series of an output no longer configured.
	OutputRemoved(output string)
}

// Metrics is the collector's registry and its metrics.
type Metrics struct {
	reg            *prometheus.Registry
	log            *slog.Logger
	reports        *prometheus.CounterVec
	enrollments    *prometheus.CounterVec
	ingestSeconds  prometheus.Histogram
	ingestQueue    prometheus.Gauge
	fleetSeconds   prometheus.Histogram
	outputBacklog  *prometheus.GaugeVec
	outputFailures *prometheus.CounterVec
}

// Results of enrollments and reports (the "result" label): the first is
// success, "enrolled" or "stored".
const (
	Rejected = "rejected" // invalid request: the agent must change it
	Refused  = "refused"  // bad secret or certificate, revoked, rate-limited
	Failed   = "failed"   // the collector could not (database, shutdown, timeout)
)

// New makes the registry with the Go and process collectors, the
// collector's metrics, and the gauges read from st at each scrape.
func New(st Store, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: log,
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bonafide_reports_total",
			Help: "Agent reports received, by result: stored (acknowledged as durable; a retried report counts again), rejected, refused or failed.",
		}, []string{"result"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bonafide_enrollments_total",
			Help: "Enrollment calls, by result: enrolled, rejected, refused or failed.",
		}, []string{"result"}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bonafide_ingest_duration_seconds",
			Help:    "Time from receiving a Report call to answering it: validation, rule evaluation and the durable commit.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		ingestQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bonafide_ingest_queue_depth",
			Help: "Report calls received and not yet answered: waiting for, or being committed by, the store's group-commit writer.",
		}),
		fleetSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bonafide_fleet_recompute_duration_seconds",
			Help:    "Duration of full fleet recomputes (clusters and risk scores) run by this replica.",
			Buckets: prometheus.ExponentialBuckets(.01, 4, 9),
		}),
		outputBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bonafide_output_backlog",
			Help: "Alert events waiting for delivery, by output.",
		}, []string{"output"}),
		outputFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bonafide_output_delivery_failures_total",
			Help: "Failed delivery attempts, by output.",
		}, []string{"output"}),
	}
	for _, r := range []string{"stored", Rejected, Refused, Failed} {
		m.reports.WithLabelValues(r)
	}
	for _, r := range []string{"enrolled", Rejected, Refused, Failed} {
		m.enrollments.WithLabelValues(r)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reports, m.enrollments, m.ingestSeconds, m.ingestQueue, m.fleetSeconds,
		m.outputBacklog, m.outputFailures,
		&gauges{st: st},
	)
	return m
}

// Handler serves the metrics in the Prometheus exposition formats. A
// failed read of the database is logged and leaves its metrics out of that
// scrape; the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// UnaryInterceptor counts Enroll and Report calls by result and times
// Report calls. Put it first, so that calls refused by authentication
// count too.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m == nil {
		return handler(ctx, req)
	}
	switch info.FullMethod {
	case agentv1.AgentService_Enroll_FullMethodName:
		resp, err := handler(ctx, req)
		m.enrollments.WithLabelValues(result(err, "enrolled")).Inc()
		return resp, err
	case agentv1.AgentService_Report_FullMethodName:
		m.ingestQueue.Inc()
		start := time.Now()
		resp, err := handler(ctx, req)
		m.ingestQueue.Dec()
		m.ingestSeconds.Observe(time.Since(start).Seconds())
		r, _ := req.(*agentv1.ReportRequest)
		m.reports.WithLabelValues(result(err, "stored")).Add(float64(len(r.GetReports())))
		return resp, err
	}
	return handler(ctx, req)
}

// result names the outcome of a call that returned err.
func result(err error, ok string) string {
	switch status.Code(err) {
	case codes.OK:
		return ok
	case codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange:
		return Rejected
	case codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted:
		return Refused
	default:
		return Failed
	}
}

// FleetRecomputed records the duration of one full fleet recompute.
func (m *Metrics) FleetRecomputed(d time.Duration) {
	if m != nil {
		m.fleetSeconds.Observe(d.Seconds())
	}
}

// OutputBacklog sets how many events wait for delivery to output.
func (m *Metrics) OutputBacklog(output string, n int) {
	if m != nil {
		m.outputBacklog.WithLabelValues(output).Set(float64(n))
	}
}

// OutputFailed counts one failed delivery attempt to output.
func (m *Metrics) OutputFailed(output string) {
	if m != nil {
		m.outputFailures.WithLabelValues(output).Inc()
	}
}

// OutputRemoved drops the series of an output no longer configured.
func (m *Metrics) OutputRemoved(output string) {
	if m != nil {
		m.outputBacklog.DeleteLabelValues(output)
		m.outputFailures.DeleteLabelValues(output)
	}
}

// gauges reads the database's numbers at each scrape.
type gauges struct{ st Store }

var (
	alertsRaisedDesc = prometheus.NewDesc("bonafide_alerts_raised_total",
		"Alerts raised, by rule and severity (each alert once, however often it fired or re-opened; read from the database, so the same on every replica).",
		[]string{"rule", "severity"}, nil)
	alertsOpenDesc = prometheus.NewDesc("bonafide_alerts_open",
		"Alerts in status open, by severity (read from the database).", []string{"severity"}, nil)
	agentsConnectedDesc = prometheus.NewDesc("bonafide_agents_connected",
		"Agents (not revoked) that reported within three report intervals (read from the database).", nil, nil)
	agentVersionsDesc = prometheus.NewDesc("bonafide_agent_versions",
		"Devices (not revoked) by the agent version they last reported (read from the database).", []string{"version"}, nil)
)

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- alertsRaisedDesc
	ch <- alertsOpenDesc
	ch <- agentsConnectedDesc
	ch <- agentVersionsDesc
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := g.st.Gauges(ctx, time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(alertsOpenDesc, err)
		return
	}
	type ruleSev struct{ rule, severity string }
	raised := map[ruleSev]int{}
	open := map[string]int{}
	for _, sev := range store.Severities {
		open[sev] = 0
	}
	for _, a := range s.Alerts {
		raised[ruleSev{a.RuleID, a.Severity}] += a.N
		if a.Status == store.StatusOpen {
			open[a.Severity] += a.N
		}
	}
	for k, n := range raised {
		ch <- prometheus.MustNewConstMetric(alertsRaisedDesc, prometheus.CounterValue, float64(n), k.rule, k.severity)
	}
	for sev, n := range open {
		ch <- prometheus.MustNewConstMetric(alertsOpenDesc, prometheus.GaugeValue, float64(n), sev)
	}
	ch <- prometheus.MustNewConstMetric(agentsConnectedDesc, prometheus.GaugeValue, float64(s.ConnectedAgents))
	versions := map[string]int{}
	for _, v := range s.AgentVersions {
		versions[cmp.Or(v.Key, "unknown")] += v.N
	}
	for v, n := range versions {
		ch <- prometheus.MustNewConstMetric(agentVersionsDesc, prometheus.GaugeValue, float64(n), v)
	}
}
