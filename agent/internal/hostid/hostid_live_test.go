//go:build darwin || windows

package hostid

import (
	"runtime"
	"testing"
)

// The live system: a real machine always has a platform UUID / MachineGuid.
func TestCollectLive(t *testing.T) {
	id, err := Collect(t.Context(), "/")
	if err != nil {
		t.Fatalf("Collect(/): %v", err)
	}
	if id.GetHostname() == "" {
		t.Error("empty hostname")
	}
	if id.GetMachineId() == "" {
		t.Error("empty machine id")
	}
	if got := id.GetOs().GetFamily(); got != runtime.GOOS {
		t.Errorf("os family = %q, want %s", got, runtime.GOOS)
	}
	if got := id.GetOs().GetArch(); got != runtime.GOARCH {
		t.Errorf("os arch = %q, want %q", got, runtime.GOARCH)
	}
	if id.GetOs().GetVersion() == "" || id.GetBootTime() == nil {
		t.Errorf("missing OS version or boot time: %v", id)
	}
	t.Logf("live identity: %v", id)
}
