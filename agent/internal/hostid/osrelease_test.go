package hostid

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	in := strings.Join([]string{
		`# comment`,
		``,
		`NAME="Fedora Linux"`,
		`VERSION_ID=41`,
		`BUILD_ID='2024-11-03 build'`,
		`PRETTY_NAME="Say \"hi\" \$HOME \\ \x"`,
		`CONCAT="a"'b'c\ d`,
		`  INDENTED=yes`,
		`UNQUOTED_SPACES=a b  `,
		`EMPTY=`,
		`EMPTY_QUOTED=""`,
		`VERSION_ID=42`,
		`BAD KEY=1`,
		`9BAD=1`,
		`=nokey`,
		`noequals`,
		`UNTERMINATED="abc`,
		`UNTERMINATED2='abc`,
		"CRLF=\"dos\"\r",
		`TRAILING_BACKSLASH=abc\`,
		`SINGLE_KEEPS='a\"b'`,
	}, "\n")
	got, err := parseOSRelease(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"NAME":               "Fedora Linux",
		"VERSION_ID":         "42",
		"BUILD_ID":           "2024-11-03 build",
		"PRETTY_NAME":        `Say "hi" $HOME \ \x`,
		"CONCAT":             "abc d",
		"INDENTED":           "yes",
		"UNQUOTED_SPACES":    "a b",
		"EMPTY":              "",
		"EMPTY_QUOTED":       "",
		"CRLF":               "dos",
		"TRAILING_BACKSLASH": "abc",
		"SINGLE_KEEPS":       `a\"b`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("parseOSRelease:\n got %q\nwant %q", got, want)
	}
}

func TestParseOSReleaseFixtures(t *testing.T) {
	for _, c := range []struct {
		path                 string
		name, version, build string
	}{
		{"root-debian/etc/os-release", "Debian GNU/Linux", "12", ""},
		{"root-whitebox/usr/lib/os-release", "Arch Linux", "", "rolling"},
	} {
		f, err := os.Open(filepath.Join("testdata", c.path))
		if err != nil {
			t.Fatal(err)
		}
		vars, err := parseOSRelease(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if vars["NAME"] != c.name || vars["VERSION_ID"] != c.version || vars["BUILD_ID"] != c.build {
			t.Errorf("%s: NAME=%q VERSION_ID=%q BUILD_ID=%q", c.path, vars["NAME"], vars["VERSION_ID"], vars["BUILD_ID"])
		}
	}
}

func TestParseOSReleaseTooLarge(t *testing.T) {
	in := "NAME=x\nLONG=" + strings.Repeat("a", maxOSReleaseSize) + "\n"
	if _, err := parseOSRelease(strings.NewReader(in)); err == nil {
		t.Error("parseOSRelease accepted a file larger than the limit")
	}
}
