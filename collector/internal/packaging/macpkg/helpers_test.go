package macpkg

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" // the checksums xar uses
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool returns the path of a command the test needs, or skips the test
// naming the Debian package to install; with BONAFIDE_REQUIRE_ALL=1 a
// missing tool fails the test instead.
func needTool(t *testing.T, name, aptPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found: apt-get install " + aptPackage
	if os.Getenv("BONAFIDE_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// run runs a command and returns its standard output, failing the test
// with its standard error when it fails.
func run(t *testing.T, dir, name string, args ...string) string {
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

// buildDarwin builds a tiny darwin program for goarch with the Go
// toolchain running the test (no cgo, no network: it imports nothing).
func buildDarwin(t *testing.T, goarch string) []byte {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nfunc main() { println(\"bonafide test program\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	goTool, err := exec.LookPath("go")
	if err != nil { // go test sets GOROOT for the tests it runs
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+goarch, "CGO_ENABLED=0",
		"GOFLAGS=-buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build darwin/%s: %v\n%s", goarch, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// xarFileInfo is a file read back from a xar archive by readXar.
type xarFileInfo struct {
	Mode     string
	Dir      bool
	Encoding string
	Data     []byte // extracted
}

// Test-side TOC structs, written from the xar format description rather
// than shared with the writer, so that a field name mistake shows.
type tocDoc struct {
	TOC struct {
		Checksum struct {
			Style  string `xml:"style,attr"`
			Offset int64  `xml:"offset"`
			Size   int64  `xml:"size"`
		} `xml:"checksum"`
		Files []tocFile `xml:"file"`
	} `xml:"toc"`
}

type tocFile struct {
	ID   string `xml:"id,attr"`
	Name string `xml:"name"`
	Type string `xml:"type"`
	Mode string `xml:"mode"`
	UID  string `xml:"uid"`
	GID  string `xml:"gid"`
	Data *struct {
		Length   int64 `xml:"length"`
		Offset   int64 `xml:"offset"`
		Size     int64 `xml:"size"`
		Encoding struct {
			Style string `xml:"style,attr"`
		} `xml:"encoding"`
		Archived struct {
			Style string `xml:"style,attr"`
			Sum   string `xml:",chardata"`
		} `xml:"archived-checksum"`
		Extracted struct {
			Style string `xml:"style,attr"`
			Sum   string `xml:",chardata"`
		} `xml:"extracted-checksum"`
	} `xml:"data"`
	Files []tocFile `xml:"file"`
}

// readXar checks a xar archive the way Installer does — header, TOC
// checksum in the heap, every file's archived and extracted checksum and
// size — and returns its files by path, and the TOC XML.
func readXar(t *testing.T, b []byte) (map[string]xarFileInfo, string) {
	t.Helper()
	if len(b) < 28 || string(b[:4]) != "xar!" {
		t.Fatalf("not a xar archive: %q", b[:min(len(b), 4)])
	}
	hsize := binary.BigEndian.Uint16(b[4:])
	version := binary.BigEndian.Uint16(b[6:])
	clen := binary.BigEndian.Uint64(b[8:])
	ulen := binary.BigEndian.Uint64(b[16:])
	alg := binary.BigEndian.Uint32(b[24:])
	if hsize != 28 || version != 1 || alg != 1 {
		t.Fatalf("xar header: size %d version %d checksum algorithm %d, want 28, 1, 1 (SHA-1)", hsize, version, alg)
	}
	ctoc := b[28 : 28+clen]
	zr, err := zlib.NewReader(bytes.NewReader(ctoc))
	if err != nil {
		t.Fatalf("toc: %v", err)
	}
	toc, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("toc: %v", err)
	}
	if uint64(len(toc)) != ulen {
		t.Fatalf("toc is %d bytes, header says %d", len(toc), ulen)
	}
	var doc tocDoc
	if err := xml.Unmarshal(toc, &doc); err != nil {
		t.Fatalf("toc: %v\n%s", err, toc)
	}
	heap := b[28+clen:]
	ck := doc.TOC.Checksum
	if ck.Style != "sha1" || ck.Size != 20 {
		t.Fatalf("toc checksum: style %q size %d", ck.Style, ck.Size)
	}
	sum := sha1.Sum(ctoc)
	if !bytes.Equal(heap[ck.Offset:ck.Offset+ck.Size], sum[:]) {
		t.Fatalf("toc checksum in the heap %x, SHA-1 of the compressed toc %x", heap[ck.Offset:ck.Offset+ck.Size], sum)
	}
	files := map[string]xarFileInfo{}
	var walk func(dir string, fs []tocFile)
	walk = func(dir string, fs []tocFile) {
		for _, f := range fs {
			p := f.Name
			if dir != "" {
				p = dir + "/" + f.Name
			}
			if f.UID != "0" || f.GID != "0" {
				t.Errorf("%s: uid %s gid %s, want root:wheel", p, f.UID, f.GID)
			}
			info := xarFileInfo{Mode: f.Mode, Dir: f.Type == "directory"}
			if f.Type == "directory" {
				files[p] = info
				walk(p, f.Files)
				continue
			}
			if f.Type != "file" || f.Data == nil {
				t.Fatalf("%s: type %q, data %v", p, f.Type, f.Data)
			}
			d := f.Data
			stored := heap[d.Offset : d.Offset+d.Length]
			if got := sha1Hex(stored); d.Archived.Style != "sha1" || got != d.Archived.Sum {
				t.Errorf("%s: archived checksum %s %s, SHA-1 of the stored data %s", p, d.Archived.Style, d.Archived.Sum, got)
			}
			info.Encoding = d.Encoding.Style
			switch d.Encoding.Style {
			case "application/octet-stream":
				info.Data = stored
			case "application/x-gzip": // zlib, in xar's naming
				zr, err := zlib.NewReader(bytes.NewReader(stored))
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if info.Data, err = io.ReadAll(zr); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			default:
				t.Fatalf("%s: encoding %q", p, d.Encoding.Style)
			}
			if int64(len(info.Data)) != d.Size {
				t.Errorf("%s: %d bytes extracted, toc says %d", p, len(info.Data), d.Size)
			}
			s := sha1.Sum(info.Data)
			if got := hex.EncodeToString(s[:]); d.Extracted.Style != "sha1" || got != d.Extracted.Sum {
				t.Errorf("%s: extracted checksum %s, SHA-1 of the data %s", p, d.Extracted.Sum, got)
			}
			files[p] = info
		}
	}
	walk("", doc.TOC.Files)
	return files, string(toc)
}
