package usb

import (
	"slices"
	"testing"
)

// TestPresentDeviceIDsLive runs the change fingerprint's ioreg on the Mac
// it runs on (the hosted macOS runner): ioreg prints at least the USB
// plane's root, and two polls with nothing plugged in between agree.
func TestPresentDeviceIDsLive(t *testing.T) {
	ids := PresentDeviceIDs()
	if len(ids) == 0 {
		t.Fatal("ioreg -p IOUSB gave no node")
	}
	if again := PresentDeviceIDs(); !slices.Equal(ids, again) {
		t.Errorf("two polls differ:\n%q\n%q", ids, again)
	}
	t.Logf("%d USB plane nodes: %q", len(ids), ids)
}
