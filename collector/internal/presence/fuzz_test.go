package presence

import (
	"slices"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzObserve feeds agent-controlled snapshot bytes to Observe and Judge:
// they never panic, every list stays bounded, and the reasons are only the
// known ones, each at most once. The seeds run as an ordinary test.
func FuzzObserve(f *testing.F) {
	for _, sn := range []*agentv1.HostSnapshot{{}, snapshot(false, false), snapshot(true, true)} {
		b, _ := proto.Marshal(sn)
		f.Add(b, "198.51.100.1", "198.51.100.1")
	}
	known := []string{ReasonRemoteSessionActive, ReasonKVMAttached, ReasonEgressMismatch}
	f.Fuzz(func(t *testing.T, data []byte, browser, agent string) {
		var sn agentv1.HostSnapshot
		if proto.Unmarshal(data, &sn) != nil {
			return
		}
		o := Observe(&sn)
		for _, l := range [][]string{o.RemoteSessions, o.KVM, o.Console, o.SSH} {
			if len(l) > maxListed {
				t.Fatalf("observation list of %d", len(l))
			}
		}
		seen := map[string]bool{}
		for _, r := range Judge(o, browser, agent) {
			if !slices.Contains(known, r) || seen[r] {
				t.Fatalf("reasons %v", Judge(o, browser, agent))
			}
			seen[r] = true
		}
	})
}
