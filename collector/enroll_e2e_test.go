package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
