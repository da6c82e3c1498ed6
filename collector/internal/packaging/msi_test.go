package packaging

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needMSITools is needTool for name=apt-package pairs.
func needMSITools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tp := range tools {
		name, pkg, _ := strings.Cut(tp, "=")
		needTool(t, name, pkg)
	}
}

// needTool returns the path of name, skipping the test when it is
// missing (failing under BONAFIDE_REQUIRE_ALL=1) with the apt package that
// provides it.
func needTool(t *testing.T, name, aptPkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipMissing(t, name+" not found (apt-get install "+aptPkg+")")
	}
	return p
}

func skipMissing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
		t.Fatal(msg + " and BONAFIDE_REQUIRE_ALL=1")
	}
	t.Skip(msg)
}

// windowsAgent builds the real agent for windows/goarch.
func windowsAgent(t *testing.T, goarch string) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		t.Fatalf("go env GOMOD: %q %v", gomod, err)
	}
	exe := filepath.Join(t.TempDir(), "bonafide-agent-"+goarch+".exe")
	cmd := exec.Command("go", "build", "-buildvcs=false", "-trimpath", "-ldflags", "-s -w -X main.version=1.2.3", "-o", exe, "./agent")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build agent for windows/%s: %v\n%s", goarch, err, out)
	}
	return exe
}

// msiExport reads one table of an MSI with msiinfo.
func msiExport(t *testing.T, msi, table string) *msiTable {
	t.Helper()
	out, err := exec.Command("msiinfo", "export", msi, table).Output()
	if err != nil {
		t.Fatalf("msiinfo export %s: %v", table, err)
	}
	tab, err := parseMSITable(out)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// msiRow returns a table's row as column → value.
func msiRow(t *testing.T, tab *msiTable, keyColumn, key string) map[string]string {
	t.Helper()
	r := tab.find(keyColumn, key)
	if r == nil {
		t.Fatalf("table %q: no row %s=%s in %q", tab.keys, keyColumn, key, tab.rows)
	}
	m := map[string]string{}
	for i, c := range tab.columns {
		m[c] = r[i]
	}
	return m
}

func wantFields(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q (row %q)", what, k, got[k], v, got)
		}
	}
}

