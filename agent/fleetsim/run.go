package main

import (
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
	Log         *slog.Logger
}

// Result is one device's outcome.
type Result struct {
	Device   *Device
	Enrolled bool // enrolled in this run (false: reused its state)
	Sent     int
	Acked    int
	// Retries counts calls tried again after a transient failure, as a
	// real agent retries with backoff (the collector should need none).
	Retries int
	Err     error
}

// attempts is how often a call is tried before the device gives up.
const attempts = 5

// retry calls fn until it succeeds, fails permanently (the collector
// refused the request itself) or was tried attempts times, backing off in
// between, and counts the retries.
func retry(ctx context.Context, retries *int, fn func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for i := 1; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := fn(cctx)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return nil
		case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted, codes.Canceled:
			return err
		}
		if i == attempts || ctx.Err() != nil {
			return err
		}
		*retries++
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay + time.Duration(rand.Int64N(int64(delay)))):
		}
		delay *= 2
	}
}

// Run enrolls every device that has no state yet and delivers a snapshot
// and o.Rounds heartbeats for each, at most o.Concurrency devices at once.
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
			defer func() { <-sem; wg.Done() }()
			results[i] = o.device(ctx, d, cat)
		}()
	}
	wg.Wait()
	return results, ctx.Err()
}

// device runs one simulated agent: enroll (unless its state directory
// already holds an enrollment with this collector), then report.
func (o RunOptions) device(ctx context.Context, d *Device, cat catalogs) Result {
	res := Result{Device: d}
	st := &upload.State{Dir: filepath.Join(o.StateDir, d.Hostname)}
	e, err := st.Enrollment()
	if errors.Is(err, upload.ErrNotEnrolled) || err == nil && e.Collector != o.Collector {
		err = retry(ctx, &res.Retries, func(ctx context.Context) (err error) {
			e, err = st.Enroll(ctx, upload.EnrollOptions{
				Collector: o.Collector, Secret: o.Secret, Pin: upload.Pin{Fingerprint: o.Fingerprint},
				SourceAddress: d.Egress, Identity: d.Identity("", agentVersion, time.Now()),
			}, o.Log)
			return err
		})
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
	now := time.Now()
	sn := d.Snapshot(cat, e.AgentID, agentVersion, now)
	digest := scan.Digest(sn)
	reports := []*agentv1.Report{{Body: &agentv1.Report_Snapshot{Snapshot: sn}}}
	for range max(0, o.Rounds) {
		act := d.Activity(now, 3)
		reports = append(reports, &agentv1.Report{Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
			SnapshotDigest: digest, Identity: sn.GetIdentity(), Activity: act}}})
	}
	for i, r := range reports {
		r.ReportId, r.Sequence = uuid.NewString(), seq+uint64(i)+1
	}
	// Remember the sequence first, so a rerun never reuses a number.
	if err := writeSequence(st.Dir, seq+uint64(len(reports))); err != nil {
		res.Err = err
		return res
	}
	// The snapshot, then each heartbeat in its own call, as an agent that
	// scans between them would.
	for _, r := range reports {
		r.CreatedAt = timestamppb.Now()
		res.Sent++
		var acked []string
		err := retry(ctx, &res.Retries, func(ctx context.Context) (err error) {
			acked, err = c.Report(ctx, []*agentv1.Report{r})
			return err
		})
		if err != nil {
			res.Err = fmt.Errorf("report %s: %w", r.GetReportId(), err)
			return res
		}
		for _, id := range acked {
			if id == r.GetReportId() {
				res.Acked++
			}
		}
	}
	return res
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
		devices, enrolled, sent, acked, retries, errs int
		egress, class                                 map[string]bool
	}
	rows := map[string]*row{}
	var total row
	var errs []string
	for _, r := range results {
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
