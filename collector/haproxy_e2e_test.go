package main

import (
	"bytes"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// grpcHealthCheck is the request of HAProxy's health check on the gRPC
// port (docs/scaling.md), in the hex of `tcp-check send-binary`: HAProxy
// cannot put the gRPC frame's zero bytes in an http-check body, so the
// check speaks HTTP/2 itself over TLS (ALPN h2), after the PROXY v2 header
// its server line sends: the client preface, an empty SETTINGS frame, a
// HEADERS frame (stream 1: POST /grpc.health.v1.Health/Check, authority
// localhost, content-type application/grpc, te trailers; HPACK literals
// without Huffman coding) and a DATA frame ending the stream with an empty
// HealthCheckRequest (five zero bytes: not compressed, length 0).
const grpcHealthCheck = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a" + // PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n
	"000000040000000000" + // SETTINGS, empty
	"00004b010400000001" + "8387" + // HEADERS, 75 bytes, END_HEADERS, stream 1: :method POST, :scheme https
	"041c2f677270632e6865616c74682e76312e4865616c74682f436865636b" + // :path /grpc.health.v1.Health/Check
	"01096c6f63616c686f7374" + // :authority localhost
	"0f10106170706c69636174696f6e2f67727063" + // content-type application/grpc
	"0002746508747261696c657273" + // te trailers
	"000005000100000001" + "0000000000" // DATA, 5 bytes, END_STREAM, stream 1: the empty request

// grpcServing is what the check expects in the answer: the response
// message, HealthCheckResponse{status: SERVING} (field 1 = 1) in its
// five-byte gRPC frame; NOT_SERVING (08 02) fails the check.
const grpcServing = "00000000020801"

// haproxyConfig is the configuration of docs/scaling.md with this test's
// addresses.
var haproxyConfig = template.Must(template.New("haproxy.cfg").Parse(`global
    log stderr format raw local0 notice

defaults
    log global
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout check 5s
    retries 3
    option redispatch

# Agents: gRPC over mutual TLS, passed through (TLS ends at the
# collector, which checks the agent's certificate); the PROXY v2 header
# tells the collector the agent's address.
frontend agents
    mode tcp
    bind {{.GRPC}}
    default_backend collectors_grpc

backend collectors_grpc
    mode tcp
    balance leastconn
    option tcp-check
    tcp-check connect default ssl alpn h2
    tcp-check send-binary {{.Check}}
    tcp-check expect binary {{.Serving}}
    default-server send-proxy-v2 check inter 1s fall 2 rise 2 verify none
{{- range .Replicas}}
    server {{.Name}} {{.GRPC}}
{{- end}}

# The web UI and the API.
frontend web
    mode http
    bind {{.HTTP}}
    option forwardfor
    default_backend collectors_http

backend collectors_http
    mode http
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 2
{{- range .Replicas}}
    server {{.Name}} {{.HTTP}}
{{- end}}

frontend stats
    mode http
    bind {{.Stats}}
    stats enable
    stats uri /stats
`))

type haproxyReplica struct{ Name, GRPC, HTTP string }

// haproxyBinary is Debian's haproxy.
func haproxyBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	storetest.Missing(t, "haproxy (Debian package haproxy)")
	return ""
}

// loadBalancer is a running haproxy.
type loadBalancer struct {
	grpc, http, stats string
	mu                sync.Mutex
	log               bytes.Buffer
}

func (lb *loadBalancer) logs() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.log.String()
}

func (lb *loadBalancer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.log.Write(p)
}

// startHAProxy runs haproxy in the foreground in front of rs.
func startHAProxy(t testing.TB, bin string, rs []*replica) *loadBalancer {
	t.Helper()
	lb := &loadBalancer{grpc: freeAddr(t), http: freeAddr(t), stats: freeAddr(t)}
	var hs []haproxyReplica
	for _, r := range rs {
		hs = append(hs, haproxyReplica{Name: r.name, GRPC: r.grpc, HTTP: r.http})
	}
	var cfg bytes.Buffer
	haproxyConfig.Execute(&cfg, map[string]any{"GRPC": lb.grpc, "HTTP": lb.http, "Stats": lb.stats,
		"Check": grpcHealthCheck, "Serving": grpcServing, "Replicas": hs})
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg.Bytes())
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = lb, lb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return lb
}

