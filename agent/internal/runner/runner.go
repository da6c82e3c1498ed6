// Package runner is the agent's main loop: scan on an interval and whenever
// something changed, queue a full snapshot when a scan finds a change and a
// heartbeat when nothing was queued for a heartbeat interval, and deliver
// the on-disk queue to the collector with backoff.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/config"
	"github.com/bonafide-sec/bonafide/agent/internal/hostid"
	"github.com/bonafide-sec/bonafide/agent/internal/notify"
	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/activity"
	"github.com/bonafide-sec/bonafide/agent/internal/spool"
	"github.com/bonafide-sec/bonafide/agent/internal/upload"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults when neither the local config nor the collector says otherwise.
const (
	defaultScanInterval    = 5 * time.Minute
	defaultHeartbeat       = 5 * time.Minute
	defaultCheckIn         = time.Hour
	watchInterval          = 15 * time.Second
	maxBackoff             = 5 * time.Minute
	batchReports           = 50
	batchBytes             = 2 << 20
	enrollRetryMaxInterval = 10 * time.Minute
	defaultStartDelay      = 30 * time.Second
)

// Runner runs the agent.
type Runner struct {
	Cfg     config.Config
	Root    string
	Version string
	Log     *slog.Logger

	state   *upload.State
	scanner *scan.Scanner
	spool   *spool.Spool
	client  *upload.Client
	remote  *agentv1.AgentConfig
	started time.Time
	// activity samples input idleness once a minute (live system only).
	activity *activity.Recorder
	// notifier shows presence-check notifications; notifying tracks the
	// ones being shown (Once waits for them before it exits).
	notifier  *notify.Notifier
	notifying sync.WaitGroup
}

// Enroll enrolls with the configured collector and secret (one attempt).
func (r *Runner) Enroll(ctx context.Context) (upload.Enrollment, error) {
	en, err := r.enroller()
	if err != nil {
		return upload.Enrollment{}, err
	}
	defer en.Close()
	return r.enrollWith(ctx, en)
}

// enroller prepares enrollment with the configured collector and secret.
func (r *Runner) enroller() (*upload.Enroller, error) {
	st := &upload.State{Dir: r.Cfg.StateDir}
	return st.NewEnroller(upload.EnrollOptions{
		Collector: r.Cfg.Collector, Secret: r.Cfg.EnrollSecret, SourceAddress: r.Cfg.SourceAddress,
		Pin: upload.Pin{Fingerprint: r.Cfg.CAFingerprint, CAFile: r.Cfg.CAFile},
	}, r.Log)
}

// enrollWith makes one attempt with the host's identity as it is now.
func (r *Runner) enrollWith(ctx context.Context, en *upload.Enroller) (upload.Enrollment, error) {
	id, err := hostid.Collect(ctx, r.Root)
	if err != nil {
		return upload.Enrollment{}, fmt.Errorf("host identity: %w", err)
	}
	id.AgentVersion = r.Version
	return en.Enroll(ctx, id)
}

