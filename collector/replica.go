package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// A collector on PostgreSQL keeps its CA and its gRPC server certificate in
// the database, so that replicas share them without shared files: a replica
// started with --db postgres://… on an empty data dir uses the
// deployment's CA. The private keys are sealed with the database key
// (AES-256-GCM) that every replica is given: $BONAFIDE_DB_KEY, else the
// file --db-key-file, else <data-dir>/db.key. The first collector of a
// deployment, given none, writes a new one to <data-dir>/db.key; the others
// need a copy. A SQLite collector keeps its CA in its data dir as before.

// dbKeyEnv names the environment variable holding the database key.
const dbKeyEnv = "BONAFIDE_DB_KEY"

// Names of the key material rows.
const (
	caMaterial     = "ca"
	serverMaterial = "server"
)

// databaseKey returns the sealer of the database key (see above). When no
// key is given and mayCreate, a new key is written to <data-dir>/db.key.
func databaseKey(getenv func(string) string, file, dataDir string, mayCreate bool, log *slog.Logger) (*ca.Sealer, error) {
	if v := getenv(dbKeyEnv); v != "" {
		key, err := ca.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dbKeyEnv, err)
		}
		return ca.NewSealer(key)
	}
	explicit := file != ""
	if !explicit {
		file = filepath.Join(dataDir, "db.key")
	}
	b, err := readCapped(file, 1024)
	switch {
	case err == nil:
		key, err := ca.ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return ca.NewSealer(key)
	case !errors.Is(err, os.ErrNotExist) || explicit:
		return nil, fmt.Errorf("database key: %w", err)
	case !mayCreate:
		return nil, fmt.Errorf("the database holds this deployment's sealed CA: give this replica the deployment's database key (--db-key-file FILE or %s; the first collector wrote it to its data dir's db.key)", dbKeyEnv)
	}
	enc := ca.GenerateKey()
	if err := os.WriteFile(file, []byte(enc+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the new database key: %w", err)
	}
	log.Warn("created the database key that seals the CA key in the database; every other replica needs it (--db-key-file or "+dbKeyEnv+"), and so does a restore", "file", file)
	key, _ := ca.ParseKey(enc)
	return ca.NewSealer(key)
}

// readCapped reads a small file, refusing one larger than limit.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, err
}

// sharedAuthority loads the deployment's CA from the database. On the
// first start of a deployment it stores one: the data dir's ca.crt/ca.key
// when there are (a collector that ran before its CA moved to the
// database), else a new CA. Replicas starting at once store one CA: the
// first insert wins and the others load it.
func sharedAuthority(ctx context.Context, st *store.Store, keyFile, dataDir string, log *slog.Logger) (*ca.Authority, *ca.Sealer, error) {
	km, err := st.KeyMaterial(ctx, caMaterial)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	stored := err == nil
	sealer, err := databaseKey(os.Getenv, keyFile, dataDir, !stored, log)
	if err != nil {
		return nil, nil, err
	}
	if !stored {
		a, err := ca.Load(filepath.Join(dataDir, "ca.crt"), filepath.Join(dataDir, "ca.key"))
		switch {
		case err == nil:
			log.Info("moving the data dir's CA into the database", "dir", dataDir)
		case errors.Is(err, os.ErrNotExist):
			if a, err = ca.New(time.Now()); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, err
		}
		certPEM, keyPEM, err := a.EncodeCA()
		if err != nil {
			return nil, nil, err
		}
		if km, err = st.AddKeyMaterial(ctx, store.KeyMaterial{Name: caMaterial, CertPEM: certPEM, SealedKey: sealer.Seal(keyPEM, caMaterial)}); err != nil {
			return nil, nil, err
		}
		if string(km.CertPEM) == string(certPEM) {
			log.Info("stored the CA in the database", "sha256", a.Fingerprint())
		}
	}
	keyPEM, err := sealer.Open(km.SealedKey, caMaterial)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	a, err := ca.Parse(km.CertPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the database's CA: %w", err)
	}
	return a, sealer, nil
}

