package ingest

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestValidateNamesTheField(t *testing.T) {
	now := time.Now()
	sn := &agentv1.HostSnapshot{Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{{}, {Product: "ok"}, {Product: "bad\xff"}}}}
	err := validate(sn.ProtoReflect(), now)
	if err == nil || err.Error() != "HostSnapshot.usb.devices[2].product: invalid UTF-8" {
		t.Fatalf("got %v", err)
	}
	sn = &agentv1.HostSnapshot{Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{StartedAt: timestamppb.New(now.Add(48 * time.Hour))}}}}
	if err := validate(sn.ProtoReflect(), now); err == nil || !strings.HasPrefix(err.Error(), "HostSnapshot.sessions.current[0].started_at: ") {
		t.Fatalf("got %v", err)
	}
	if err := validate((&agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: "ok"}}).ProtoReflect(), now); err != nil {
		t.Fatal(err)
	}
}

func TestDigestIgnoresScanTimesOnly(t *testing.T) {
	a := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: "h"}, ScanStartedAt: timestamppb.Now()}
	b := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: "h"}, ScanStartedAt: timestamppb.New(time.Unix(0, 0))}
	_, da, sa := Digest(a)
	_, db, _ := Digest(b)
	if da != db || sa["identity"] == "" {
		t.Fatalf("digests %s %s sections %v", da, db, sa)
	}
	b.Identity.Hostname = "other"
	if _, dc, _ := Digest(b); dc == da {
		t.Fatal("content change did not change the digest")
	}
	b.Identity.Hostname = "h"
	b.Signals = []*agentv1.SignalStatus{{Name: "usb"}}
	if _, dd, _ := Digest(b); dd == da {
		t.Fatal("a list field did not change the digest")
	}
}

// TestDigestOneEncoding checks that Digest, which encodes a snapshot once
// and takes the family digests over its parts, gives what encoding each
// family on its own gives (the digests stored before it did so).
func TestDigestOneEncoding(t *testing.T) {
	snaps := []*agentv1.HostSnapshot{
		{},
		{Usb: &agentv1.Usb{}, Activity: &agentv1.Activity{}}, // set but empty families
		{Signals: []*agentv1.SignalStatus{{Name: "usb"}, {}, {Name: "network", Message: "x"}}, Posture: &agentv1.Posture{}},
		benchSnapshot(1, "a1"),
		benchSnapshot(2, "a2"),
	}
	quiet := benchSnapshot(3, "a3")
	quiet.RemoteAccess, quiet.Signals = nil, nil
	snaps = append(snaps, quiet)
	for i, sn := range snaps {
		data, digest, sections := Digest(sn)
		want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(sn)
		wantDigest, wantSections := digestByFamily(sn)
		if !bytes.Equal(data, want) || digest != wantDigest || !maps.Equal(sections, wantSections) {
			t.Errorf("snapshot %d: digest %s sections %v, want %s %v", i, digest, sections, wantDigest, wantSections)
		}
	}
}

func TestValidateClientIDCap(t *testing.T) {
	now := time.Now()
	snap := func(id string) *agentv1.HostSnapshot {
		return &agentv1.HostSnapshot{RemoteAccess: &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{
			{ToolId: "teamviewer"}, {ToolId: "anydesk", Name: strings.Repeat("n", 100), ClientId: id},
		}}}
	}
	for _, id := range []string{"", "123456789", strings.Repeat("9", maxClientID)} {
		if err := validate(snap(id).ProtoReflect(), now); err != nil {
			t.Errorf("%d-byte client_id: %v", len(id), err)
		}
	}
	err := validate(snap(strings.Repeat("9", maxClientID+1)).ProtoReflect(), now)
	if err == nil || err.Error() != "HostSnapshot.remote_access.tools[1].client_id: 65 bytes, at most 64 allowed" {
		t.Fatalf("got %v", err)
	}
	// Other strings keep the general cap.
	sn := snap("1")
	sn.RemoteAccess.Tools[1].Name = strings.Repeat("n", maxString)
	if err := validate(sn.ProtoReflect(), now); err != nil {
		t.Fatal(err)
	}
}

