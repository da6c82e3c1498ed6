package packaging

// Windows MSI, built by Debian's wixl (apt package wixl, msitools 0.101)
// from installers/windows/bonafide-agent.wxs, then finished with msitools'
// msiinfo and msibuild where wixl falls short (see the comment at the top of
// the .wxs), and Authenticode-signed with osslsigncode when a certificate is
// given. Facts about the tables and attribute bits come from Microsoft's
// Windows Installer reference (Component, Upgrade, ServiceControl,
// MsiLockPermissionsEx tables; Template summary property); the IDT text
// format is the one `msiinfo export` writes and `msibuild -i` reads.

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/bonafide-sec/bonafide/installers"
)

const (
	// msiUpgradeCode is the UpgradeCode in bonafide-agent.wxs: every version
	// of the agent's MSI carries it, which is how MajorUpgrade finds the
	// installed one. It never changes.
	msiUpgradeCode = "{9CE6273E-E793-4B19-8313-A4BFB6D97AA0}"
	// msiServiceName is the Windows service, the same name kardianos/service
	// gives it for `bonafide-agent install`.
	msiServiceName = "bonafide-agent"
	// msiRegistrySDDL protects HKLM\SOFTWARE\Bonafide\Agent, where msiexec
	// writes the configuration properties: full control for SYSTEM (S-1-5-18)
	// and BUILTIN\Administrators, inherited by subkeys (CI), and not inherited
	// from HKLM\SOFTWARE (P), where Users may read.
	msiRegistrySDDL = "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)"
	// msiSignName is the program name in the Authenticode signatures.
	msiSignName = "Bonafide agent"
)

// msiConfigProperty ties a configuration property to the component that
// writes it into the registry (bonafide-agent.wxs) and to its registry row.
type msiConfigProperty struct {
	property, component, registry string
}

var msiConfigProperties = []msiConfigProperty{
	{"COLLECTOR", "CfgCollector", "RegCollector"},
	{"ENROLL_SECRET", "CfgEnrollSecret", "RegEnrollSecret"},
	{"CA_FINGERPRINT", "CfgCAFingerprint", "RegCAFingerprint"},
}

// msiTemplates are the summary information's Template property, by GOARCH.
// wixl builds x64 packages only; arm64 packages are x64 ones whose Template
// is rewritten (their components are 64-bit either way).
var msiTemplates = map[string]string{"amd64": "x64;1033", "arm64": "Arm64;1033"}

// msiData is what bonafide-agent.wxs is rendered with.
type msiData struct {
	Version, Description, Source           string
	Collector, EnrollSecret, CAFingerprint string
}

// buildMSI writes the agent's MSI for o.Arch (amd64 or arm64) to out.
//
// The MSI installs o.Agent as C:\Program Files\Bonafide\bonafide-agent.exe
// and the auto-start LocalSystem service bonafide-agent. o.Config, when set,
// becomes the default of the COLLECTOR, ENROLL_SECRET and CA_FINGERPRINT
// properties, so a plain `msiexec /i … /qn` configures the agent; msiexec
// writes the properties under HKLM\SOFTWARE\Bonafide\Agent, never into the
// service's arguments. With o.SignCert and o.SignKey, the executable is
// signed before it is packaged, and then the MSI.
func buildMSI(ctx context.Context, o Options, out string) error {
	tmpl := msiTemplates[o.Arch]
	if tmpl == "" {
		return fmt.Errorf("%w: MSI for architecture %q (amd64 or arm64)", ErrUnsupported, o.Arch)
	}
	version, err := msiVersion(o.Version)
	if err != nil {
		return err
	}
	cfg, err := checkMSIConfig(o.Config)
	if err != nil {
		return err
	}
	if err := checkWindowsBinary(o.Agent, o.Arch); err != nil {
		return err
	}
	sign := o.SignCert != "" || o.SignKey != ""
	if sign && (o.SignCert == "" || o.SignKey == "") {
		return errors.New("msi: signing needs both a certificate and a key")
	}
	tools := [][2]string{{"wixl", "wixl"}, {"msiinfo", "msitools"}, {"msibuild", "msitools"}}
	if sign {
		tools = append(tools, [2]string{"osslsigncode", "osslsigncode"})
	}
	path := make(map[string]string, len(tools))
	for _, tool := range tools {
		if path[tool[0]], err = lookMSITool(tool[0], tool[1]); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "bonafide-msi-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "bonafide-agent.exe")
	if sign {
		if err := signAuthenticode(ctx, path["osslsigncode"], o, o.Agent, exe); err != nil {
			return err
		}
	} else if err := copyMSIFile(o.Agent, exe); err != nil {
		return err
	}

	wxs := filepath.Join(dir, "bonafide-agent.wxs")
	if err := renderMSISource(wxs, msiData{
		Version: version, Description: o.Version, Source: filepath.Base(exe),
		Collector: cfg.Collector, EnrollSecret: cfg.EnrollSecret, CAFingerprint: cfg.CAFingerprint,
	}); err != nil {
		return err
	}
	// wixl resolves File/@Source against the .wxs's directory and refuses
	// absolute paths; -a x64 makes the Template x64 and ProgramFiles64Folder
	// real (Package/@Platform is ignored).
	msi := filepath.Join(dir, "unsigned.msi")
	if err := runMSITool(ctx, dir, path["wixl"], "-a", "x64", "-o", msi, wxs); err != nil {
		return err
	}
	if err := finishMSI(ctx, dir, path["msiinfo"], path["msibuild"], msi, tmpl); err != nil {
		return err
	}
	if sign {
		signed := filepath.Join(dir, "signed.msi")
		if err := signAuthenticode(ctx, path["osslsigncode"], o, msi, signed); err != nil {
			return err
		}
		msi = signed
	}
	return publishMSI(msi, out)
}

// lookMSITool finds a tool, or says which apt package has it.
func lookMSITool(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("msi: %s not found (install the apt package %s): %w", name, pkg, err)
	}
	return p, nil
}