// servers reads the stats page: backend → server → the CSV row's fields.
func (lb *loadBalancer) servers(t testing.TB) map[string]map[string]map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + lb.stats + "/stats;csv")
	if err != nil {
		return nil // not listening yet
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("# ")))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("haproxy stats: %v\n%s", err, b)
	}
	out := map[string]map[string]map[string]string{}
	for _, r := range rows[1:] {
		if r[1] == "FRONTEND" || r[1] == "BACKEND" {
			continue
		}
		row := map[string]string{}
		for i, h := range rows[0] {
			if i < len(r) {
				row[h] = r[i]
			}
		}
		if out[r[0]] == nil {
			out[r[0]] = map[string]map[string]string{}
		}
		out[r[0]][r[1]] = row
	}
	return out
}

// up lists the servers of backend that haproxy's health checks found up.
func (lb *loadBalancer) up(t testing.TB, backend string) []string {
	var names []string
	for name, row := range lb.servers(t)[backend] {
		if strings.HasPrefix(row["status"], "UP") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// fleetsimTotals reads devices, enrolled, sent and acked from a fleetsim
// summary.
func fleetsimTotals(t *testing.T, out string) (sent, acked int) {
	t.Helper()
	for line := range strings.Lines(out) {
		var devices, enrolled int
		if _, err := fmt.Sscanf(line, "total %d %d %d %d", &devices, &enrolled, &sent, &acked); err == nil {
			return sent, acked
		}
	}
	t.Fatalf("no total in the fleetsim summary:\n%s", out)
	return 0, 0
}

// worldOutcome is what a collector concluded about the simulated world,
// by hostname: each device's open alerts, and the clusters (members, and
// whether suspected).
type worldOutcome struct {
	alerts   map[string][]string
	clusters []string
}

func outcome(t *testing.T, s *server, token string) worldOutcome {
	t.Helper()
	hosts := map[string]string{}
	for _, d := range fleetListAll(t, s, "/api/v1/devices", "devices", token) {
		hosts[d["id"].(string)], _ = d["hostname"].(string)
	}
	o := worldOutcome{alerts: map[string][]string{}}
	for _, a := range fleetListAll(t, s, "/api/v1/alerts", "alerts", token) {
		host := hosts[a["device_id"].(string)]
		o.alerts[host] = append(o.alerts[host], a["rule_id"].(string))
	}
	for h := range o.alerts {
		slices.Sort(o.alerts[h])
	}
	for _, c := range s.api(t, "GET", "/api/v1/farms", token, "", 200)["farms"].([]any) {
		c := c.(map[string]any)
		var members []string
		for _, m := range c["members"].([]any) {
			members = append(members, m.(map[string]any)["hostname"].(string))
		}
		slices.Sort(members)
		o.clusters = append(o.clusters, fmt.Sprintf("suspected=%v %s", c["suspected"], strings.Join(members, ",")))
	}
	slices.Sort(o.clusters)
	return o
}

// TestHAProxyReplicas runs the scaled-out deployment of docs/scaling.md:
// Debian's haproxy, with the documented configuration, in front of three
// collector replicas sharing one PostgreSQL, and the fleet simulator's
// world (offices, coworking, remote workers, travellers, a household, VPN
// users, the farm) enrolling and reporting through it. In the middle of
// the first run the replica running the periodic jobs is killed with
// SIGKILL; haproxy's gRPC health check takes it out of the pool, another
// replica takes the jobs over, and the agents' retries land on the
// survivors. It is restarted and the fleet reports again.
//
// Afterwards: every report the agents had acknowledged is stored exactly
// once (each agent's sequence numbers 1…n, each once, and as many as were
// acknowledged); each device's egress is its own address, passed by
// haproxy's PROXY v2 header, not haproxy's; no (rule, device) has two
// alerts; the farm and only the farm is suspected (assertOnlyFarmFlagged);
// and the alerts and clusters are those of the same world run against a
// single collector.
func TestHAProxyReplicas(t *testing.T) {
	_, collector := binaries(t)
	dsn := storetest.PostgresDSN(t)
	hap := haproxyBinary(t)
	sim := fleetsimBinary(t)
	const seed, size = "42", "100"
	world := t.TempDir()
	if out, err := exec.Command(sim, "world", "--out", world, "--seed", seed, "--devices", size).CombinedOutput(); err != nil {
		t.Fatalf("fleetsim world: %v\n%s", err, out)
	}
	manifest := fleetReadManifest(t, filepath.Join(world, "devices.csv"))
	pol := filepath.Join(world, "policies")
	worldFlags := []string{"--policies", pol, "--geoip", filepath.Join(world, "city.mmdb"), "--geoip", filepath.Join(world, "asn.mmdb")}

	env := []string{dbKeyEnv + "=" + ca.GenerateKey()}
	var rs []*replica
	for i := range 3 {
		args := append([]string{"--db", dsn, "--grpc-listen", freePort(t), "--http-listen", freePort(t),
			"--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--sweep-interval", "1s", "--fleet-recompute-interval", "5s"}, worldFlags...)
		rs = append(rs, newReplica(t, fmt.Sprintf("c%d", i+1), collector, t.TempDir(), dsn, env, args...))
	}
	lb := startHAProxy(t, hap, rs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy:\n%s", lb.logs())
			for _, r := range rs {
				t.Logf("%s:\n%s", r.name, r.logs())
			}
		}
	})
	all := []string{"c1", "c2", "c3"}
	waitFor(t, time.Minute, "haproxy does not see three healthy replicas", func() bool {
		return slices.Equal(lb.up(t, "collectors_grpc"), all) && slices.Equal(lb.up(t, "collectors_http"), all)
	})

	// Everything from here goes through haproxy.
	s := &server{grpc: lb.grpc, http: lb.http, dataDir: rs[0].dataDir, db: dsn, collector: collector, log: &bytes.Buffer{}}
	s.admin(t, "people", "import", filepath.Join(world, "people.csv"))
	secret := s.admin(t, "secret", "create")
	fp := s.admin(t, "ca", "fingerprint")
	viewer := s.admin(t, "token", "create", "--role", "viewer")

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reports := func() (n int) {
		if err := db.QueryRow(`SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The first run: a snapshot and six heartbeats per laptop, 16 at once.
	state := t.TempDir()
	simRun := func(collector, secret, fp, state, rounds string) *exec.Cmd {
		return exec.Command(sim, "run", "--collector", collector, "--secret", secret, "--ca-fingerprint", fp,
			"--state", state, "--seed", seed, "--devices", size, "--rounds", rounds)
	}
	var out1 bytes.Buffer
	run1 := simRun(lb.grpc, secret, fp, state, "6")
	run1.Stdout, run1.Stderr = &out1, &out1
	if err := run1.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run1.Wait() }()
	expected := len(manifest) * 7
	for deadline := time.Now().Add(5 * time.Minute); reports() < expected/3; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("fleetsim ended before the kill (%v):\n%s", err, &out1)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("a third of the reports did not arrive in 5 minutes:\n%s", &out1)
		}
	}
	var victim *replica
	for _, r := range rs {
		if r.count(leaseTaken("sweep")) > 0 {
			victim = r
		}
	}
	if victim == nil || holders("sweep", rs...) != victim.name+"×1" {
		t.Fatalf("sweep lease taken by %q, want exactly one replica", holders("sweep", rs...))
	}
	victim.kill()
	t.Logf("killed %s (it ran the jobs) with %d of about %d reports stored", victim.name, reports(), expected)
	var left []string
	for _, n := range all {
		if n != victim.name {
			left = append(left, n)
		}
	}
	waitFor(t, time.Minute, "haproxy kept the killed replica in the pool", func() bool { return slices.Equal(lb.up(t, "collectors_grpc"), left) })
	waitFor(t, time.Minute, "no surviving replica took the sweep over", func() bool {
		n := 0
		for _, r := range rs {
			n += r.count(leaseTaken("sweep"))
		}
		return n == 2
	})
	t.Logf("sweep lease: %s", holders("sweep", rs...))
	select {
	case err = <-exited:
	case <-time.After(10 * time.Minute):
		run1.Process.Kill()
		t.Fatalf("fleetsim run did not finish:\n%s", &out1)
	}
	if err != nil {
		t.Fatalf("fleetsim run (a replica killed in the middle): %v\n%s", err, &out1)
	}
	t.Logf("fleetsim run, a replica killed in the middle:\n%s", &out1)
	_, acked1 := fleetsimTotals(t, out1.String())

	// Restarted on its data dir and addresses, it rejoins the pool.
	victim.start(t)
	waitFor(t, time.Minute, "haproxy did not take the restarted replica back", func() bool { return slices.Equal(lb.up(t, "collectors_grpc"), all) })
	out2, err := simRun(lb.grpc, secret, fp, state, "2").CombinedOutput()
	if err != nil {
		t.Fatalf("fleetsim run after the restart: %v\n%s", err, out2)
	}
	_, acked2 := fleetsimTotals(t, string(out2))
	for name, row := range lb.servers(t)["collectors_grpc"] {
		if row["stot"] == "0" {
			t.Errorf("haproxy sent no connection to %s", name)
		}
	}

	// Every acknowledged report stored exactly once.
	rows, err := db.Query(`SELECT agent_id, count(*), count(DISTINCT sequence), min(sequence), max(sequence) FROM reports GROUP BY agent_id`)
	if err != nil {
		t.Fatal(err)
	}
	stored, agents := 0, 0
	for rows.Next() {
		var id string
		var n, distinct, lo, hi int
		if err := rows.Scan(&id, &n, &distinct, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != distinct || lo != 1 || hi != n {
			t.Errorf("agent %s: %d reports, %d sequence numbers, %d…%d", id, n, distinct, lo, hi)
		}
		stored += n
		agents++
	}
	rows.Close()
	if stored != acked1+acked2 || agents != len(manifest) {
		t.Errorf("%d reports of %d agents stored; the fleet had %d acknowledged from %d laptops", stored, agents, acked1+acked2, len(manifest))
	}
	var dups int
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT rule_id, device_id FROM alerts GROUP BY rule_id, device_id HAVING count(*) > 1) d`).Scan(&dups); err != nil || dups != 0 {
		t.Errorf("%d (rule, device) pairs with several alerts (%v)", dups, err)
	}

	// Each device's egress is its own address, not haproxy's.
	devices := fleetListAll(t, s, "/api/v1/devices", "devices", viewer)
	if len(devices) != len(manifest) {
		t.Errorf("%d devices, %d simulated", len(devices), len(manifest))
	}
	for _, d := range devices {
		host, _ := d["hostname"].(string)
		eg, _ := d["egress"].(map[string]any)
		if m := manifest[host]; m == nil || eg["ip"] != m.egress || eg["network_class"] != m.class {
			t.Errorf("%s: egress %v, want the laptop's own address", host, eg)
		}
	}

	got := outcome(t, s, viewer)
	assertOnlyFarmFlagged(t, s, viewer, manifest, got.alerts, fleetRuleIDs(t, filepath.Join(pol, "rules", "fleet.yaml")))

	// The same world against a single collector.
	one := startServerArgs(t, collector, t.TempDir(), worldFlags...)
	one.admin(t, "people", "import", filepath.Join(world, "people.csv"))
	oneSecret, oneFP := one.admin(t, "secret", "create"), one.admin(t, "ca", "fingerprint")
	oneState := t.TempDir()
	for _, rounds := range []string{"6", "2"} {
		if out, err := simRun(one.grpc, oneSecret, oneFP, oneState, rounds).CombinedOutput(); err != nil {
			t.Fatalf("fleetsim run against one collector: %v\n%s", err, out)
		}
	}
	want := outcome(t, one, one.admin(t, "token", "create", "--role", "viewer"))
	for _, h := range slices.Sorted(maps.Keys(manifest)) {
		if !slices.Equal(got.alerts[h], want.alerts[h]) {
			t.Errorf("%s (%s): alerts %v behind haproxy, %v on one collector", h, manifest[h].scenario, got.alerts[h], want.alerts[h])
		}
	}
	if !slices.Equal(got.clusters, want.clusters) {
		t.Errorf("clusters behind haproxy:\n%s\non one collector:\n%s", strings.Join(got.clusters, "\n"), strings.Join(want.clusters, "\n"))
	}
	t.Logf("%d reports from %d laptops stored once; %d alerts on %d devices and %d clusters as on one collector",
		stored, agents, countAlerts(got.alerts), len(got.alerts), len(got.clusters))
}

func countAlerts(m map[string][]string) (n int) {
	for _, v := range m {
		n += len(v)
	}
	return n
}

// TestScalingDocShowsTheTestedConfig: docs/scaling.md shows the
// configuration TestHAProxyReplicas runs.
func TestScalingDocShowsTheTestedConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	haproxyConfig.Execute(&cfg, map[string]any{"GRPC": ":8443", "HTTP": ":8080", "Stats": "127.0.0.1:8404",
		"Check": grpcHealthCheck, "Serving": grpcServing, "Replicas": []haproxyReplica{
			{"c1", "10.0.0.11:8443", "10.0.0.11:8080"}, {"c2", "10.0.0.12:8443", "10.0.0.12:8080"}, {"c3", "10.0.0.13:8443", "10.0.0.13:8080"}}})
	if !bytes.Contains(b, cfg.Bytes()) {
		t.Errorf("docs/scaling.md does not show the tested configuration; it should contain:\n%s", cfg.Bytes())
	}
	if _, err := hex.DecodeString(grpcHealthCheck + grpcServing); err != nil {
		t.Errorf("the health check is not hex: %v", err)
	}
}

