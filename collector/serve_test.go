package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
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

func TestLoadCatalogsNamesTheBrokenFile(t *testing.T) {
	cats, err := loadCatalogs(policies.FS())
	if err != nil || len(cats.Agent) != 2 || cats.KVM == nil || cats.Networks == nil || len(cats.Networks.Offices) != 0 {
		t.Fatalf("embedded: %+v %v", cats, err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(policies.OfficesFile, "offices:\n  - {name: Berlin HQ, cidrs: [203.0.113.0/28]}\n")
	cats, err = loadCatalogs(os.DirFS(dir))
	if err != nil || len(cats.Networks.Offices) != 1 || cats.Networks.Version == catalogVersions(mustCatalogs(t))["networks"] {
		t.Fatalf("with offices: %+v %v", cats.Networks, err)
	}
	if class, name, _ := cats.Networks.Classify(netip.MustParseAddr("203.0.113.5"), 0, ""); class != policies.NetClassOffice || name != "Berlin HQ" {
		t.Fatalf("office classified as %s %s", class, name)
	}
	// Every broken file is named, all at once.
	write(policies.OfficesFile, "offices:\n  - {name: Berlin HQ, cidrs: [203.0.113.300/28]}\n")
	write(policies.KVMFile, "families: []\n")
	write(policies.RemoteAccessFile, "tools:\n  - id: X\n")
	_, err = loadCatalogs(os.DirFS(dir))
	for _, want := range []string{policies.OfficesFile + ": ", policies.KVMFile + ": ", "no families", policies.RemoteAccessFile + ": "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("broken catalogs: %v, want %q", err, want)
		}
	}
	os.Remove(filepath.Join(dir, policies.OfficesFile))
	os.Remove(filepath.Join(dir, policies.KVMFile))
	os.Remove(filepath.Join(dir, policies.RemoteAccessFile))
	write(policies.NetworksFile, "asns:\n  - {asn: 0, name: x, class: hosting}\n")
	if _, err = loadCatalogs(os.DirFS(dir)); err == nil || !strings.HasPrefix(err.Error(), policies.NetworksFile+": ") {
		t.Fatalf("broken networks catalog: %v", err)
	}
}

func mustCatalogs(t *testing.T) ingest.Catalogs {
	t.Helper()
	cats, err := loadCatalogs(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	return cats
}

// TestReloadPoliciesSwapsCatalogs edits a policy tree and reloads it into
// a real service and store: a good catalog edit is swapped in (the agent
// configuration's version follows the agent catalogs), a broken one is
// refused with the last good catalogs kept and the error in the status, a
// catalog edit records no policy version, and the error clears when
// everything loads again.
func TestReloadPoliciesSwapsCatalogs(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.CopyFS(dir, policies.FS()); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		os.Chmod(filepath.Join(dir, name), 0o644)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := os.DirFS(dir)
	rules, err := detect.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	cats, err := loadCatalogs(fsys)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.RecordPolicyVersion(ctx, rules.Digest(), ruleIDs(rules), now); err != nil {
		t.Fatal(err)
	}
	live := detect.NewLive(rules, now)
	live.SetCatalogs(catalogVersions(cats))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := ingest.New(st, nil, live, ingest.Config{Catalogs: cats.Agent, KVM: cats.KVM, Locator: &ingest.Locator{Networks: cats.Networks}}, log)
	if err != nil {
		t.Fatal(err)
	}
	reload := func() detect.LiveStatus {
		now = now.Add(time.Minute)
		reloadPolicies(ctx, fsys, live, svc, st, now, log)
		return live.Status()
	}
	ip := netip.MustParseAddr("127.0.5.2")
	class := func() (string, string) {
		c, _ := svc.Catalogs()
		class, name, _ := c.Networks.Classify(ip, 0, "")
		return class, name
	}
	_, v0 := svc.Catalogs()
	if c, _ := class(); c != policies.NetClassPrivate {
		t.Fatalf("loopback before any office: %s", c)
	}

	// A declared office takes effect; the agents' configuration is the same.
	write(policies.OfficesFile, "offices:\n  - {name: Loopback Lab, cidrs: [127.0.5.0/24]}\n")
	s := reload()
	if c, n := class(); c != policies.NetClassOffice || n != "Loopback Lab" {
		t.Fatalf("after declaring the office: %s %s", c, n)
	}
	if _, v := svc.Catalogs(); v != v0 || s.LastError != "" || s.Catalogs["networks"] == cats.Networks.Version {
		t.Fatalf("office edit: version %s (was %s), status %+v", v, v0, s)
	}

	// A broken offices file is refused; the office stays.
	write(policies.OfficesFile, "offices:\n  - {name: Loopback Lab, cidrs: [127.0.5.0/33]}\n")
	s = reload()
	if c, _ := class(); c != policies.NetClassOffice || !strings.Contains(s.LastError, policies.OfficesFile+": ") || !s.LastErrorAt.Equal(now) {
		t.Fatalf("broken offices: class %s, status %+v", c, s)
	}

	// A KVM edit while offices are still broken is refused too (the tree is
	// loaded as one); fixed, both take effect and the error clears.
	kvm, _ := fs.ReadFile(fsys, policies.KVMFile)
	i, j := bytes.Index(kvm, []byte("  - id: aten_kvm\n")), bytes.Index(kvm, []byte("  - id: raritan_kvm\n"))
	write(policies.KVMFile, string(kvm[:i])+string(kvm[j:]))
	reload()
	if c, _ := svc.Catalogs(); !slices.ContainsFunc(c.KVM.Families, func(f policies.KVMFamily) bool { return f.ID == "aten_kvm" }) {
		t.Fatal("a KVM edit was taken while the offices file was broken")
	}
	write(policies.OfficesFile, "offices:\n  - {name: Loopback Lab 2, cidrs: [127.0.5.0/24]}\n")
	s = reload()
	c, v := svc.Catalogs()
	if s.LastError != "" || !s.LastErrorAt.IsZero() || v == v0 || slices.ContainsFunc(c.KVM.Families, func(f policies.KVMFamily) bool { return f.ID == "aten_kvm" }) ||
		s.Catalogs["kvm"] != c.KVM.Version || c.Agent[1].GetVersion() != c.KVM.Version {
		t.Fatalf("after the fix: version %s, status %+v", v, s)
	}
	if _, n := class(); n != "Loopback Lab 2" {
		t.Fatalf("office name %s", n)
	}

	// A broken rule keeps its error even though the catalogs load, and
	// does not undo a catalog edit made with it.
	write("rules/lab.yaml", "rules:\n  - id: lab\n    title: T\n    severity: low\n    description: d\n    scope: device\n    condition: device.hostnme == \"x\"\n")
	os.Remove(filepath.Join(dir, policies.OfficesFile))
	s = reload()
	if !strings.Contains(s.LastError, "rules/lab.yaml:7") || s.Digest != rules.Digest() {
		t.Fatalf("broken rule: %+v", s)
	}
	if c, _ := class(); c != policies.NetClassPrivate {
		t.Fatalf("the office removal was not taken with a broken rule: %s", c)
	}
	os.Remove(filepath.Join(dir, "rules/lab.yaml"))
	if s = reload(); s.LastError != "" {
		t.Fatalf("error not cleared: %+v", s)
	}
	// Only rule sets are versioned.
	if vs, err := st.PolicyVersions(ctx, 50); err != nil || len(vs) != 1 {
		t.Fatalf("policy versions %v %v", vs, err)
	}
}
