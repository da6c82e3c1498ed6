package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/bonafide-sec/bonafide/installers"
	"go.yaml.in/yaml/v3"
)

// linuxRun runs a command and returns its standard output; it fails the
// test with the standard error when the command fails.
func linuxRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// fakeELF writes the header of an ELF64 executable for machine: enough for
// debug/elf, nothing that runs.
func fakeELF(t *testing.T, machine uint16) string {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1               // 64-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine)
	binary.LittleEndian.PutUint32(h[20:], 1)  // version
	binary.LittleEndian.PutUint16(h[52:], 64) // header size
	binary.LittleEndian.PutUint16(h[54:], 56) // program header size
	binary.LittleEndian.PutUint16(h[58:], 64) // section header size
	p := filepath.Join(t.TempDir(), "fake-elf")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	elfX86_64  = 62
	elfAArch64 = 183
)

func TestLinuxVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3":                   "1.2.3",
		"v1.2.3":                  "1.2.3",
		"1.2":                     "1.2",
		"1.2.3-rc.1":              "1.2.3~rc.1",
		"v2.0.0-beta_2":           "2.0.0~beta.2",
		"1.2.3-4-gabc1234":        "1.2.3+git4.gabc1234",
		"1.2.3-4-gabc1234-dirty":  "1.2.3+git4.gabc1234.dirty",
		"dev":                     "0.0.0~dev",
		"":                        "0.0.0~dev",
		"d5c81eb":                 "0.0.0~d5c81eb",
		"d5c81eb-dirty":           "0.0.0~d5c81eb.dirty",
		"1.0\nDepends: evil":      "0.0.0~1.0.Depends.evil",
		"1.0.0-\nPre-Depends: x":  "1.0.0~Pre.Depends.x",
		"9.9.9-rc1 Conflicts: sh": "9.9.9~rc1.Conflicts.sh",
	} {
		got, err := linuxVersion(in)
		if err != nil || got != want {
			t.Errorf("linuxVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
		if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(got) {
			t.Errorf("linuxVersion(%q) = %q: not a valid deb and rpm version", in, got)
		}
	}
	if _, err := linuxVersion(strings.Repeat("1", 200)); err == nil {
		t.Error("a 200-byte version was accepted")
	}
}

// agentFile mirrors the agent's configuration keys (agent/internal/config),
// decoded with unknown keys refused, as the agent does.
type agentFile struct {
	Collector     string `yaml:"collector"`
	EnrollSecret  string `yaml:"enroll_secret"`
	CAFingerprint string `yaml:"ca_fingerprint"`
}

func TestLinuxAgentYAML(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	upperColons := strings.ToUpper(regexp.MustCompile(`(..)`).ReplaceAllString(fp, "$1:"))
	upperColons = strings.TrimSuffix(upperColons, ":")
	for _, c := range []Config{
		{Collector: "collector.example.com:8443", EnrollSecret: "plain", CAFingerprint: fp},
		// YAML syntax in the secret stays data.
		{Collector: "[2001:db8::1]:8443", EnrollSecret: `a: b # c "d" 'e' {f} [g] *h &i !j %k @l` + "`m`\\n", CAFingerprint: upperColons},
		{Collector: "10.0.0.1:443"},
		{Collector: "c:1", EnrollSecret: "ünïcödé ✓"},
	} {
		b, err := agentYAML(c, "")
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		var got agentFile
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%+v: decode:\n%s\n%v", c, b, err)
		}
		want := agentFile{c.Collector, c.EnrollSecret, strings.ToLower(strings.ReplaceAll(c.CAFingerprint, ":", ""))}
		if got != want {
			t.Errorf("round trip: got %+v, want %+v\n%s", got, want, b)
		}
		if c.CAFingerprint != "" && got.CAFingerprint != fp {
			t.Errorf("fingerprint %q written as %q, want %q", c.CAFingerprint, got.CAFingerprint, fp)
		}
	}
	if b, err := agentYAML(Config{}, ""); b != nil || err != nil {
		t.Errorf("empty config: %q, %v; want no file", b, err)
	}

	for name, c := range map[string]Config{
		"newline in secret":      {Collector: "c:1", EnrollSecret: "s\ncollector: evil:1"},
		"CR in collector":        {Collector: "c:1\r"},
		"NUL in secret":          {Collector: "c:1", EnrollSecret: "s\x00"},
		"escape in secret":       {Collector: "c:1", EnrollSecret: "s\x1b[31m"},
		"C1 control":             {Collector: "c:1", EnrollSecret: "s\u0085"},
		"line separator":         {Collector: "c:1", EnrollSecret: "s\u2028t"},
		"invalid UTF-8":          {Collector: "c:1", EnrollSecret: "s\xff"},
		"trailing space":         {Collector: "c:1", EnrollSecret: "s "},
		"secret, no collector":   {EnrollSecret: "s"},
		"collector without port": {Collector: "collector.example.com"},
		"port out of range":      {Collector: "c:70000"},
		"empty host":             {Collector: ":8443"},
		"short fingerprint":      {Collector: "c:1", CAFingerprint: "abcd"},
		"fingerprint not hex":    {Collector: "c:1", CAFingerprint: strings.Repeat("zz", 32)},
		"too long":               {Collector: "c:1", EnrollSecret: strings.Repeat("s", 2000)},
	} {
		if b, err := agentYAML(c, ""); err == nil {
			t.Errorf("%s: accepted:\n%s", name, b)
		}
	}
}

