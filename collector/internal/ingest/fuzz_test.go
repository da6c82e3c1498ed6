package ingest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzReport feeds arbitrary bytes through everything the collector does to
// a report before storing it: decoding, validation, the per-report checks
// and the digests. None of it may panic, and whatever passes validation
// must have well-formed digests.
func FuzzReport(f *testing.F) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	kvm, err := policies.KVM(policies.FS())
	if err != nil {
		f.Fatal(err)
	}
	media, err := policies.Media(policies.FS())
	if err != nil {
		f.Fatal(err)
	}
	routers, err := policies.Routers(policies.FS())
	cats := &catalogState{kvm: kvm, media: media, routers: routers}
	if err != nil {
		f.Fatal(err)
	}
	seed := &agentv1.ReportRequest{Reports: []*agentv1.Report{{
		ReportId: uuid.NewString(), Sequence: 1, CreatedAt: timestamppb.New(now),
		Body: &agentv1.Report_Snapshot{Snapshot: &agentv1.HostSnapshot{
			Identity: &agentv1.HostIdentity{AgentId: "a", Hostname: "h", Os: &agentv1.OperatingSystem{Family: "linux"}},
			Usb:      &agentv1.Usb{Devices: []*agentv1.UsbDevice{{VendorId: 0x1d6b, ProductId: 0x0104, Product: "PiKVM"}}},
			Displays: &agentv1.Displays{Displays: []*agentv1.Display{{Edid: make([]byte, 128)}}},
			Media:    &agentv1.Media{Devices: []*agentv1.MediaDevice{{Kind: "video", Name: "OBS Virtual Camera", Source: "v4l2"}}},
			Network:  &agentv1.Network{DefaultRoute: &agentv1.DefaultRoute{Gateway: "192.168.8.1", GatewayMac: "94:83:c4:a4:78:82"}},
		}},
	}, {
		ReportId: uuid.NewString(), Sequence: 2, CreatedAt: timestamppb.New(now),
		Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{Identity: &agentv1.HostIdentity{AgentId: "a"}}},
	}}}
	b, _ := proto.Marshal(seed)
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req agentv1.ReportRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		err := validate(req.ProtoReflect(), now)
		if ref := validateByRange(req.ProtoReflect(), now); fmt.Sprint(err) != fmt.Sprint(ref) {
			t.Fatalf("validate: %v; visiting fields with Range: %v", err, ref)
		}
		if err != nil {
			return
		}
		for _, r := range req.GetReports() {
			in, err := prepare(r, "a", cats)
			if err != nil {
				continue
			}
			if in.Snapshot != nil && (len(in.Digest) != 64 || in.Data == nil && proto.Size(in.Snapshot) > 0) {
				t.Fatalf("digest %q for a valid snapshot", in.Digest)
			}
			if in.Snapshot != nil {
				// Digest encodes once; encoding each family on its own
				// must give the same digests.
				digest, sections := digestByFamily(in.Snapshot)
				if in.Digest != digest || !maps.Equal(in.Sections, sections) {
					t.Fatalf("digest %s sections %v, family by family %s %v", in.Digest, in.Sections, digest, sections)
				}
			}
		}
	})
}
