package usb

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseHexFixture reads the testdata/hid format: hex bytes separated by
// white space, '#' starting a comment that runs to the end of the line.
func parseHexFixture(text string) ([]byte, error) {
	var out []byte
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, tok := range strings.Fields(line) {
			if len(tok) != 2 {
				return nil, fmt.Errorf("line %d: %q is not one hex byte", n+1, tok)
			}
			b, err := hex.DecodeString(tok)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

func readHexFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "hid", name))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := parseHexFixture(string(text))
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return b
}

func hexFixtureNames(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "hid", "*.hex"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func TestParseHexFixture(t *testing.T) {
	b, err := parseHexFixture("# c\n05 01 # x\n\n a1\t01\n")
	if err != nil || string(b) != "\x05\x01\xa1\x01" {
		t.Fatalf("got % x, %v", b, err)
	}
	for _, bad := range []string{"5", "0501", "zz"} {
		if _, err := parseHexFixture(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
