package ingest

import (
	"strings"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
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
