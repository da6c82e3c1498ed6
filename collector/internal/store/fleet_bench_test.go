package store_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkClusterJoin measures the report that makes a new device join a
// farm's cluster of N members (SQLite and PostgreSQL): the device's own
// judgement, the re-clustering and the members' judgement again, all in
// the report's transaction. The cluster is eight flagged farm laptops
// behind one house's router and N−8 quiet devices on the same router,
// each member carrying the farm alerts, as in the dilution attack
// (collector's TestAdversaryDilution). Its floor, measured in the same
// run and alternated with the joins, is the same first report of a new
// device from an address and router of its own (no cluster). It reports
// the mean of each (ms-join, ms-alone) and their ratio.
//
// Each iteration builds its cluster afresh, so run it with -benchtime 1x:
//
//	BONAFIDE_TEST_POSTGRES=postgres://… go test -run '^$' -bench ClusterJoin -benchtime 1x ./collector/internal/store/
func BenchmarkClusterJoin(b *testing.B) {
	rules := benchRules(b)
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, n := range []int{10, 50, 150} {
			b.Run(fmt.Sprintf("%s/members=%d", engine, n), func(b *testing.B) {
				for range b.N {
					dsn := filepath.Join(b.TempDir(), "bonafide.db")
					if engine == "postgres" {
						dsn = storetest.PostgresDSN(b)
					}
					benchJoin(b, storetest.Open(b, dsn), rules, n)
				}
			})
		}
	}
}

// joinRounds is how many joins (and as many floor reports) one iteration
// of BenchmarkClusterJoin times.
const joinRounds = 12

func benchJoin(b *testing.B, st *store.Store, rules *detect.Engine, n int) {
	b.StopTimer()
	ctx := b.Context()
	_, sec, err := st.CreateSecret(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	const gatewayMAC = "3c:84:6a:aa:bb:cc"
	home := detect.Egress{IP: "198.51.100.9", Status: "ok", NetworkClass: policies.NetClassResidential}
	// The quiet members, first seen after the farm's laptops enrolled.
	if err := st.SeedCrowd(ctx, n-8, now, "egress_ip "+home.IP, "gateway_mac "+gatewayMAC); err != nil {
		b.Fatal(err)
	}
	seq := uint64(0)
	// report enrolls host (from an address of its own, so that no
	// enrollment rule fires) and stores its first report, from egress
	// behind the router mac, received at; it returns how long the report
	// took.
	report := func(host string, eg detect.Egress, mac string, at time.Time) time.Duration {
		seq++
		if _, err := st.Enroll(ctx, store.Enrollment{AgentID: "agent-" + host, SecretID: sec.ID, IP: fmt.Sprintf("10.%d.%d.%d", seq>>16&255, seq>>8&255, seq&255),
			HardwareKey: "hw-" + host, Identity: identity(host), CertSerial: "c-" + host, CertNotAfter: now.AddDate(1, 0, 0)}); err != nil {
			b.Fatal(err)
		}
		a, err := st.AgentByID(ctx, "agent-"+host)
		if err != nil {
			b.Fatal(err)
		}
		sn := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: host},
			Network: &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Interface: "wlan0", Gateway: "192.168.1.1", GatewayMac: mac}}}
		data, err := proto.Marshal(sn)
		if err != nil {
			b.Fatal(err)
		}
		r := store.IngestReport{ReportID: fmt.Sprintf("30000000-0000-4000-8000-%012d", seq), Sequence: 1, CreatedAt: at.Add(-time.Second),
			Identity: identity(host), Snapshot: sn, Data: data, Digest: fmt.Sprintf("%064x", seq), Sections: map[string]string{"network": eg.IP + mac}}
		start := time.Now()
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: eg.IP, Egress: eg, ReceivedAt: at, ReportInterval: interval,
			Reports: []store.IngestReport{r}}, rules); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	at := now.Add(time.Minute)
	for i := range 8 {
		report(fmt.Sprintf("farm-%d", i), home, gatewayMAC, at)
	}
	farm, err := st.ListClusters(ctx, true, 0)
	if err != nil || len(farm) != 1 || farm[0].Devices != n {
		b.Fatalf("the farm's cluster: %+v, %v; want one suspected cluster of %d", farm, err, n)
	}
	report("joiner-warm", home, gatewayMAC, at)
	var join, alone []time.Duration
	b.StartTimer()
	for i := range joinRounds {
		at = at.Add(time.Second)
		eg := detect.Egress{IP: fmt.Sprintf("192.0.2.%d", i+1), Status: "ok", NetworkClass: policies.NetClassResidential}
		alone = append(alone, report(fmt.Sprintf("alone-%02d", i), eg, fmt.Sprintf("3c:84:6a:00:00:%02x", i), at))
		join = append(join, report(fmt.Sprintf("joiner-%02d", i), home, gatewayMAC, at))
	}
	b.StopTimer()
	got, err := st.GetCluster(ctx, farm[0].ID)
	if err != nil || got.Devices != n+1+joinRounds || !got.Suspected {
		b.Fatalf("the farm's cluster after the joins: %d devices, suspected %v, %v; want %d", got.Devices, got.Suspected, err, n+1+joinRounds)
	}
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(sum.Microseconds()) / 1000 / float64(len(ds))
	}
	b.ReportMetric(mean(join), "ms-join")
	b.ReportMetric(mean(alone), "ms-alone")
	b.ReportMetric(mean(join)/mean(alone), "join/alone")
	b.ReportMetric(0, "ns/op")
}

// benchRules are the shipped rules and a stand-in remote-access rule
// that flags the farm's laptops (hosts named farm-*), a co-signal.
func benchRules(b *testing.B) *detect.Engine {
	files := fstest.MapFS{}
	if err := fs.WalkDir(policies.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(policies.FS(), path)
		files[path] = &fstest.MapFile{Data: data}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	files["rules/bench/remote_access.yaml"] = &fstest.MapFile{Data: []byte(`
rules:
  - id: bench_remote_session
    title: Remote session
    severity: high
    scope: device
    auto_resolve: true
    description: D
    condition: device.hostname.startsWith("farm-")
`)}
	rules, err := detect.Load(files)
	if err != nil {
		b.Fatal(err)
	}
	if !slices.ContainsFunc(rules.Rules(), func(r detect.Rule) bool { return r.ID == "laptop_farm_suspected" }) {
		b.Fatal("no fleet rules")
	}
	return rules
}