// sharedServerCertificate is the deployment's gRPC server certificate,
// kept in the database beside the CA. It is issued anew, covering the
// names it had and this replica's, when it is missing, expires within 30
// days or does not cover this replica's names; the replacement is a
// compare-and-swap, so replicas starting at once agree on one.
func sharedServerCertificate(ctx context.Context, st *store.Store, a *ca.Authority, sealer *ca.Sealer, extra []string, log *slog.Logger) (tls.Certificate, error) {
	names := ca.ServerNames(extra)
	for range 5 {
		km, err := st.KeyMaterial(ctx, serverMaterial)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return tls.Certificate{}, err
		}
		found := err == nil
		var pair tls.Certificate
		if found {
			keyPEM, err := sealer.Open(km.SealedKey, serverMaterial)
			if err != nil {
				return tls.Certificate{}, fmt.Errorf("server key: %w", err)
			}
			if pair, err = tls.X509KeyPair(km.CertPEM, keyPEM); err != nil {
				return tls.Certificate{}, fmt.Errorf("the database's server certificate: %w", err)
			}
			if a.ServerUsable(pair, names, time.Now()) {
				return pair, nil
			}
			for _, n := range ca.CoveredNames(pair) {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		next, err := a.IssueServer(names, time.Now())
		if err != nil {
			return tls.Certificate{}, err
		}
		certPEM, keyPEM, err := ca.EncodePair(next)
		if err != nil {
			return tls.Certificate{}, err
		}
		nk := store.KeyMaterial{Name: serverMaterial, CertPEM: certPEM, SealedKey: sealer.Seal(keyPEM, serverMaterial)}
		if !found {
			if _, err := st.AddKeyMaterial(ctx, nk); err != nil {
				return tls.Certificate{}, err
			}
			continue // load what is stored: this one or another replica's
		}
		ok, err := st.ReplaceKeyMaterial(ctx, nk, km.CertPEM)
		if err != nil {
			return tls.Certificate{}, err
		}
		if ok {
			log.Info("issued the server certificate", "names", names)
			return next, nil
		}
	}
	return tls.Certificate{}, errors.New("server certificate: replaced by other replicas at every try")
}

// caFingerprint is the fingerprint of the collector's CA: the database's
// on PostgreSQL (the data dir's for a collector that has not yet moved it
// there), else the data dir's.
func caFingerprint(ctx context.Context, c common) (string, error) {
	if store.IsPostgres(c.dsn()) {
		st, err := store.Open(ctx, c.dsn(), newLogger(io.Discard, ""))
		if err != nil {
			return "", err
		}
		defer st.Close()
		km, err := st.KeyMaterial(ctx, caMaterial)
		if err == nil {
			cert, err := ca.CertificatePEM(km.CertPEM)
			if err != nil {
				return "", fmt.Errorf("the database's CA: %w", err)
			}
			return ca.Fingerprint(cert.Raw), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	a, err := ca.Load(filepath.Join(c.dataDir, "ca.crt"), filepath.Join(c.dataDir, "ca.key"))
	if err != nil {
		return "", fmt.Errorf("%w (has `serve` run on this data dir?)", err)
	}
	return a.Fingerprint(), nil
}

// job is a periodic job that runs on one replica at a time: the one
// holding its lease (store.Lease). It logs when this replica takes the
// lease and when it loses it.
type job struct {
	name  string
	lease *store.Lease
	held  bool
	log   *slog.Logger
}

func newJob(st *store.Store, name string, key int64, log *slog.Logger) *job {
	return &job{name: name, lease: st.Lease(key), log: log}
}

// mine reports whether this replica runs the job now.
func (j *job) mine(ctx context.Context) bool {
	ok, err := j.lease.Hold(ctx)
	if err != nil && ctx.Err() == nil {
		j.log.Warn("job lease", "job", j.name, "err", err)
	}
	switch {
	case ok && !j.held:
		j.log.Info("job lease taken: this replica runs the job", "job", j.name)
	case !ok && j.held && ctx.Err() == nil:
		j.log.Warn("job lease lost", "job", j.name)
	}
	j.held = ok
	return ok
}

// release gives the lease up (at shutdown).
func (j *job) release() { j.lease.Release() }

// replicaSettings are this replica's settings that must agree with the
// other replicas': what agents are told, the jobs' intervals and
// retention, and the active rules and catalogs (the --policies files,
// which each replica reads from its own copy).
func replicaSettings(c *serveConfig, live *detect.Live) map[string]string {
	m := map[string]string{
		"heartbeat_interval":       c.ingest.HeartbeatInterval.String(),
		"scan_interval":            c.ingest.ScanInterval.String(),
		"checkin_interval":         c.ingest.CheckInInterval.String(),
		"sweep_interval":           c.sweepInterval.String(),
		"fleet_recompute_interval": c.fleetInterval.String(),
		"prune_interval":           c.retention.interval.String(),
		"retain_reports":           c.retention.Reports.String(),
		"retain_snapshots":         c.retention.Snapshots.String(),
		"retain_risk":              c.retention.Risk.String(),
		"retain_cluster_events":    c.retention.ClusterEvents.String(),
		"retain_egress":            c.retention.Egress.String(),
		"retain_audit":             c.retention.Audit.String(),
		"rules":                    live.Engine().Digest(),
	}
	for k, v := range live.Status().Catalogs {
		m["catalog_"+k] = v
	}
	return m
}

// replicaLoop records this replica in the database every interval, with
// its settings, and warns when a replica seen lately (within three
// intervals, at least five minutes) has other ones: agents would get
// other configurations depending on the replica they reach, and the jobs
// would follow the settings of whichever replica holds them. It logs the
// differences again only when they change.
func replicaLoop(ctx context.Context, st *store.Store, name string, every time.Duration, settings func() map[string]string, log *slog.Logger) error {
	started := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	live := max(3*every, 5*time.Minute)
	warned := ""
	for {
		now, mine := time.Now(), settings()
		err := st.SeeReplica(ctx, store.Replica{Name: name, Settings: mine, StartedAt: started, SeenAt: now})
		var others []store.Replica
		if err == nil {
			others, err = st.Replicas(ctx, now.Add(-live))
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("replica registry", "err", err)
		} else if diff := settingsDiff(name, mine, others); diff != warned {
			if diff != "" {
				log.Warn("replicas disagree on settings that must agree; give every replica the same flags and --policies files", "differences", diff)
			} else {
				log.Info("replicas agree on their settings again")
			}
			warned = diff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// settingsDiff names each setting in which another replica differs from
// mine, sorted: "replica: key=theirs (here mine)"; empty when all agree.
func settingsDiff(name string, mine map[string]string, replicas []store.Replica) string {
	var diffs []string
	for _, r := range replicas {
		if r.Name == name {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(mine)) {
			if theirs, ok := r.Settings[k]; !ok || theirs != mine[k] {
				diffs = append(diffs, fmt.Sprintf("%s: %s=%s (here %s)", r.Name, k, cmp.Or(theirs, "unset"), mine[k]))
			}
		}
	}
	return strings.Join(diffs, "; ")
}
