// Package macpkg writes macOS installer packages (.pkg) on any OS, in pure
// Go: a product archive ("distribution" package, what productbuild makes)
// holding one component package (what pkgbuild makes). Debian has neither
// xar nor mkbom, so the three formats are written here: xar (the
// container), cpio odc (the gzip-compressed Payload and Scripts) and Bom
// (the bill of materials Installer records as the receipt). It also joins
// thin Mach-O binaries into a universal one (Lipo).
//
// Output is deterministic: the same Package gives the same bytes. The
// package is not signed; see installers/darwin/README.md.
package macpkg

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// File is a file or directory of a package.
type File struct {
	// Path is slash-separated and relative: to the install location "/"
	// for a payload file ("usr/local/bin/tool"), to the scripts directory
	// for a script ("postinstall").
	Path string
	// Mode holds the permission bits; fs.ModeDir makes an (empty)
	// directory with those bits. Directories that are only implied by
	// paths get 0755. Everything is owned by root:wheel.
	Mode fs.FileMode
	Data []byte
}

// Package describes a product archive with one component package.
type Package struct {
	// Identifier is the reverse-DNS package identifier, e.g.
	// com.bonafide.agent; pkgutil knows the installed package by it.
	Identifier string
	Version    string
	// Title is the name Installer shows; the identifier when empty.
	Title string
	// Files are installed relative to "/".
	Files []File
	// Scripts go into the Scripts archive: "preinstall" and "postinstall"
	// (executable) run before and after the payload is installed, and may
	// use the other files, which sit beside them.
	Scripts []File
	// HostArchitectures lists the CPUs the package installs on: "x86_64",
	// "arm64" or both. Empty: any.
	HostArchitectures []string
	// MinOSVersion, like "12.0", refuses older macOS versions. Empty: any.
	MinOSVersion string
	// ModTime is every file's modification time; zero means
	// DefaultModTime, so that builds are reproducible.
	ModTime time.Time
}

// DefaultModTime is the modification time of packaged files when
// Package.ModTime is zero.
var DefaultModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	identifierRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	osVersionRE  = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)
)

// Write writes p as a .pkg product archive to w.
func Write(w io.Writer, p Package) error {
	if !identifierRE.MatchString(p.Identifier) {
		return fmt.Errorf("pkg: invalid identifier %q", p.Identifier)
	}
	if p.Version == "" || !printable(p.Version) {
		return fmt.Errorf("pkg: invalid version %q", p.Version)
	}
	if !printable(p.Title) {
		return fmt.Errorf("pkg: invalid title %q", p.Title)
	}
	if p.MinOSVersion != "" && !osVersionRE.MatchString(p.MinOSVersion) {
		return fmt.Errorf("pkg: invalid minimum macOS version %q", p.MinOSVersion)
	}
	for _, a := range p.HostArchitectures {
		if a != "x86_64" && a != "arm64" {
			return fmt.Errorf("pkg: unknown host architecture %q (want x86_64 or arm64)", a)
		}
	}
	mtime := p.ModTime
	if mtime.IsZero() {
		mtime = DefaultModTime
	}
	payload, err := entries(p.Files)
	if err != nil {
		return fmt.Errorf("pkg: payload: %w", err)
	}
	var scripts []entry
	if len(p.Scripts) > 0 {
		if scripts, err = entries(p.Scripts); err != nil {
			return fmt.Errorf("pkg: scripts: %w", err)
		}
	}
	var hooks []string
	for _, s := range p.Scripts {
		if s.Path != "preinstall" && s.Path != "postinstall" {
			continue
		}
		if s.Mode.IsDir() || s.Mode&0o111 == 0 {
			return fmt.Errorf("pkg: script %s must be an executable file", s.Path)
		}
		hooks = append(hooks, s.Path)
	}
	slices.Sort(hooks) // postinstall, preinstall: a fixed order

	var bom, payloadGz, scriptsGz bytes.Buffer
	if err := writeBom(&bom, payload, mtime); err != nil {
		return err
	}
	if err := gzipCpio(&payloadGz, payload, mtime); err != nil {
		return fmt.Errorf("pkg: payload: %w", err)
	}
	if scripts != nil {
		if err := gzipCpio(&scriptsGz, scripts, mtime); err != nil {
			return fmt.Errorf("pkg: scripts: %w", err)
		}
	}
	var size int64
	for _, e := range payload {
		size += int64(len(e.Data))
	}
	kbytes := (size + 1023) / 1024
	info, err := packageInfo(p, len(payload), kbytes, hooks)
	if err != nil {
		return err
	}
	dist, err := distribution(p, kbytes)
	if err != nil {
		return err
	}
	component := []xarNode{
		{Name: "Bom", Mode: 0o644, Data: bom.Bytes(), Compress: true},
		{Name: "PackageInfo", Mode: 0o644, Data: info, Compress: true},
		// Payload and Scripts are already gzip: stored as they are.
		{Name: "Payload", Mode: 0o644, Data: payloadGz.Bytes()},
	}
	if scripts != nil {
		component = append(component, xarNode{Name: "Scripts", Mode: 0o644, Data: scriptsGz.Bytes()})
	}
	return writeXar(w, []xarNode{
		{Name: "Distribution", Mode: 0o644, Data: dist, Compress: true},
		{Name: p.Identifier + ".pkg", Dir: true, Mode: 0o755, Children: component},
	}, mtime)
}

