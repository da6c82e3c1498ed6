package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// retentionFlags are serve's history retention flags.
type retentionFlags struct {
	store.Retention
	interval time.Duration
}

func (r *retentionFlags) register(fset *flag.FlagSet) {
	fset.DurationVar(&r.Reports, "retain-reports", store.DefaultRetention.Reports, "how long each report's record is kept (and a retried report recognised); older reports are kept as daily counts per device (0: for ever)")
	fset.DurationVar(&r.Snapshots, "retain-snapshots", store.DefaultRetention.Snapshots, "how long snapshot history is kept; each device's latest snapshot is always kept (0: for ever)")
	fset.DurationVar(&r.Risk, "retain-risk", store.DefaultRetention.Risk, "how long risk score history is kept (0: for ever)")
	fset.DurationVar(&r.ClusterEvents, "retain-cluster-events", store.DefaultRetention.ClusterEvents, "how long cluster timelines are kept (0: for ever)")
	fset.DurationVar(&r.Egress, "retain-egress", store.DefaultRetention.Egress, "how long egress history is kept (0: for ever)")
	fset.DurationVar(&r.Audit, "retain-audit", store.DefaultRetention.Audit, "how long the audit log is kept (0: for ever)")
	fset.DurationVar(&r.Signins, "retain-signins", store.DefaultRetention.Signins, "how long identity-provider sign-ins are kept, by their time (0: for ever)")
	fset.DurationVar(&r.interval, "prune-interval", time.Hour, "how often history past its retention is pruned (0: never)")
}

// pruneLockKey names the pruning job's advisory lock.
const pruneLockKey = 0x626f6e6166696405

// pruneLoop prunes history past its retention every interval, on the one
// replica holding the job's lease, in small batches that ingest interleaves with.
func pruneLoop(ctx context.Context, st *store.Store, r retentionFlags, log *slog.Logger) error {
	if r.interval <= 0 {
		return nil
	}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	j := newJob(st, "prune", pruneLockKey, log)
	defer j.release()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !j.mine(ctx) {
			continue
		}
		start := time.Now()
		stats, err := st.Prune(ctx, start, r.Retention)
		if err != nil && ctx.Err() == nil {
			log.Error("prune", "err", err)
		} else if err == nil && stats != (store.PruneStats{}) {
			log.Info("pruned", "reports_rolled_up", stats.Reports, "snapshots", stats.Snapshots, "risk", stats.Risk,
				"cluster_events", stats.ClusterEvents, "egress", stats.Egress, "audit", stats.Audit, "signins", stats.Signins,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}
}