func TestLinuxRefuses(t *testing.T) {
	amd := fakeELF(t, elfX86_64)
	arm := fakeELF(t, elfAArch64)
	notELF := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755)
	out := filepath.Join(t.TempDir(), "x.deb")
	for name, o := range map[string]Options{
		"msi type":        {Type: "msi", Arch: "amd64", Version: "1.0.0", Agent: amd},
		"386":             {Type: "deb", Arch: "386", Version: "1.0.0", Agent: amd},
		"wrong machine":   {Type: "deb", Arch: "amd64", Version: "1.0.0", Agent: arm},
		"wrong machine 2": {Type: "rpm", Arch: "arm64", Version: "1.0.0", Agent: amd},
		"not ELF":         {Type: "rpm", Arch: "amd64", Version: "1.0.0", Agent: notELF},
		"missing binary":  {Type: "deb", Arch: "amd64", Version: "1.0.0", Agent: filepath.Join(t.TempDir(), "none")},
		"newline config":  {Type: "deb", Arch: "amd64", Version: "1.0.0", Agent: amd, Config: Config{Collector: "c:1", EnrollSecret: "a\nb"}},
	} {
		if err := buildNFPM(o, out); err == nil {
			t.Errorf("%s: built", name)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: left %s behind (%v)", name, out, err)
		}
	}
	if err := buildNFPM(Options{Type: "pkg", Arch: "amd64", Agent: amd}, out); !errors.Is(err, ErrUnsupported) {
		t.Errorf("pkg type: %v, want ErrUnsupported", err)
	}
	if err := BuildCollector("deb", "arm64", "1.0.0", amd, "", out); err == nil {
		t.Error("collector: an amd64 binary was packaged as arm64")
	}
	// The happy path on a header-only ELF: the output appears, and a
	// directory that does not exist fails cleanly.
	if err := buildNFPM(Options{Type: "deb", Arch: "arm64", Version: "1.0.0", Agent: arm}, out); err != nil {
		t.Fatal(err)
	}
	if err := buildNFPM(Options{Type: "rpm", Arch: "amd64", Version: "1.0.0", Agent: amd}, filepath.Join(t.TempDir(), "no", "x.rpm")); err == nil {
		t.Error("wrote into a missing directory")
	}
}

// linuxBuildGo builds a package of this module for linux/GOARCH with the
// version stamped, as the Makefile does.
func linuxBuildGo(t *testing.T, pkg, out, version string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+version, "-o", out, pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: b}
	}
	return nil
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// debEntry is one line of dpkg-deb -c or rpm -qlp -v.
type pkgEntry struct{ mode, owner string }

