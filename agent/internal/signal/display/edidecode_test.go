package display

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// decoded is what the test reads back from edid-decode's text output.
type decoded struct {
	manufacturer   string
	model          int
	serial         uint32 // 0 when edid-decode prints no "Serial Number:" line
	week, year     int    // week 0xFF for a model year
	widthCM        int
	heightCM       int
	name           string // first "Display Product Name"
	serialString   string // first "Display Product Serial Number"
	extensions     int
	checksumOK     bool
	extensionBlock []string // "Block N, <kind>:" headers after block 0
	text           []string // "Alphanumeric Data String" (0xFE) values
	dtd1           string   // "WxH@kHz" of "DTD 1:", the preferred timing
	ctaRevision    []int    // "Revision: N" lines of CTA-861 blocks
	ctaDataBlocks  int      // "… Data Block…:" headers in CTA blocks
}

var (
	reMadeIn    = regexp.MustCompile(`^Made in: (?:week (\d+) of )?(\d+)$`)
	reModelYear = regexp.MustCompile(`^Model year: (\d+)$`)
	reSize      = regexp.MustCompile(`^Maximum image size: (\d+) cm x (\d+) cm$`)
	reQuoted    = regexp.MustCompile(`^'(.*)'$`)
	reBlock     = regexp.MustCompile(`^Block (\d+), (.*):$`)
	reDTD1      = regexp.MustCompile(`^DTD 1:\s+(\d+)x(\d+)\s.*\s(\d+)\.(\d{3})0* MHz`)
	reDataBlock = regexp.MustCompile(`Data Block.*:$`)
)

// parseEdidDecode reads the human-readable report of Debian's edid-decode
// (0.1~git2022…; "Block 0, Base EDID:" sections, "key: value" lines).
func parseEdidDecode(t *testing.T, out []byte) decoded {
	t.Helper()
	d := decoded{checksumOK: true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ": ")
		unq := func() string {
			if m := reQuoted.FindStringSubmatch(val); m != nil {
				return m[1]
			}
			return val
		}
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("edid-decode line %q: %v", line, err)
			}
			return n
		}
		switch {
		case key == "Manufacturer":
			d.manufacturer = val
		case key == "Model":
			d.model = atoi(val)
		case key == "Serial Number":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				t.Fatalf("edid-decode line %q: %v", line, err)
			}
			d.serial = uint32(n)
		case reMadeIn.MatchString(line):
			m := reMadeIn.FindStringSubmatch(line)
			if m[1] != "" {
				d.week = atoi(m[1])
			}
			d.year = atoi(m[2])
		case reModelYear.MatchString(line):
			d.week, d.year = 0xFF, atoi(reModelYear.FindStringSubmatch(line)[1])
		case reSize.MatchString(line):
			m := reSize.FindStringSubmatch(line)
			d.widthCM, d.heightCM = atoi(m[1]), atoi(m[2])
		case key == "Display Product Name" && d.name == "":
			d.name = unq()
		case key == "Display Product Serial Number" && d.serialString == "":
			d.serialString = unq()
		case key == "Extension blocks":
			d.extensions = atoi(val)
		case key == "Checksum" && strings.Contains(val, "should be"):
			d.checksumOK = false
		case reBlock.MatchString(line):
			m := reBlock.FindStringSubmatch(line)
			if m[1] != "0" {
				d.extensionBlock = append(d.extensionBlock, m[2])
			}
		case key == "Alphanumeric Data String":
			d.text = append(d.text, unq())
		case reDTD1.MatchString(line):
			m := reDTD1.FindStringSubmatch(line)
			d.dtd1 = m[1] + "x" + m[2] + "@" + strconv.Itoa(atoi(m[3])*1000+atoi(m[4]))
		case inCTA(d) && key == "Revision":
			d.ctaRevision = append(d.ctaRevision, atoi(val))
		case inCTA(d) && reDataBlock.MatchString(line):
			d.ctaDataBlocks++
		}
	}
	return d
}

func inCTA(d decoded) bool {
	n := len(d.extensionBlock)
	return n > 0 && strings.HasPrefix(d.extensionBlock[n-1], "CTA-861")
}

// TestAgainstEdidDecode cross-checks ParseEDID with Debian's edid-decode
// (apt package "edid-decode") on every testdata/edid/*.bin file.
func TestAgainstEdidDecode(t *testing.T) {
	bin, err := exec.LookPath("edid-decode")
	if err != nil {
		if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
			t.Fatal("edid-decode is required (apt-get install edid-decode) when BONAFIDE_REQUIRE_ALL=1")
		}
		t.Skip("edid-decode not installed (apt-get install edid-decode); skipping cross-check")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "edid", "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			e, err := ParseEDID(raw)
			if err != nil {
				t.Fatalf("ParseEDID: %v", err)
			}
			out, err := exec.Command(bin, "--skip-hex-dump", "--skip-sha", path).CombinedOutput()
			if err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("run edid-decode: %v", err)
				}
				// edid-decode refuses lengths that are not whole blocks;
				// ParseEDID must then report the EDID as truncated.
				if !strings.Contains(string(out), "not a multiple of 128") {
					t.Fatalf("edid-decode failed: %v\n%s", err, out)
				}
				if !e.Truncated {
					t.Errorf("edid-decode rejects the length, ParseEDID Truncated = false")
				}
				return
			}
			d := parseEdidDecode(t, out)
			if d.manufacturer == "" || d.year == 0 {
				t.Fatalf("could not read edid-decode's report:\n%s", out)
			}
			t.Logf("edid-decode: %+v", d)
			check := func(field string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s: ParseEDID %v, edid-decode %v", field, got, want)
				}
			}
			check("manufacturer", e.ManufacturerID, d.manufacturer)
			check("product code", int(e.ProductCode), d.model)
			check("serial number", e.SerialNumber, d.serial)
			check("monitor name", e.MonitorName, d.name)
			check("serial string", e.SerialString, d.serialString)
			check("week", int(e.ManufactureWeek), d.week)
			check("year", e.ManufactureYear, d.year)
			check("width mm", e.WidthMM, d.widthCM*10)
			check("height mm", e.HeightMM, d.heightCM*10)
			check("extension count", e.ExtensionCount, d.extensions)
			check("checksum ok", e.ChecksumOK, d.checksumOK)
			check("extension blocks", len(e.ExtensionTags), len(d.extensionBlock))
			check("0xFE text", strings.Join(e.UnspecifiedText, "|"), strings.Join(d.text, "|"))
			if e.Preferred != nil {
				p := e.Preferred
				check("preferred timing", strconv.Itoa(p.HActive)+"x"+strconv.Itoa(p.VActive)+"@"+strconv.Itoa(p.PixelClockKHz), d.dtd1)
			}
			var revs []int
			nblocks := 0
			for _, c := range e.CTA {
				revs = append(revs, int(c.Revision))
				nblocks += len(c.DataBlocks)
			}
			check("CTA revisions", fmt.Sprint(revs), fmt.Sprint(d.ctaRevision))
			check("CTA data blocks", nblocks, d.ctaDataBlocks)
			for i, tag := range e.ExtensionTags {
				if tag == ExtTagCTA && i < len(d.extensionBlock) && !strings.HasPrefix(d.extensionBlock[i], "CTA-861") {
					t.Errorf("extension %d: tag 0x02, edid-decode says %q", i+1, d.extensionBlock[i])
				}
			}
		})
	}
}
