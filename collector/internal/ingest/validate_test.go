package ingest

import (
	"bytes"
	"fmt"
	"maps"
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
