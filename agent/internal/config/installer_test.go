package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeStore stands in for the registry key the MSI writes.
type fakeStore struct {
	s        InstallerSettings
	readErr  error
	clearErr error
	cleared  bool
}

func (f *fakeStore) Read() (InstallerSettings, error) { return f.s, f.readErr }
func (f *fakeStore) Clear() error {
	if f.clearErr != nil {
		return f.clearErr
	}
	f.cleared, f.s = true, InstallerSettings{}
	return nil
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

const fp = "abababababababababababababababababababababababababababababababab"

func TestApplyInstallerSettingsNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	store := &fakeStore{s: InstallerSettings{Collector: "collector.example:8443", EnrollSecret: "bfe_0123", CAFingerprint: strings.ToUpper(fp[:2]) + ":" + fp[2:]}}
	ok, err := applyInstallerSettings(path, store, writeFile)
	if err != nil || !ok {
		t.Fatalf("apply: %v %v", ok, err)
	}
	if !store.cleared {
		t.Error("the registry values were not deleted")
	}
	c, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Collector != "collector.example:8443" || c.EnrollSecret != "bfe_0123" || c.CAFingerprint != fp {
		t.Errorf("loaded %+v", c)
	}
	// Nothing waits any more: the next start changes nothing.
	if ok, err := applyInstallerSettings(path, store, writeFile); ok || err != nil {
		t.Errorf("second apply: %v %v", ok, err)
	}
}

func TestApplyInstallerSettingsMerge(t *testing.T) {
	path := write(t, "# managed by IT\ncollector: old.example:8443 # the old one\nscan_interval: 90s\nsource_address: 10.0.0.5\n")
	// Only the settings that were given replace keys; the rest stays.
	store := &fakeStore{s: InstallerSettings{Collector: "[2001:db8::1]:8443", EnrollSecret: `x"y:z#w`}}
	if ok, err := applyInstallerSettings(path, store, writeFile); err != nil || !ok {
		t.Fatalf("apply: %v %v", ok, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# managed by IT", "scan_interval: 90s"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("lost %q:\n%s", want, b)
		}
	}
	c, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Collector: "[2001:db8::1]:8443", EnrollSecret: `x"y:z#w`, StateDir: DefaultStateDir(),
		ScanInterval: 90 * time.Second, SourceAddress: "10.0.0.5"}
	if c != want {
		t.Errorf("got  %+v\nwant %+v\n%s", c, want, b)
	}
}

func TestApplyInstallerSettingsEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n", "---\n"} {
		path := write(t, content)
		if _, err := applyInstallerSettings(path, &fakeStore{s: InstallerSettings{EnrollSecret: "s"}}, writeFile); err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if c, err := Load(path, true); err != nil || c.EnrollSecret != "s" {
			t.Errorf("%q: %+v %v", content, c, err)
		}
	}
}

func TestApplyInstallerSettingsRefused(t *testing.T) {
	for name, s := range map[string]InstallerSettings{
		"collector without port": {Collector: "collector.example"},
		"port 0":                 {Collector: "c.example:0"},
		"newline in secret":      {EnrollSecret: "a\nenroll_secret: b"},
		"space in secret":        {EnrollSecret: "a b"},
		"fingerprint":            {CAFingerprint: "abcd"},
		"long":                   {EnrollSecret: strings.Repeat("x", 2000)},
	} {
		path := write(t, "collector: keep.example:8443\n")
		store := &fakeStore{s: s}
		ok, err := applyInstallerSettings(path, store, writeFile)
		if err == nil || ok {
			t.Errorf("%s: accepted", name)
		}
		if store.cleared {
			t.Errorf("%s: invalid settings were deleted", name)
		}
		if b, _ := os.ReadFile(path); string(b) != "collector: keep.example:8443\n" {
			t.Errorf("%s: file changed to %q", name, b)
		}
	}
	// A file that is not a mapping, or has unknown keys, is not overwritten.
	for _, content := range []string{"- a\n- b\n", "collecter: x\n"} {
		path := write(t, content)
		store := &fakeStore{s: InstallerSettings{EnrollSecret: "s"}}
		if _, err := applyInstallerSettings(path, store, writeFile); err == nil || store.cleared {
			t.Errorf("%q: err %v, cleared %v", content, err, store.cleared)
		}
	}
}

func TestApplyInstallerSettingsOrder(t *testing.T) {
	// The registry is cleared only after the file is written.
	path := filepath.Join(t.TempDir(), "agent.yaml")
	store := &fakeStore{s: InstallerSettings{EnrollSecret: "s"}}
	failing := func(string, []byte) error { return fs.ErrPermission }
	ok, err := applyInstallerSettings(path, store, failing)
	if ok || !errors.Is(err, fs.ErrPermission) || store.cleared {
		t.Errorf("write failure: ok %v err %v cleared %v", ok, err, store.cleared)
	}
	store.clearErr = errors.New("registry busy")
	ok, err = applyInstallerSettings(path, store, writeFile)
	if !ok || err == nil || !strings.Contains(err.Error(), "not cleared") {
		t.Errorf("clear failure: ok %v err %v", ok, err)
	}
	store = &fakeStore{readErr: fs.ErrPermission}
	if _, err := applyInstallerSettings(path, store, writeFile); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read failure: %v", err)
	}
}

// TestApplyInstallerSettingsNoSource: outside Windows there is no registry;
// the file is left alone.
func TestApplyInstallerSettingsNoSource(t *testing.T) {
	if store, _ := installerSource(); store != nil {
		t.Skip("this OS has an installer settings store")
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := ApplyInstallerSettings(path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file created: %v", err)
	}
}