// debContents parses dpkg-deb -c: "-rwxr-xr-x root/root 123 2026-01-01 00:00 ./usr/bin/x".
func debContents(t *testing.T, deb string) map[string]pkgEntry {
	m := map[string]pkgEntry{}
	for _, l := range strings.Split(strings.TrimSpace(linuxRun(t, nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		m[strings.TrimPrefix(strings.TrimSuffix(f[5], "/"), ".")] = pkgEntry{f[0], f[1]}
	}
	return m
}

// rpmContents parses rpm -qlp -v: "-rwxr-xr-x 1 root root 123 Jan 1 00:00 /usr/bin/x".
func rpmContents(t *testing.T, rpm string) map[string]pkgEntry {
	m := map[string]pkgEntry{}
	for _, l := range strings.Split(strings.TrimSpace(linuxRun(t, nil, "rpm", "-qlp", "-v", rpm)), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 {
			t.Fatalf("rpm -qlp -v line %q", l)
		}
		m[f[len(f)-1]] = pkgEntry{f[0], f[2] + "/" + f[3]}
	}
	return m
}

func expectEntries(t *testing.T, what string, got map[string]pkgEntry, want map[string]string, absent ...string) {
	t.Helper()
	for p, mode := range want {
		e, ok := got[p]
		if !ok {
			t.Errorf("%s: no %s in %v", what, p, got)
			continue
		}
		if e.mode != mode || e.owner != "root/root" {
			t.Errorf("%s: %s is %s %s, want %s root/root", what, p, e.mode, e.owner, mode)
		}
	}
	for _, p := range absent {
		if _, ok := got[p]; ok {
			t.Errorf("%s: unexpected %s", what, p)
		}
	}
}

// linuxPkgs is what TestLinuxPackages builds.
type linuxPkgs struct {
	agentBin, collectorBin                 string
	deb, debConf, rpm, rpmConf, cDeb, cRPM string
	conf                                   Config
}

const linuxTestVersion = "1.2.3-rc.1"

// TestLinuxPackages builds real agent and collector binaries, packages them
// as deb and rpm (plain and pre-configured), and inspects the results with
// dpkg-deb and rpm; the extracted .deb runs its agent's scan, and the
// packages' own maintainer scripts run against a scratch root.
func TestLinuxPackages(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skip("needs linux on amd64 or arm64 to run what it packages")
	}
	needTool(t, "dpkg-deb", "dpkg")
	needTool(t, "rpm", "rpm")
	if testing.Short() {
		t.Skip("builds the agent and the collector: not in -short")
	}
	dir := t.TempDir()
	p := linuxPkgs{
		agentBin:     filepath.Join(dir, "bonafide-agent"),
		collectorBin: filepath.Join(dir, "bonafide-collector"),
		conf: Config{
			Collector:     "collector.example.com:8443",
			EnrollSecret:  `s3cr3t: "x" # y`,
			CAFingerprint: strings.ToUpper(strings.Repeat("0f", 32)),
		},
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range [][2]string{{"./agent", p.agentBin}, {"./collector", p.collectorBin}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = linuxBuildGo(t, b[0], b[1], linuxTestVersion)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			var ee *exec.ExitError
			errors.As(err, &ee)
			t.Fatalf("go build: %v\n%s", err, ee.Stderr)
		}
	}

	arch := runtime.GOARCH
	for _, x := range []struct {
		path *string
		o    Options
	}{
		{&p.deb, Options{Type: "deb"}},
		{&p.debConf, Options{Type: "deb", Config: p.conf}},
		{&p.rpm, Options{Type: "rpm"}},
		{&p.rpmConf, Options{Type: "rpm", Config: p.conf}},
	} {
		o := x.o
		o.Arch, o.Version, o.Agent = arch, linuxTestVersion, p.agentBin
		sub := "plain"
		if o.Config != (Config{}) {
			sub = "configured"
		}
		*x.path = filepath.Join(dir, sub, FileName(o))
		os.MkdirAll(filepath.Dir(*x.path), 0o755)
		if err := buildNFPM(o, *x.path); err != nil {
			t.Fatalf("%s %s: %v", o.Type, sub, err)
		}
	}
	for _, x := range []struct {
		path *string
		typ  string
	}{{&p.cDeb, "deb"}, {&p.cRPM, "rpm"}} {
		*x.path = filepath.Join(dir, CollectorFileName(x.typ, arch, linuxTestVersion))
		if err := BuildCollector(x.typ, arch, linuxTestVersion, p.collectorBin, "", *x.path); err != nil {
			t.Fatalf("collector %s: %v", x.typ, err)
		}
	}

	t.Run("deb", func(t *testing.T) { testAgentDeb(t, p) })
	t.Run("rpm", func(t *testing.T) { testAgentRPM(t, p) })
	t.Run("collector", func(t *testing.T) { testCollectorPackages(t, p) })
	t.Run("units", func(t *testing.T) { testUnits(t, p) })
	t.Run("scan", func(t *testing.T) { testExtractedScan(t, p) })
	t.Run("scripts", func(t *testing.T) { testScripts(t, p) })
	t.Run("dpkg", func(t *testing.T) { testDpkgLifecycle(t, p) })
	t.Run("rpm install", func(t *testing.T) { testRPMInstall(t, p) })
}

func testAgentDeb(t *testing.T, p linuxPkgs) {
	for _, deb := range []string{p.deb, p.debConf} {
		configured := deb == p.debConf
		for field, want := range map[string]string{
			"Package":      "bonafide-agent",
			"Version":      "1.2.3~rc.1",
			"Architecture": runtime.GOARCH,
			"Maintainer":   linuxMaintainer,
			"Homepage":     linuxHomepage,
			"Section":      "admin",
		} {
			if got := strings.TrimSpace(linuxRun(t, nil, "dpkg-deb", "-f", deb, field)); got != want {
				t.Errorf("%s: %s is %q, want %q", filepath.Base(deb), field, got, want)
			}
		}
		info := linuxRun(t, nil, "dpkg-deb", "-I", deb)
		for _, s := range []string{"postinst", "prerm", "postrm", "conffiles", "Description: bonafide agent: reports signs of a laptop farm"} {
			if !strings.Contains(info, s) {
				t.Errorf("dpkg-deb -I lacks %q:\n%s", s, info)
			}
		}

		want := map[string]string{
			"/usr/bin/bonafide-agent":                    "-rwxr-xr-x",
			"/lib/systemd/system/bonafide-agent.service": "-rw-r--r--",
			"/etc/bonafide":                              "drwxr-xr-x",
		}
		conffile := "/etc/bonafide/agent.yaml.sample"
		absent := "/etc/bonafide/agent.yaml"
		if configured {
			want["/etc/bonafide/agent.yaml"] = "-rw-------"
			conffile, absent = absent, conffile
		} else {
			want[conffile] = "-rw-r--r--"
		}
		expectEntries(t, filepath.Base(deb), debContents(t, deb), want, absent)

		ctl := t.TempDir()
		linuxRun(t, nil, "dpkg-deb", "-e", deb, ctl)
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			fi, err := os.Stat(filepath.Join(ctl, s))
			if err != nil || fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("control script %s: %v (mode %v)", s, err, fi)
				continue
			}
			linuxRun(t, nil, "sh", "-n", filepath.Join(ctl, s))
		}
		for ctlName, src := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
			want, _ := fs.ReadFile(installers.Linux, "linux/scripts/"+src)
			if got, _ := os.ReadFile(filepath.Join(ctl, ctlName)); len(want) == 0 || !bytes.Equal(got, want) {
				t.Errorf("control %s is not installers/linux/scripts/%s", ctlName, src)
			}
		}
		if b, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || string(b) != conffile+"\n" {
			t.Errorf("conffiles = %q, %v; want %q", b, err, conffile+"\n")
		}

		root := t.TempDir()
		linuxRun(t, nil, "dpkg-deb", "-x", deb, root)
		if got, want := sha256File(t, filepath.Join(root, "usr/bin/bonafide-agent")), sha256File(t, p.agentBin); got != want {
			t.Errorf("packaged agent differs from the one built")
		}
		if configured {
			b, _ := os.ReadFile(filepath.Join(root, "etc/bonafide/agent.yaml"))
			var got agentFile
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			if err := dec.Decode(&got); err != nil || got != (agentFile{p.conf.Collector, p.conf.EnrollSecret, strings.Repeat("0f", 32)}) {
				t.Errorf("agent.yaml decodes to %+v, %v:\n%s", got, err, b)
			}
		}
	}
}

