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

// BenchmarkScanOneShot is what `bonafide-agent scan` does over a fixture
// root: one scan with no catalog given, so each catalog is parsed (once)
// inside it.
func BenchmarkScanOneShot(b *testing.B) {
	s := &Scanner{Root: filepath.Join(rootsDir, "office-dock")}
	for b.Loop() {
		if _, err := s.Scan(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