// TestMSI builds MSIs from a real Windows agent with wixl and reads them back
// with msiinfo: what the package installs, the service, the upgrade rule,
// the configuration properties and their registry lock.
func TestMSI(t *testing.T) {
	needMSITools(t, "wixl=wixl", "msiinfo=msitools", "msibuild=msitools")
	exe := windowsAgent(t, "amd64")
	ctx := context.Background()
	st, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("unconfigured", func(t *testing.T) {
		msi := filepath.Join(t.TempDir(), "a.msi")
		if err := buildMSI(ctx, Options{Type: "msi", Arch: "amd64", Version: "v1.2.3-4-gabc1234", Agent: exe}, msi); err != nil {
			t.Fatal(err)
		}
		tables, err := exec.Command("msiinfo", "tables", msi).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"File", "Component", "ServiceInstall", "ServiceControl", "Property", "Upgrade", "Registry", "MsiLockPermissionsEx"} {
			if !strings.Contains("\n"+string(tables), "\n"+name+"\n") {
				t.Errorf("no %s table in %q", name, tables)
			}
		}

		wantFields(t, "File", msiRow(t, msiExport(t, msi, "File"), "File", "AgentExe"), map[string]string{
			"Component_": "AgentExe", "FileName": "bonafide-agent.exe", "FileSize": strconv.FormatInt(st.Size(), 10),
		})
		dirs := msiExport(t, msi, "Directory")
		wantFields(t, "Directory", msiRow(t, dirs, "Directory", "INSTALLDIR"), map[string]string{
			"Directory_Parent": "ProgramFiles64Folder", "DefaultDir": "Bonafide",
		})

		comps := msiExport(t, msi, "Component")
		// 256: msidbComponentAttributes64bit; 4: key path is a registry value.
		wantFields(t, "Component", msiRow(t, comps, "Component", "AgentExe"), map[string]string{
			"ComponentId": "{75C8E8A7-8AF3-462B-81CF-64FB6A1CF0C1}", "Directory_": "INSTALLDIR", "Attributes": "256", "Condition": "", "KeyPath": "AgentExe",
		})
		for _, p := range msiConfigProperties {
			wantFields(t, "Component", msiRow(t, comps, "Component", p.component), map[string]string{
				"Attributes": "260", "Condition": p.property, "KeyPath": p.registry,
			})
		}

		svc := msiRow(t, msiExport(t, msi, "ServiceInstall"), "ServiceInstall", "AgentService")
		// 16: SERVICE_WIN32_OWN_PROCESS; 2: SERVICE_AUTO_START; 1: SERVICE_ERROR_NORMAL.
		wantFields(t, "ServiceInstall", svc, map[string]string{
			"Name": msiServiceName, "DisplayName": "bonafide agent", "ServiceType": "16", "StartType": "2",
			"ErrorControl": "1", "StartName": "LocalSystem", "Password": "", "Component_": "AgentExe",
			"Arguments": "run --service",
		})
		// 1 start on install | 2 stop on install | 32 stop on uninstall | 128 delete on uninstall.
		wantFields(t, "ServiceControl", msiRow(t, msiExport(t, msi, "ServiceControl"), "ServiceControl", "AgentService"), map[string]string{
			"Name": msiServiceName, "Event": strconv.Itoa(1 | 2 | 32 | 128), "Wait": "1", "Component_": "AgentExe",
		})

		up := msiExport(t, msi, "Upgrade")
		// 1 migrate features | 0x200 VersionMax inclusive: older and same versions are replaced.
		wantFields(t, "Upgrade", msiRow(t, up, "ActionProperty", "WIX_UPGRADE_DETECTED"), map[string]string{
			"UpgradeCode": msiUpgradeCode, "VersionMin": "", "VersionMax": "1.2.3.4", "Attributes": strconv.Itoa(1 | 0x200),
		})
		// 2: only detect newer versions, which the launch condition refuses.
		wantFields(t, "Upgrade", msiRow(t, up, "ActionProperty", "WIX_DOWNGRADE_DETECTED"), map[string]string{
			"UpgradeCode": msiUpgradeCode, "VersionMin": "1.2.3.4", "VersionMax": "", "Attributes": "2",
		})
		if c := msiExport(t, msi, "LaunchCondition"); c.find("Condition", "NOT WIX_DOWNGRADE_DETECTED") == nil {
			t.Errorf("no downgrade launch condition: %q", c.rows)
		}

		props := msiExport(t, msi, "Property")
		wantFields(t, "Property", map[string]string{
			"UpgradeCode":         props.get("Property", "UpgradeCode", "Value"),
			"ProductVersion":      props.get("Property", "ProductVersion", "Value"),
			"MsiHiddenProperties": props.get("Property", "MsiHiddenProperties", "Value"),
			"ALLUSERS":            props.get("Property", "ALLUSERS", "Value"),
		}, map[string]string{"UpgradeCode": msiUpgradeCode, "ProductVersion": "1.2.3.4", "MsiHiddenProperties": "ENROLL_SECRET", "ALLUSERS": "1"})
		secure := ";" + props.get("Property", "SecureCustomProperties", "Value") + ";"
		for _, p := range []string{"COLLECTOR", "ENROLL_SECRET", "CA_FINGERPRINT", "WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"} {
			if !strings.Contains(secure, ";"+p+";") {
				t.Errorf("SecureCustomProperties %q lacks %s", secure, p)
			}
		}
		for _, p := range msiConfigProperties {
			if props.find("Property", p.property) != nil {
				t.Errorf("unconfigured package has a default for %s", p.property)
			}
		}

		reg := msiExport(t, msi, "Registry")
		lock := msiExport(t, msi, "MsiLockPermissionsEx")
		for name, p := range map[string]msiConfigProperty{"Collector": msiConfigProperties[0], "EnrollSecret": msiConfigProperties[1], "CAFingerprint": msiConfigProperties[2]} {
			// Root 2: HKEY_LOCAL_MACHINE.
			wantFields(t, "Registry", msiRow(t, reg, "Registry", p.registry), map[string]string{
				"Root": "2", "Key": `SOFTWARE\Bonafide\Agent`, "Name": name, "Value": "[" + p.property + "]", "Component_": p.component,
			})
			wantFields(t, "MsiLockPermissionsEx", msiRow(t, lock, "LockObject", p.registry), map[string]string{
				"Table": "Registry", "SDDLText": "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)", "Condition": "",
			})
		}

		sum, err := exec.Command("msiinfo", "suminfo", msi).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := parseSummary(sum)["Template"]; got != "x64;1033" {
			t.Errorf("Template %q, want x64;1033", got)
		}
	})

	t.Run("preconfigured", func(t *testing.T) {
		const secret = "bfe_0123456789abcdef&<x>"
		fp := strings.Repeat("AB:", 31) + "AB"
		msi := filepath.Join(t.TempDir(), "a.msi")
		err := buildMSI(ctx, Options{Type: "msi", Arch: "amd64", Version: "dev", Agent: exe,
			Config: Config{Collector: "collector.example:8443", EnrollSecret: secret, CAFingerprint: fp}}, msi)
		if err != nil {
			t.Fatal(err)
		}
		props := msiExport(t, msi, "Property")
		for p, want := range map[string]string{
			"COLLECTOR": "collector.example:8443", "ENROLL_SECRET": secret,
			"CA_FINGERPRINT": strings.Repeat("ab", 32), "ProductVersion": "0.0.0",
		} {
			if got := props.get("Property", p, "Value"); got != want {
				t.Errorf("property %s = %q, want %q", p, got, want)
			}
		}
		// The secret is a property default only: not in the service's
		// command line, nor anywhere but the Property table.
		for _, table := range []string{"ServiceInstall", "ServiceControl", "Registry", "Component", "File"} {
			out, err := exec.Command("msiinfo", "export", msi, table).Output()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "bfe_") {
				t.Errorf("the secret is in the %s table:\n%s", table, out)
			}
		}
	})

	t.Run("arm64", func(t *testing.T) {
		msi := filepath.Join(t.TempDir(), "a.msi")
		// An amd64 executable in an arm64 package is refused.
		err := buildMSI(ctx, Options{Type: "msi", Arch: "arm64", Version: "1.0.0", Agent: exe}, msi)
		if err == nil || !strings.Contains(err.Error(), "not a Windows arm64 executable") {
			t.Fatalf("amd64 binary in an arm64 MSI: %v", err)
		}
		if err := buildMSI(ctx, Options{Type: "msi", Arch: "arm64", Version: "1.0.0", Agent: windowsAgent(t, "arm64")}, msi); err != nil {
			t.Fatal(err)
		}
		sum, err := exec.Command("msiinfo", "suminfo", msi).Output()
		if err != nil {
			t.Fatal(err)
		}
		info := parseSummary(sum)
		if info["Template"] != "Arm64;1033" || info["Subject"] != "bonafide agent 1.0.0" || info["Author"] != "bonafide" {
			t.Errorf("arm64 summary: %q", info)
		}
		wantFields(t, "Component", msiRow(t, msiExport(t, msi, "Component"), "Component", "AgentExe"), map[string]string{"Attributes": "256"})
		wantFields(t, "ServiceInstall", msiRow(t, msiExport(t, msi, "ServiceInstall"), "ServiceInstall", "AgentService"), map[string]string{"Name": msiServiceName, "StartType": "2"})
	})

	t.Run("signed", func(t *testing.T) {
		needMSITools(t, "osslsigncode=osslsigncode", "msiextract=msitools")
		dir := t.TempDir()
		ca, cert, key := testCodeSigningCert(t, dir)
		msi := filepath.Join(dir, "signed.msi")
		if err := buildMSI(ctx, Options{Type: "msi", Arch: "amd64", Version: "1.2.3", Agent: exe, SignCert: cert, SignKey: key}, msi); err != nil {
			t.Fatal(err)
		}
		verify := func(file string) error {
			out, err := exec.Command("osslsigncode", "verify", "-CAfile", ca, "-in", file).CombinedOutput()
			if err != nil {
				return errors.New(string(out))
			}
			if !strings.Contains(string(out), "Signature verification: ok") {
				return errors.New("no 'Signature verification: ok' in:\n" + string(out))
			}
			return nil
		}
		if err := verify(msi); err != nil {
			t.Errorf("signed MSI does not verify: %v", err)
		}
		// The executable inside was signed before it was packaged.
		x := filepath.Join(dir, "x")
		out, err := exec.Command("msiextract", "-C", x, msi).Output()
		if err != nil {
			t.Fatalf("msiextract: %v\n%s", err, out)
		}
		// msiextract prints what it wrote, relative to -C.
		if !strings.Contains(string(out), "Bonafide/bonafide-agent.exe") {
			t.Fatalf("msiextract wrote %q", out)
		}
		inner := filepath.Join(x, "Bonafide", "bonafide-agent.exe")
		if err := verify(inner); err != nil {
			t.Errorf("packaged executable does not verify: %v", err)
		}
		// The check is real: the unsigned input and an MSI checked against
		// another CA fail.
		if err := verify(exe); err == nil {
			t.Error("the unsigned agent verifies")
		}
		other, _, _ := testCodeSigningCert(t, t.TempDir())
		if out, err := exec.Command("osslsigncode", "verify", "-CAfile", other, "-in", msi).CombinedOutput(); err == nil && strings.Contains(string(out), "Signature verification: ok") {
			t.Errorf("verifies against an unrelated CA:\n%s", out)
		}
		// Half a signing configuration is an error, not an unsigned package.
		if err := buildMSI(ctx, Options{Arch: "amd64", Version: "1.2.3", Agent: exe, SignCert: cert}, filepath.Join(dir, "half.msi")); err == nil {
			t.Error("a certificate without a key was accepted")
		}
	})

	t.Run("refused", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "a.msi")
		for name, o := range map[string]Options{
			"quote in secret":   {Arch: "amd64", Agent: exe, Config: Config{Collector: "c:1", EnrollSecret: `a"b`}},
			"newline":           {Arch: "amd64", Agent: exe, Config: Config{Collector: "c:1\nx"}},
			"collector no port": {Arch: "amd64", Agent: exe, Config: Config{Collector: "collector.example"}},
			"fingerprint":       {Arch: "amd64", Agent: exe, Config: Config{CAFingerprint: "abcd"}},
			"arch":              {Arch: "386", Agent: exe},
			"not an exe":        {Arch: "amd64", Agent: "/bin/sh"},
			"version too big":   {Arch: "amd64", Agent: exe, Version: "256.0.0"},
		} {
			if err := buildMSI(ctx, o, out); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused build left %s: %v", out, err)
		}
	})
}

