package hostid

import (
	"errors"
	"runtime"
	"testing"
)

// The live system: whatever the machine is, Collect must report its host
// name and OS family. A container without a machine id or readable DMI has
// nothing identifying; that is the one acceptable failure.
func TestCollectLiveLinux(t *testing.T) {
	id, err := Collect(t.Context(), "/")
	if errors.Is(err, ErrNoIdentity) {
		t.Skipf("nothing identifying on this machine: %v", err)
	}
	if err != nil {
		t.Fatalf("Collect(/): %v", err)
	}
	if id.GetHostname() == "" {
		t.Error("empty hostname")
	}
	if got := id.GetOs().GetFamily(); got != "linux" {
		t.Errorf("os family = %q, want linux", got)
	}
	if got := id.GetOs().GetArch(); got != runtime.GOARCH {
		t.Errorf("os arch = %q, want %q", got, runtime.GOARCH)
	}
	if id.GetAgentId() != "" || id.GetAgentVersion() != "" {
		t.Errorf("agent id/version set: %q %q", id.GetAgentId(), id.GetAgentVersion())
	}
	t.Logf("live identity: %v", id)
}
