package remoteaccess

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestReadInventoryLiveDarwin runs the live reader; it only runs on macOS.
func TestReadInventoryLiveDarwin(t *testing.T) {
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
	found := false
	for _, p := range inv.Processes {
		found = found || p.PID == 1
	}
	if !found {
		t.Errorf("pid 1 (launchd) not among %d processes", len(inv.Processes))
	}
	kinds := map[string]bool{}
	for _, f := range inv.OSFeatures {
		kinds[f.GetKind()] = true
	}
	if !kinds["screen_sharing"] || !kinds["remote_management"] {
		t.Errorf("OS features %v", inv.OSFeatures)
	}
}

func TestReadInventoryRootDarwin(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "Applications", "AnyDesk.app", "Contents")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "Info.plist"), readTestdata(t, "mac/Info-AnyDesk.constructed.plist"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := readInventory(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Processes) != 0 || len(inv.Installs) != 1 || inv.Installs[0].Key != "com.philandro.anydesk" || len(inv.OSFeatures) != 0 {
		t.Errorf("got %+v", inv)
	}
}
