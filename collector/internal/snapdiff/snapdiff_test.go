package snapdiff_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bonafide-sec/bonafide/collector/internal/snapdiff"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// home is a laptop at home; kvm is the same laptop once AnyDesk was
// installed and an IP-KVM attached.
func home() *agentv1.HostSnapshot {
	return &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{Hostname: "lt-ana", AgentVersion: "1.0.0"},
		Usb: &agentv1.Usb{Devices: []*agentv1.UsbDevice{
			{Location: "1-0", VendorId: 0x1d6b, ProductId: 0x0002, Manufacturer: "Linux Foundation", Product: "2.0 root hub"}}},
		Locale: &agentv1.Locale{Timezone: "America/Boise"},
	}
}

func kvm() *agentv1.HostSnapshot {
	sn := home()
	sn.RemoteAccess = &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "anydesk", Name: "AnyDesk",
		Installs: []*agentv1.InstallEvidence{{Kind: "package", Location: "anydesk"}}}}}
	sn.Usb.Devices = append(sn.Usb.Devices, &agentv1.UsbDevice{Location: "3-1", VendorId: 0x1d6b, ProductId: 0x0104,
		Manufacturer: "PiKVM", Product: "Composite KVM Device", Serial: "CAFEBABE"})
	return sn
}

func texts(cs []snapdiff.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s: %s\n", c.Family, c.Text)
	}
	return b.String()
}

// TestChanges: each snapshot of a history, newest first, is diffed
// against the next; the oldest without a predecessor is the first
// snapshot, described in counts; one passed only as a predecessor gets no
// entry; a snapshot of thousands of changes lists MaxChanges and says how
// many more there were.
func TestChanges(t *testing.T) {
	got := snapdiff.Changes([]*agentv1.HostSnapshot{kvm(), home()}, 2)
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	if want := "remote access: remote tool installed: AnyDesk\nUSB: USB device appeared: 1d6b:0104 PiKVM Composite KVM Device serial CAFEBABE\n"; texts(got[0]) != want {
		t.Errorf("changes of the newest:\n%s\nwant:\n%s", texts(got[0]), want)
	}
	if want := "snapshot: first snapshot: 0 remote-access tools, 1 USB devices, 0 displays, 0 network interfaces, 0 sessions\n"; texts(got[1]) != want {
		t.Errorf("the first snapshot: %q, want %q", texts(got[1]), want)
	}
	if got := snapdiff.Changes([]*agentv1.HostSnapshot{kvm(), home()}, 1); len(got) != 1 || len(got[0]) != 2 {
		t.Errorf("with its predecessor only as a base: %v", got)
	}

	many := home()
	for i := range 3 * snapdiff.MaxChanges {
		many.Usb.Devices = append(many.Usb.Devices, &agentv1.UsbDevice{Location: fmt.Sprint("9-", i), VendorId: 0x1234, ProductId: uint32(i)})
	}
	data, err := proto.Marshal(many)
	if err != nil {
		t.Fatal(err)
	}
	decoded, dropped, err := snapdiff.Decode(data)
	if err != nil || dropped != 1+3*snapdiff.MaxChanges-snapdiff.MaxListRows || len(decoded.GetUsb().GetDevices()) != snapdiff.MaxListRows {
		t.Fatalf("decode: %d dropped, %d kept, %v", dropped, len(decoded.GetUsb().GetDevices()), err)
	}
	cs := snapdiff.Changes([]*agentv1.HostSnapshot{many, home()}, 1)[0]
	if len(cs) != snapdiff.MaxChanges+1 || cs[snapdiff.MaxChanges].Text != fmt.Sprintf("… and %d more changes in this snapshot", 2*snapdiff.MaxChanges) {
		t.Errorf("%d changes, the last %+v", len(cs), cs[len(cs)-1])
	}
	if _, _, err := snapdiff.Decode([]byte{0xff}); err == nil {
		t.Error("decoded a broken snapshot")
	}
}

// FuzzChanges feeds Decode and Changes a stored snapshot's bytes (the
// agent chose them): they must not panic, and one snapshot adds at most
// MaxChanges+1 changes to a timeline, against a predecessor or as one.
func FuzzChanges(f *testing.F) {
	for _, sn := range []*agentv1.HostSnapshot{home(), kvm(), {}} {
		b, err := proto.Marshal(sn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x0a\x02\x0a\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sn, _, err := snapdiff.Decode(data)
		if err != nil {
			return
		}
		for _, h := range [][]*agentv1.HostSnapshot{{sn, kvm()}, {kvm(), sn}, {sn}} {
			for _, cs := range snapdiff.Changes(h, len(h)) {
				if len(cs) > snapdiff.MaxChanges+1 {
					t.Fatalf("%d changes in one snapshot", len(cs))
				}
			}
		}
	})
}
