package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	"github.com/bonafide-sec/bonafide/agent/internal/upload"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// agentVersion is the version the simulated agents report.
const agentVersion = "1.0.0-fleetsim"

// RunOptions are the inputs of Run.
type RunOptions struct {
	Collector   string
	Secret      string
	Fingerprint string
	StateDir    string
	Rounds      int
	Concurrency int
	// Interval, when set, keeps the fleet reporting until the context
	// ends (paced mode, see pace); zero reports once.
	Interval time.Duration
	// Deadline, when set, is when a device stops retrying a failed call,
	// however often it failed: an agent never gives up, and a stampede
	// is measured by what got through by then. Zero: a call gives up
	// after attempts failures (a busy collector's refusals not counted).
	Deadline time.Time
	Log      *slog.Logger
}

// Result is one device's outcome.
type Result struct {
	Device   *Device
	Enrolled bool // enrolled in this run (false: reused its state)
	Sent     int
	Acked    int
	// Retries counts calls tried again after a transient failure, as a
	// real agent retries with backoff (the collector should need none);
	// Busy those of them the collector had refused with a retry-after
	// hint (ResourceExhausted: too busy, too many from the address).
	Retries, Busy int
	// Latencies are the acknowledged reports' delivery times, retries
	// included.
	Latencies []time.Duration
	Err       error // the first failure
}

// attempts is how often a call is tried before the device gives up (an
// agent never does). Ten ride out a replica killed behind a load balancer
// on a loaded machine, where five once did not (TestHAProxyReplicas: a
// handshake cut by the dying replica, then four more failures inside the
// seconds the balancer needs to drop it).
const attempts = 10

// retry calls fn until it succeeds, fails permanently (the collector
// refused the request itself) or failed attempts times (with a deadline:
// until the next try would come after it), waiting as an agent does in
// between (upload.Backoff: full jitter, never sooner than the collector's
// retry-after hint), and counts the retries in res. A refusal with a
// retry-after hint (the collector is busy) is not a failed attempt.
func retry(ctx context.Context, deadline time.Time, res *Result, fn func(context.Context) error) error {
	b := upload.Backoff{Base: 100 * time.Millisecond, Max: 30 * time.Second}
	for failed := 0; ; {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := fn(cctx)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return nil
		case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Canceled:
			return err
		}
		busy := upload.RetryAfter(err) > 0
		if !busy {
			failed++
		}
		wait := b.Next(err)
		if deadline.IsZero() && failed == attempts || !deadline.IsZero() && time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return err
		}
		res.Retries++
		if busy {
			res.Busy++
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// Run enrolls every device that has no state yet and delivers a snapshot
// and o.Rounds heartbeats for each, at most o.Concurrency devices at once.
// With o.Interval it keeps every device reporting until ctx ends instead
// (see pace); o.Concurrency then bounds enrollment only.
func (w *World) Run(ctx context.Context, o RunOptions) ([]Result, error) {
	cat, err := loadCatalogs()
	if err != nil {
		return nil, fmt.Errorf("embedded catalogs: %w", err)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	results := make([]Result, len(w.Devices))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, d := range w.Devices {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			results[i] = o.device(ctx, d, cat, sync.OnceFunc(func() { <-sem }))
		}()
	}
	wg.Wait()
	if o.Interval > 0 {
		return results, nil // the end of ctx is the end of the run
	}
	return results, ctx.Err()
}

// device runs one simulated agent: enroll (unless its state directory
// already holds an enrollment with this collector), then report. It calls
// release once the part bounded by RunOptions.Concurrency is done.
func (o RunOptions) device(ctx context.Context, d *Device, cat catalogs, release func()) Result {
	defer release()
	res := Result{Device: d}
	st := &upload.State{Dir: filepath.Join(o.StateDir, d.Hostname)}
	e, err := st.Enrollment()
	if errors.Is(err, upload.ErrNotEnrolled) || err == nil && e.Collector != o.Collector {
		// One connection for every attempt, as the agent keeps it.
		var en *upload.Enroller
		en, err = st.NewEnroller(upload.EnrollOptions{
			Collector: o.Collector, Secret: o.Secret, Pin: upload.Pin{Fingerprint: o.Fingerprint}, SourceAddress: d.Egress,
		}, o.Log)
		if err == nil {
			err = retry(ctx, o.Deadline, &res, func(ctx context.Context) (err error) {
				e, err = en.Enroll(ctx, d.Identity("", agentVersion, time.Now()))
				return err
			})
			en.Close()
		}
		res.Enrolled = err == nil
	}
	if err != nil {
		res.Err = fmt.Errorf("enroll: %w", err)
		return res
	}
	c, err := st.Connect(o.Collector, d.Egress)
	if err != nil {
		res.Err = err
		return res
	}
	defer c.Close()
	seq, err := readSequence(st.Dir)
	if err != nil {
		res.Err = err
		return res
	}
	// What the device's scans find is fixed at its enrollment (boot time,
	// sessions, tools' start times), so every snapshot of every run has
	// the same content and raises nothing new.
	since := e.EnrolledAt
	if since.IsZero() {
		since = time.Now()
	}
	a := &simAgent{d: d, c: c, dir: st.Dir, seq: seq, res: &res, started: time.Now(), deadline: o.Deadline,
		scan: d.Snapshot(cat, e.AgentID, agentVersion, since)}
	if o.Interval > 0 {
		a.checkIn(ctx)
		release()
		a.pace(ctx, o.Interval)
		return res
	}
	// The snapshot, then each heartbeat in its own call, as an agent that
	// scans between them would.
	if a.snapshot(ctx) {
		for range max(0, o.Rounds) {
			if !a.heartbeat(ctx) {
				break
			}
		}
	}
	return res
}

// reporter is the agent's side of the collector (*upload.Client).
type reporter interface {
	Report(ctx context.Context, reports []*agentv1.Report) ([]string, error)
	CheckIn(ctx context.Context, req *agentv1.CheckInRequest) (*agentv1.CheckInResponse, error)
}

// simAgent is one simulated agent's delivery state.
type simAgent struct {
	d       *Device
	c       reporter
	dir     string // state directory: the sequence file
	seq     uint64 // the last sequence number used
	res     *Result
	started time.Time
	// deadline ends retries (zero: a call gives up after attempts
	// failures; see retry).
	deadline time.Time
	// scan is what the device's scans find; each snapshot is a copy with
	// the time of sending (scan times, clock offset, activity).
	scan *agentv1.HostSnapshot
	// digest is the last snapshot's, which heartbeats carry.
	digest string
	// cfg is the configuration from the last check-in (nil: none yet).
	cfg *agentv1.AgentConfig
}

// snapshot sends a full snapshot and says whether it was acknowledged.
func (a *simAgent) snapshot(ctx context.Context) bool {
	now := time.Now()
	sn := proto.CloneOf(a.scan)
	sn.ScanStartedAt, sn.ScanFinishedAt = timestamppb.New(now.Add(-2*time.Second)), timestamppb.New(now)
	sn.Locale = a.d.locale(now)
	sn.Activity = a.d.Activity(now, activityDays*24)
	a.digest = scan.Digest(sn)
	return a.send(ctx, &agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: sn}})
}

