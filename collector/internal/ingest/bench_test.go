package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest/ingesttest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// benchDevices is how many enrolled devices report in the benchmarks.
const benchDevices = 100

// BenchmarkIngest measures full snapshots per second through Report:
// validation, digests, rule evaluation (the default rules) and storage in
// one transaction per call. Every snapshot differs from the device's
// previous one, so each is stored and appended to the history. Reports come
// from 100 enrolled devices over many goroutines, as from many agents at
// once. Not measured: TLS, gRPC decoding and the authentication
// interceptor's agent lookup.
//
// BenchmarkIngest's snapshots look like a farm laptop: AnyDesk running with
// an inbound session, Chrome Remote Desktop, Astrill and RDP, so eight
// rules (remote access, the VPN, activity around the clock) fire and
// upsert their alerts on every snapshot.
// BenchmarkIngestQuiet sends the same snapshots without remote-access
// findings, as most of a fleet reports.
func BenchmarkIngest(b *testing.B) {
	benchEngines(b, benchFarm)
}

// BenchmarkIngestQuiet is BenchmarkIngest with snapshots on which no
// snapshot rule fires.
func BenchmarkIngestQuiet(b *testing.B) {
	benchEngines(b, benchQuiet)
}

// BenchmarkIngestHeartbeat is BenchmarkIngest with heartbeats, the report
// an unchanged machine sends.
func BenchmarkIngestHeartbeat(b *testing.B) {
	benchEngines(b, benchHeartbeat)
}

// BenchmarkIngestCluster is BenchmarkIngestQuiet where every snapshot
// moves its device into or out of a farm: the devices are in groups of
// eight, and each snapshot switches between the device's own Wi-Fi access
// point and its group's. Every report therefore changes the device's keys
// and updates the clusters incrementally: the keys are replaced, the
// device's cluster and its former one are found again, the membership
// changes are recorded, and the other members are evaluated again (the
// fleet rules fire and resolve as the farm forms and breaks up). It is
// the worst case of the incremental update per report.
func BenchmarkIngestCluster(b *testing.B) {
	benchEngines(b, benchCluster)
}

type benchMode int

const (
	benchFarm benchMode = iota
	benchQuiet
	benchHeartbeat
	benchCluster
)

func benchEngines(b *testing.B, mode benchMode) {
	b.Run("sqlite", func(b *testing.B) { benchReport(b, filepath.Join(b.TempDir(), "bonafide.db"), mode) })
	b.Run("postgres", func(b *testing.B) { benchReport(b, storetest.PostgresDSN(b), mode) })
}

// benchAgent is one enrolled device and what it reports.
type benchAgent struct {
	ctx   context.Context // carries the authenticated agent and its peer address
	snap  *agentv1.HostSnapshot
	seq   uint64
	group int // the device's farm (BenchmarkIngestCluster)
}

