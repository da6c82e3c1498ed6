package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, "collector: c.example:8443\nenroll_secret: s\nca_fingerprint: ab\nstate_dir: /tmp/x\nscan_interval: 90s\nheartbeat_interval: 2m\nsource_address: 10.0.0.5\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Collector: "c.example:8443", EnrollSecret: "s", CAFingerprint: "ab", StateDir: "/tmp/x",
		ScanInterval: 90 * time.Second, HeartbeatInterval: 2 * time.Minute, SourceAddress: "10.0.0.5"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key":       "collecter: x\n",
		"negative interval": "scan_interval: -5m\n",
		"not yaml":          "collector: [\n",
	} {
		if _, err := Load(write(t, content), true); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), true); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("explicit missing file: %v", err)
	}
	c, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), false)
	if err != nil || c.StateDir != DefaultStateDir() {
		t.Errorf("default missing file: %+v %v", c, err)
	}
}

func TestStartDelay(t *testing.T) {
	c, err := Load(write(t, "collector: c:1\n"), true)
	if err != nil || c.StartDelay != nil {
		t.Fatalf("unset start_delay: %v, %v", c.StartDelay, err)
	}
	c, err = Load(write(t, "start_delay: 0s\n"), true)
	if err != nil || c.StartDelay == nil || *c.StartDelay != 0 {
		t.Fatalf("start_delay 0s: %v, %v", c.StartDelay, err)
	}
	c, err = Load(write(t, "start_delay: 2m\n"), true)
	if err != nil || c.StartDelay == nil || *c.StartDelay != 2*time.Minute {
		t.Fatalf("start_delay 2m: %v, %v", c.StartDelay, err)
	}
	if _, err := Load(write(t, "start_delay: -1s\n"), true); err == nil {
		t.Fatal("negative start_delay accepted")
	}
}