// heartbeat sends a heartbeat with the last hours' activity.
func (a *simAgent) heartbeat(ctx context.Context) bool {
	return a.send(ctx, &agentv1.Report{Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
		SnapshotDigest: a.digest, Identity: a.scan.GetIdentity(), Activity: a.d.Activity(time.Now(), 3)}}})
}

// send delivers one report with retries and counts it. A report cut off
// by the end of ctx is not counted: the run is over, nothing failed.
func (a *simAgent) send(ctx context.Context, r *agentv1.Report) bool {
	// Remember the sequence first, so a rerun never reuses a number.
	if err := writeSequence(a.dir, a.seq+1); err != nil {
		a.fail(err)
		return false
	}
	a.seq++
	r.ReportId, r.Sequence, r.CreatedAt = uuid.NewString(), a.seq, timestamppb.Now()
	start := time.Now()
	var acked []string
	err := retry(ctx, a.deadline, a.res, func(ctx context.Context) (err error) {
		acked, err = a.c.Report(ctx, []*agentv1.Report{r})
		return err
	})
	if err != nil && ctx.Err() != nil {
		return false
	}
	a.res.Sent++
	if err != nil {
		a.fail(fmt.Errorf("report %s: %w", r.GetReportId(), err))
		return false
	}
	if slices.Contains(acked, r.GetReportId()) {
		a.res.Acked++
		a.res.Latencies = append(a.res.Latencies, time.Since(start))
	}
	return true
}

func (a *simAgent) fail(err error) {
	if a.res.Err == nil {
		a.res.Err = err
	}
}

// checkIn reads the collector's configuration, as an agent does at start
// and every check-in interval. A failure keeps the last configuration.
func (a *simAgent) checkIn(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := a.c.CheckIn(cctx, &agentv1.CheckInRequest{AgentVersion: agentVersion, ConfigVersion: a.cfg.GetVersion(),
		StartedAt: timestamppb.New(a.started)})
	if err == nil && resp.GetConfig() != nil {
		a.cfg = resp.GetConfig()
	}
}

// period is how often the agent reports when it snapshots every interval:
// the collector's heartbeat interval when that is shorter (or the
// collector would call it silent), else the interval.
func (a *simAgent) period(interval time.Duration) time.Duration {
	if hb := a.cfg.GetHeartbeatInterval().AsDuration(); hb > 0 && hb < interval {
		return hb
	}
	return interval
}

