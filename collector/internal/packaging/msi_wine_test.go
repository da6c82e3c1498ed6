package packaging

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// wineStandIn is a Windows service executable that runs under Wine: Wine's
// own print spooler service (a single-service process that reports
// SERVICE_RUNNING and waits for SERVICE_CONTROL_STOP). The agent itself
// cannot stand in: Go 1.26's runtime needs bcryptprimitives.dll
// (ProcessPrng), which Debian 12's Wine 8.0 does not have, so the agent
// exits before it reaches the service dispatcher.
const wineStandIn = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/spoolsv.exe"

// wine runs a Windows program in a private prefix, without a display.
type wine struct {
	t      *testing.T
	prefix string
}

func (w wine) run(args ...string) (string, error) {
	w.t.Helper()
	cmd := exec.Command("wine", args...)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+w.prefix, "WINEDEBUG=-all",
		// No Mono or Gecko download prompts.
		"WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// msiexec installs or removes an MSI and fails the test with the log's end
// when msiexec fails.
func (w wine) msiexec(op, msi string) {
	w.t.Helper()
	log := msi + op[1:] + ".log"
	if out, err := w.run("msiexec", op, msi, "/qn", "/l*v", log); err != nil {
		b, _ := os.ReadFile(log)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		w.t.Fatalf("msiexec %s %s: %v\n%s\nlog tail:\n%s", op, filepath.Base(msi), err, out, b)
	}
}

// TestMSIWine installs, upgrades and removes the MSI with Wine's msiexec:
// the service is registered with its command line and started, the files
// and registry values are where the package says, an upgrade leaves one
// product installed, and /x removes the service, the files and the values.
func TestMSIWine(t *testing.T) {
	needMSITools(t, "wixl=wixl", "msiinfo=msitools", "msibuild=msitools", "wine=wine", "wineserver=wine")
	if _, err := os.Stat(wineStandIn); err != nil {
		skipMissing(t, wineStandIn+" not found: install the apt packages wine and wine64 (amd64)")
	}
	w := wine{t: t, prefix: filepath.Join(t.TempDir(), "prefix")}
	wineserver := func(arg string) error {
		cmd := exec.Command("wineserver", arg)
		cmd.Env = append(os.Environ(), "WINEPREFIX="+w.prefix)
		return cmd.Run()
	}
	// -k: only this prefix's wineserver and the programs it runs.
	t.Cleanup(func() { _ = wineserver("-k") })
	if out, err := w.run("wineboot", "--init"); err != nil {
		t.Fatalf("wineboot: %v\n%s", err, out)
	}
	// Wait until the new prefix has settled: msiexec right after wineboot
	// can find services.exe not ready (StartServices then fails with 1060).
	if err := wineserver("-w"); err != nil {
		t.Fatalf("wineserver -w: %v", err)
	}

	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{Collector: "127.0.0.1:1", EnrollSecret: "bfe_wine_test_secret", CAFingerprint: strings.Repeat("cd", 32)}
	// v1b: a rebuild of v1, same version, another ProductCode.
	v1, v1b, v2 := filepath.Join(dir, "v1.msi"), filepath.Join(dir, "v1b.msi"), filepath.Join(dir, "v2.msi")
	for msi, version := range map[string]string{v1: "1.0.0", v1b: "1.0.0", v2: "1.0.1"} {
		if err := buildMSI(ctx, Options{Arch: "amd64", Version: version, Agent: wineStandIn, Config: cfg}, msi); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(w.prefix, "drive_c", "Program Files", "Bonafide", "bonafide-agent.exe")
	const svcKey = `HKLM\SYSTEM\CurrentControlSet\Services\bonafide-agent`
	const cfgKey = `HKLM\SOFTWARE\Bonafide\Agent`
	products := func() []string {
		out, _ := w.run("reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`, "/s")
		return regexp.MustCompile(`DisplayVersion\s+REG_SZ\s+(\S+)`).FindAllString(out, -1)
	}

	w.msiexec("/i", v1)
	out, err := w.run("reg", "query", svcKey)
	if err != nil {
		t.Fatalf("service not registered: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		// Windows Installer quotes the executable's path; Wine 8's msi
		// does not.
		regexp.MustCompile(`ImagePath\s+REG_(EXPAND_)?SZ\s+"?C:\\Program Files\\Bonafide\\bonafide-agent.exe"? run\r?\n`),
		regexp.MustCompile(`Start\s+REG_DWORD\s+0x2\b`),
		regexp.MustCompile(`ObjectName\s+REG_SZ\s+LocalSystem`),
		regexp.MustCompile(`DisplayName\s+REG_SZ\s+bonafide agent`),
	} {
		if !want.MatchString(out) {
			t.Errorf("service key lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, cfg.EnrollSecret) {
		t.Errorf("the secret is in the service's key:\n%s", out)
	}
	if out, _ := w.run("sc", "query", "bonafide-agent"); !regexp.MustCompile(`STATE\s*:\s*4\s+RUNNING`).MatchString(out) {
		t.Errorf("service not running after install:\n%s", out)
	}
	if _, err := os.Stat(exe); err != nil {
		t.Errorf("agent not installed: %v", err)
	}
	// The stand-in does not consume the values as the agent does, so they
	// are still where msiexec wrote them.
	out, err = w.run("reg", "query", cfgKey)
	if err != nil {
		t.Fatalf("configuration not in the registry: %v\n%s", err, out)
	}
	for _, want := range []string{"Collector", "127.0.0.1:1", "EnrollSecret", cfg.EnrollSecret, "CAFingerprint", cfg.CAFingerprint} {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %q:\n%s", cfgKey, want, out)
		}
	}
	if p := products(); len(p) != 1 || !strings.HasSuffix(p[0], "1.0.0") {
		t.Errorf("installed products after v1: %q", p)
	}

	// A rebuild of the same version replaces it (Upgrade row edited to
	// VersionMaxInclusive) instead of installing a second product.
	w.msiexec("/i", v1b)
	if p := products(); len(p) != 1 {
		t.Errorf("installed products after a same-version rebuild: %q", p)
	}
	// MajorUpgrade: v2 replaces v1.
	w.msiexec("/i", v2)
	p := products()
	t.Logf("after the upgrade: %q", p)
	if len(p) != 1 || !strings.HasSuffix(p[0], "1.0.1") {
		t.Errorf("installed products after the upgrade: %q", p)
	}
	out, _ = w.run("sc", "query", "bonafide-agent")
	t.Logf("sc query after the upgrade:\n%s", out)
	if !strings.Contains(out, "RUNNING") {
		t.Errorf("service not running after the upgrade:\n%s", out)
	}
	// A downgrade is refused by the launch condition and changes nothing.
	if out, err := w.run("msiexec", "/i", v1, "/qn"); err == nil {
		t.Errorf("downgrade to 1.0.0 accepted:\n%s", out)
	}
	if p := products(); len(p) != 1 || !strings.HasSuffix(p[0], "1.0.1") {
		t.Errorf("installed products after a refused downgrade: %q", p)
	}

	w.msiexec("/x", v2)
	if out, err := w.run("reg", "query", svcKey); err == nil {
		t.Errorf("service still registered after /x:\n%s", out)
	}
	if _, err := os.Stat(exe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("agent still installed after /x: %v", err)
	}
	if out, err := w.run("reg", "query", cfgKey); err == nil && strings.Contains(out, "EnrollSecret") {
		t.Errorf("configuration left after /x:\n%s", out)
	}
	if p := products(); len(p) != 0 {
		t.Errorf("products after /x: %q", p)
	}
}
