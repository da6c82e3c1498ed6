package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/scan/*.txt")

// catalogVersion masks the catalogs' content hashes, which change with
// every catalog edit.
var catalogVersion = regexp.MustCompile(`catalog [0-9a-f]{12}`)

// TestScanGolden runs `scan --root` on every fixture root of
// internal/scan/testdata/roots and compares the table with
// testdata/scan/<root>.txt (`go test -run TestScanGolden -update` rewrites
// them). The KVM roots list their findings; the ordinary ones none.
// Windows cannot hold the roots (Linux sysfs trees whose USB interface
// directories are named PORT:CONFIG.INTERFACE, with symlinked drivers).
func TestScanGolden(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fixture roots are Linux sysfs trees: their USB interface directories (PORT:CONFIG.INTERFACE) cannot be named on Windows and their driver links are symlinks")
	}
	time.Local = time.UTC
	const roots = "internal/scan/testdata/roots"
	ents, err := os.ReadDir(roots)
	if err != nil || len(ents) == 0 {
		t.Fatalf("fixture roots: %v", err)
	}
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), []string{"scan", "--root", filepath.Join(roots, e.Name())}, &out, &errOut); err != nil {
				t.Fatalf("%v: %s", err, errOut.String())
			}
			got := catalogVersion.ReplaceAll(out.Bytes(), []byte("catalog <version>"))
			golden := filepath.Join("testdata", "scan", e.Name()+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestScanGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("scan --root %s differs from %s:\n%s", e.Name(), golden, got)
			}
		})
	}
}
