package packaging

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" // the checksums xar uses
	"debug/macho"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/installers"
	"go.yaml.in/yaml/v3"
	"howett.net/plist"
)

const (
	macTestFingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
	macConfPath        = "/Library/Application Support/Bonafide/agent.yaml"
)

// macRun runs a command in dir and returns its standard output.
func macRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// macBuild builds pkg (a package path of this module, or "" for a tiny
// program) for darwin/goarch without cgo and returns the binary's path.
func macBuild(t *testing.T, pkg, goarch string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "bin-"+goarch)
	var cmd *exec.Cmd
	if pkg == "" {
		src := "package main\n\nfunc main() { println(\"tiny\") }\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("go", "build", "-trimpath", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
	} else {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
			t.Fatalf("go env GOMOD: %q %v", gomod, err)
		}
		cmd = exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=1.2.3", "-o", out, pkg)
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "GOOS=darwin", "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s for darwin/%s: %v\n%s", pkg, goarch, err, b)
	}
	return out
}

// macXarCheck checks a xar archive's header, the SHA-1 of its compressed
// TOC at the start of the heap, and every file's archived checksum, and
// returns the TOC. (bsdtar checks the extracted checksums when it
// extracts.)
func macXarCheck(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) < 28 || string(b[:4]) != "xar!" || binary.BigEndian.Uint16(b[4:]) != 28 ||
		binary.BigEndian.Uint16(b[6:]) != 1 || binary.BigEndian.Uint32(b[24:]) != 1 {
		t.Fatalf("bad xar header %x", b[:min(28, len(b))])
	}
	clen := binary.BigEndian.Uint64(b[8:])
	ctoc := b[28 : 28+clen]
	zr, err := zlib.NewReader(bytes.NewReader(ctoc))
	if err != nil {
		t.Fatal(err)
	}
	toc, err := io.ReadAll(zr)
	if err != nil || uint64(len(toc)) != binary.BigEndian.Uint64(b[16:]) {
		t.Fatalf("toc: %v, %d bytes", err, len(toc))
	}
	heap := b[28+clen:]
	sum := sha1.Sum(ctoc)
	if !bytes.Equal(heap[:20], sum[:]) {
		t.Fatalf("heap starts with %x, SHA-1 of the toc is %x", heap[:20], sum)
	}
	// Every <data> element: offset, length and archived-checksum.
	type data struct {
		Length   int64  `xml:"length"`
		Offset   int64  `xml:"offset"`
		Archived string `xml:"archived-checksum"`
	}
	dec := xml.NewDecoder(bytes.NewReader(toc))
	n := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("toc: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "data" {
			var d data
			if err := dec.DecodeElement(&d, &se); err != nil {
				t.Fatal(err)
			}
			s := sha1.Sum(heap[d.Offset : d.Offset+d.Length])
			if hex.EncodeToString(s[:]) != d.Archived {
				t.Errorf("file at heap offset %d: archived checksum %s, data has %x", d.Offset, d.Archived, s)
			}
			n++
		}
	}
	if n < 5 {
		t.Errorf("toc lists %d files with data, want at least 5", n)
	}
	return string(toc)
}