func testAgentRPM(t *testing.T, p linuxPkgs) {
	for _, rpm := range []string{p.rpm, p.rpmConf} {
		configured := rpm == p.rpmConf
		got := linuxRun(t, nil, "rpm", "-qp", "--queryformat",
			"%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{VENDOR}|%{URL}|%{PACKAGER}|%{OS}", rpm)
		want := strings.Join([]string{"bonafide-agent", "1.2.3~rc.1", "1", rpmArch(runtime.GOARCH), linuxLicense,
			linuxVendor, linuxHomepage, linuxMaintainer, "linux"}, "|")
		if got != want {
			t.Errorf("%s: metadata %q, want %q", filepath.Base(rpm), got, want)
		}
		if info := linuxRun(t, nil, "rpm", "-qip", rpm); !strings.Contains(info, "Summary     : bonafide agent: reports signs of a laptop farm") {
			t.Errorf("rpm -qip:\n%s", info)
		}

		want2 := map[string]string{
			"/usr/bin/bonafide-agent":                        "-rwxr-xr-x",
			"/usr/lib/systemd/system/bonafide-agent.service": "-rw-r--r--",
			"/etc/bonafide":                                  "drwxr-xr-x",
		}
		conf, absent := "/etc/bonafide/agent.yaml.sample", "/etc/bonafide/agent.yaml"
		if configured {
			want2[absent] = "-rw-------"
			conf, absent = absent, conf
		} else {
			want2[conf] = "-rw-r--r--"
		}
		expectEntries(t, filepath.Base(rpm), rpmContents(t, rpm), want2, absent, "/lib/systemd/system/bonafide-agent.service")

		if got := strings.TrimSpace(linuxRun(t, nil, "rpm", "-qp", "--configfiles", rpm)); got != conf {
			t.Errorf("rpm --configfiles = %q, want %q", got, conf)
		}
		// c: configuration, n: noreplace.
		flags := linuxRun(t, nil, "rpm", "-qp", "--queryformat", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm)
		if !strings.Contains(flags, conf+" cn\n") {
			t.Errorf("%s is not %%config(noreplace):\n%s", conf, flags)
		}
		// The file digests rpm holds are those of the binary built.
		dump := linuxRun(t, nil, "rpm", "-qp", "--dump", rpm)
		if !strings.Contains(dump, "/usr/bin/bonafide-agent ") || !strings.Contains(dump, " "+sha256File(t, p.agentBin)+" ") {
			t.Errorf("rpm --dump has not the agent's SHA-256:\n%s", dump)
		}

		scripts := linuxRun(t, nil, "rpm", "-qp", "--scripts", rpm)
		for _, s := range []string{"postinstall scriptlet (using /bin/sh):", "preuninstall scriptlet (using /bin/sh):",
			"postuninstall scriptlet (using /bin/sh):", "systemctl try-restart", "systemctl stop"} {
			if !strings.Contains(scripts, s) {
				t.Errorf("rpm --scripts lacks %q:\n%s", s, scripts)
			}
		}
		for _, tag := range []string{"POSTIN", "PREUN", "POSTUN"} {
			f := filepath.Join(t.TempDir(), tag)
			os.WriteFile(f, []byte(linuxRun(t, nil, "rpm", "-qp", "--queryformat", "%{"+tag+"}", rpm)), 0o644)
			linuxRun(t, nil, "sh", "-n", f)
		}
	}
}

func testCollectorPackages(t *testing.T, p linuxPkgs) {
	for field, want := range map[string]string{"Package": "bonafide-collector", "Version": "1.2.3~rc.1", "Architecture": runtime.GOARCH} {
		if got := strings.TrimSpace(linuxRun(t, nil, "dpkg-deb", "-f", p.cDeb, field)); got != want {
			t.Errorf("collector deb: %s is %q, want %q", field, got, want)
		}
	}
	expectEntries(t, "collector deb", debContents(t, p.cDeb), map[string]string{
		"/usr/bin/bonafide-collector":                    "-rwxr-xr-x",
		"/lib/systemd/system/bonafide-collector.service": "-rw-r--r--",
		"/etc/bonafide/collector.env":                    "-rw-------",
	})
	ctl := t.TempDir()
	linuxRun(t, nil, "dpkg-deb", "-e", p.cDeb, ctl)
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		linuxRun(t, nil, "sh", "-n", filepath.Join(ctl, s))
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/bonafide/collector.env\n" {
		t.Errorf("collector conffiles = %q", b)
	}
	root := t.TempDir()
	linuxRun(t, nil, "dpkg-deb", "-x", p.cDeb, root)
	if v := strings.TrimSpace(linuxRun(t, nil, filepath.Join(root, "usr/bin/bonafide-collector"), "version")); !strings.Contains(v, linuxTestVersion) {
		t.Errorf("extracted collector says version %q", v)
	}
	env, _ := os.ReadFile(filepath.Join(root, "etc/bonafide/collector.env"))
	if !regexp.MustCompile(`(?m)^BONAFIDE_COLLECTOR_ARGS=$`).Match(env) {
		t.Errorf("collector.env does not set BONAFIDE_COLLECTOR_ARGS:\n%s", env)
	}

	got := linuxRun(t, nil, "rpm", "-qp", "--queryformat", "%{NAME}|%{VERSION}|%{ARCH}", p.cRPM)
	if want := "bonafide-collector|1.2.3~rc.1|" + rpmArch(runtime.GOARCH); got != want {
		t.Errorf("collector rpm: %q, want %q", got, want)
	}
	expectEntries(t, "collector rpm", rpmContents(t, p.cRPM), map[string]string{
		"/usr/bin/bonafide-collector":                        "-rwxr-xr-x",
		"/usr/lib/systemd/system/bonafide-collector.service": "-rw-r--r--",
		"/etc/bonafide/collector.env":                        "-rw-------",
	})
	if got := strings.TrimSpace(linuxRun(t, nil, "rpm", "-qp", "--configfiles", p.cRPM)); got != "/etc/bonafide/collector.env" {
		t.Errorf("collector rpm --configfiles = %q", got)
	}
	scripts := linuxRun(t, nil, "rpm", "-qp", "--scripts", p.cRPM)
	for _, s := range []string{"preinstall scriptlet", "useradd --system", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("collector rpm --scripts lacks %q", s)
		}
	}
}