// freeAddr is a free loopback address for a server started later.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BenchmarkHAProxyReplicas measures whole-system throughput of the
// scaled-out deployment: the fleet simulator's default world (about 300
// laptops, 32 at once) sending a snapshot and five heartbeats each over
// mTLS gRPC, through haproxy (the documented configuration) to one, two
// and three replicas on one PostgreSQL, beside its floor measured in the
// same run: the same fleet straight to one replica, no haproxy. Each
// sub-benchmark has its own database; the laptops enroll and send a first
// snapshot before the clock starts. reports/s counts acknowledged
// reports. On a machine with fewer cores than replicas, the replicas,
// haproxy, PostgreSQL and the simulator share the same cores, so the
// figures show haproxy's cost and that failover costs no throughput, not
// how replicas scale on machines of their own.
//
//	BONAFIDE_TEST_POSTGRES=postgres://… go test -run '^$' -bench HAProxyReplicas -benchtime 2x ./collector/
func BenchmarkHAProxyReplicas(b *testing.B) {
	if os.Getenv("BONAFIDE_TEST_POSTGRES") == "" {
		storetest.Missing(b, "PostgreSQL (set BONAFIDE_TEST_POSTGRES to a DSN)")
	}
	hap := haproxyBinary(b)
	collector, sim := benchBinaries(b)
	world := b.TempDir()
	if out, err := exec.Command(sim, "world", "--out", world).CombinedOutput(); err != nil {
		b.Fatalf("fleetsim world: %v\n%s", err, out)
	}
	worldFlags := []string{"--policies", filepath.Join(world, "policies"), "--geoip", filepath.Join(world, "city.mmdb"), "--geoip", filepath.Join(world, "asn.mmdb")}
	for _, c := range []struct {
		name     string
		replicas int
		haproxy  bool
	}{{"floor-direct-1", 1, false}, {"haproxy-1", 1, true}, {"haproxy-2", 2, true}, {"haproxy-3", 3, true}} {
		b.Run(c.name, func(b *testing.B) {
			dsn := storetest.PostgresDSN(b)
			env := []string{dbKeyEnv + "=" + ca.GenerateKey()}
			var rs []*replica
			for i := range c.replicas {
				args := append([]string{"--db", dsn, "--grpc-listen", freeAddr(b), "--http-listen", freeAddr(b)}, worldFlags...)
				if c.haproxy {
					args = append(args, "--proxy-protocol", "--trusted-proxy", "127.0.0.1")
				}
				rs = append(rs, newReplica(b, fmt.Sprintf("c%d", i+1), collector, b.TempDir(), dsn, env, args...))
			}
			addr := rs[0].grpc
			if c.haproxy {
				lb := startHAProxy(b, hap, rs)
				for deadline := time.Now().Add(time.Minute); len(lb.up(b, "collectors_grpc")) != c.replicas; time.Sleep(100 * time.Millisecond) {
					if time.Now().After(deadline) {
						b.Fatalf("haproxy does not see %d healthy replicas:\n%s", c.replicas, lb.logs())
					}
				}
				addr = lb.grpc
			}
			admin := func(args ...string) string {
				out, err := exec.Command(collector, append(args, "--data-dir", rs[0].dataDir, "--db", dsn)...).Output()
				if err != nil {
					b.Fatalf("%v: %v %s", args, err, exitStderr(err))
				}
				return strings.TrimSpace(string(out))
			}
			admin("people", "import", filepath.Join(world, "people.csv"))
			secret, fp, state := admin("secret", "create"), admin("ca", "fingerprint"), b.TempDir()
			run := func(rounds string) string {
				out, err := exec.Command(sim, "run", "--collector", addr, "--secret", secret, "--ca-fingerprint", fp,
					"--state", state, "--rounds", rounds, "--concurrency", "32").CombinedOutput()
				if err != nil {
					b.Fatalf("fleetsim run: %v\n%s", err, out)
				}
				return string(out)
			}
			run("0") // enroll, and a first snapshot
			acked, took := 0, time.Duration(0)
			for b.Loop() {
				start := time.Now()
				out := run("5")
				took += time.Since(start)
				for line := range strings.Lines(out) {
					var devices, enrolled, sent, ack int
					if _, err := fmt.Sscanf(line, "total %d %d %d %d", &devices, &enrolled, &sent, &ack); err == nil {
						acked += ack
					}
				}
			}
			b.ReportMetric(float64(acked)/took.Seconds(), "reports/s")
		})
	}
}

// benchBinaries builds bonafide-collector and bonafide-fleetsim for a
// benchmark.
func benchBinaries(b *testing.B) (collector, sim string) {
	dir := b.TempDir()
	collector, sim = filepath.Join(dir, "bonafide-collector"), filepath.Join(dir, "bonafide-fleetsim")
	for bin, pkg := range map[string]string{collector: "collector", sim: "agent/fleetsim"} {
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/bonafide-sec/bonafide/"+pkg).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	return collector, sim
}