// macExtract checks a built package with bsdtar and returns the directory
// it was extracted to: the product archive in pkg/, the payload in root/
// and the scripts in scripts/.
func macExtract(t *testing.T, pkgFile string) string {
	t.Helper()
	bsdtar := needTool(t, "bsdtar", "libarchive-tools")
	b, err := os.ReadFile(pkgFile)
	if err != nil {
		t.Fatal(err)
	}
	macXarCheck(t, b)
	list := strings.Fields(macRun(t, "", bsdtar, "-tf", pkgFile))
	want := []string{"Distribution", "com.bonafide.agent.pkg", "com.bonafide.agent.pkg/Bom",
		"com.bonafide.agent.pkg/PackageInfo", "com.bonafide.agent.pkg/Payload", "com.bonafide.agent.pkg/Scripts"}
	slices.Sort(list)
	if !slices.Equal(list, want) {
		t.Errorf("bsdtar -tf: %q, want %q", list, want)
	}
	dir := t.TempDir()
	for _, d := range []string{"pkg", "root", "scripts"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	macRun(t, "", bsdtar, "-xf", pkgFile, "-C", filepath.Join(dir, "pkg"))
	comp := filepath.Join(dir, "pkg", "com.bonafide.agent.pkg")
	macRun(t, "", bsdtar, "-xpf", filepath.Join(comp, "Payload"), "-C", filepath.Join(dir, "root"))
	macRun(t, "", bsdtar, "-xpf", filepath.Join(comp, "Scripts"), "-C", filepath.Join(dir, "scripts"))
	return dir
}

// macListing is `bsdtar -tv --numeric-owner` of an archive as
// path → "mode uid:gid".
func macListing(t *testing.T, archive string) map[string]string {
	t.Helper()
	out := macRun(t, "", "bsdtar", "-tvf", archive, "--numeric-owner")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 {
			t.Fatalf("odd bsdtar line %q", l)
		}
		// The name may hold spaces: it is everything after the time.
		name := strings.Join(f[8:], " ")
		m[name] = f[0] + " " + f[2] + ":" + f[3]
	}
	return m
}