// testUnits checks the units as packaged with systemd-analyze: verify (no
// warning at all) and the offline security exposure.
func testUnits(t *testing.T, p linuxPkgs) {
	sa := needTool(t, "systemd-analyze", "systemd")
	for _, u := range []struct {
		deb, unit, bin string
		threshold      string // systemd-analyze security exposure ×10
	}{
		{p.deb, "bonafide-agent.service", "bonafide-agent", "30"},
		{p.cDeb, "bonafide-collector.service", "bonafide-collector", "20"},
	} {
		root := t.TempDir()
		linuxRun(t, nil, "dpkg-deb", "-x", u.deb, root)
		b, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", u.unit))
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that ExecStart exists: point it at the extracted binary.
		bin := filepath.Join(root, "usr/bin", u.bin)
		b = bytes.ReplaceAll(b, []byte("/usr/bin/"+u.bin+" "), []byte(bin+" "))
		unit := filepath.Join(t.TempDir(), u.unit)
		os.WriteFile(unit, b, 0o644)
		cmd := exec.Command(sa, "verify", "--man=no", unit)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.unit, err, out)
		}
		out, err = exec.Command(sa, "security", "--offline=true", "--no-pager", "--threshold="+u.threshold, unit).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s above %s: %v\n%s", u.unit, u.threshold, err, out)
		}
	}
}