// runMSITool runs a tool in dir and returns its output on failure (wixl and
// msibuild print GLib warnings on success too, so output alone means
// nothing).
func runMSITool(ctx context.Context, dir, tool string, args ...string) error {
	_, err := outputMSITool(ctx, dir, tool, args...)
	return err
}

func outputMSITool(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("msi: %s %s: %w: %s", filepath.Base(tool), strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// signAuthenticode signs in (an .exe or .msi) into out with SHA-256. The
// key must be unencrypted (PEM or DER); a production pipeline timestamps too
// (installers/windows/README.md).
func signAuthenticode(ctx context.Context, tool string, o Options, in, out string) error {
	return runMSITool(ctx, filepath.Dir(out), tool, "sign", "-certs", o.SignCert, "-key", o.SignKey,
		"-h", "sha256", "-n", msiSignName, "-in", in, "-out", out)
}

// renderMSISource writes bonafide-agent.wxs for d; every value is escaped
// for XML by the template's xml function.
func renderMSISource(file string, d msiData) error {
	src, err := fs.ReadFile(installers.Windows, "windows/bonafide-agent.wxs")
	if err != nil {
		return fmt.Errorf("embedded wxs: %w", err)
	}
	t, err := template.New("wxs").Option("missingkey=error").Funcs(template.FuncMap{"xml": xmlEscape}).Parse(string(src))
	if err != nil {
		return fmt.Errorf("wxs template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return fmt.Errorf("wxs template: %w", err)
	}
	return os.WriteFile(file, b.Bytes(), 0o600)
}

func xmlEscape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// finishMSI makes the edits wixl cannot express (see the .wxs): component
// conditions, SecureCustomProperties, same-version upgrades, the lock on the
// configuration's registry key, and the arm64 Template.
func finishMSI(ctx context.Context, dir, msiinfo, msibuild, msi, tmpl string) error {
	export := func(table string) (*msiTable, error) {
		b, err := outputMSITool(ctx, dir, msiinfo, "export", msi, table)
		if err != nil {
			return nil, err
		}
		return parseMSITable(b)
	}
	comps, err := export("Component")
	if err != nil {
		return err
	}
	for _, p := range msiConfigProperties {
		if err := comps.set("Component", p.component, "Condition", p.property); err != nil {
			return err
		}
	}

	props, err := export("Property")
	if err != nil {
		return err
	}
	secure := props.get("Property", "SecureCustomProperties", "Value")
	for _, p := range msiConfigProperties {
		if !strings.Contains(";"+secure+";", ";"+p.property+";") {
			secure = strings.TrimPrefix(secure+";"+p.property, ";")
		}
	}
	if err := props.setOrAdd("Property", "SecureCustomProperties", "Value", secure); err != nil {
		return err
	}

	upgrade, err := export("Upgrade")
	if err != nil {
		return err
	}
	// msidbUpgradeAttributesVersionMaxInclusive (0x200): the row that finds
	// older versions finds this same version too, so a rebuild (dev builds
	// are all 0.0.0) replaces the installed package.
	attrs, err := strconv.Atoi(upgrade.get("ActionProperty", "WIX_UPGRADE_DETECTED", "Attributes"))
	if err != nil {
		return fmt.Errorf("msi: Upgrade table: no WIX_UPGRADE_DETECTED row from wixl's MajorUpgrade")
	}
	if err := upgrade.set("ActionProperty", "WIX_UPGRADE_DETECTED", "Attributes", strconv.Itoa(attrs|0x200)); err != nil {
		return err
	}

	// MsiLockPermissionsEx (Windows Installer 5.0): the SDDL applies to the
	// registry key of each row, created or not by this package.
	lock := &msiTable{
		columns: []string{"MsiLockPermissionsEx", "LockObject", "Table", "SDDLText", "Condition"},
		types:   []string{"s72", "s72", "s32", "l0", "S255"},
		keys:    "MsiLockPermissionsEx\tMsiLockPermissionsEx",
	}
	for _, p := range msiConfigProperties {
		lock.rows = append(lock.rows, []string{"Lock" + p.registry, p.registry, "Registry", msiRegistrySDDL, ""})
	}

	idt := filepath.Join(dir, "idt")
	if err := os.Mkdir(idt, 0o700); err != nil {
		return err
	}
	args := []string{msi}
	for name, t := range map[string]*msiTable{"Component": comps, "Property": props, "Upgrade": upgrade, "MsiLockPermissionsEx": lock} {
		f := filepath.Join(idt, name+".idt")
		if err := os.WriteFile(f, t.bytes(), 0o600); err != nil {
			return err
		}
		args = append(args, "-i", f)
	}
	if err := runMSITool(ctx, dir, msibuild, args...); err != nil {
		return err
	}

	sum, err := outputMSITool(ctx, dir, msiinfo, "suminfo", msi)
	if err != nil {
		return err
	}
	info := parseSummary(sum)
	if info["Template"] != tmpl {
		// msibuild -s sets Subject, Author, Template and the package code
		// together; the other summary properties stay.
		if err := runMSITool(ctx, dir, msibuild, msi, "-s", info["Subject"], info["Author"], tmpl, info["Revision number (UUID)"]); err != nil {
			return err
		}
		if sum, err = outputMSITool(ctx, dir, msiinfo, "suminfo", msi); err != nil {
			return err
		}
		if got := parseSummary(sum)["Template"]; got != tmpl {
			return fmt.Errorf("msi: summary Template is %q after msibuild, want %q", got, tmpl)
		}
	}
	return nil
}

// parseSummary reads `msiinfo suminfo` ("Name: value" lines).
func parseSummary(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ": "); ok {
			m[k] = v
		}
	}
	return m
}

// msiTable is one table in IDT form: column names, column types, the line
// naming the table and its primary key, and rows of tab-separated values.
type msiTable struct {
	columns, types []string
	keys           string
	rows           [][]string
}

func parseMSITable(b []byte) (*msiTable, error) {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if len(lines) < 3 {
		return nil, errors.New("msi: short IDT table from msiinfo export")
	}
	t := &msiTable{columns: strings.Split(lines[0], "\t"), types: strings.Split(lines[1], "\t"), keys: lines[2]}
	if len(t.columns) != len(t.types) {
		return nil, fmt.Errorf("msi: IDT table %q: %d columns, %d types", t.keys, len(t.columns), len(t.types))
	}
	for _, l := range lines[3:] {
		if l == "" {
			continue
		}
		row := strings.Split(l, "\t")
		if len(row) != len(t.columns) {
			return nil, fmt.Errorf("msi: IDT table %q: row %q has %d fields, want %d", t.keys, l, len(row), len(t.columns))
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}

func (t *msiTable) column(name string) int {
	for i, c := range t.columns {
		if c == name {
			return i
		}
	}
	return -1
}

func (t *msiTable) find(keyColumn, key string) []string {
	k := t.column(keyColumn)
	if k < 0 {
		return nil
	}
	for _, r := range t.rows {
		if r[k] == key {
			return r
		}
	}
	return nil
}

func (t *msiTable) get(keyColumn, key, column string) string {
	r, c := t.find(keyColumn, key), t.column(column)
	if r == nil || c < 0 {
		return ""
	}
	return r[c]
}

func (t *msiTable) set(keyColumn, key, column, value string) error {
	r, c := t.find(keyColumn, key), t.column(column)
	if r == nil || c < 0 {
		return fmt.Errorf("msi: table %q has no row %s=%s with a column %s", t.keys, keyColumn, key, column)
	}
	r[c] = value
	return nil
}

func (t *msiTable) setOrAdd(keyColumn, key, column, value string) error {
	if t.find(keyColumn, key) == nil {
		if t.column(keyColumn) < 0 {
			return fmt.Errorf("msi: table %q has no column %s", t.keys, keyColumn)
		}
		row := make([]string, len(t.columns))
		row[t.column(keyColumn)] = key
		t.rows = append(t.rows, row)
	}
	return t.set(keyColumn, key, column, value)
}

func (t *msiTable) bytes() []byte {
	var b bytes.Buffer
	for _, l := range [][]string{t.columns, t.types, {t.keys}} {
		b.WriteString(strings.Join(l, "\t") + "\r\n")
	}
	for _, r := range t.rows {
		b.WriteString(strings.Join(r, "\t") + "\r\n")
	}
	return b.Bytes()
}

// publishMSI copies the finished package to out through a temporary file
// beside it, so that out is never half written.
func publishMSI(msi, out string) error {
	tmp := out + ".tmp"
	if err := copyMSIFile(msi, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyMSIFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return o.Close()
}

// checkWindowsBinary makes sure the file to package is a Windows executable
// for goarch, so that a Linux build or the wrong architecture is caught here
// and not on the laptop.
func checkWindowsBinary(file, goarch string) error {
	want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[goarch]
	f, err := pe.Open(file)
	if err != nil {
		return fmt.Errorf("binary %s: not a Windows executable: %w", file, err)
	}
	defer f.Close()
	if f.Machine != want || f.Characteristics&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 || f.Characteristics&pe.IMAGE_FILE_DLL != 0 {
		return fmt.Errorf("binary %s is not a Windows %s executable (machine %#x, characteristics %#x)", file, goarch, f.Machine, f.Characteristics)
	}
	return nil
}

var (
	// msiReleaseVersion is a release as tags and `git describe` write it:
	// up to four numbers and an optional suffix (1.2.3, v1.2.3-rc.1,
	// 1.2.3-4-gabc123-dirty).
	msiReleaseVersion = regexp.MustCompile(`^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:\.([0-9]+))?(?:[-+~](.*))?$`)
	// msiGitDistance is git describe's "commits since the tag" suffix.
	msiGitDistance = regexp.MustCompile(`^([0-9]+)-g[0-9a-f]+(-dirty)?$`)
)

// msiVersion turns the agent's version into an MSI ProductVersion,
// major.minor.build[.revision] with major and minor at most 255 and build
// and revision at most 65535:
//
//	1.2.3, v1.2.3, 1.2.3+meta → 1.2.3
//	1.2.3-rc.1               → 1.2.3     (MSI has no pre-releases)
//	1.2.3-4-gabc123[-dirty]  → 1.2.3.4   (commits since the tag)
//	1.2                      → 1.2.0
//	dev, "", abc1234         → 0.0.0     (a development build)
//
// Windows Installer compares only the first three fields when it looks for
// the version to upgrade, and the package allows same-version upgrades, so
// a newer build with the same major.minor.build (the release after its
// release candidates, a rebuilt dev package) replaces the installed one.
func msiVersion(v string) (string, error) {
	if len(v) > 128 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("msi: version %.20q: control characters or longer than 128 bytes", v)
	}
	m := msiReleaseVersion.FindStringSubmatch(v)
	if m == nil {
		return "0.0.0", nil
	}
	fields := []string{m[1], m[2], m[3]}
	if m[4] != "" {
		fields = append(fields, m[4])
	} else if g := msiGitDistance.FindStringSubmatch(m[5]); g != nil {
		fields = append(fields, g[1])
	}
	for i, limit := range []int{255, 255, 65535, 65535}[:len(fields)] {
		if fields[i] == "" {
			fields[i] = "0"
		}
		n, err := strconv.Atoi(fields[i])
		if err != nil || n > limit {
			return "", fmt.Errorf("msi: version %q: field %d is above %d, the MSI limit", v, i+1, limit)
		}
		fields[i] = strconv.Itoa(n)
	}
	return strings.Join(fields, "."), nil
}

// checkMSIConfig is checkConfig, stricter: values also have to be
// printable ASCII without spaces or quotes, so that none can change the
// meaning of the .wxs or of a Windows Installer formatted string. A
// partial configuration is allowed: msiexec's command line can complete
// it.
func checkMSIConfig(c Config) (Config, error) {
	for _, v := range []string{c.Collector, c.EnrollSecret, c.CAFingerprint} {
		for _, r := range v {
			if r <= ' ' || r >= 0x7f || r == '"' || r == '\'' {
				return c, fmt.Errorf("msi config: character %q not allowed (printable ASCII without spaces or quotes)", r)
			}
		}
	}
	return checkConfig(c)
}
