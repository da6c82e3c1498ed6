package scan

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/display"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/usb"
	"github.com/bonafide-sec/bonafide/policies"
)

// BenchmarkPeripherals reads the USB devices and displays of a fixture
// root (sysfs, report descriptors, EDIDs) and matches them against the KVM
// catalog: the agent's per-scan cost of the usb, display and peripherals
// signals.
func BenchmarkPeripherals(b *testing.B) {
	root := filepath.Join(rootsDir, "office-dock")
	cat, err := policies.KVM(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		u, err := usb.Collect(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		d, err := display.Collect(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		policies.MatchPeripherals(cat, u, d)
	}
}
