package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

var metricsLine = regexp.MustCompile(`msg="metrics listening" url=(\S+)`)

// TestMetricsEndToEnd runs a collector with --metrics-listen and sends it
// known traffic through the real agent over gRPC/TLS: an enrollment with a
// wrong secret, two enrollments of this one machine (a cloned disk, which
// raises duplicate_hardware_identity) and three reports. It then scrapes
// /metrics over HTTP, reads what that traffic must have produced, compares
// the database-backed gauges with the API, and has promtool check the
// exposition.
func TestMetricsEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		storetest.Missing(t, "promtool (apt-get update && apt-get install -y prometheus)")
	}
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		var extra []string
		if strings.HasPrefix(dsn, "postgres") {
			extra = []string{"--db", dsn}
		}
		s := startServerArgs(t, collector, t.TempDir(), append(extra, "--metrics-listen", "127.0.0.1:0")...)
		m := metricsLine.FindStringSubmatch(s.log.String())
		if m == nil {
			t.Fatalf("no metrics address in the log:\n%s", s.log)
		}
		url := m[1]
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")

		bad := exec.Command(agent, "enroll", "--collector", s.grpc, "--secret", "bfe_wrong", "--ca-fingerprint", fp, "--state-dir", t.TempDir())
		if out, err := bad.CombinedOutput(); err == nil {
			t.Fatalf("enrollment with a wrong secret succeeded: %s", out)
		}
		root := "../agent/internal/hostid/testdata/root-debian"
		st1, st2 := t.TempDir(), t.TempDir()
		for _, st := range []string{st1, st2} {
			runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", st, "--root", root)
		}
		for _, st := range []string{st1, st2, st1} {
			runAgent(t, agent, "run", "--once", "--state-dir", st, "--root", root)
		}
		// The second installation claims the first's hardware: a device of
		// its own (hardware identity is a claim), flagged.
		stored := 0.0
		for _, d := range s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any) {
			stored += s.api(t, "GET", "/api/v1/devices/"+d.(map[string]any)["id"].(string), viewer, "", 200)["report_count"].(float64)
		}
		open := s.api(t, "GET", "/api/v1/alerts?status=open", viewer, "", 200)["alerts"].([]any)

		body := get(t, url)
		got := samples(t, body)
		for series, want := range map[string]float64{
			`bonafide_enrollments_total{result="enrolled"}`:                                    2,
			`bonafide_enrollments_total{result="refused"}`:                                     1,
			`bonafide_reports_total{result="stored"}`:                                          3,
			`bonafide_reports_total{result="failed"}`:                                          0,
			`bonafide_ingest_queue_depth`:                                                      0,
			`bonafide_agents_connected`:                                                        2,
			`bonafide_alerts_raised_total{rule="duplicate_hardware_identity",severity="high"}`: 1,
		} {
			if v, ok := got[series]; !ok || v != want {
				t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
			}
		}
		if stored != 3 {
			t.Errorf("the database holds %v reports on the two devices, want 3", stored)
		}
		// Each Report call was timed; the agent sends one report per call.
		if n := got["bonafide_ingest_duration_seconds_count"]; n != 3 {
			t.Errorf("ingest duration count %v, want 3", n)
		}
		if n := got["bonafide_fleet_recompute_duration_seconds_count"]; n < 1 {
			t.Errorf("fleet recompute count %v: the recompute at start was not timed", n)
		}
		if n := sum(got, "bonafide_alerts_open{"); n != float64(len(open)) || n == 0 {
			t.Errorf("bonafide_alerts_open sums to %v, the API lists %d open alerts", n, len(open))
		}
		if n := sum(got, "bonafide_agent_versions{"); n != 2 {
			t.Errorf("bonafide_agent_versions sums to %v, want 2 devices (the installation and its claimant)", n)
		}
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			if _, ok := got[name]; !ok {
				t.Errorf("%s missing: no Go or process collector", name)
			}
		}

		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}

		// Metrics are served on their own listener only.
		resp, err := http.Get("http://" + s.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the API listener serves /metrics too")
		}
		if t.Failed() {
			t.Logf("scraped:\n%s", body)
		}
	})
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %d\n%s", url, err, resp.StatusCode, b)
	}
	return b
}

// samples maps each series ("name{labels}") of a text exposition to its value.
func samples(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func sum(samples map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// TestPprofOnMetricsListener: `serve --pprof` serves Go's runtime profiles
// on the metrics listener and nowhere else; without it there are none, and
// --pprof without --metrics-listen is refused.
func TestPprofOnMetricsListener(t *testing.T) {
	_, collector := binaries(t)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metricsURL := func(s *server) string {
		t.Helper()
		m := metricsLine.FindStringSubmatch(s.log.String())
		if m == nil {
			t.Fatalf("no metrics address in the log:\n%s", s.log)
		}
		return strings.TrimSuffix(m[1], "/metrics")
	}

	s := startServerArgs(t, collector, t.TempDir(), "--metrics-listen", "127.0.0.1:0", "--pprof")
	base := metricsURL(s)
	if code, body := get(base + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: %d %.200s", code, body)
	}
	if code, body := get(base + "/debug/pprof/heap"); code != 200 || len(body) == 0 {
		t.Fatalf("heap profile: %d, %d bytes", code, len(body))
	}
	if code, _ := get("http://" + s.http + "/debug/pprof/"); code == 200 {
		t.Fatal("profiles served on the API's listener")
	}

	plain := startServerArgs(t, collector, t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	if code, _ := get(metricsURL(plain) + "/debug/pprof/"); code != 404 {
		t.Fatalf("without --pprof: status %d, want 404", code)
	}

	out, err := exec.Command(collector, "serve", "--data-dir", t.TempDir(), "--pprof").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--pprof needs --metrics-listen") {
		t.Fatalf("--pprof without --metrics-listen: %v\n%s", err, out)
	}
}
