package macpkg

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func testPackage(t *testing.T) Package {
	t.Helper()
	return Package{
		Identifier:        "com.example.tool",
		Version:           "1.2.3",
		Title:             "Example <tool> & co",
		HostArchitectures: []string{"arm64"},
		MinOSVersion:      "12.0",
		Files: []File{
			{Path: "usr/local/bin/tool", Mode: 0o755, Data: buildDarwin(t, "arm64")},
			{Path: "Library/LaunchDaemons/com.example.tool.plist", Mode: 0o644, Data: []byte("<plist version=\"1.0\"/>\n")},
		},
		Scripts: []File{
			{Path: "postinstall", Mode: 0o755, Data: []byte("#!/bin/sh\nexit 0\n")},
			{Path: "preinstall", Mode: 0o755, Data: []byte("#!/bin/sh\nexit 0\n")},
			{Path: "agent.yaml", Mode: 0o600, Data: []byte("collector: \"x:1\"\n")},
		},
	}
}

// TestWriteBsdtar writes a package and checks it with libarchive's bsdtar,
// which reads xar and cpio independently of this code, and with readXar
// and readBom.
func TestWriteBsdtar(t *testing.T) {
	bsdtar := needTool(t, "bsdtar", "libarchive-tools")
	p := testPackage(t)
	var b bytes.Buffer
	if err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "x.pkg")
	if err := os.WriteFile(pkg, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	list := strings.Fields(run(t, dir, bsdtar, "-tf", pkg))
	for _, want := range []string{"Distribution", "com.example.tool.pkg", "com.example.tool.pkg/Bom",
		"com.example.tool.pkg/PackageInfo", "com.example.tool.pkg/Payload", "com.example.tool.pkg/Scripts"} {
		if !contains(list, want) {
			t.Errorf("bsdtar -tf lists %q, not %s", list, want)
		}
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, bsdtar, "-xf", pkg, "-C", out)
	files, toc := readXar(t, b.Bytes())
	for name, f := range files {
		if f.Dir {
			continue
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: bsdtar and readXar extract different data", name)
		}
	}
	for name, enc := range map[string]string{
		"Distribution": "application/x-gzip", "com.example.tool.pkg/Bom": "application/x-gzip",
		"com.example.tool.pkg/Payload": "application/octet-stream", "com.example.tool.pkg/Scripts": "application/octet-stream",
	} {
		if files[name].Encoding != enc {
			t.Errorf("%s: encoding %q, want %q", name, files[name].Encoding, enc)
		}
	}
	if !strings.Contains(toc, `<checksum style="sha1">`) {
		t.Errorf("toc has no sha1 checksum element:\n%s", toc)
	}

	// Payload: gzip'd cpio with the files, their modes and root ownership.
	comp := filepath.Join(out, "com.example.tool.pkg")
	if !isGzip(t, filepath.Join(comp, "Payload")) || !isGzip(t, filepath.Join(comp, "Scripts")) {
		t.Fatal("Payload or Scripts is not gzip")
	}
	listing := run(t, dir, bsdtar, "-tvf", filepath.Join(comp, "Payload"), "--numeric-owner")
	wantModes := map[string]string{
		".":                       "drwxr-xr-x",
		"./Library":               "drwxr-xr-x",
		"./Library/LaunchDaemons": "drwxr-xr-x",
		"./usr/local/bin":         "drwxr-xr-x",
		"./usr/local/bin/tool":    "-rwxr-xr-x",
		"./Library/LaunchDaemons/com.example.tool.plist": "-rw-r--r--",
	}
	checkListing(t, listing, wantModes, 8)
	scripts := run(t, dir, bsdtar, "-tvf", filepath.Join(comp, "Scripts"), "--numeric-owner")
	checkListing(t, scripts, map[string]string{
		"./postinstall": "-rwxr-xr-x", "./preinstall": "-rwxr-xr-x", "./agent.yaml": "-rw-------",
	}, 4)
	// Extract the payload and compare the files byte for byte.
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, bsdtar, "-xpf", filepath.Join(comp, "Payload"), "-C", root)
	for _, f := range p.Files {
		got, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: extracted payload differs (%v)", f.Path, err)
		}
		st, err := os.Stat(filepath.Join(root, f.Path))
		if err == nil && st.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: extracted with mode %v, want %v", f.Path, st.Mode().Perm(), f.Mode.Perm())
		}
	}

	// PackageInfo and Distribution.
	var info struct {
		Identifier      string `xml:"identifier,attr"`
		Version         string `xml:"version,attr"`
		InstallLocation string `xml:"install-location,attr"`
		Auth            string `xml:"auth,attr"`
		Payload         struct {
			Files  int   `xml:"numberOfFiles,attr"`
			KBytes int64 `xml:"installKBytes,attr"`
		} `xml:"payload"`
		Pre struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>preinstall"`
		Post struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>postinstall"`
	}
	mustXML(t, filepath.Join(comp, "PackageInfo"), &info)
	wantKB := (int64(len(p.Files[0].Data)+len(p.Files[1].Data)) + 1023) / 1024
	if info.Identifier != "com.example.tool" || info.Version != "1.2.3" || info.InstallLocation != "/" ||
		info.Auth != "root" || info.Payload.Files != 8 || info.Payload.KBytes != wantKB ||
		info.Pre.File != "./preinstall" || info.Post.File != "./postinstall" {
		t.Errorf("PackageInfo: %+v (want %d KB)", info, wantKB)
	}
	var d struct {
		Title   string `xml:"title"`
		Options struct {
			Arch string `xml:"hostArchitectures,attr"`
		} `xml:"options"`
		Domains struct {
			Local    string `xml:"enable_localSystem,attr"`
			Anywhere string `xml:"enable_anywhere,attr"`
		} `xml:"domains"`
		MinOS struct {
			Min string `xml:"min,attr"`
		} `xml:"volume-check>allowed-os-versions>os-version"`
		Choices []struct {
			ID     string `xml:"id,attr"`
			PkgRef []struct {
				ID string `xml:"id,attr"`
			} `xml:"pkg-ref"`
		} `xml:"choice"`
		Outline []struct {
			Choice string `xml:"choice,attr"`
		} `xml:"choices-outline>line>line"`
		PkgRef []struct {
			ID      string `xml:"id,attr"`
			Version string `xml:"version,attr"`
			KBytes  int64  `xml:"installKBytes,attr"`
			Ref     string `xml:",chardata"`
		} `xml:"pkg-ref"`
	}
	mustXML(t, filepath.Join(out, "Distribution"), &d)
	if d.Title != p.Title || d.Options.Arch != "arm64" || d.Domains.Local != "true" || d.Domains.Anywhere != "false" || d.MinOS.Min != "12.0" {
		t.Errorf("Distribution: %+v", d)
	}
	if len(d.PkgRef) != 1 || d.PkgRef[0].ID != "com.example.tool" || d.PkgRef[0].Version != "1.2.3" ||
		d.PkgRef[0].KBytes != wantKB || d.PkgRef[0].Ref != "#com.example.tool.pkg" {
		t.Errorf("Distribution pkg-ref: %+v", d.PkgRef)
	}
	if len(d.Outline) != 1 || d.Outline[0].Choice != "com.example.tool" || len(d.Choices) != 2 ||
		d.Choices[1].ID != "com.example.tool" || len(d.Choices[1].PkgRef) != 1 {
		t.Errorf("Distribution choices: %+v %+v", d.Outline, d.Choices)
	}

	// The Bom lists exactly what the Payload holds.
	bomData, err := os.ReadFile(filepath.Join(comp, "Bom"))
	if err != nil {
		t.Fatal(err)
	}
	bf, err := readBom(bomData)
	if err != nil {
		t.Fatal(err)
	}
	var bomPaths []string
	for _, r := range bf.Paths {
		bomPaths = append(bomPaths, r.Path)
	}
	var cpioPaths []string
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(l)
		cpioPaths = append(cpioPaths, f[len(f)-1])
	}
	if strings.Join(bomPaths, " ") != strings.Join(cpioPaths, " ") {
		t.Errorf("Bom paths %v, Payload paths %v", bomPaths, cpioPaths)
	}
}