// TestMSIMissingTool checks that the error names the tool and its package.
func TestMSIMissingTool(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "x.exe")
	// A PE header is enough to get past the binary check: MZ stub pointing
	// at a PE signature and a COFF header for amd64, executable.
	b := make([]byte, 512)
	copy(b, "MZ")
	b[0x3c] = 0x40
	copy(b[0x40:], "PE\x00\x00")
	b[0x44], b[0x45] = 0x64, 0x86 // IMAGE_FILE_MACHINE_AMD64
	b[0x56] = 0x02                // IMAGE_FILE_EXECUTABLE_IMAGE
	if err := os.WriteFile(exe, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	err := buildMSI(context.Background(), Options{Arch: "amd64", Version: "1.0.0", Agent: exe}, filepath.Join(t.TempDir(), "a.msi"))
	if err == nil || !strings.Contains(err.Error(), "wixl not found (install the apt package wixl)") {
		t.Fatalf("err = %v", err)
	}
}

func TestMSIVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3": "1.2.3", "v1.2.3": "1.2.3", "1.2.3+meta": "1.2.3", "1.2.3-rc.1": "1.2.3",
		"v1.2.3-4-gabc1234": "1.2.3.4", "v1.2.3-4-gabc1234-dirty": "1.2.3.4", "1.2": "1.2.0", "7": "7.0.0",
		"1.2.3.9": "1.2.3.9", "01.02.03": "1.2.3", "255.255.65535": "255.255.65535",
		"dev": "0.0.0", "": "0.0.0", "abc1234": "0.0.0", "abc1234-dirty": "0.0.0",
	} {
		if got, err := msiVersion(in); err != nil || got != want {
			t.Errorf("msiVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"256.0.0", "1.256.0", "1.2.65536", "1.2.3.65536", "1.2.3\n", strings.Repeat("1", 200)} {
		if got, err := msiVersion(in); err == nil {
			t.Errorf("msiVersion(%q) = %q, want an error", in, got)
		}
	}
}

func TestCheckMSIConfig(t *testing.T) {
	c, err := checkMSIConfig(Config{Collector: "[::1]:8443", EnrollSecret: "bfe_x&<>", CAFingerprint: strings.Repeat("AB", 32)})
	if err != nil || c.CAFingerprint != strings.Repeat("ab", 32) {
		t.Errorf("valid config: %+v %v", c, err)
	}
	for _, bad := range []Config{
		{Collector: "c:0"}, {Collector: "c:x"}, {Collector: ":443"}, {Collector: "a b:1"},
		{EnrollSecret: "x'y"}, {EnrollSecret: "x\ty"}, {EnrollSecret: "sécret"}, {EnrollSecret: strings.Repeat("x", 1025)},
		{CAFingerprint: strings.Repeat("g", 64)},
	} {
		if _, err := checkMSIConfig(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// testCodeSigningCert writes a self-signed CA and a code-signing leaf it
// issued: ca.pem, cert.pem (leaf, then CA) and key.pem (the leaf's key).
func testCodeSigningCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bonafide test code-signing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bonafide test publisher"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{
		ca: pemOf("CERTIFICATE", caDER), cert: append(pemOf("CERTIFICATE", leafDER), pemOf("CERTIFICATE", caDER)...),
		key: pemOf("PRIVATE KEY", keyDER),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}