// snapshotIdentity is the part of the scan's JSON (protojson of HostSnapshot)
// the test reads.
type snapshotIdentity struct {
	Identity struct {
		Hostname     string `json:"hostname"`
		SerialNumber string `json:"serialNumber"`
		AgentVersion string `json:"agentVersion"`
		OS           struct {
			Family string `json:"family"`
		} `json:"os"`
	} `json:"identity"`
	Signals []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"signals"`
}

func decodeScan(t *testing.T, out string) snapshotIdentity {
	t.Helper()
	var s snapshotIdentity
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("scan --json: %v\n%s", err, out)
	}
	return s
}

// testExtractedScan extracts the pre-configured .deb into a scratch root
// and runs its agent: against a fixture root from the agent's testdata
// (with the packaged configuration, which the agent must accept), on this
// machine, and on this machine within the unit's capability bounding set
// and no_new_privs.
func testExtractedScan(t *testing.T, p linuxPkgs) {
	root := t.TempDir()
	linuxRun(t, nil, "dpkg-deb", "-x", p.debConf, root)
	agent := filepath.Join(root, "usr/bin/bonafide-agent")
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "agent/internal/scan/testdata/roots/home-desk")

	s := decodeScan(t, linuxRun(t, nil, agent, "scan", "--json", "--config", filepath.Join(root, "etc/bonafide/agent.yaml"), "--root", fixture))
	if id := s.Identity; id.Hostname != "tp-home" || id.SerialNumber != "PF0H0M3D" || id.OS.Family != "linux" || id.AgentVersion != linuxTestVersion {
		t.Errorf("fixture scan identity %+v", id)
	}

	live := decodeScan(t, linuxRun(t, nil, agent, "scan", "--json"))
	if live.Identity.OS.Family != "linux" || live.Identity.Hostname == "" || len(live.Signals) < 5 {
		t.Errorf("live scan: %+v", live)
	}

	// The unit's CapabilityBoundingSet and NoNewPrivileges, applied with
	// setpriv (util-linux): every signal must fare as it does unrestricted.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/bonafide-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the agent's unit sets no CapabilityBoundingSet")
	}
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the scan within the unit's capability bounding set")
		return
	}
	setpriv := needTool(t, "setpriv", "util-linux")
	bset := "-all"
	for _, c := range strings.Fields(string(m[1])) {
		bset += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	bounded := decodeScan(t, linuxRun(t, nil, setpriv, "--bounding-set="+bset, "--inh-caps=-all", "--no-new-privs", agent, "scan", "--json"))
	states := func(s snapshotIdentity) map[string]string {
		m := map[string]string{}
		for _, x := range s.Signals {
			m[x.Name] = x.State
		}
		return m
	}
	want, got := states(live), states(bounded)
	for name, st := range want {
		if got[name] != st {
			t.Errorf("signal %s: %s unrestricted, %s within %s", name, st, got[name], bset)
		}
	}
}

// scriptBox is a scratch root (DPKG_ROOT) and a PATH whose systemctl,
// chown, getent, groupadd and useradd only log their arguments, for running
// the packages' maintainer scripts without touching this machine.
type scriptBox struct{ root, bin, log string }

func newScriptBox(t *testing.T) scriptBox {
	b := scriptBox{root: t.TempDir(), bin: t.TempDir()}
	b.log = filepath.Join(b.bin, "calls.log")
	for _, name := range []string{"systemctl", "chown", "getent", "groupadd", "useradd"} {
		s := "#!/bin/sh\necho \"" + name + " $*\" >> \"$FAKE_LOG\"\n"
		if name == "getent" {
			s += "exit 2\n" // nothing known
		}
		if err := os.WriteFile(filepath.Join(b.bin, name), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// run runs a command with the fakes first on PATH and DPKG_ROOT set, and
// returns its output and the logged calls, with the scratch root written
// as R.
func (b scriptBox) run(t *testing.T, name string, args ...string) (string, []string) {
	t.Helper()
	os.Remove(b.log)
	env := []string{"DPKG_ROOT=" + b.root, "PATH=" + b.bin + ":" + os.Getenv("PATH"), "FAKE_LOG=" + b.log}
	out := linuxRun(t, env, name, args...)
	logged, err := os.ReadFile(b.log)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		if l != "" {
			calls = append(calls, strings.ReplaceAll(l, b.root, "R"))
		}
	}
	return out, calls
}

func (b scriptBox) write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(b.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func (b scriptBox) exists(name string) bool {
	_, err := os.Stat(filepath.Join(b.root, name))
	return err == nil
}

// testScripts runs the maintainer scripts as packaged (from the deb's
// control archive with dpkg's arguments, from the rpm's header with rpm's)
// through install, upgrade, removal and purge.
func testScripts(t *testing.T, p linuxPkgs) {
	scripts := map[string]string{}
	for _, x := range []struct{ prefix, deb string }{{"agent ", p.deb}, {"collector ", p.cDeb}} {
		ctl := t.TempDir()
		linuxRun(t, nil, "dpkg-deb", "-e", x.deb, ctl)
		for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
			scripts[x.prefix+s] = filepath.Join(ctl, s)
		}
	}
	for _, x := range []struct{ prefix, rpm string }{{"agent ", p.rpm}, {"collector ", p.cRPM}} {
		dir := t.TempDir()
		for _, tag := range []string{"PREIN", "POSTIN", "PREUN", "POSTUN"} {
			f := filepath.Join(dir, tag)
			os.WriteFile(f, []byte(linuxRun(t, nil, "rpm", "-qp", "--queryformat", "%{"+tag+"}", x.rpm)), 0o644)
			scripts[x.prefix+tag] = f
		}
	}

	const (
		agentYAML  = "etc/bonafide/agent.yaml"
		running    = "run/systemd/system/.keep"
		reload     = "systemctl daemon-reload"
		enable     = "systemctl --root=R enable bonafide-agent.service"
		start      = "systemctl start bonafide-agent.service"
		restart    = "systemctl try-restart bonafide-agent.service"
		stop       = "systemctl stop bonafide-agent.service"
		disable    = "systemctl --root=R disable bonafide-agent.service"
		resetAgent = "systemctl reset-failed bonafide-agent.service"
		chownAgent = "chown root:root R/etc/bonafide/agent.yaml"
		configured = "collector: \"c.example:8443\"\nenroll_secret: \"s\"\n"
		cEnable    = "systemctl --root=R enable bonafide-collector.service"
		cRestart   = "systemctl try-restart bonafide-collector.service"
		cStop      = "systemctl stop bonafide-collector.service"
		cDisable   = "systemctl --root=R disable bonafide-collector.service"
		cReset     = "systemctl reset-failed bonafide-collector.service"
		cChown     = "chown root:root R/etc/bonafide/collector.env"
	)
	for _, c := range []struct {
		name, script string
		args         []string
		files        map[string]string // set up under the root, 0644 (usr/sbin: 0755)
		calls        []string
		check        func(t *testing.T, b scriptBox, out string)
	}{
		{name: "deb install, unconfigured", script: "agent postinst", args: []string{"configure", ""},
			files: map[string]string{running: ""}, calls: []string{reload, enable},
			check: func(t *testing.T, b scriptBox, out string) {
				if !strings.Contains(out, "not configured") {
					t.Errorf("no configuration hint:\n%s", out)
				}
			}},
		{name: "rpm install, configured", script: "agent POSTIN", args: []string{"1"},
			files: map[string]string{running: "", agentYAML: configured}, calls: []string{chownAgent, reload, enable, start},
			check: func(t *testing.T, b scriptBox, out string) {
				if fi, err := os.Stat(filepath.Join(b.root, agentYAML)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("agent.yaml mode %v, %v; want 0600", fi.Mode(), err)
				}
			}},
		{name: "deb install, enrolled, no secret", script: "agent postinst", args: []string{"configure", ""},
			files: map[string]string{running: "", agentYAML: "collector: c.example:8443\n", "var/lib/bonafide/enrollment.json": "{}"},
			calls: []string{chownAgent, reload, enable, start}},
		{name: "deb install, collector only", script: "agent postinst", args: []string{"configure", ""},
			files: map[string]string{running: "", agentYAML: "collector: c.example:8443\n#enroll_secret: x\nenroll_secret:\n"},
			calls: []string{chownAgent, reload, enable}},
		{name: "image build, configured", script: "agent postinst", args: []string{"configure", ""},
			files: map[string]string{agentYAML: configured}, calls: []string{chownAgent, enable}},
		{name: "deb upgrade", script: "agent postinst", args: []string{"configure", "1.2.2"},
			files: map[string]string{running: "", agentYAML: configured}, calls: []string{chownAgent, reload, restart}},
		{name: "rpm upgrade", script: "agent POSTIN", args: []string{"2"},
			files: map[string]string{running: ""}, calls: []string{reload, restart}},
		{name: "deb abort-upgrade", script: "agent postinst", args: []string{"abort-upgrade", "1.2.4"},
			files: map[string]string{running: ""}, calls: []string{reload, restart}},
		{name: "deb remove", script: "agent prerm", args: []string{"remove"},
			files: map[string]string{running: ""}, calls: []string{stop, disable}},
		{name: "deb upgrade keeps running", script: "agent prerm", args: []string{"upgrade", "1.2.4"},
			files: map[string]string{running: ""}},
		{name: "rpm erase", script: "agent PREUN", args: []string{"0"},
			files: map[string]string{running: ""}, calls: []string{stop, disable}},
		{name: "rpm upgrade keeps running", script: "agent PREUN", args: []string{"1"},
			files: map[string]string{running: ""}},
		{name: "deb purge", script: "agent postrm", args: []string{"purge"},
			files: map[string]string{running: "", agentYAML: configured, "var/lib/bonafide/agent.key": "k", "var/lib/bonafide/spool.db": ""},
			calls: []string{reload, resetAgent},
			check: func(t *testing.T, b scriptBox, out string) {
				for _, p := range []string{"var/lib/bonafide", "etc/bonafide"} {
					if b.exists(p) {
						t.Errorf("purge left %s", p)
					}
				}
			}},
		{name: "deb purge keeps the collector's files", script: "agent postrm", args: []string{"purge"},
			files: map[string]string{agentYAML: configured, "etc/bonafide/collector.env": ""},
			check: func(t *testing.T, b scriptBox, out string) {
				if b.exists(agentYAML) || !b.exists("etc/bonafide/collector.env") {
					t.Error("purge removed the wrong files")
				}
			}},
		{name: "deb remove keeps state", script: "agent postrm", args: []string{"remove"},
			files: map[string]string{running: "", "var/lib/bonafide/agent.key": "k"}, calls: []string{reload, resetAgent},
			check: func(t *testing.T, b scriptBox, out string) {
				if !b.exists("var/lib/bonafide/agent.key") {
					t.Error("remove deleted the state")
				}
			}},
		{name: "rpm erase removes state, keeps config", script: "agent POSTUN", args: []string{"0"},
			files: map[string]string{running: "", agentYAML: configured, "var/lib/bonafide/agent.key": "k"}, calls: []string{reload, resetAgent},
			check: func(t *testing.T, b scriptBox, out string) {
				if b.exists("var/lib/bonafide") || !b.exists(agentYAML) {
					t.Error("rpm erase: state kept or config removed")
				}
			}},
		{name: "rpm upgrade keeps state", script: "agent POSTUN", args: []string{"1"},
			files: map[string]string{running: "", "var/lib/bonafide/agent.key": "k"}, calls: []string{reload},
			check: func(t *testing.T, b scriptBox, out string) {
				if !b.exists("var/lib/bonafide/agent.key") {
					t.Error("upgrade deleted the state")
				}
			}},

		{name: "collector deb preinst creates the user", script: "collector preinst", args: []string{"install"},
			files: map[string]string{"usr/sbin/nologin": ""},
			calls: []string{"groupadd --root R --system bonafide",
				"useradd --root R --system --gid bonafide --no-create-home --home-dir /var/lib/bonafide-collector --shell /usr/sbin/nologin --comment bonafide collector bonafide"}},
		{name: "collector rpm %pre, user exists", script: "collector PREIN", args: []string{"2"},
			files: map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\nbonafide:x:998:998::/var/lib/bonafide-collector:/sbin/nologin\n",
				"etc/group": "root:x:0:\nbonafide:x:998:\n"}},
		{name: "collector install does not start", script: "collector postinst", args: []string{"configure", ""},
			files: map[string]string{running: "", "etc/bonafide/collector.env": "BONAFIDE_COLLECTOR_ARGS=\n"},
			calls: []string{cChown, reload, cEnable},
			check: func(t *testing.T, b scriptBox, out string) {
				if fi, err := os.Stat(filepath.Join(b.root, "etc/bonafide/collector.env")); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("collector.env mode %v, %v", fi.Mode(), err)
				}
				if !strings.Contains(out, "/var/lib/bonafide-collector/first-run-credentials.txt") {
					t.Errorf("no first-run hint:\n%s", out)
				}
			}},
		{name: "collector rpm upgrade", script: "collector POSTIN", args: []string{"2"},
			files: map[string]string{running: ""}, calls: []string{reload, cRestart}},
		{name: "collector rpm erase", script: "collector PREUN", args: []string{"0"},
			files: map[string]string{running: ""}, calls: []string{cStop, cDisable}},
		{name: "collector deb purge keeps data", script: "collector postrm", args: []string{"purge"},
			files: map[string]string{running: "", "etc/bonafide/collector.env": "", "var/lib/bonafide-collector/bonafide.db": ""},
			calls: []string{reload, cReset},
			check: func(t *testing.T, b scriptBox, out string) {
				if b.exists("etc/bonafide") || !b.exists("var/lib/bonafide-collector/bonafide.db") {
					t.Error("purge: /etc/bonafide left or the data removed")
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newScriptBox(t)
			for name, content := range c.files {
				mode := os.FileMode(0o644)
				if strings.HasPrefix(name, "usr/sbin/") {
					mode = 0o755
				}
				b.write(t, name, content, mode)
			}
			out, calls := b.run(t, "sh", append([]string{scripts[c.script]}, c.args...)...)
			if strings.Join(calls, "\n") != strings.Join(c.calls, "\n") {
				t.Errorf("%s %q called\n  %s\nwant\n  %s\noutput:\n%s", c.script, c.args,
					strings.Join(calls, "\n  "), strings.Join(c.calls, "\n  "), out)
			}
			if c.check != nil {
				c.check(t, b, out)
			}
		})
	}
}

// sameCalls fails unless calls are want, in order.
func sameCalls(t *testing.T, what string, calls, want []string, out string) {
	t.Helper()
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s called\n  %s\nwant\n  %s\noutput:\n%s", what, strings.Join(calls, "\n  "), strings.Join(want, "\n  "), out)
	}
}

// testDpkgLifecycle installs, upgrades, removes and purges the packages
// with the real dpkg in a scratch root: dpkg --root with
// --force-script-chrootless runs the maintainer scripts on this machine
// with DPKG_ROOT set, and systemctl, chown and the shadow tools are the
// logging fakes.
func testDpkgLifecycle(t *testing.T, p linuxPkgs) {
	dpkg := needTool(t, "dpkg", "dpkg")
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root")
	}
	b := newScriptBox(t)
	b.write(t, "var/lib/dpkg/status", "", 0o644)
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "run/systemd/system"} {
		os.MkdirAll(filepath.Join(b.root, d), 0o755)
	}
	dp := func(args ...string) (string, []string) {
		t.Helper()
		return b.run(t, dpkg, append([]string{"--root=" + b.root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	mode := func(name string) os.FileMode {
		fi, err := os.Stat(filepath.Join(b.root, name))
		if err != nil {
			return 0
		}
		return fi.Mode().Perm()
	}

	out, calls := dp("-i", p.debConf)
	sameCalls(t, "dpkg -i (configured)", calls, []string{"chown root:root R/etc/bonafide/agent.yaml",
		"systemctl daemon-reload", "systemctl --root=R enable bonafide-agent.service", "systemctl start bonafide-agent.service"}, out)
	if mode("etc/bonafide/agent.yaml") != 0o600 || mode("usr/bin/bonafide-agent") != 0o755 {
		t.Errorf("installed modes: agent.yaml %v, binary %v", mode("etc/bonafide/agent.yaml"), mode("usr/bin/bonafide-agent"))
	}
	b.write(t, "var/lib/bonafide/agent.key", "enrolled", 0o600)

	next := filepath.Join(t.TempDir(), "next.deb")
	if err := buildNFPM(Options{Type: "deb", Arch: runtime.GOARCH, Version: "1.2.4", Agent: p.agentBin}, next); err != nil {
		t.Fatal(err)
	}
	out, calls = dp("-i", next)
	sameCalls(t, "dpkg -i (upgrade)", calls, []string{"systemctl daemon-reload", "chown root:root R/etc/bonafide/agent.yaml",
		"systemctl daemon-reload", "systemctl try-restart bonafide-agent.service"}, out)
	if !b.exists("etc/bonafide/agent.yaml") || !b.exists("etc/bonafide/agent.yaml.sample") {
		t.Error("the upgrade lost agent.yaml or did not bring the sample")
	}

	out, calls = dp("-r", "bonafide-agent")
	sameCalls(t, "dpkg -r", calls, []string{"systemctl stop bonafide-agent.service", "systemctl --root=R disable bonafide-agent.service",
		"systemctl daemon-reload", "systemctl reset-failed bonafide-agent.service"}, out)
	if b.exists("usr/bin/bonafide-agent") || !b.exists("var/lib/bonafide/agent.key") || !b.exists("etc/bonafide/agent.yaml") {
		t.Error("dpkg -r: binary left, or state or configuration removed")
	}
	out, calls = dp("-P", "bonafide-agent")
	sameCalls(t, "dpkg -P", calls, []string{"systemctl daemon-reload", "systemctl reset-failed bonafide-agent.service"}, out)
	for _, p := range []string{"var/lib/bonafide", "etc/bonafide", "lib/systemd/system/bonafide-agent.service"} {
		if b.exists(p) {
			t.Errorf("dpkg -P left %s", p)
		}
	}

	out, calls = dp("-i", p.cDeb)
	sameCalls(t, "dpkg -i collector", calls, []string{"groupadd --root R --system bonafide",
		"useradd --root R --system --gid bonafide --no-create-home --home-dir /var/lib/bonafide-collector --shell /sbin/nologin --comment bonafide collector bonafide",
		"chown root:root R/etc/bonafide/collector.env", "systemctl daemon-reload", "systemctl --root=R enable bonafide-collector.service"}, out)
	if mode("etc/bonafide/collector.env") != 0o600 {
		t.Errorf("collector.env mode %v", mode("etc/bonafide/collector.env"))
	}
	b.write(t, "var/lib/bonafide-collector/bonafide.db", "data", 0o600)
	out, calls = dp("-P", "bonafide-collector")
	sameCalls(t, "dpkg -P collector", calls, []string{"systemctl stop bonafide-collector.service", "systemctl --root=R disable bonafide-collector.service",
		"systemctl daemon-reload", "systemctl reset-failed bonafide-collector.service",
		"systemctl daemon-reload", "systemctl reset-failed bonafide-collector.service"}, out)
	if b.exists("etc/bonafide") || !b.exists("var/lib/bonafide-collector/bonafide.db") {
		t.Error("collector purge: /etc/bonafide left, or the data removed")
	}
}

// testRPMInstall installs, upgrades and erases the agent's rpm with the real
// rpm in a scratch root. Scriptlets are off (--noscripts): rpm runs them
// chrooted into the root, which has no shell; the scripts subtest runs them.
func testRPMInstall(t *testing.T, p linuxPkgs) {
	if os.Geteuid() != 0 {
		t.Skip("rpm --root needs root")
	}
	root := t.TempDir()
	r := func(args ...string) {
		linuxRun(t, nil, "rpm", append([]string{"--root", root, "--noscripts", "--nodeps"}, args...)...)
	}
	mode := func(name string) os.FileMode {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			return 0
		}
		return fi.Mode().Perm()
	}
	r("-i", p.rpmConf)
	if mode("etc/bonafide/agent.yaml") != 0o600 || mode("usr/bin/bonafide-agent") != 0o755 ||
		mode("usr/lib/systemd/system/bonafide-agent.service") != 0o644 {
		t.Errorf("installed modes: agent.yaml %v, binary %v, unit %v", mode("etc/bonafide/agent.yaml"),
			mode("usr/bin/bonafide-agent"), mode("usr/lib/systemd/system/bonafide-agent.service"))
	}
	// An edited configuration survives the upgrade (noreplace).
	os.WriteFile(filepath.Join(root, "etc/bonafide/agent.yaml"), []byte("collector: edited:1\n"), 0o600)
	next := filepath.Join(t.TempDir(), "next.rpm")
	if err := buildNFPM(Options{Type: "rpm", Arch: runtime.GOARCH, Version: "1.2.4", Agent: p.agentBin, Config: p.conf}, next); err != nil {
		t.Fatal(err)
	}
	r("-U", next)
	if got := strings.TrimSpace(linuxRun(t, nil, "rpm", "--root", root, "-q", "bonafide-agent")); got != "bonafide-agent-1.2.4-1."+rpmArch(runtime.GOARCH) {
		t.Errorf("after the upgrade rpm -q says %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/bonafide/agent.yaml")); string(b) != "collector: edited:1\n" {
		t.Errorf("the upgrade replaced the edited agent.yaml: %q", b)
	}
	r("-e", "bonafide-agent")
	if mode("usr/bin/bonafide-agent") != 0 || mode("usr/lib/systemd/system/bonafide-agent.service") != 0 {
		t.Error("rpm -e left the binary or the unit")
	}
	if !strings.Contains(linuxRun(t, nil, "ls", filepath.Join(root, "etc/bonafide")), "agent.yaml.rpmsave") {
		t.Error("rpm -e did not keep the edited configuration as agent.yaml.rpmsave")
	}
}