// open prepares state, spool and connection; it enrolls first when the
// agent has no certificate and the config holds an enrollment secret.
func (r *Runner) open(ctx context.Context, retry bool) error {
	r.started = time.Now()
	r.state = &upload.State{Dir: r.Cfg.StateDir}
	e, err := r.state.Enrollment()
	b := upload.Backoff{Base: time.Second, Max: enrollRetryMaxInterval}
	var en *upload.Enroller // one connection for every attempt
	defer func() {
		if en != nil {
			en.Close()
		}
	}()
	for errors.Is(err, upload.ErrNotEnrolled) {
		if r.Cfg.EnrollSecret == "" {
			return errors.New("agent is not enrolled and its config has no enroll_secret: run `bonafide-agent enroll`")
		}
		if en == nil {
			en, err = r.enroller()
		}
		if en != nil {
			if e, err = r.enrollWith(ctx, en); err == nil {
				r.Log.Info("enrolled", "agent", e.AgentID, "device", e.DeviceID, "collector", e.Collector)
				break
			}
		}
		if !retry {
			return err
		}
		d := b.Next(err)
		r.Log.Error("enrollment failed; retrying", "err", err, "in", d)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
		err = upload.ErrNotEnrolled
	}
	if err != nil {
		return err
	}
	collector := r.Cfg.Collector
	if collector == "" {
		collector = e.Collector
	}
	if r.client, err = r.state.Connect(collector, r.Cfg.SourceAddress); err != nil {
		return err
	}
	if r.spool, err = spool.Open(filepath.Join(r.Cfg.StateDir, "spool.db"), r.Cfg.SpoolMaxBytes); err != nil {
		r.client.Close()
		return err
	}
	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		return fmt.Errorf("embedded catalog: %w", err)
	}
	kvm, err := policies.KVM(policies.FS())
	if err != nil {
		return fmt.Errorf("embedded catalog: %w", err)
	}
	r.scanner = &scan.Scanner{Root: r.Root, Version: r.Version, AgentID: e.AgentID, Catalog: cat, KVM: kvm}
	if b, err := os.ReadFile(filepath.Join(r.Cfg.StateDir, cursorFile)); err == nil {
		r.scanner.SessionsCursor = strings.TrimSpace(string(b))
	}
	if r.activity, err = activity.Open(filepath.Join(r.Cfg.StateDir, "activity.json"), activity.DefaultThreshold); err != nil {
		return err
	}
	r.scanner.Activity = r.activity.Snapshot
	r.notifier = &notify.Notifier{Root: r.Root, Log: r.Log}
	return nil
}

// cursorFile keeps the login-history position already queued.
const cursorFile = "sessions.cursor"

