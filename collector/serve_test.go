package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/policies"
)

func TestAgentCatalogs(t *testing.T) {
	cats, kvm, err := agentCatalogs(policies.FS())
	if err != nil || len(cats) != 2 || cats[0].GetName() != "remote_access" || len(cats[0].GetVersion()) != 64 ||
		cats[1].GetName() != "kvm" || cats[1].GetVersion() != kvm.Version {
		t.Fatalf("embedded: %v %v", cats, err)
	}
	if _, err := policies.ParseRemoteAccess(cats[0].GetContent()); err != nil {
		t.Fatal(err)
	}
	// A policy tree without a catalog falls back to the embedded one.
	fallback, _, err := agentCatalogs(os.DirFS(t.TempDir()))
	if err != nil || fallback[0].GetVersion() != cats[0].GetVersion() {
		t.Fatalf("fallback: %v %v", fallback, err)
	}
	// A broken catalog in the tree is an error, not a silent fallback.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "catalog"), 0o755)
	os.WriteFile(filepath.Join(dir, policies.RemoteAccessFile), []byte("tools:\n  - id: X\n"), 0o644)
	if _, _, err := agentCatalogs(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "id must match") {
		t.Fatalf("broken catalog: %v", err)
	}
	os.Remove(filepath.Join(dir, policies.RemoteAccessFile))
	os.WriteFile(filepath.Join(dir, policies.KVMFile), []byte("families: []\n"), 0o644)
	if _, _, err := agentCatalogs(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "no families") {
		t.Fatalf("broken KVM catalog: %v", err)
	}
}
