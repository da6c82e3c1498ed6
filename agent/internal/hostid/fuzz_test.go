package hostid

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkField fails when a reported string breaks the package's promises.
func checkField(t *testing.T, what, s string) {
	t.Helper()
	if len(s) > maxFieldLen || !utf8.ValidString(s) || s != strings.TrimFunc(s, isSpaceOrNUL) {
		t.Fatalf("%s = %q: not a clean field", what, s)
	}
}

func checkUUID(t *testing.T, what, s string) {
	t.Helper()
	checkField(t, what, s)
	if u, ok := canonicalUUID(s); ok && (u != s || isPlaceholderUUID(u)) {
		t.Fatalf("%s = %q: UUID not canonical or a placeholder", what, s)
	}
}

func FuzzParseSMBIOS(f *testing.F) {
	for _, name := range []string{"smbios-3.4-thinkpad.bin", "smbios-2.8-whitebox.bin", "smbios-2.3-latitude.bin"} {
		f.Add(readFixture(f, name))
	}
	f.Add(rawSMBIOS(2, 0, smbiosStruct(1, 1, []byte{1, 2, 3, 4}, "a", "b", "c", "d")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sys, err := parseSMBIOS(b)
		if err != nil {
			if sys != (smbiosSystem{}) {
				t.Fatalf("error %v with a result %+v", err, sys)
			}
			return
		}
		checkField(t, "Manufacturer", sys.Manufacturer)
		checkField(t, "Product", sys.Product)
		checkField(t, "Serial", sys.Serial)
		checkUUID(t, "UUID", sys.UUID)
	})
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add(readFixture(f, "root-debian/etc/os-release"))
	f.Add(readFixture(f, "root-whitebox/usr/lib/os-release"))
	f.Add([]byte(`A="x\"y" B='z' C=a\ b"c"'d' D="open`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := parseOSRelease(bytes.NewReader(b))
		if err != nil {
			return
		}
		for k, v := range vars {
			if !isShellName(k) {
				t.Fatalf("key %q is not a shell name", k)
			}
			if len(v) > len(b) {
				t.Fatalf("value %q longer than the input", v)
			}
		}
	})
}

func FuzzParseIOPlatform(f *testing.F) {
	f.Add(readFixture(f, "ioreg-IOPlatformExpertDevice-m1pro.plist"))
	f.Add(readFixture(f, "SystemVersion-15.1.plist"))
	f.Add([]byte(plistHead + `<array><dict><key>IOPlatformUUID</key><data>AAE=</data></dict></array></plist>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseIOPlatform(b)
		if err != nil {
			return
		}
		checkUUID(t, "UUID", p.UUID)
		checkField(t, "Serial", p.Serial)
		checkField(t, "Model", p.Model)
		checkField(t, "Manufacturer", p.Manufacturer)
	})
}

func FuzzParseSystemVersion(f *testing.F) {
	f.Add(readFixture(f, "SystemVersion-15.1.plist"))
	f.Add(readFixture(f, "ioreg-IOPlatformExpertDevice-m1pro.plist"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseSystemVersion(b)
		if err != nil {
			return
		}
		checkField(t, "Name", v.Name)
		checkField(t, "Version", v.Version)
		checkField(t, "Build", v.Build)
	})
}

func FuzzParseProcStatBootTime(f *testing.F) {
	f.Add(readFixture(f, "root-debian/proc/stat"))
	f.Add([]byte("btime 1700000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := parseProcStatBootTime(bytes.NewReader(b))
		if err == nil && (tm.Unix() <= 0 || tm.Unix() > maxUnixSeconds) {
			t.Fatalf("boot time %v out of range", tm)
		}
	})
}
