package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/display"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/usb"
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

// TestFingerprintSeesMacDevices: macOS's device part of the fingerprint,
// fed real captures (the ioreg USB node of an ESP32-C3, the DisplayAttributes
// of a BenQ and a Dell monitor) through Devices, the seam the live system
// fills with ioreg's output: the same devices a poll later keep the
// fingerprint, a device plugged in or a monitor swapped change it.
func TestFingerprintSeesMacDevices(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	esp32 := read("../signal/usb/testdata/mac/ioreg-p-IOUSB-l-esp32c3-fivebyfive.txt")
	benq := read("../signal/display/testdata/mac/appleclcd2_hammerspoon3163_benq_pd2720u.plist")
	dell := read("../signal/display/testdata/mac/appleclcd2_displayplacer96_dell_u2720qm.plist")

	usbOut, monitors := esp32, benq
	s := &Scanner{Root: t.TempDir(), Devices: func() []string {
		return append(usb.MacPresentDevices([]byte(usbOut)), display.MacPresentMonitors([]byte(monitors), nil)...)
	}}
	before := s.Fingerprint()

	// A poll later: ioreg's busy time and retain counts moved.
	usbOut = strings.Replace(esp32, "busy 0 (234 ms), retain 46>", "busy 0 (2 ms), retain 47>", 1)
	monitors = strings.Replace(benq, "<integer>11</integer>", "<integer>12</integer>", 1)
	if usbOut == esp32 || monitors == benq {
		t.Fatal("the captures changed shape")
	}
	if s.Fingerprint() != before {
		t.Fatal("the same devices changed the fingerprint")
	}

	// A second USB device plugged in (the same node under a new registry
	// id and location, as a second board would show).
	usbOut = esp32 + strings.NewReplacer("@01114000", "@01120000", "id 0x10001c6b3", "id 0x10001d004").Replace(esp32)
	plugged := s.Fingerprint()
	if plugged == before {
		t.Fatal("a USB device plugged in does not change the fingerprint")
	}
	monitors = dell
	if s.Fingerprint() == plugged {
		t.Fatal("a monitor swapped does not change the fingerprint")
	}
}
