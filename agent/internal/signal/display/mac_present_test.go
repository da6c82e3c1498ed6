package display

import (
	"bytes"
	"slices"
	"testing"
)

// The real DisplayAttributes captures (testdata/mac/SOURCES.md): a monitor
// swapped for another changes the list; the same monitor in a later run
// (another retain count) does not.
func TestMacPresentMonitors(t *testing.T) {
	benq := macRead(t, "mac", "appleclcd2_hammerspoon3163_benq_pd2720u.plist")
	dell := macRead(t, "mac", "appleclcd2_displayplacer96_dell_u2720qm.plist")
	intel := macRead(t, "mac", "iodisplayconnect_intel_constructed.plist")

	got := MacPresentMonitors(benq, nil)
	want := []string{`AppleCLCD2-0|BNQ|32816|4660|"SERIAL00001"|"BenQ PD2720U"|false`}
	if !slices.Equal(got, want) {
		t.Fatalf("BenQ: %q", got)
	}
	later := bytes.Replace(benq, []byte("<integer>11</integer>"), []byte("<integer>14</integer>"), 1)
	if bytes.Equal(later, benq) {
		t.Fatal("the capture's retain count moved")
	}
	if got := MacPresentMonitors(later, nil); !slices.Equal(got, want) {
		t.Errorf("same monitor, later run: %q", got)
	}
	if got := MacPresentMonitors(dell, nil); len(got) != 1 || slices.Equal(got, want) {
		t.Errorf("Dell instead of BenQ: %q", got)
	}
	// Nothing attached, or outputs that do not decode: nothing.
	if got := MacPresentMonitors(nil, []byte("not a plist")); got != nil {
		t.Errorf("nothing: %q", got)
	}
	// An Intel Mac's three framebuffers (constructed): both outputs are read.
	if got := MacPresentMonitors(benq, intel); len(got) != 4 || !slices.IsSorted(got) {
		t.Errorf("with the Intel entries: %q", got)
	}
}
