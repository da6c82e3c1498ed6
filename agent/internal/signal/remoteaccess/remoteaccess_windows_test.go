package remoteaccess

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestReadInventoryLiveWindows runs the live reader; it only runs on Windows.
func TestReadInventoryLiveWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("live system read")
	}
	inv, err := readInventory(context.Background(), "/", nil)
	if inv == nil {
		t.Fatalf("readInventory: %v", err)
	}
	if err != nil {
		t.Logf("partial: %v", err)
	}
	if len(inv.Processes) == 0 || len(inv.Services) == 0 {
		t.Errorf("%d processes, %d services", len(inv.Processes), len(inv.Services))
	}
	if len(inv.OSFeatures) != 1 || inv.OSFeatures[0].GetKind() != "rdp" {
		t.Errorf("OS features %v", inv.OSFeatures)
	}
	self := int32(os.Getpid())
	for _, p := range inv.Processes {
		if p.PID == self && (p.Path == "" || p.Started.IsZero() || len(p.Args) == 0) {
			t.Errorf("own process without details: %+v", p)
		}
	}
}

func TestReadInventoryRootWindows(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "Program Files", "AnyDesk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "AnyDesk.exe"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := readInventory(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Installs) != 2 || inv.Installs[1].Key != `C:\Program Files\AnyDesk\AnyDesk.exe` {
		t.Errorf("got %+v", inv.Installs)
	}
}

// TestWinServicesStartMode: the services' start modes are read (Wine's and
// Windows' own services include automatic and manual ones), not lost to
// "unknown" when another part of a service's configuration cannot be read.
func TestWinServicesStartMode(t *testing.T) {
	svcs, err := winServices()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int{}
	for _, s := range svcs {
		modes[s.StartMode]++
	}
	if modes["auto"]+modes["auto_delayed"] == 0 || modes["manual"] == 0 {
		t.Errorf("start modes of %d services: %v", len(svcs), modes)
	}
}