// ComponentName is the name of the component package inside the product
// archive: <identifier>.pkg.
func ComponentName(identifier string) string { return identifier + ".pkg" }

// entries validates files and turns them into cpio/Bom entries: the root
// ".", every directory a path implies, then the files, in depth-first
// order with names sorted, each path prefixed with "./" as pkgbuild does.
func entries(files []File) ([]entry, error) {
	byPath := map[string]entry{".": {Path: ".", Dir: true, Mode: 0o755}}
	explicit := map[string]bool{}
	for _, f := range files {
		if !fs.ValidPath(f.Path) || f.Path == "." || !printable(f.Path) {
			return nil, fmt.Errorf("invalid path %q", f.Path)
		}
		if explicit[f.Path] {
			return nil, fmt.Errorf("%s is listed twice", f.Path)
		}
		explicit[f.Path] = true
		e := entry{Path: f.Path, Dir: f.Mode.IsDir(), Mode: f.Mode &^ fs.ModeType, Data: f.Data}
		if f.Mode.Type()&^fs.ModeDir != 0 {
			return nil, fmt.Errorf("%s: only regular files and directories are supported", f.Path)
		}
		if e.Dir && len(e.Data) > 0 {
			return nil, fmt.Errorf("%s: a directory has no data", f.Path)
		}
		byPath[f.Path] = e
	}
	for p, e := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			d, ok := byPath[dir]
			switch {
			case !ok:
				byPath[dir] = entry{Path: dir, Dir: true, Mode: 0o755}
			case !d.Dir:
				return nil, fmt.Errorf("%s is a file but %s is inside it", dir, e.Path)
			}
		}
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int {
		if a.Path == "." || b.Path == "." {
			return boolCmp(b.Path == ".", a.Path == ".")
		}
		return slices.Compare(strings.Split(a.Path, "/"), strings.Split(b.Path, "/"))
	})
	for i := range out[1:] {
		out[i+1].Path = "./" + out[i+1].Path
	}
	return out, nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// gzipCpio writes the cpio archive of es, gzip-compressed with a fixed
// header (no name, zero time) so that the output is reproducible.
func gzipCpio(w io.Writer, es []entry, mtime time.Time) error {
	zw := gzip.NewWriter(w)
	if err := writeCpio(zw, es, mtime); err != nil {
		return err
	}
	return zw.Close()
}

// pkgInfo is a component package's PackageInfo, as pkgbuild writes it.
type pkgInfo struct {
	XMLName         xml.Name `xml:"pkg-info"`
	FormatVersion   int      `xml:"format-version,attr"`
	Identifier      string   `xml:"identifier,attr"`
	Version         string   `xml:"version,attr"`
	InstallLocation string   `xml:"install-location,attr"`
	Auth            string   `xml:"auth,attr"`
	Generator       string   `xml:"generator-version,attr"`
	Payload         struct {
		NumberOfFiles int   `xml:"numberOfFiles,attr"`
		InstallKBytes int64 `xml:"installKBytes,attr"`
	} `xml:"payload"`
	BundleVersion      struct{} `xml:"bundle-version"`
	UpgradeBundle      struct{} `xml:"upgrade-bundle"`
	UpdateBundle       struct{} `xml:"update-bundle"`
	AtomicUpdateBundle struct{} `xml:"atomic-update-bundle"`
	StrictIdentifier   struct{} `xml:"strict-identifier"`
	Relocate           struct{} `xml:"relocate"`
	Scripts            *struct {
		Preinstall  *pkgScript `xml:"preinstall,omitempty"`
		Postinstall *pkgScript `xml:"postinstall,omitempty"`
	} `xml:"scripts,omitempty"`
}