// queueSnapshot queues a snapshot and then remembers its login-history
// position, so that history is sent once (and is not lost if the agent
// stops between the two: it is sent again).
// presenceCheck is the presence check the snapshot answers ("" for none).
func (r *Runner) queueSnapshot(sn *agentv1.HostSnapshot, presenceCheck string) error {
	if err := r.enqueue(&agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: sn}, PresenceCheckId: presenceCheck}); err != nil {
		return err
	}
	// A sessions signal that failed (or was cut off by the scan deadline)
	// read no history: the position stays where it was.
	cur := sn.GetSessions().GetHistoryCursor()
	if sn.GetSessions() == nil || cur == r.scanner.SessionsCursor {
		return nil
	}
	r.scanner.SessionsCursor = cur
	path := filepath.Join(r.Cfg.StateDir, cursorFile)
	if err := os.WriteFile(path+".tmp", []byte(cur+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// recentActivity is the activity of the last three hours, for heartbeats.
func (r *Runner) recentActivity() *agentv1.Activity {
	a := r.activity.Snapshot()
	if n := len(a.GetHours()); n > 3 {
		a.Hours = a.Hours[n-3:]
	}
	return a
}

func (r *Runner) close() {
	if r.spool != nil {
		r.spool.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
}

// Once scans, queues a full snapshot and delivers the whole queue. It fails,
// leaving what was not acknowledged queued, when the collector cannot take it.
func (r *Runner) Once(ctx context.Context) error {
	if err := r.open(ctx, false); err != nil {
		return err
	}
	defer r.close()
	resp := r.checkIn(ctx)
	r.notifyPresence(ctx, resp.GetPresenceNotice())
	// The notification is shown in the background; the run waits for it
	// (within its deadline) only once the report is delivered or not.
	defer r.notifying.Wait()
	presence := resp.GetPresenceCheck().GetCheckId()
	sn, err := r.scanner.Scan(ctx)
	if err != nil {
		return err
	}
	if err := r.queueSnapshot(sn, presence); err != nil {
		return err
	}
	if err := r.deliver(ctx); err != nil {
		return fmt.Errorf("deliver: %w (%d reports left queued)", err, r.spool.Len())
	}
	return nil
}

// Run runs until ctx is cancelled.
func (r *Runner) Run(ctx context.Context) error {
	// A random delay before the first contact with the collector, so that
	// agents started together (a rollout, a Monday-morning boot) reach it
	// spread out.
	if d := upload.StartDelay(r.startDelay(), nil); d > 0 {
		r.Log.Info("contacting the collector after a random start delay", "in", d)
		if !sleep(ctx, d) {
			return nil
		}
	}
	if err := r.open(ctx, true); err != nil {
		return err
	}
	defer r.close()
	// Input idleness: on the live system, and under a fixture root where
	// the OS's reader can read one (Linux: the desktop's session bus there).
	if idle, rhythm := activity.Readers(r.Root); idle != nil {
		go r.activity.Run(ctx, idle, rhythm, r.Log)
	}

	var (
		lastDigest   string
		lastIdentity *agentv1.HostIdentity // of the last scan, for heartbeats
		lastQueued   time.Time
		lastScan     time.Time
		fingerprint  = r.scanner.Fingerprint()
		retry        = upload.Backoff{Base: time.Second}
		retryAt      time.Time
		nextCheckIn  time.Time
		watch        = time.NewTicker(watchInterval)
		wake         = time.NewTimer(0)
		scanDue      = true
		deliveryFail = false
		presence     string // a presence check to answer with the next scan
	)
	defer watch.Stop()
	defer wake.Stop()
	for {
		now := time.Now()
		if !now.Before(nextCheckIn) {
			resp := r.checkIn(ctx)
			r.notifyPresence(ctx, resp.GetPresenceNotice())
			if id := resp.GetPresenceCheck().GetCheckId(); id != "" {
				presence, scanDue = id, true
				r.Log.Info("presence check: scanning at once", "check", id)
			}
			nextCheckIn = now.Add(interval(r.remote.GetCheckinInterval().AsDuration(), 0, defaultCheckIn))
		}
		if scanDue || now.Sub(lastScan) >= r.scanInterval() {
			scanDue, lastScan = false, now
			if sn, err := r.scanner.Scan(ctx); err != nil {
				r.Log.Error("scan failed", "err", err)
			} else {
				lastIdentity = sn.GetIdentity()
				// A presence check is answered with a full snapshot,
				// changed or not.
				if digest := scan.Digest(sn); digest != lastDigest || presence != "" {
					if err := r.queueSnapshot(sn, presence); err != nil {
						r.Log.Error("queue snapshot", "err", err)
					} else {
						lastDigest, lastQueued, presence = digest, time.Now(), ""
					}
				}
			}
		}
		// A heartbeat is due when nothing was queued for a heartbeat
		// interval, whatever the scan interval: the collector counts on it.
		if lastDigest != "" && now.Sub(lastQueued) >= r.heartbeatInterval() {
			hb := &agentv1.Heartbeat{SnapshotDigest: lastDigest, Identity: lastIdentity, Activity: r.recentActivity()}
			if err := r.enqueue(&agentv1.Report{Body: &agentv1.Report_Heartbeat{Heartbeat: hb}}); err != nil {
				r.Log.Error("queue heartbeat", "err", err)
			}
			lastQueued = time.Now() // a failed heartbeat is tried again an interval later
		}
		if r.spool.Len() > 0 && !now.Before(retryAt) {
			if err := r.deliver(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				retry.Max = min(maxBackoff, max(time.Second, r.heartbeatInterval()))
				d := retry.Next(err)
				retryAt = time.Now().Add(d)
				if !deliveryFail {
					r.Log.Warn("collector unreachable; reports stay queued", "err", err, "queued", r.spool.Len(), "retry_in", d)
				}
				deliveryFail = true
			} else {
				if deliveryFail {
					r.Log.Info("delivery resumed")
				}
				retryAt, deliveryFail = time.Time{}, false
				retry.Reset()
			}
		}

		// Sleep until the next scan, heartbeat, retry or check-in, or until
		// the cheap fingerprint says something changed.
		next := lastScan.Add(r.scanInterval())
		if beat := lastQueued.Add(r.heartbeatInterval()); lastDigest != "" && beat.Before(next) {
			next = beat
		}
		if r.spool.Len() > 0 && retryAt.Before(next) {
			next = retryAt
		}
		if nextCheckIn.Before(next) {
			next = nextCheckIn
		}
		wake.Reset(time.Until(next))
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-wake.C:
				break wait
			case <-watch.C:
				if fp := r.scanner.Fingerprint(); fp != fingerprint {
					fingerprint, scanDue = fp, true
					r.Log.Info("change detected; scanning")
					break wait
				}
			}
		}
	}
}

func interval(local, remote, def time.Duration) time.Duration {
	switch {
	case local > 0:
		return local
	case remote > 0:
		return remote
	}
	return def
}

func (r *Runner) scanInterval() time.Duration {
	return interval(r.Cfg.ScanInterval, r.remote.GetScanInterval().AsDuration(), defaultScanInterval)
}

// startDelay bounds the random delay before the first contact.
func (r *Runner) startDelay() time.Duration {
	if r.Cfg.StartDelay != nil {
		return *r.Cfg.StartDelay
	}
	return defaultStartDelay
}

func (r *Runner) heartbeatInterval() time.Duration {
	return interval(r.Cfg.HeartbeatInterval, r.remote.GetHeartbeatInterval().AsDuration(), defaultHeartbeat)
}

func (r *Runner) enqueue(rep *agentv1.Report) error {
	rep.ReportId = uuid.NewString()
	rep.CreatedAt = timestamppb.Now()
	return r.spool.Enqueue(rep)
}

// checkIn fetches configuration and renews the certificate when due. A
// failure is logged; the agent keeps its last configuration. It returns
// the collector's answer (nil after a failure), which may ask the agent
// to answer a presence check now or to notify the person of one.
func (r *Runner) checkIn(ctx context.Context) *agentv1.CheckInResponse {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := r.client.CheckIn(cctx, &agentv1.CheckInRequest{
		AgentVersion: r.Version, ConfigVersion: r.remote.GetVersion(), SpooledReports: uint64(r.spool.Len()),
		DroppedReports: r.spool.Dropped(), StartedAt: timestamppb.New(r.started),
	})
	if err != nil {
		r.Log.Warn("check-in failed", "err", err)
		return nil
	}
	if cfg := resp.GetConfig(); cfg != nil {
		r.remote = cfg
		r.useCatalogs(cfg.GetCatalogs())
		r.Log.Info("configuration updated", "version", cfg.GetVersion(), "scan_interval", r.scanInterval(), "heartbeat_interval", r.heartbeatInterval())
	}
	return resp
}

// useCatalogs switches to the catalogs the collector sent; a catalog that
// does not parse is logged and the one in use is kept.
func (r *Runner) useCatalogs(cats []*agentv1.Catalog) {
	for _, c := range cats {
		var version string
		var err error
		switch c.GetName() {
		case "remote_access":
			if c.GetVersion() == r.scanner.Catalog.Version {
				continue
			}
			var cat *policies.RemoteAccessCatalog
			if cat, err = policies.ParseRemoteAccess(c.GetContent()); err == nil {
				r.scanner.Catalog, version = cat, cat.Version
			}
		case "kvm":
			if c.GetVersion() == r.scanner.KVM.Version {
				continue
			}
			var cat *policies.KVMCatalog
			if cat, err = policies.ParseKVM(c.GetContent()); err == nil {
				r.scanner.KVM, version = cat, cat.Version
			}
		default:
			continue
		}
		if err != nil {
			r.Log.Error("collector sent a catalog that does not parse; keeping the current one", "catalog", c.GetName(), "err", err)
			continue
		}
		r.Log.Info("catalog updated", "catalog", c.GetName(), "version", version)
	}
}

// deliver sends the queue oldest first until it is empty. A batch the
// collector refuses as malformed is retried one report at a time so that
// one bad report is dropped (and counted) without holding up the rest.
func (r *Runner) deliver(ctx context.Context) error {
	for r.spool.Len() > 0 {
		batch, err := r.spool.Peek(batchReports, batchBytes)
		if err != nil {
			return err
		}
		err = r.send(ctx, batch)
		if status.Code(err) != codes.InvalidArgument {
			if err != nil {
				return err
			}
			continue
		}
		for _, rep := range batch {
			err := r.send(ctx, []*agentv1.Report{rep})
			if status.Code(err) == codes.InvalidArgument {
				r.Log.Error("collector rejected a report; dropping it", "report", rep.GetReportId(), "err", err)
				err = r.spool.Reject([]string{rep.GetReportId()})
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Runner) send(ctx context.Context, batch []*agentv1.Report) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	acked, err := r.client.Report(cctx, batch)
	if err != nil {
		return err
	}
	if len(acked) == 0 {
		return errors.New("collector acknowledged nothing")
	}
	return r.spool.Ack(acked)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