// TestValidateAgreesWithRange checks validate against validateByRange, the
// field-by-field walk it replaced, on messages with one or several faults:
// the same fault must be reported first, with the same path and words.
func TestValidateAgreesWithRange(t *testing.T) {
	now := time.Now()
	future := timestamppb.New(now.Add(48 * time.Hour))
	many := make([]*agentv1.SignalStatus, maxList+1)
	for i := range many {
		many[i] = &agentv1.SignalStatus{}
	}
	snap := func(sn *agentv1.HostSnapshot) *agentv1.ReportRequest {
		return &agentv1.ReportRequest{Reports: []*agentv1.Report{{ReportId: "r", Body: &agentv1.Report_Snapshot{Snapshot: sn}}}}
	}
	unknown := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: "h"}}
	unknown.Identity.ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01})
	for i, m := range []proto.Message{
		snap(&agentv1.HostSnapshot{Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{{Product: "bad\xff"}}}, Identity: &agentv1.HostIdentity{Hostname: "bad\xff"}}),
		snap(&agentv1.HostSnapshot{Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{StartedAt: future, User: strings.Repeat("u", maxString+1)}}}}),
		snap(&agentv1.HostSnapshot{Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{Type: 99}}}}),
		snap(&agentv1.HostSnapshot{Signals: many}),
		snap(&agentv1.HostSnapshot{Signals: []*agentv1.SignalStatus{{State: 42}}, ScanStartedAt: &timestamppb.Timestamp{Seconds: 1}}),
		snap(&agentv1.HostSnapshot{Media: &agentv1.Media{Devices: []*agentv1.MediaDevice{{Kind: strings.Repeat("k", 17)}}}}),
		snap(&agentv1.HostSnapshot{Displays: &agentv1.Displays{Displays: []*agentv1.Display{{Edid: make([]byte, maxBytesField+1)}}}}),
		snap(unknown),
		&agentv1.ReportRequest{Reports: []*agentv1.Report{{ReportId: "bad\xff", CreatedAt: future,
			Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{Identity: &agentv1.HostIdentity{AgentId: "bad\xff"}}}}}},
		&agentv1.ReportRequest{Reports: []*agentv1.Report{{Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
			Activity: &agentv1.Activity{Hours: []*agentv1.ActivityHour{{Hour: &timestamppb.Timestamp{Nanos: -1}}}}}}}}},
	} {
		got, want := validate(m.ProtoReflect(), now), validateByRange(m.ProtoReflect(), now)
		if want == nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("case %d: got %v, want %v", i, got, want)
		}
	}
}

