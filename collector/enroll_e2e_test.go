package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestEnrollmentLostAnswerClaimed: an agent's enrollment was committed but
// its answer never reached the agent (it timed out, crashed or was
// stopped). The agent kept its enrollment key, so when it enrolls again,
// as the next start of its service does, it gets that agent back: the
// device has one agent, which then reports.
func TestEnrollmentLostAnswerClaimed(t *testing.T) {
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		db := ""
		if strings.HasPrefix(dsn, "postgres") {
			db = dsn
		}
		s := startServer(t, collector, t.TempDir(), db, "127.0.0.1:0")
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")
		root := "../agent/internal/scan/testdata/roots/office-dock"
		state := t.TempDir()

		// The first attempt: the key is kept in the state directory, the
		// collector enrolls it, the answer is lost.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalPKCS8PrivateKey(key)
		if err := os.WriteFile(filepath.Join(state, "enroll.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			t.Fatal(err)
		}
		var sn agentv1.HostSnapshot
		if err := protojson.Unmarshal([]byte(runAgent(t, agent, "scan", "--json", "--root", root)), &sn); err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		cc, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		lost, err := agentv1.NewAgentServiceClient(cc).Enroll(context.Background(), &agentv1.EnrollRequest{Secret: secret, Identity: sn.GetIdentity(), Csr: csr})
		if err != nil {
			t.Fatal(err)
		}

		// The agent enrolls again with the key it kept.
		out := runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", state, "--root", root)
		m := regexp.MustCompile(`enrolled: agent (\S+), device (\S+),`).FindStringSubmatch(out)
		if m == nil || m[1] != lost.GetAgentId() || m[2] != lost.GetDeviceId() {
			t.Fatalf("enroll: %s; want agent %s, device %s (the enrollment whose answer was lost)", out, lost.GetAgentId(), lost.GetDeviceId())
		}
		if _, err := os.Stat(filepath.Join(state, "enroll.key")); !os.IsNotExist(err) {
			t.Fatalf("enroll.key left after the enrollment: %v", err)
		}
		runAgent(t, agent, "run", "--once", "--state-dir", state, "--root", root)

		// A state directory cloned mid-enrollment onto another machine: its
		// key is the first device's, which the collector refuses; the agent
		// drops it and enrolls with a new one at its next attempt.
		clone := t.TempDir()
		if err := os.WriteFile(filepath.Join(clone, "enroll.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			t.Fatal(err)
		}
		other := "../agent/internal/scan/testdata/roots/home-desk"
		refused, err := exec.Command(agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", clone, "--root", other).CombinedOutput()
		if err == nil || !strings.Contains(string(refused), "enrolled for another device") {
			t.Fatalf("enroll with another device's key: %v %s", err, refused)
		}
		out = runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--ca-fingerprint", fp, "--state-dir", clone, "--root", other)
		if m := regexp.MustCompile(`enrolled: agent (\S+), device (\S+),`).FindStringSubmatch(out); m == nil || m[1] == lost.GetAgentId() || m[2] == lost.GetDeviceId() {
			t.Fatalf("enroll of the clone after the refusal: %s", out)
		}
		dev := s.api(t, "GET", "/api/v1/devices/"+lost.GetDeviceId(), viewer, "", 200)
		agents, _ := dev["agents"].([]any)
		if len(agents) != 1 || agents[0].(map[string]any)["id"] != lost.GetAgentId() || agents[0].(map[string]any)["last_seen"] == nil {
			t.Fatalf("agents of the device: %v; want only %s, reporting", agents, lost.GetAgentId())
		}
	})
}

// TestEnrollBusyAddressBacksOff: an office behind one NAT address enrolls
// at once, more laptops than the collector lets one address hold
// connections without a certificate (--max-unauth-conns-per-address, 1
// here, held by another laptop of the office). The agent's enrollment is
// refused with ResourceExhausted and a retry-after hint, not cut off, and
// the agent waits and tries again; once the address has room, it enrolls
// (once) and reports.
func TestEnrollBusyAddressBacksOff(t *testing.T) {
	agent, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		extra := []string{"--max-unauth-conns-per-address", "1"}
		if strings.HasPrefix(dsn, "postgres") {
			extra = append(extra, "--db", dsn)
		}
		s := startServerArgs(t, collector, t.TempDir(), extra...)
		secret := s.admin(t, "secret", "create")
		fp := s.admin(t, "ca", "fingerprint")
		viewer := s.admin(t, "token", "create", "--role", "viewer")

		// Another laptop of the office holds the address's one connection
		// without a certificate; a probe from the address is refused
		// once the collector counts it.
		held := dialH2(s.grpc, nil)
		if held == nil {
			t.Fatal("cannot open the held connection")
		}
		defer func() {
			if held != nil {
				held.conn.Close()
			}
		}()
		probe, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := agentv1.NewAgentServiceClient(probe).Enroll(ctx, &agentv1.EnrollRequest{Secret: secret})
			cancel()
			if status.Code(err) == codes.ResourceExhausted {
				wantRefusedWithRetry(t, err)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a second connection from the address is not refused as busy: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}

		cfg := filepath.Join(t.TempDir(), "agent.yaml")
		os.WriteFile(cfg, fmt.Appendf(nil, "collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\nstart_delay: 0s\n", s.grpc, secret, fp, t.TempDir()), 0o600)
		a := exec.Command(agent, "run", "--config", cfg, "--root", "../agent/internal/scan/testdata/roots/office-dock")
		alog := &lockedBuffer{}
		a.Stdout, a.Stderr = alog, alog
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Process.Kill(); a.Wait() })
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			for deadline := time.Now().Add(3 * time.Minute); !ok(); time.Sleep(200 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not within 3 minutes; agent log:\n%s\ncollector log:\n%s", what, alog, s.log)
				}
			}
		}
		waitFor("the agent is refused as busy and backs off", func() bool {
			return strings.Contains(alog.String(), "enrollment failed; retrying") && strings.Contains(alog.String(), "ResourceExhausted")
		})
		held.conn.Close()
		held = nil
		waitFor("the agent enrolls and reports", func() bool {
			devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
			return len(devices) == 1 && devices[0].(map[string]any)["last_seen"] != nil
		})
		devices := s.api(t, "GET", "/api/v1/devices", viewer, "", 200)["devices"].([]any)
		if n := strings.Count(alog.String(), "msg=enrolled"); n != 1 || len(devices) != 1 {
			t.Fatalf("%d enrollments logged and %d devices, want one of each; agent log:\n%s", n, len(devices), alog)
		}
	})
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