// TestPkgAgent builds the real agent for darwin/arm64 and a pre-configured
// package of it, and checks the package with bsdtar.
func TestPkgAgent(t *testing.T) {
	needTool(t, "bsdtar", "libarchive-tools")
	agent := macBuild(t, "./agent", "arm64")
	out := filepath.Join(t.TempDir(), "x.pkg")
	o := Options{Type: "pkg", Arch: "arm64", Version: "v1.2.3", Agent: agent, Config: Config{
		Collector: "collector.example.com:8443", EnrollSecret: `s3cr"et' #x: y`, CAFingerprint: macTestFingerprint,
	}}
	if err := buildPkg(o, out); err != nil {
		t.Fatal(err)
	}
	dir := macExtract(t, out)
	comp := filepath.Join(dir, "pkg", "com.bonafide.agent.pkg")

	payload := macListing(t, filepath.Join(comp, "Payload"))
	for name, want := range map[string]string{
		".":                              "drwxr-xr-x 0:0",
		"./usr/local/bin":                "drwxr-xr-x 0:0",
		"./usr/local/bin/bonafide-agent": "-rwxr-xr-x 0:0",
		"./Library/LaunchDaemons":        "drwxr-xr-x 0:0",
		"./Library/LaunchDaemons/com.bonafide.agent.plist": "-rw-r--r-- 0:0",
		"./usr/local/share/bonafide/uninstall.sh":          "-rwxr-xr-x 0:0",
	} {
		if payload[name] != want {
			t.Errorf("Payload %s: %q, want %q", name, payload[name], want)
		}
	}
	if len(payload) != 11 {
		t.Errorf("Payload has %d entries, want 11: %v", len(payload), payload)
	}
	got, err := os.ReadFile(filepath.Join(dir, "root", "usr/local/bin/bonafide-agent"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the packaged agent is not the built agent")
	}
	if f, err := macho.NewFile(bytes.NewReader(got)); err != nil || f.Cpu != macho.CpuArm64 {
		t.Errorf("packaged agent: %v %v", err, f)
	}

	scripts := macListing(t, filepath.Join(comp, "Scripts"))
	for name, want := range map[string]string{
		"./preinstall": "-rwxr-xr-x 0:0", "./postinstall": "-rwxr-xr-x 0:0", "./agent.yaml": "-rw------- 0:0",
	} {
		if scripts[name] != want {
			t.Errorf("Scripts %s: %q, want %q", name, scripts[name], want)
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, "scripts", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]string
	if err := yaml.Unmarshal(conf, &c); err != nil {
		t.Fatalf("agent.yaml: %v\n%s", err, conf)
	}
	wantConf := map[string]string{
		"collector": "collector.example.com:8443", "enroll_secret": `s3cr"et' #x: y`,
		"ca_fingerprint": strings.ToLower(strings.ReplaceAll(macTestFingerprint, ":", "")),
	}
	if len(c) != 3 || c["collector"] != wantConf["collector"] || c["enroll_secret"] != wantConf["enroll_secret"] ||
		c["ca_fingerprint"] != wantConf["ca_fingerprint"] {
		t.Errorf("agent.yaml reads back as %v, want %v\n%s", c, wantConf, conf)
	}
	for _, name := range []string{"preinstall", "postinstall"} {
		b, err := fs.ReadFile(installers.Darwin, "darwin/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "scripts", name))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("Scripts %s differs from installers/darwin/%s (%v)", name, name, err)
		}
	}

	var info struct {
		Identifier      string `xml:"identifier,attr"`
		Version         string `xml:"version,attr"`
		InstallLocation string `xml:"install-location,attr"`
		Auth            string `xml:"auth,attr"`
		Payload         struct {
			Files int `xml:"numberOfFiles,attr"`
		} `xml:"payload"`
		Post struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>postinstall"`
	}
	macXML(t, filepath.Join(comp, "PackageInfo"), &info)
	if info.Identifier != "com.bonafide.agent" || info.Version != "1.2.3" || info.InstallLocation != "/" ||
		info.Auth != "root" || info.Payload.Files != 11 || info.Post.File != "./postinstall" {
		t.Errorf("PackageInfo: %+v", info)
	}
	d := macDistribution(t, filepath.Join(dir, "pkg", "Distribution"))
	if d.Options.Arch != "arm64" || d.PkgRef.ID != "com.bonafide.agent" || d.PkgRef.Version != "1.2.3" ||
		d.PkgRef.Ref != "#com.bonafide.agent.pkg" || d.MinOS.Min != "12.0" {
		t.Errorf("Distribution: %+v", d)
	}
	bom, err := os.ReadFile(filepath.Join(comp, "Bom"))
	if err != nil {
		t.Fatal(err)
	}
	// The Bom itself is checked field by field in package macpkg; here,
	// that it is one and names the installed files.
	for _, s := range []string{"BOMStore", "bonafide-agent\x00", "com.bonafide.agent.plist\x00", "uninstall.sh\x00"} {
		if !bytes.Contains(bom, []byte(s)) {
			t.Errorf("Bom lacks %q", s)
		}
	}
}

type macDist struct {
	Options struct {
		Arch string `xml:"hostArchitectures,attr"`
	} `xml:"options"`
	Domains struct {
		Local string `xml:"enable_localSystem,attr"`
	} `xml:"domains"`
	MinOS struct {
		Min string `xml:"min,attr"`
	} `xml:"volume-check>allowed-os-versions>os-version"`
	PkgRef struct {
		ID      string `xml:"id,attr"`
		Version string `xml:"version,attr"`
		Ref     string `xml:",chardata"`
	} `xml:"pkg-ref"`
}

func macReadFile(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func macDistribution(t *testing.T, file string) macDist {
	t.Helper()
	var d macDist
	macXML(t, file, &d)
	return d
}

func macXML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
}

// TestPkgUniversal packages tiny amd64 and arm64 programs as a universal
// binary, unconfigured.
func TestPkgUniversal(t *testing.T) {
	needTool(t, "bsdtar", "libarchive-tools")
	amd, arm := macBuild(t, "", "amd64"), macBuild(t, "", "arm64")
	out := filepath.Join(t.TempDir(), "u.pkg")
	if err := buildPkg(Options{Type: "pkg", Arch: "universal", Version: "2.0.0", Agent: amd, AgentARM64: arm}, out); err != nil {
		t.Fatal(err)
	}
	// The same inputs give the same package, byte for byte.
	again := filepath.Join(t.TempDir(), "u.pkg")
	if err := buildPkg(Options{Type: "pkg", Arch: "universal", Version: "2.0.0", Agent: amd, AgentARM64: arm}, again); err != nil {
		t.Fatal(err)
	}
	if a, b := macReadFile(t, out), macReadFile(t, again); !bytes.Equal(a, b) {
		t.Error("two builds of the same package differ")
	}
	dir := macExtract(t, out)
	b, err := os.ReadFile(filepath.Join(dir, "root", "usr/local/bin/bonafide-agent"))
	if err != nil {
		t.Fatal(err)
	}
	ff, err := macho.NewFatFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("debug/macho: %v", err)
	}
	var cpus []macho.Cpu
	for _, a := range ff.Arches {
		cpus = append(cpus, a.Cpu)
	}
	if !slices.Equal(cpus, []macho.Cpu{macho.CpuAmd64, macho.CpuArm64}) {
		t.Errorf("universal binary arches %v", cpus)
	}
	if _, err := os.Stat(filepath.Join(dir, "scripts", "agent.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an unconfigured package ships agent.yaml (%v)", err)
	}
	d := macDistribution(t, filepath.Join(dir, "pkg", "Distribution"))
	if d.Options.Arch != "arm64,x86_64" || d.PkgRef.Version != "2.0.0" {
		t.Errorf("Distribution: %+v", d)
	}
}

func TestPkgRefuses(t *testing.T) {
	arm := macBuild(t, "", "arm64")
	elf := filepath.Join(t.TempDir(), "elf")
	if err := os.WriteFile(elf, append([]byte("\x7fELF"), make([]byte, 60)...), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.pkg")
	good := Config{Collector: "c.example:8443", EnrollSecret: "s", CAFingerprint: strings.Repeat("ab", 32)}
	cases := map[string]Options{
		"newline in secret":       {Arch: "arm64", Agent: arm, Config: Config{Collector: "c.example:8443", EnrollSecret: "a\nb"}},
		"newline in collector":    {Arch: "arm64", Agent: arm, Config: Config{Collector: "c.example:8443\ncollector: evil:1"}},
		"tab in fingerprint":      {Arch: "arm64", Agent: arm, Config: Config{Collector: "c:1", CAFingerprint: "ab\tcd"}},
		"collector not host:port": {Arch: "arm64", Agent: arm, Config: Config{Collector: "c.example"}},
		"short fingerprint":       {Arch: "arm64", Agent: arm, Config: Config{Collector: "c:1", CAFingerprint: "abcd"}},
		"secret, no collector":    {Arch: "arm64", Agent: arm, Config: Config{EnrollSecret: "s"}},
		"linux binary":            {Arch: "arm64", Agent: elf, Config: good},
		"wrong architecture":      {Arch: "amd64", Agent: arm, Config: good},
		"universal, one binary":   {Arch: "universal", Agent: arm, Config: good},
		"unknown architecture":    {Arch: "ppc", Agent: arm, Config: good},
		"bad version":             {Arch: "arm64", Agent: arm, Version: "1.0\"/>", Config: good},
	}
	for name, o := range cases {
		o.Type = "pkg"
		if err := buildPkg(o, out); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused build left %s behind", out)
	}
	if err := buildPkg(Options{Type: "pkg", Arch: "arm64", Agent: arm, Config: good}, out); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// TestDarwinFiles checks the embedded LaunchDaemon and sample profile with
// a plist parser, and the scripts with sh -n (and bash --posix, the
// closest thing here to macOS's /bin/sh, when bash is present).
func TestDarwinFiles(t *testing.T) {
	var daemon struct {
		Label             string
		ProgramArguments  []string
		RunAtLoad         bool
		KeepAlive         bool
		StandardOutPath   string
		StandardErrorPath string
	}
	b, err := fs.ReadFile(installers.Darwin, "darwin/com.bonafide.agent.plist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plist.Unmarshal(b, &daemon); err != nil {
		t.Fatalf("LaunchDaemon plist: %v", err)
	}
	if daemon.Label != pkgIdentifier || !daemon.RunAtLoad || !daemon.KeepAlive ||
		!slices.Equal(daemon.ProgramArguments, []string{"/usr/local/bin/bonafide-agent", "run", "--config", macConfPath}) ||
		!strings.HasPrefix(daemon.StandardOutPath, "/Library/Logs/Bonafide/") ||
		!strings.HasPrefix(daemon.StandardErrorPath, "/Library/Logs/Bonafide/") {
		t.Errorf("LaunchDaemon: %+v", daemon)
	}

	var profile struct {
		PayloadType    string
		PayloadScope   string
		PayloadContent []map[string]any
	}
	b, err = fs.ReadFile(installers.Darwin, "darwin/com.bonafide.agent.mobileconfig")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plist.Unmarshal(b, &profile); err != nil {
		t.Fatalf("mobileconfig: %v", err)
	}
	if profile.PayloadType != "Configuration" || profile.PayloadScope != "System" || len(profile.PayloadContent) != 1 ||
		profile.PayloadContent[0]["PayloadType"] != pkgIdentifier {
		t.Errorf("mobileconfig: %+v", profile)
	}
	for _, k := range []string{"Collector", "EnrollSecret", "CAFingerprint", "PayloadUUID", "PayloadIdentifier"} {
		if s, _ := profile.PayloadContent[0][k].(string); s == "" {
			t.Errorf("mobileconfig payload has no %s", k)
		}
	}

	shells := [][]string{{needTool(t, "sh", "dash"), "-n"}}
	if bash, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, []string{bash, "--posix", "-n"})
	}
	for _, name := range []string{"preinstall", "postinstall", "uninstall.sh"} {
		b, err := fs.ReadFile(installers.Darwin, "darwin/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("#!/bin/sh\n")) || !bytes.Contains(b, []byte("\nset -eu\n")) {
			t.Errorf("%s: not a #!/bin/sh script with set -eu", name)
		}
		for _, sh := range shells {
			cmd := exec.Command(sh[0], sh[1:]...)
			cmd.Stdin = bytes.NewReader(b)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", strings.Join(sh, " "), name, err, out)
			}
		}
	}
}

