package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/api"
	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/metrics"
	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/presence"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/ui"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"golang.org/x/sync/errgroup"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type serveConfig struct {
	common
	grpcListen, httpListen string
	policies               string
	tlsCert, tlsKey        string
	serverNames            listFlag
	logFormat              string
	ingest                 ingest.Config
	sweepInterval          time.Duration
	fleetInterval          time.Duration
	retention              retentionFlags
	secureCookies          bool
	geoip                  listFlag
	proxyProtocol          bool
	reloadInterval         time.Duration
	publicAddress          string
	agentDir               string
	metricsListen          string
	pprof                  bool
	publicURL              string
	outputs                string
	oidc                   oidcFlags
	dbKeyFile              string
	presence               presence.Config
}

// advertise is the gRPC address agents are told to dial in install
// commands: --public-address, else the first --server-name (or this
// host's name) with the --grpc-listen port.
func (c *serveConfig) advertise() string {
	if c.publicAddress != "" {
		return c.publicAddress
	}
	_, port, err := net.SplitHostPort(c.grpcListen)
	if err != nil || port == "" {
		port = "8443"
	}
	host := ""
	if len(c.serverNames) > 0 {
		host = c.serverNames[0]
	} else if h, err := os.Hostname(); err == nil {
		host = h
	}
	return net.JoinHostPort(cmp.Or(host, "localhost"), port)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fset := newFlagSet("serve", stderr)
	var c serveConfig
	c.register(fset)
	fset.StringVar(&c.grpcListen, "grpc-listen", ":8443", "address for agent gRPC (TLS)")
	fset.StringVar(&c.httpListen, "http-listen", ":8080", "address for the HTTP API")
	fset.StringVar(&c.policies, "policies", "", "policy directory (default: the embedded policies)")
	fset.StringVar(&c.tlsCert, "tls-cert", "", "server certificate (PEM) to use instead of one issued by the collector's CA")
	fset.StringVar(&c.tlsKey, "tls-key", "", "key of --tls-cert")
	fset.Var(&c.serverNames, "server-name", "extra DNS name or IP for the generated server certificate (repeatable)")
	fset.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fset.DurationVar(&c.ingest.ScanInterval, "scan-interval", 5*time.Minute, "how often agents scan in full")
	fset.DurationVar(&c.ingest.HeartbeatInterval, "heartbeat-interval", 5*time.Minute, "how often agents report when nothing changed")
	fset.DurationVar(&c.ingest.CheckInInterval, "checkin-interval", time.Hour, "how often agents check in for configuration")
	fset.IntVar(&c.ingest.MaxEnrollments, "max-enrollments", 128, "enrollments in progress at once; more are refused at once with ResourceExhausted and a retry-after hint, which agents honour (0: unbounded)")
	fset.IntVar(&c.ingest.MaxInFlightReports, "max-inflight-reports", 512, "agent report calls in progress at once; more are refused like enrollments (0: unbounded)")
	fset.DurationVar(&c.ingest.Limits.CallTimeout, "grpc-call-timeout", ingest.DefaultCallTimeout, "longest an agent call may take, including receiving its request (a stream whose request never comes is dropped then)")
	fset.IntVar(&c.ingest.Limits.MaxConnsPerAddress, "max-conns-per-address", ingest.DefaultMaxConnsPerAddress, "gRPC connections one address may hold open (trusted proxies exempt; an office behind NAT holds one per laptop)")
	fset.IntVar(&c.ingest.Limits.MaxUnauthConnsPerAddress, "max-unauth-conns-per-address", ingest.DefaultMaxUnauthConnsPerAddress, "gRPC connections without a client certificate (enrollment) one client address may hold open")
	fset.DurationVar(&c.ingest.Limits.UnauthConnLifetime, "unauth-conn-lifetime", ingest.DefaultUnauthConnLifetime, "how long a gRPC connection without a client certificate may stay open")
	fset.Int64Var(&c.ingest.Quota.Reports, "agent-reports-per-day", 5000, "reports one agent may store per UTC day; past it its reports are refused until the next day and agent_report_flood is raised (0: unbounded)")
	fset.Int64Var(&c.ingest.Quota.Bytes, "agent-bytes-per-day", 64<<20, "bytes of reports one agent may store per UTC day, like --agent-reports-per-day (0: unbounded)")
	fset.DurationVar(&c.sweepInterval, "sweep-interval", time.Minute, "how often time-based rules (agent_silent) are evaluated")
	fset.Var(&c.geoip, "geoip", "MaxMind-format GeoIP database (City, Country or ASN schema; DB-IP and ip-location-db files work too); repeatable")
	fset.Var(&c.ingest.TrustedProxies, "trusted-proxy", "address or CIDR of a proxy or load balancer whose PROXY-protocol header or x-forwarded-for / forwarded metadata is believed; repeatable")
	fset.BoolVar(&c.secureCookies, "secure-cookies", false, "mark the web UI's session cookie Secure (set it when users reach the collector through TLS, e.g. a TLS-terminating proxy)")
	fset.DurationVar(&c.fleetInterval, "fleet-recompute-interval", time.Hour, "how often clusters and risk scores are recomputed over the whole fleet (also at start; 0: only at start)")
	c.retention.register(fset)
	fset.DurationVar(&c.reloadInterval, "policy-reload-interval", 2*time.Second, "how often the --policies directory is checked for edits (0: never)")
	fset.StringVar(&c.publicURL, "public-url", "", "the web UI's base URL as users reach it (https://bonafide.example.com); single sign-on redirects to it")
	c.oidc.register(fset)
	fset.StringVar(&c.publicAddress, "public-address", "", "host:port agents dial for gRPC, shown in the UI's install commands (default: the first --server-name, else this host's name, with the --grpc-listen port)")
	fset.StringVar(&c.agentDir, "agent-dir", "", "directory of agent binaries the UI builds pre-configured packages from (default $BONAFIDE_AGENT_DIR, "+defaultAgentDir+" or dist/agents)")
	fset.StringVar(&c.metricsListen, "metrics-listen", "", "address for Prometheus metrics at /metrics (default: none)")
	fset.BoolVar(&c.pprof, "pprof", false, "also serve Go's runtime profiles (net/http/pprof) at /debug/pprof/ on the --metrics-listen listener")
	fset.StringVar(&c.outputs, "outputs", "", "YAML file of alert outputs (webhook, slack, teams, syslog, ocsf), reloaded when edited like --policies (links to alerts need --public-url)")
	fset.StringVar(&c.dbKeyFile, "db-key-file", "", "with --db postgres://…: file of the database key (32 bytes, base64 or hex) that seals the CA and server keys kept in the database; $"+dbKeyEnv+" takes precedence (default: <data-dir>/db.key, created by the first collector of a deployment)")
	idpFile := fset.String("idp", "", "YAML file of identity-provider connectors (okta, entra, google) whose sign-ins are pulled, stored and joined to the fleet")
	fset.DurationVar(&c.presence.Expiry, "presence-expiry", presence.DefaultExpiry, "how long a person has to answer a presence check (and then the agent to report); checks need --public-url")
	fset.IntVar(&c.presence.DailyCap, "presence-daily-cap", presence.DefaultDailyCap, "presence checks per person in 24 hours (0: no cap)")
	fset.Var((*listFlag)(&c.presence.AutoRules), "presence-auto-rule", "rule id or pattern (remote_*) whose alert, when it opens, asks the laptop's person for a presence check automatically (repeatable)")
	fset.BoolVar(&c.proxyProtocol, "proxy-protocol", false, "expect a PROXY protocol v1/v2 header on gRPC connections from --trusted-proxy addresses")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if c.pprof && c.metricsListen == "" {
		return errors.New("--pprof needs --metrics-listen: profiles are served on the metrics listener")
	}
	log := newLogger(stderr, c.logFormat)
	sso, err := c.oidc.config(c.publicURL, os.Getenv)
	if err != nil {
		return err
	}

	var policyFS fs.FS = policies.FS()
	if c.policies != "" {
		var err error
		if policyFS, err = policyDir(c.policies); err != nil {
			return err
		}
	}
	rules, err := detect.Load(policyFS)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	log.Info("policies loaded", "rules", len(rules.Rules()), "digest", rules.Digest())
	cats, err := loadCatalogs(policyFS)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	log.Info("catalogs loaded", catalogLogAttrs(cats)...)
	c.ingest.Catalogs, c.ingest.KVM, c.ingest.Media, c.ingest.Routers = cats.Agent, cats.KVM, cats.Media, cats.Routers

	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	st, err := store.Open(ctx, c.dsn(), log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := withPlaces(st); err != nil {
		return err
	}
	if c.ingest.Locator, err = locator(cats.Networks, c.geoip, log); err != nil {
		return err
	}
	if c.ingest.Locator.GeoIP != nil {
		defer c.ingest.Locator.GeoIP.Close()
	}
	log.Info("database open", "engine", st.Dialect())

	var authority *ca.Authority
	var sealer *ca.Sealer
	if st.Dialect() == store.Postgres {
		// Replicas share the CA through the database (replica.go).
		if authority, sealer, err = sharedAuthority(ctx, st, c.dbKeyFile, c.dataDir, log); err != nil {
			return err
		}
	} else {
		var created bool
		if authority, created, err = ca.LoadOrCreate(c.dataDir); err != nil {
			return err
		}
		if created {
			log.Info("created CA", "cert", filepath.Join(c.dataDir, "ca.crt"))
		}
	}
	log.Info("CA fingerprint (agents pin this with --ca-fingerprint)", "sha256", authority.Fingerprint())

	var serverCert tls.Certificate
	switch {
	case c.tlsCert != "":
		serverCert, err = tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	case sealer != nil:
		serverCert, err = sharedServerCertificate(ctx, st, authority, sealer, c.serverNames, log)
	default:
		serverCert, err = authority.ServerCertificate(c.dataDir, c.serverNames)
	}
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	if err := firstRun(ctx, st, c.dataDir, log); err != nil {
		return err
	}

	live := detect.NewLive(rules, time.Now())
	live.SetCatalogs(catalogVersions(cats))
	if _, err := st.SyncRuleOverrides(ctx, live); err != nil {
		return err
	}
	if err := st.RecordPolicyVersion(ctx, rules.Digest(), ruleIDs(rules), time.Now()); err != nil {
		return err
	}
	c.presence.PublicURL, c.presence.TrustedProxies = c.publicURL, c.ingest.TrustedProxies
	pres, err := presence.New(st, live, c.presence, log)
	if err != nil {
		return err
	}
	c.ingest.Presence = pres
	svc, err := ingest.New(st, authority, live, c.ingest, log)
	if err != nil {
		return err
	}
	var m *metrics.Metrics
	if c.metricsListen != "" {
		m = metrics.New(st, log)
	}
	gs, hs := svc.GRPCServer(serverCert, m.UnaryInterceptor)
	pullers, err := idpPullers(ctx, *idpFile, st, svc, c.ingest.Locator.GeoIP, live, log)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	oopts := outputs.Options{Collector: c.publicURL, Version: version}
	if m != nil {
		oopts.Metrics = m
	}
	outs := outputs.New(st, log, oopts)
	if c.outputs != "" {
		if _, err := outs.Reload(c.outputs, time.Now()); err != nil {
			return fmt.Errorf("outputs: %w", err)
		}
		log.Info("outputs loaded", "file", c.outputs)
	}
	apiSrv := api.New(st, log, live)
	apiSrv.SetOutputs(outs)
	apiSrv.SetPresence(pres)
	mux.Handle("/api/", apiSrv)
	mux.Handle("/presence/", pres.Handler())
	web, err := ui.New(st, log, ui.Options{SecureCookies: c.secureCookies, Live: live, Collector: c.advertise(), CAFingerprint: authority.Fingerprint(), Version: version, AgentDir: agentDir(c.agentDir), OIDC: sso, Outputs: outs})
	if err != nil {
		return err
	}
	mux.Handle("/ui/", web)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}

	gl, err := net.Listen("tcp", c.grpcListen)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	gl = ingest.LimitListener(gl, c.ingest.Limits.MaxConnsPerAddress, c.ingest.TrustedProxies)
	if c.proxyProtocol {
		if len(c.ingest.TrustedProxies) == 0 {
			gl.Close()
			return errors.New("--proxy-protocol needs --trusted-proxy")
		}
		gl = proxyproto.NewListener(gl, c.ingest.TrustedProxies, 10*time.Second)
	}
	hl, err := net.Listen("tcp", c.httpListen)
	if err != nil {
		gl.Close()
		return fmt.Errorf("http listen: %w", err)
	}
	msrv := &http.Server{ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	var ml net.Listener
	if m != nil {
		if ml, err = net.Listen("tcp", c.metricsListen); err != nil {
			gl.Close()
			hl.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", m.Handler())
		if c.pprof {
			registerPprof(mmux)
			msrv.WriteTimeout = 2 * time.Minute // CPU profiles and traces of up to that long
		}
		msrv.Handler = mmux
		log.Info("metrics listening", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	log.Info("collector ready", "grpc", gl.Addr().String(), "http", "http://"+hl.Addr().String(), "version", version)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gs.Serve(gl) })
	g.Go(func() error {
		if err := hsrv.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if ml != nil {
		g.Go(func() error {
			if err := msrv.Serve(ml); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error { return sweepLoop(gctx, st, live, c.sweepInterval, log) })
	g.Go(func() error { return fleetLoop(gctx, st, c.fleetInterval, m, log) })
	g.Go(func() error { return pruneLoop(gctx, st, c.retention, log) })
	if st.Dialect() == store.Postgres {
		host, _ := os.Hostname()
		name := cmp.Or(host, "collector") + " " + gl.Addr().String()
		g.Go(func() error {
			return replicaLoop(gctx, st, name, c.sweepInterval, func() map[string]string { return replicaSettings(&c, live) }, log)
		})
	}
	if c.policies != "" && c.reloadInterval > 0 {
		g.Go(func() error { return policyWatch(gctx, live, svc, st, c.policies, c.reloadInterval, log) })
	}
	g.Go(func() error { return outs.Run(gctx) })
	for _, p := range pullers {
		g.Go(func() error { return p.Run(gctx) })
	}
	g.Go(func() error { return pres.Run(gctx, 10*time.Second) })
	if c.outputs != "" && c.reloadInterval > 0 {
		g.Go(func() error { return outs.Watch(gctx, c.outputs, c.reloadInterval) })
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		hs.Shutdown()
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			gs.Stop()
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msrv.Shutdown(sctx)
		return hsrv.Shutdown(sctx)
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil // a signal asked us to stop
	}
	return err
}

// sweepLockKey names the fleet-wide sweep job's advisory lock.
const sweepLockKey = 0x626f6e6166696401

// sweepLoop evaluates time-based device rules periodically, on the one
// replica holding the sweep's lease. Every replica first takes the rules administrators disabled
// in the UI, so that an edit made on one reaches all.
func sweepLoop(ctx context.Context, st *store.Store, rules *detect.Live, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	j := newJob(st, "sweep", sweepLockKey, log)
	defer j.release()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if changed, err := st.SyncRuleOverrides(ctx, rules); err != nil && ctx.Err() == nil {
			log.Error("rule overrides", "err", err)
		} else if changed {
			log.Info("rule overrides changed", "disabled", rules.Disabled())
		}
		if !j.mine(ctx) {
			continue
		}
		n, err := st.Sweep(ctx, rules, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Error("sweep", "err", err)
		} else if n > 0 {
			log.Debug("sweep", "devices", n)
		}
	}
}

// fleetLockKey names the full fleet recompute's advisory lock.
const fleetLockKey = 0x626f6e6166696402

// fleetLoop recomputes clusters and risk scores over the whole fleet at
// start and then every interval, on the one replica holding the job's
// lease (another takes it over within an interval when it dies). Reports keep
// them current in between; this pass catches what reports cannot see.
func fleetLoop(ctx context.Context, st *store.Store, every time.Duration, m *metrics.Metrics, log *slog.Logger) error {
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	j := newJob(st, "fleet recompute", fleetLockKey, log)
	defer j.release()
	for {
		if j.mine(ctx) {
			start := time.Now()
			if _, err := st.RefreshSigninKeys(ctx, start); err != nil && ctx.Err() == nil {
				log.Error("sign-in keys", "err", err)
			}
			stats, err := st.RecomputeFleet(ctx, start)
			if err != nil && ctx.Err() == nil {
				log.Error("fleet recompute", "err", err)
			} else if err == nil {
				m.FleetRecomputed(time.Since(start))
				log.Info("fleet recomputed", "devices", stats.Devices, "clusters", stats.Clusters, "moved", stats.Moved,
					"scores_changed", stats.Scores, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// policyWatch reloads the rules and the catalogs (see reloadPolicies) when
// files under dir change.
func policyWatch(ctx context.Context, live *detect.Live, svc *ingest.Server, st *store.Store, dir string, every time.Duration, log *slog.Logger) error {
	fsys := os.DirFS(dir)
	last, _ := detect.Fingerprint(fsys)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fp, err := detect.Fingerprint(fsys)
		if err != nil || fp == last {
			continue
		}
		last = fp
		reloadPolicies(ctx, fsys, live, svc, st, time.Now(), log.With("dir", dir))
	}
}

// reloadPolicies loads the rules and the catalogs (agent catalogs, the KVM
// catalog, the networks catalog with the declared offices) of an edited
// policy tree. Rules and catalogs are taken independently; a part that
// does not load is refused: its last good version stays active and the
// error is logged and shown by GET /api/v1/policies until an edit loads.
// Every newly active rule set is recorded in the policy versions.
func reloadPolicies(ctx context.Context, fsys fs.FS, live *detect.Live, svc *ingest.Server, st *store.Store, now time.Time, log *slog.Logger) {
	changed, rerr := live.Reload(fsys, now)
	switch {
	case rerr != nil:
		log.Error("policy edit refused; the last good rule set stays active", "err", rerr)
	case changed:
		e := live.Engine()
		log.Info("policies reloaded", "rules", len(e.Rules()), "digest", e.Digest())
		if err := st.RecordPolicyVersion(ctx, e.Digest(), ruleIDs(e), now); err != nil {
			log.Error("record policy version", "err", err)
		}
	}
	cats, cerr := loadCatalogs(fsys)
	if cerr != nil {
		log.Error("policy edit refused; the last good catalogs stay active", "err", cerr)
	} else if vs := catalogVersions(cats); !maps.Equal(vs, live.Status().Catalogs) {
		svc.SetCatalogs(cats)
		live.SetCatalogs(vs)
		log.Info("catalogs reloaded", catalogLogAttrs(cats)...)
	}
	live.SetError(errors.Join(rerr, cerr), now)
}

func ruleIDs(e *detect.Engine) []string {
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

// firstRun creates an admin API token the first time the collector starts on
// an empty database and writes it to the data dir (mode 0600); the token
// is revoked once an enabled admin user exists.
func firstRun(ctx context.Context, st *store.Store, dataDir string, log *slog.Logger) error {
	acc := accounts.New(st)
	path := filepath.Join(dataDir, "first-run-credentials.txt")
	// Once an enabled admin user exists, the first-run token is revoked.
	if retired, err := acc.RetireFirstRunToken(ctx, "system"); err != nil {
		return err
	} else if retired {
		log.Info("revoked the first-run admin API token: an admin user exists", "file", path)
	}
	if _, err := os.Stat(path); err == nil {
		log.Info("first-run credentials", "file", path)
		return nil
	}
	has, err := acc.HasTokens(ctx)
	if err != nil || has {
		return err
	}
	plain, err := acc.CreateFirstRunToken(ctx)
	if err != nil {
		return err
	}
	content := fmt.Sprintf("# bonafide collector first-run credentials. Keep this file secret.\n"+
		"# Use as: curl -H \"Authorization: Bearer $TOKEN\" http://HOST:8080/api/v1/alerts\n"+
		"admin_api_token=%s\n", plain)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write first-run credentials: %w", err)
	}
	log.Info("created first-run admin API token", "file", path)
	return nil
}

// policyDir is the policy directory dir, which must exist: a mistyped
// path is an error, not an empty rule set.
func policyDir(dir string) (fs.FS, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("policy directory %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("policy directory: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("policy directory %s is not a directory", dir)
	}
	return os.DirFS(dir), nil
}

// policyFile reads a file of the policy tree, else the embedded one.
func policyFile(policyFS fs.FS, name string) ([]byte, error) {
	b, err := fs.ReadFile(policyFS, name)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = fs.ReadFile(policies.FS(), name)
	}
	return b, err
}

// locator opens the GeoIP databases; networks is the networks catalog
// (see networksCatalog).
func locator(networks *policies.NetworksCatalog, geoip []string, log *slog.Logger) (*ingest.Locator, error) {
	l := &ingest.Locator{Networks: networks}
	var err error
	if len(geoip) == 0 {
		log.Warn("no GeoIP database (--geoip): egress locations are unknown and location rules say so; `make geoip` installs free databases")
		return l, nil
	}
	if l.GeoIP, err = geo.Open(geoip...); err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	for _, i := range l.GeoIP.Info() {
		log.Info("GeoIP database loaded", "file", i.Path, "type", i.DatabaseType, "built", i.BuildTime)
	}
	return l, nil
}

// networksCatalog is the networks catalog of the policy tree (else the
// embedded one) with the declared offices of allowlist/offices.yaml, when
// the tree has one, merged in.
func networksCatalog(policyFS fs.FS) (*policies.NetworksCatalog, error) {
	b, err := policyFile(policyFS, policies.NetworksFile)
	if err != nil {
		return nil, err
	}
	networks, err := policies.ParseNetworks(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", policies.NetworksFile, err)
	}
	b, err = fs.ReadFile(policyFS, policies.OfficesFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return networks, nil
	case err != nil:
		return nil, err
	}
	offices, err := policies.ParseNetworks(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", policies.OfficesFile, err)
	}
	networks.Merge(offices)
	return networks, nil
}

// loadCatalogs loads everything of a policy tree the collector uses
// besides the rules: the agent catalogs, the KVM catalog and the networks
// catalog with the declared offices. Errors name their file; all are
// reported together.
func loadCatalogs(policyFS fs.FS) (ingest.Catalogs, error) {
	agent, kvm, aerr := agentCatalogs(policyFS)
	networks, nerr := networksCatalog(policyFS)
	media, merr := collectorCatalog(policyFS, policies.MediaFile, policies.ParseMedia)
	routers, rerr := collectorCatalog(policyFS, policies.RoutersFile, policies.ParseRouters)
	if err := errors.Join(aerr, nerr, merr, rerr); err != nil {
		return ingest.Catalogs{}, err
	}
	return ingest.Catalogs{Agent: agent, KVM: kvm, Networks: networks, Media: media, Routers: routers}, nil
}

// collectorCatalog loads a catalog only the collector matches against
// (media, routers) from the policy tree, else the embedded one; errors
// name the file.
func collectorCatalog[T any](policyFS fs.FS, name string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := policyFile(policyFS, name)
	if err != nil {
		return zero, err
	}
	c, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// catalogVersions names the versions of c's catalogs, as shown by
// GET /api/v1/policies; "networks" includes the declared offices.
func catalogVersions(c ingest.Catalogs) map[string]string {
	vs := map[string]string{}
	for _, a := range c.Agent {
		vs[a.GetName()] = a.GetVersion()
	}
	if c.KVM != nil {
		vs["kvm"] = c.KVM.Version
	}
	if c.Networks != nil {
		vs["networks"] = c.Networks.Version
	}
	if c.Media != nil {
		vs["media"] = c.Media.Version
	}
	if c.Routers != nil {
		vs["routers"] = c.Routers.Version
	}
	return vs
}

// catalogLogAttrs are c's catalog versions (abbreviated) for a log line.
func catalogLogAttrs(c ingest.Catalogs) []any {
	vs := catalogVersions(c)
	var attrs []any
	for _, k := range slices.Sorted(maps.Keys(vs)) {
		v := vs[k]
		attrs = append(attrs, k, v[:min(len(v), 12)])
	}
	if c.Networks != nil {
		attrs = append(attrs, "offices", len(c.Networks.Offices))
	}
	return attrs
}

// agentCatalogs are the catalogs agents match locally, sent at CheckIn:
// each from the policy tree, else the embedded one. It also returns the
// parsed KVM catalog, which the collector matches against itself. Errors
// name their file; both catalogs are checked.
func agentCatalogs(policyFS fs.FS) ([]*agentv1.Catalog, *policies.KVMCatalog, error) {
	var errs []error
	ra, err := policyFile(policyFS, policies.RemoteAccessFile)
	var raCat *policies.RemoteAccessCatalog
	if err == nil {
		if raCat, err = policies.ParseRemoteAccess(ra); err != nil {
			err = fmt.Errorf("%s: %w", policies.RemoteAccessFile, err)
		}
	}
	errs = append(errs, err)
	kvm, err := policyFile(policyFS, policies.KVMFile)
	var kvmCat *policies.KVMCatalog
	if err == nil {
		if kvmCat, err = policies.ParseKVM(kvm); err != nil {
			err = fmt.Errorf("%s: %w", policies.KVMFile, err)
		}
	}
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return []*agentv1.Catalog{
		{Name: "remote_access", Version: raCat.Version, Content: ra},
		{Name: "kvm", Version: kvmCat.Version, Content: kvm},
	}, kvmCat, nil
}