// TestDigestPinned pins the digests of a fixed snapshot: agents compare
// the content digest (a heartbeat carries the digest of the snapshot it
// stands for), and the family digests are stored, so neither may change
// with the way Digest computes them.
func TestDigestPinned(t *testing.T) {
	at := func(s int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(1_790_000_000+s, 0)) }
	sn := &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{AgentId: "5b0e7a52-1f0c-4c64-9f2d-1a4e2f6b8c01", HardwareUuid: "4c4c4544-0042-3510-8052-b7c04f4b3732",
			SerialNumber: "5CG1234567", Hostname: "laptop-007", Os: &agentv1.OperatingSystem{Family: "windows", Name: "Windows 11 Pro",
				Version: "10.0.26100", Arch: "amd64"}, HardwareVendor: "Dell Inc.", BootTime: at(-3600), AgentVersion: "1.4.2"},
		ScanStartedAt: at(-2), ScanFinishedAt: at(0),
		Signals: []*agentv1.SignalStatus{{Name: "usb", State: agentv1.SignalStatus_STATE_OK}, {Name: "display", State: agentv1.SignalStatus_STATE_OK}},
		RemoteAccess: &agentv1.RemoteAccess{CatalogVersion: "3f2a9c1d", Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", Name: "AnyDesk",
			Processes: []*agentv1.ProcessEvidence{{Name: "AnyDesk.exe", Pid: 4312, StartedAt: at(-600)}}, ActiveSession: true}},
			OsFeatures: []*agentv1.OsRemoteAccess{{Kind: "rdp", Enabled: true, Port: 3389}}},
		Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{
			{Location: "1-1", VendorId: 0x046d, ProductId: 0xc52b, Product: "USB Receiver", Serial: "A0001",
				Interfaces: []*agentv1.UsbInterface{{Class: 3, Subclass: 1, Protocol: 1, Driver: "usbhid"}}},
			{Location: "1-2", VendorId: 0x1d6b, ProductId: 0x0104, Product: "PiKVM"}}},
		Displays: &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN, Displays: []*agentv1.Display{{Connector: "DISPLAY1",
			Edid: []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3}, ManufacturerId: "DEL", ProductCode: 0x40a1, Active: true}}},
		Network: &agentv1.Network{Interfaces: []*agentv1.NetworkInterface{{Name: "Wi-Fi", Kind: agentv1.NetworkInterface_KIND_WIFI,
			Mac: "3c:22:fb:07:10:01", Up: true, Addresses: []string{"192.168.1.23/24"}}},
			DefaultRoute: &agentv1.DefaultRoute{Interface: "Wi-Fi", Gateway: "192.168.1.1", GatewayMac: "94:83:c4:a4:78:82"},
			DnsServers:   []string{"192.168.1.1"}},
		Locale: &agentv1.Locale{Timezone: "America/Chicago", UtcOffsetSeconds: -6 * 3600, SystemLocale: "en_US.UTF-8"},
		Sessions: &agentv1.Sessions{HistoryCursor: "wtmp:1000", Current: []*agentv1.LoginSession{{User: "jdoe",
			Type: agentv1.LoginSession_TYPE_REMOTE_DESKTOP, SourceAddress: "10.8.0.1", StartedAt: at(-300)}}},
		Activity: &agentv1.Activity{IdleThresholdSeconds: 60, Hours: []*agentv1.ActivityHour{{Hour: at(-3600), ActiveMinutes: 42, SampledMinutes: 60}}},
	}
	_, digest, sections := Digest(sn)
	if want := "5f3596f69acd82dd39e833c4e7120d3c0591ba2ef98c5141a264dd1fcdbdd02b"; digest != want {
		t.Errorf("content digest %s, want %s", digest, want)
	}
	want := map[string]string{"displays": "500040b093f98220", "identity": "b28f44f1214f048c", "locale": "b0afd57cd46b33c3",
		"network": "3a4464d880cd2b3b", "remote_access": "88ebf2d90f1511b1", "sessions": "7cd2289edccfea92", "usb": "efb81915de895bd5"}
	if !maps.Equal(sections, want) {
		t.Errorf("family digests %#v, want %#v", sections, want)
	}
}

// TestIsLowerUUID checks isLowerUUID against the regular expression it
// replaced.
func TestIsLowerUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	ok := "0f8fad5b-d9cb-469f-a165-70867728950e"
	cases := []string{ok, strings.ToUpper(ok), "", ok + "\n", ok[:35], ok + "0", "0f8fad5bd9cb-469f-a165-70867728950e-",
		"0f8fad5b-d9cb-469f-a165-70867728950g", "0f8fad5b-d9cb-469f-a165-70867728950/", "0f8fad5b-d9cb-469f-a165-70867728950:",
		"0f8fad5b-d9cb-469f-a165-70867728950`", "0f8fad5b-d9cb-469f-a165_70867728950e", "0f8fad5b-d9cb-469f-a165-7086772895\xc3\xa9"}
	for i := range len(ok) { // each position changed to each byte class
		for _, c := range []byte{'-', '0', '9', 'a', 'f', 'g', 'A', ' ', 0xff} {
			b := []byte(ok)
			b[i] = c
			cases = append(cases, string(b))
		}
	}
	for _, s := range cases {
		if got, want := isLowerUUID(s), re.MatchString(s); got != want {
			t.Errorf("isLowerUUID(%q) = %v, the expression says %v", s, got, want)
		}
	}
}
