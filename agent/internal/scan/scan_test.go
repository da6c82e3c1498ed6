package scan

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestDigestIgnoresScanTimes(t *testing.T) {
	s := &Scanner{Root: "../hostid/testdata/root-debian", Version: "1.0", AgentID: "a"}
	a, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Scan(context.Background())
	b.ScanStartedAt = timestamppb.New(time.Now().Add(time.Hour))
	if Digest(a) != Digest(b) {
		t.Fatal("digest changed with the scan time only")
	}
	b.Identity.Hostname = "other"
	if Digest(a) == Digest(b) {
		t.Fatal("digest did not change with the content")
	}
	if a.GetIdentity().GetAgentId() != "a" || a.GetIdentity().GetAgentVersion() != "1.0" {
		t.Fatalf("identity %v", a.GetIdentity())
	}
}

func TestFingerprintStable(t *testing.T) {
	s := &Scanner{Root: "../hostid/testdata/root-debian"}
	first := s.Fingerprint()
	if first == "" || s.Fingerprint() != first {
		t.Fatal("fingerprint not stable on an unchanged machine")
	}
}