// pace keeps the device reporting until ctx ends, like an agent that
// scans every interval and finds the same machine each time: a full
// snapshot every interval (the same content; only its scan times and
// activity move on) and, when the collector's heartbeat interval is
// shorter, a heartbeat at that interval in between. The first snapshot
// comes at a random point of the first period, so a fleet's reports
// spread over it; the connection stays open and idle in between. The
// configuration is read again every check-in interval (hourly by
// default), and at each report until a check-in succeeded.
func (a *simAgent) pace(ctx context.Context, interval time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	checkInInterval := func() time.Duration { return cmp.Or(a.cfg.GetCheckinInterval().AsDuration(), time.Hour) }
	var lastSnapshot time.Time
	nextCheckIn := a.started.Add(checkInInterval()) // the caller checked in
	next := time.Now().Add(rand.N(a.period(interval)))
	for {
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if a.cfg == nil || !now.Before(nextCheckIn) {
			a.checkIn(ctx)
			nextCheckIn = now.Add(checkInInterval())
		}
		p := a.period(interval)
		// Half a period of slack: a heartbeat's timer firing a little
		// early must not push the snapshot a whole period later.
		if lastSnapshot.IsZero() || now.Sub(lastSnapshot) >= interval-p/2 {
			if a.snapshot(ctx) {
				lastSnapshot = now
			}
		} else {
			a.heartbeat(ctx)
		}
		// On schedule, or a period from now when delivery fell behind.
		if next = next.Add(p); next.Before(time.Now()) {
			next = time.Now().Add(p)
		}
	}
}

const sequenceFile = "fleetsim.sequence"

func readSequence(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, sequenceFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", sequenceFile, err)
	}
	return n, nil
}

func writeSequence(dir string, n uint64) error {
	return os.WriteFile(filepath.Join(dir, sequenceFile), []byte(strconv.FormatUint(n, 10)+"\n"), 0o600)
}

// Summarize prints devices per scenario, reports and errors, and the farm,
// and says whether every report was acknowledged.
func Summarize(out io.Writer, w *World, results []Result, took time.Duration) bool {
	type row struct {
		devices, enrolled, sent, acked, retries, busy, errs int
		egress, class                                       map[string]bool
	}
	rows := map[string]*row{}
	var total row
	var errs []string
	var lat []time.Duration
	for _, r := range results {
		lat = append(lat, r.Latencies...)
		s := rows[r.Device.Scenario]
		if s == nil {
			s = &row{egress: map[string]bool{}, class: map[string]bool{}}
			rows[r.Device.Scenario] = s
		}
		s.devices++
		s.egress[r.Device.Egress], s.class[r.Device.Site.Class] = true, true
		for _, t := range []*row{s, &total} {
			t.sent += r.Sent
			t.acked += r.Acked
			t.retries += r.Retries
			t.busy += r.Busy
			if r.Enrolled {
				t.enrolled++
			}
			if r.Err != nil {
				t.errs++
			}
		}
		if r.Err != nil {
			errs = append(errs, fmt.Sprintf("  %s (%s): %v", r.Device.Hostname, r.Device.Egress, r.Err))
		}
	}
	fmt.Fprintf(out, "%-18s %7s %8s %6s %6s %7s %6s  %-9s %s\n", "scenario", "devices", "enrolled", "sent", "acked", "retried", "errors", "addresses", "class")
	for _, g := range scenario {
		s := rows[g.Scenario]
		if s == nil {
			continue
		}
		fmt.Fprintf(out, "%-18s %7d %8d %6d %6d %7d %6d  %-9d %s\n", g.Scenario, s.devices, s.enrolled, s.sent, s.acked, s.retries, s.errs, len(s.egress), strings.Join(keys(s.class), ","))
	}
	fmt.Fprintf(out, "%-18s %7d %8d %6d %6d %7d %6d\n", "total", len(results), total.enrolled, total.sent, total.acked, total.retries, total.errs)
	fmt.Fprintf(out, "took %s\n", took.Round(time.Millisecond))
	if total.retries > 0 {
		fmt.Fprintf(out, "retries: %d, of which %d after the collector said it was busy (ResourceExhausted with a retry-after hint)\n", total.retries, total.busy)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p int) time.Duration { return lat[(len(lat)-1)*p/100].Round(100 * time.Microsecond) }
		fmt.Fprintf(out, "report latency (retries included): p50 %s, p99 %s, max %s\n", pct(50), pct(99), pct(100))
	}
	if len(errs) > 0 {
		fmt.Fprintf(out, "\nerrors (%d devices):\n", len(errs))
		for i, e := range errs {
			if i == 20 {
				fmt.Fprintf(out, "  … and %d more\n", len(errs)-i)
				break
			}
			fmt.Fprintln(out, e)
		}
	}
	if farm := w.Farm(); len(farm) > 0 {
		fmt.Fprintf(out, "\nTHE FARM: %d laptops of %d people declared in %d cities, all at %s (%s, %s):\n",
			len(farm), len(farm), len(farm), siteFarm.Egress, siteFarm.Place.City, siteFarm.Place.Region)
		for _, d := range farm {
			kvm := ""
			if d.KVM {
				kvm = "PiKVM"
			}
			fmt.Fprintf(out, "  %-24s %-11s %-5s %-28s declared %s, %s (OS zone %s)\n", d.Hostname, d.Tool, kvm, d.Person.Email,
				d.Person.Declared.City, d.Person.Declared.Region, d.OSTimeZone)
		}
	}
	return total.errs == 0 && total.acked == total.sent
}

func keys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
