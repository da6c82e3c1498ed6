package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/packaging"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestPackageCLI builds a pre-configured deb with `bonafide-collector
// package` from an agent directory, the CA fingerprint taken from the
// data dir, and the collector's own deb carrying the agents; dpkg-deb
// reads both back, and the packaged agent runs.
func TestPackageCLI(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		storetest.Missing(t, "dpkg-deb (apt package dpkg)")
	}
	agent, collector := binaries(t)
	agents, dataDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	bin, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packaging.AgentBinary(agents, "linux", runtime.GOARCH), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	authority, _, err := ca.LoadOrCreate(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	pkg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(collector, append([]string{"package", "--data-dir", dataDir, "--agent-dir", agents, "--version", "2.0.1",
			"--arch", runtime.GOARCH}, args...)...)
		cmd.Dir = work
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("package %q: %v\n%s", args, err, err.(*exec.ExitError).Stderr)
		}
		return filepath.Join(work, strings.TrimSpace(string(out)))
	}
	extract := func(deb string) string {
		t.Helper()
		root := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
		}
		return root
	}

	deb := pkg("--type", "deb", "--collector", "collector.example.com:8443", "--secret", "bfe_0123456789abcdef")
	if filepath.Base(deb) != "bonafide-agent_2.0.1_"+runtime.GOARCH+".deb" {
		t.Errorf("package wrote %s", deb)
	}
	root := extract(deb)
	conf, err := os.ReadFile(filepath.Join(root, "etc/bonafide/agent.yaml"))
	if err != nil || !strings.Contains(string(conf), "collector.example.com:8443") || !strings.Contains(string(conf), "bfe_0123456789abcdef") ||
		!strings.Contains(string(conf), authority.Fingerprint()) {
		t.Fatalf("agent.yaml (%v):\n%s", err, conf)
	}
	if out, err := exec.Command(filepath.Join(root, "usr/bin/bonafide-agent"), "version").Output(); err != nil || len(out) == 0 {
		t.Errorf("the packaged agent: %v %q", err, out)
	}

	self := pkg("--type", "deb", "--collector-binary", collector)
	if _, err := os.Stat(filepath.Join(extract(self), "usr/share/bonafide/agents", filepath.Base(packaging.AgentBinary("", "linux", runtime.GOARCH)))); err != nil {
		t.Errorf("the collector's deb lacks the agent: %v", err)
	}

	// No agent binary for the asked type: a clear error naming the fix.
	cmd := exec.Command(collector, "package", "--type", "rpm", "--arch", "arm64", "--agent-dir", t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "make installers") {
		t.Errorf("package without agents: %v\n%s", err, out)
	}
}
