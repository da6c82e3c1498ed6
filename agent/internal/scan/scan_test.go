package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
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

func TestScanRemoteAccessStatus(t *testing.T) {
	s := &Scanner{Root: "../hostid/testdata/root-debian"}
	sn, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var st *agentv1.SignalStatus
	for _, s := range sn.Signals {
		if s.Name == "remoteaccess" {
			st = s
		}
	}
	if st == nil {
		t.Fatalf("no remoteaccess status in %v", sn.Signals)
	}
	switch st.State {
	case agentv1.SignalStatus_STATE_OK:
		if sn.RemoteAccess == nil || sn.RemoteAccess.CatalogVersion == "" {
			t.Fatalf("remote access %v", sn.RemoteAccess)
		}
	case agentv1.SignalStatus_STATE_UNSUPPORTED, agentv1.SignalStatus_STATE_ERROR:
		if st.Message == "" || sn.RemoteAccess != nil {
			t.Fatalf("status %v with %v", st, sn.RemoteAccess)
		}
	default:
		t.Fatalf("status %v", st)
	}
}

func TestSignalStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want agentv1.SignalStatus_State
	}{
		{nil, agentv1.SignalStatus_STATE_OK},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), agentv1.SignalStatus_STATE_UNSUPPORTED},
		{errors.New("boom"), agentv1.SignalStatus_STATE_ERROR},
	} {
		st := signalStatus("remoteaccess", c.err)
		if st.State != c.want || st.Name != "remoteaccess" || (c.err != nil) != (st.Message != "") {
			t.Errorf("%v: %v", c.err, st)
		}
	}
}

// TestFingerprintSeesPeripherals: plugging a USB device or a display (an
// IP-KVM's two halves) changes the fingerprint, so the agent scans at once.
func TestFingerprintSeesPeripherals(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir, roots()[len(roots())-1].files(t)); err != nil {
		t.Fatal(err)
	}
	s := &Scanner{Root: dir}
	before := s.Fingerprint()
	if err := os.MkdirAll(filepath.Join(dir, "sys/bus/usb/devices/1-9"), 0o755); err != nil {
		t.Fatal(err)
	}
	afterUSB := s.Fingerprint()
	if afterUSB == before {
		t.Fatal("a new USB device does not change the fingerprint")
	}
	hdmi := filepath.Join(dir, "sys/class/drm/card0-HDMI-A-1")
	os.MkdirAll(hdmi, 0o755)
	if err := os.WriteFile(filepath.Join(hdmi, "status"), []byte("connected\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint() == afterUSB {
		t.Fatal("a new display does not change the fingerprint")
	}
}