type pkgScript struct {
	File string `xml:"file,attr"`
}

func packageInfo(p Package, files int, kbytes int64, hooks []string) ([]byte, error) {
	i := pkgInfo{
		FormatVersion: 2, Identifier: p.Identifier, Version: p.Version,
		InstallLocation: "/", Auth: "root", Generator: "bonafide-macpkg",
	}
	i.Payload.NumberOfFiles, i.Payload.InstallKBytes = files, kbytes
	if len(hooks) > 0 {
		i.Scripts = &struct {
			Preinstall  *pkgScript `xml:"preinstall,omitempty"`
			Postinstall *pkgScript `xml:"postinstall,omitempty"`
		}{}
		for _, h := range hooks {
			s := &pkgScript{File: "./" + h}
			if h == "preinstall" {
				i.Scripts.Preinstall = s
			} else {
				i.Scripts.Postinstall = s
			}
		}
	}
	return marshalXML(i)
}

// dist is a product archive's Distribution file (Apple's "Distribution
// XML Reference"), the minimal form productbuild writes for one component.
type dist struct {
	XMLName        xml.Name `xml:"installer-gui-script"`
	MinSpecVersion int      `xml:"minSpecVersion,attr"`
	Title          string   `xml:"title"`
	Options        struct {
		Customize         string `xml:"customize,attr"`
		RequireScripts    bool   `xml:"require-scripts,attr"`
		RootVolumeOnly    bool   `xml:"rootVolumeOnly,attr"`
		HostArchitectures string `xml:"hostArchitectures,attr,omitempty"`
	} `xml:"options"`
	Domains struct {
		EnableAnywhere        bool `xml:"enable_anywhere,attr"`
		EnableCurrentUserHome bool `xml:"enable_currentUserHome,attr"`
		EnableLocalSystem     bool `xml:"enable_localSystem,attr"`
	} `xml:"domains"`
	VolumeCheck *struct {
		OSVersion struct {
			Min string `xml:"min,attr"`
		} `xml:"allowed-os-versions>os-version"`
	} `xml:"volume-check,omitempty"`
	Outline struct {
		Line distLine `xml:"line"`
	} `xml:"choices-outline"`
	Choices []distChoice `xml:"choice"`
	PkgRef  distPkgRef   `xml:"pkg-ref"`
	Product struct {
		ID      string `xml:"id,attr"`
		Version string `xml:"version,attr"`
	} `xml:"product"`
}

type distLine struct {
	Choice string     `xml:"choice,attr"`
	Lines  []distLine `xml:"line"`
}

type distChoice struct {
	ID      string       `xml:"id,attr"`
	Visible *bool        `xml:"visible,attr,omitempty"`
	Title   string       `xml:"title,attr,omitempty"`
	PkgRefs []distPkgRef `xml:"pkg-ref"`
}

type distPkgRef struct {
	ID            string `xml:"id,attr"`
	Version       string `xml:"version,attr,omitempty"`
	OnConclusion  string `xml:"onConclusion,attr,omitempty"`
	InstallKBytes int64  `xml:"installKBytes,attr,omitempty"`
	Location      string `xml:",chardata"`
}

func distribution(p Package, kbytes int64) ([]byte, error) {
	title := p.Title
	if title == "" {
		title = p.Identifier
	}
	d := dist{MinSpecVersion: 2, Title: title}
	d.Options.Customize = "never"
	d.Options.RootVolumeOnly = true
	d.Options.HostArchitectures = strings.Join(p.HostArchitectures, ",")
	d.Domains.EnableLocalSystem = true
	if p.MinOSVersion != "" {
		d.VolumeCheck = &struct {
			OSVersion struct {
				Min string `xml:"min,attr"`
			} `xml:"allowed-os-versions>os-version"`
		}{}
		d.VolumeCheck.OSVersion.Min = p.MinOSVersion
	}
	d.Outline.Line = distLine{Choice: "default", Lines: []distLine{{Choice: p.Identifier}}}
	hidden := false
	d.Choices = []distChoice{
		{ID: "default"},
		{ID: p.Identifier, Visible: &hidden, Title: title, PkgRefs: []distPkgRef{{ID: p.Identifier}}},
	}
	d.PkgRef = distPkgRef{
		ID: p.Identifier, Version: p.Version, OnConclusion: "none",
		InstallKBytes: kbytes, Location: "#" + ComponentName(p.Identifier),
	}
	d.Product.ID, d.Product.Version = p.Identifier, p.Version
	return marshalXML(d)
}

func marshalXML(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("pkg: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