func benchReport(b *testing.B, dsn string, mode benchMode) {
	snapshots := mode != benchHeartbeat
	ctx := context.Background()
	st := storetest.Open(b, dsn)
	svc := benchService(b, st, io.Discard)
	_, sec, err := st.CreateSecret(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	agents := make([]*benchAgent, benchDevices)
	for i := range agents {
		agents[i] = enrollBenchAgent(b, st, sec.ID, i, mode == benchQuiet || mode == benchCluster)
	}

	// Each goroutine owns some devices, so that one device's reports come
	// one after another, as from its single agent.
	par := max(1, min(8, benchDevices/runtime.GOMAXPROCS(0)))
	workers := par * runtime.GOMAXPROCS(0)
	var nextWorker atomic.Int64
	b.SetParallelism(par)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := ingesttest.ProcessCPU()
	b.RunParallel(func(pb *testing.PB) {
		w := int(nextWorker.Add(1) - 1)
		var mine []*benchAgent
		for i := w; i < benchDevices; i += workers {
			mine = append(mine, agents[i])
		}
		if len(mine) == 0 { // more goroutines than devices
			mine = agents[w%benchDevices : w%benchDevices+1]
		}
		for n := 0; pb.Next(); n++ {
			a := mine[n%len(mine)]
			a.seq++
			rep := &agentv1.Report{ReportId: uuid.NewString(), Sequence: a.seq, CreatedAt: timestamppb.Now()}
			if snapshots {
				a.change()
				if mode == benchCluster {
					a.move()
				}
				rep.Body = &agentv1.Report_Snapshot{Snapshot: a.snap}
			} else {
				rep.Body = &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
					SnapshotDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Identity: a.snap.GetIdentity()}}
			}
			resp, err := svc.Report(a.ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}})
			if err != nil {
				b.Errorf("Report: %v", err)
				return
			}
			if len(resp.GetAckedReportIds()) != 1 {
				b.Errorf("acked %v", resp.GetAckedReportIds())
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(ingesttest.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
	// Every report was stored, and each device's latest snapshot is the
	// last one it sent.
	var stored int64
	for _, a := range agents {
		dev := a.ctx.Value(agentKey{}).(store.Agent).DeviceID
		n, err := st.ReportCount(ctx, dev)
		if err != nil {
			b.Fatal(err)
		}
		stored += n
		if snapshots && a.seq > 0 {
			sn, err := st.LatestSnapshot(ctx, dev)
			if _, digest, _ := Digest(a.snap); err != nil || sn.Digest != digest {
				b.Fatalf("device %s: latest snapshot is not the last one sent (%v)", dev, err)
			}
		}
	}
	if stored != int64(b.N) {
		b.Fatalf("%d reports stored, want %d", stored, b.N)
	}
	unit := "heartbeats/s"
	if snapshots {
		unit = "snapshots/s"
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// benchService is the ingest service of the benchmarks on st, with the
// default rules, logging to log.
func benchService(tb testing.TB, st *store.Store, log io.Writer) *Server {
	rules, err := detect.Load(policies.FS())
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := New(st, nil, rules, Config{ScanInterval: 15 * time.Minute, HeartbeatInterval: time.Minute, CheckInInterval: time.Hour},
		slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// enrollBenchAgent enrolls device i of a benchmark and returns it with its
// snapshot (benchSnapshot), quiet when asked: then no snapshot rule fires
// on it.
func enrollBenchAgent(tb testing.TB, st *store.Store, secretID string, i int, quiet bool) *benchAgent {
	ctx := context.Background()
	agentID := uuid.NewString()
	sn := benchSnapshot(i, agentID)
	if quiet {
		ingesttest.Quiet(sn)
	}
	// Each device enrolls from the address it reports from, as laptops at
	// home do: a hundred enrollments from one address within seconds is
	// what mass_enrollment flags, and then every report would carry that
	// alert.
	id := sn.GetIdentity()
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: secretID, IP: fmt.Sprintf("203.0.113.%d", i),
		HardwareKey: store.HardwareKey(id.GetHardwareUuid(), id.GetSerialNumber(), id.GetMachineId()),
		Identity:    deviceIdentity(id), CertSerial: fmt.Sprint(i), CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		tb.Fatal(err)
	}
	a, err := st.AgentByID(ctx, agentID)
	if err != nil {
		tb.Fatal(err)
	}
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(203, 0, 113, byte(i)), Port: 40000 + i}}
	return &benchAgent{ctx: context.WithValue(peer.NewContext(ctx, p), agentKey{}, a), snap: sn, group: i / 8}
}

// move switches the device between its own access point and its group's.
func (a *benchAgent) move() {
	w := a.snap.GetNetwork().GetWifi()
	if a.seq%2 == 0 {
		w.Bssid = "a4:2b:b0:11:22:" + w.Bssid[len(w.Bssid)-2:]
	} else {
		w.Bssid = fmt.Sprintf("a4:2b:b0:ff:00:%02x", a.group)
	}
}

// change makes the next snapshot differ from the last: new scan times, the
// current hour's activity and a new login-history position.
func (a *benchAgent) change() {
	now := time.Now()
	a.snap.ScanStartedAt = timestamppb.New(now.Add(-2 * time.Second))
	a.snap.ScanFinishedAt = timestamppb.New(now)
	hours := a.snap.GetActivity().GetHours()
	hours[len(hours)-1].ActiveMinutes = uint32(a.seq % 61)
	a.snap.GetSessions().HistoryCursor = fmt.Sprintf("wtmp:%d", 1000+a.seq)
}

// benchSnapshot is ingesttest.Snapshot, the benchmarks' realistic snapshot.
var benchSnapshot = ingesttest.Snapshot

// BenchmarkReportIntake measures what Report does to a report itself,
// without the store: validation of the whole request, the report's own
// checks, the catalog matches and the digests (validate and prepare). The
// reports are BenchmarkIngestQuiet's snapshot, BenchmarkIngest's (farm)
// and BenchmarkIngestHeartbeat's heartbeat.
func BenchmarkReportIntake(b *testing.B) {
	kvm, err := policies.KVM(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	media, err := policies.Media(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	routers, err := policies.Routers(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	cats := &catalogState{kvm: kvm, media: media, routers: routers}
	farm := benchSnapshot(1, "a1") // BenchmarkIngest's
	sn := benchSnapshot(1, "a1")
	sn.RemoteAccess = nil // as enrollBenchAgent's quiet snapshot
	for _, i := range sn.GetNetwork().GetInterfaces() {
		i.VpnToolId = ""
	}
	for name, body := range map[string]func() *agentv1.Report{
		"snapshot": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: sn}}
		},
		"farm": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: farm}}
		},
		"heartbeat": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
				SnapshotDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Identity: sn.GetIdentity()}}}
		},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := ingesttest.ProcessCPU()
			for n := 0; b.Loop(); n++ {
				r := body()
				r.ReportId, r.Sequence, r.CreatedAt = uuid.NewString(), uint64(n+1), timestamppb.Now()
				req := &agentv1.ReportRequest{Reports: []*agentv1.Report{r}}
				if err := validate(req.ProtoReflect(), time.Now()); err != nil {
					b.Fatal(err)
				}
				if _, err := prepare(r, "a1", cats); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ingesttest.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