// checkListing checks `bsdtar -tv --numeric-owner` output: entry count,
// modes, and root ownership (uid 0, gid 0) everywhere.
func checkListing(t *testing.T, listing string, modes map[string]string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(listing), "\n")
	if len(lines) != n {
		t.Errorf("%d entries, want %d:\n%s", len(lines), n, listing)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 9 {
			t.Fatalf("odd bsdtar line %q", l)
		}
		name := f[len(f)-1]
		if f[2] != "0" || f[3] != "0" {
			t.Errorf("%s: owner %s:%s, want 0:0", name, f[2], f[3])
		}
		if want, ok := modes[name]; ok {
			seen[name] = true
			if f[0] != want {
				t.Errorf("%s: mode %s, want %s", name, f[0], want)
			}
		}
	}
	for name := range modes {
		if !seen[name] {
			t.Errorf("%s missing from:\n%s", name, listing)
		}
	}
}

func isGzip(t *testing.T, file string) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, zr)
	return err == nil
}

func mustXML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestWriteDeterministic: the same package, with its files listed in any
// order, gives the same bytes.
func TestWriteDeterministic(t *testing.T) {
	p := testPackage(t)
	var a, b bytes.Buffer
	if err := Write(&a, p); err != nil {
		t.Fatal(err)
	}
	p.Files[0], p.Files[1] = p.Files[1], p.Files[0]
	p.Scripts[0], p.Scripts[2] = p.Scripts[2], p.Scripts[0]
	if err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same package differ")
	}
	// And the creation time is the fixed default, not the clock.
	_, toc := readXar(t, a.Bytes())
	if !regexp.MustCompile(`<creation-time>2020-01-01T00:00:00Z</creation-time>`).MatchString(toc) {
		t.Errorf("creation time is not DefaultModTime:\n%.400s", toc)
	}
}