// macScriptBox runs a package script against a fake volume root, with fake
// defaults and launchctl first in PATH: defaults answers from files under
// prefs/, launchctl records its arguments.
type macScriptBox struct{ dir, root, scripts, bin, log string }

func newMacScriptBox(t *testing.T) macScriptBox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the package scripts chown files to root: run the test as root")
	}
	dir := t.TempDir()
	b := macScriptBox{dir: dir, root: filepath.Join(dir, "volume"), scripts: filepath.Join(dir, "scripts"),
		bin: filepath.Join(dir, "bin"), log: filepath.Join(dir, "launchctl.log")}
	for _, d := range []string{b.root, b.scripts, b.bin, filepath.Join(dir, "prefs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fakes := map[string]string{
		// defaults read DOMAIN KEY
		"defaults":  "#!/bin/sh\n[ \"$1\" = read ] || exit 1\nf=\"" + filepath.Join(dir, "prefs") + "/$3\"\n[ -f \"$f\" ] || exit 1\ncat \"$f\"\n",
		"launchctl": "#!/bin/sh\necho \"$*\" >>\"" + b.log + "\"\n",
	}
	for name, src := range fakes {
		if err := os.WriteFile(filepath.Join(b.bin, name), []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"preinstall", "postinstall"} {
		src, err := fs.ReadFile(installers.Darwin, "darwin/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.scripts, name), src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// run runs a script with shell as Installer would for the fake volume
// and returns its output and exit error.
func (b macScriptBox) run(shell []string, script string) (string, error) {
	args := append(slices.Clone(shell[1:]), filepath.Join(b.scripts, script), "/tmp/x.pkg", "/", b.root+"/")
	cmd := exec.Command(shell[0], args...)
	cmd.Env = append(os.Environ(), "PATH="+b.bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (b macScriptBox) setPref(t *testing.T, key, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, "prefs", key), []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.root, "Library/Managed Preferences/com.bonafide.agent.plist")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("<plist/>"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b macScriptBox) conf(t *testing.T) (map[string]string, os.FileMode, bool) {
	t.Helper()
	p := filepath.Join(b.root, macConfPath)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("agent.yaml: %v\n%s", err, data)
	}
	return m, st.Mode().Perm(), true
}

// TestPkgScripts runs postinstall and preinstall with dash (Debian's sh)
// and bash --posix against a fake volume: the configuration from a
// pre-configured package or from managed preferences, quoting, refusal of
// control characters, keeping an existing agent.yaml, and no launchctl
// for a volume other than "/".
func TestPkgScripts(t *testing.T) {
	shells := map[string][]string{"sh": {needTool(t, "sh", "dash")}}
	if bash, err := exec.LookPath("bash"); err == nil {
		shells["bash"] = []string{bash, "--posix"}
	}
	for name, shell := range shells {
		t.Run(name, func(t *testing.T) {
			secret := `it's a \n "secret" #1`

			// Managed preferences.
			b := newMacScriptBox(t)
			b.setPref(t, "Collector", "collector.example.com:8443")
			b.setPref(t, "EnrollSecret", secret)
			b.setPref(t, "CAFingerprint", strings.Repeat("ab", 32))
			out, err := b.run(shell, "postinstall")
			if err != nil {
				t.Fatalf("postinstall: %v\n%s", err, out)
			}
			if strings.Contains(out, "it's a") {
				t.Errorf("postinstall printed the secret:\n%s", out)
			}
			c, mode, ok := b.conf(t)
			if !ok || mode != 0o600 || c["collector"] != "collector.example.com:8443" || c["enroll_secret"] != secret ||
				c["ca_fingerprint"] != strings.Repeat("ab", 32) || len(c) != 3 {
				t.Errorf("agent.yaml from managed preferences: %v, mode %v, exists %v\n%s", c, mode, ok, out)
			}
			if _, err := os.Stat(b.log); err == nil {
				t.Error("launchctl was run for a volume that is not /")
			}
			for _, d := range []string{"Library/Application Support/Bonafide", "Library/Logs/Bonafide"} {
				if st, err := os.Stat(filepath.Join(b.root, d)); err != nil || st.Mode().Perm() != 0o755 {
					t.Errorf("%s: %v", d, err)
				}
			}
			// An existing agent.yaml is kept.
			b.setPref(t, "Collector", "other.example.com:1")
			if out, err := b.run(shell, "postinstall"); err != nil {
				t.Fatalf("postinstall again: %v\n%s", err, out)
			}
			if c, _, _ := b.conf(t); c["collector"] != "collector.example.com:8443" {
				t.Errorf("postinstall replaced an existing agent.yaml: %v", c)
			}

			// A line break in a managed preference: nothing written, no failure.
			b = newMacScriptBox(t)
			b.setPref(t, "Collector", "collector.example.com:8443")
			b.setPref(t, "EnrollSecret", "line1\nenroll_secret: evil")
			if out, err := b.run(shell, "postinstall"); err != nil {
				t.Fatalf("postinstall: %v\n%s", err, out)
			}
			if c, _, ok := b.conf(t); ok {
				t.Errorf("agent.yaml written from a value with a line break: %v", c)
			}

			// The pre-configured package's agent.yaml wins over the profile.
			b = newMacScriptBox(t)
			b.setPref(t, "Collector", "profile.example.com:1")
			conf, err := agentYAML(Config{Collector: "shipped.example.com:8443", EnrollSecret: secret}, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(b.scripts, "agent.yaml"), conf, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := b.run(shell, "postinstall"); err != nil {
				t.Fatalf("postinstall: %v\n%s", err, out)
			}
			if c, mode, _ := b.conf(t); c["collector"] != "shipped.example.com:8443" || c["enroll_secret"] != secret || mode != 0o600 {
				t.Errorf("agent.yaml from the package: %v mode %v", c, mode)
			}

			// No configuration at all: the script still succeeds.
			b = newMacScriptBox(t)
			if out, err := b.run(shell, "postinstall"); err != nil || !strings.Contains(out, "no configuration yet") {
				t.Errorf("unconfigured postinstall: %v\n%s", err, out)
			}
			if out, err := b.run(shell, "preinstall"); err != nil {
				t.Errorf("preinstall: %v\n%s", err, out)
			}
			if _, err := os.Stat(b.log); err == nil {
				t.Error("launchctl was run for a volume that is not /")
			}
		})
	}
}