func TestWriteRefuses(t *testing.T) {
	ok := func() Package {
		return Package{Identifier: "com.example.x", Version: "1", Files: []File{{Path: "a/b", Mode: 0o644}}}
	}
	cases := map[string]func(p *Package){
		"absolute path":         func(p *Package) { p.Files[0].Path = "/etc/passwd" },
		"dot-dot":               func(p *Package) { p.Files[0].Path = "a/../../etc" },
		"empty element":         func(p *Package) { p.Files[0].Path = "a//b" },
		"newline in path":       func(p *Package) { p.Files[0].Path = "a/b\nc" },
		"duplicate":             func(p *Package) { p.Files = append(p.Files, File{Path: "a/b", Mode: 0o644}) },
		"file used as dir":      func(p *Package) { p.Files = append(p.Files, File{Path: "a/b/c", Mode: 0o644}) },
		"symlink":               func(p *Package) { p.Files[0].Mode = fs.ModeSymlink | 0o777 },
		"directory with data":   func(p *Package) { p.Files[0] = File{Path: "d", Mode: fs.ModeDir | 0o755, Data: []byte("x")} },
		"identifier":            func(p *Package) { p.Identifier = "com.example/../x" },
		"version":               func(p *Package) { p.Version = "1\n2" },
		"no version":            func(p *Package) { p.Version = "" },
		"arch":                  func(p *Package) { p.HostArchitectures = []string{"i386"} },
		"os version":            func(p *Package) { p.MinOSVersion = "12\"/>" },
		"non-executable script": func(p *Package) { p.Scripts = []File{{Path: "postinstall", Mode: 0o644}} },
	}
	for name, mutate := range cases {
		p := ok()
		mutate(&p)
		if err := Write(io.Discard, p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := Write(io.Discard, ok()); err != nil {
		t.Errorf("valid package refused: %v", err)
	}
}
