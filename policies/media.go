package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// MediaFile is the media catalog's path in the policies tree.
const MediaFile = "catalog/media.yaml"

// Media tool categories.
const (
	MediaCategoryVirtualCamera = "virtual_camera"
	MediaCategoryVirtualAudio  = "virtual_audio"
	MediaCategoryFaceSwap      = "face_swap"
	MediaCategoryVoiceChanger  = "voice_changer"
)

var mediaCategories = []string{MediaCategoryVirtualCamera, MediaCategoryVirtualAudio, MediaCategoryFaceSwap, MediaCategoryVoiceChanger}

// MediaCatalog lists virtual cameras and microphones and the face-swap and
// voice-changing tools that drive them, by the device, driver and plug-in
// names they register. The collector matches every snapshot's media
// devices against it (MatchMedia).
type MediaCatalog struct {
	// Version is the hex SHA-256 of the file (set by the loader).
	Version string      `yaml:"-"`
	Tools   []MediaTool `yaml:"tools"`
}

// MediaTool is one catalog entry.
type MediaTool struct {
	ID       string `yaml:"id"` // ^[a-z0-9_]+$, unique
	Name     string `yaml:"name"`
	Vendor   string `yaml:"vendor"`
	Category string `yaml:"category"` // one of the MediaCategory constants
	// Sources are the public references for the names (URLs).
	Sources []string `yaml:"sources"`
	// Names are case-insensitive globs over a whole device name; "*"
	// matches any run of characters.
	Names []string `yaml:"names"`
}

// maxMediaPattern bounds a catalog pattern's length.
const maxMediaPattern = 200

// ParseMedia decodes a media catalog strictly and checks it.
func ParseMedia(b []byte) (*MediaCatalog, error) {
	var c MediaCatalog
	if err := decodeCatalog(b, "media catalog", &c); err != nil {
		return nil, err
	}
	c.Version = catalogVersion(b)
	return &c, nil
}

// Media loads the media catalog from a policies tree.
func Media(fsys fs.FS) (*MediaCatalog, error) {
	b, err := fs.ReadFile(fsys, MediaFile)
	if err != nil {
		return nil, err
	}
	return ParseMedia(b)
}

// Validate checks ids, categories, sources and patterns; a pattern must
// say something beyond wildcards. All problems are reported together.
func (c *MediaCatalog) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("media catalog: "+format, args...)) }
	if len(c.Tools) == 0 {
		bad("no tools")
	}
	seen := map[string]bool{}
	for i, t := range c.Tools {
		where := fmt.Sprintf("tools[%d] (%s)", i, t.ID)
		if !idRE.MatchString(t.ID) {
			bad("%s: id must match %s", where, idRE)
		}
		if seen[t.ID] {
			bad("%s: duplicate id", where)
		}
		seen[t.ID] = true
		if strings.TrimSpace(t.Name) == "" {
			bad("%s: name missing", where)
		}
		if !slices.Contains(mediaCategories, t.Category) {
			bad("%s: category %q not one of %v", where, t.Category, mediaCategories)
		}
		if len(t.Sources) == 0 {
			bad("%s: no sources", where)
		}
		for _, s := range t.Sources {
			if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
				bad("%s: source %q is not a URL", where, s)
			}
		}
		if len(t.Names) == 0 {
			bad("%s: no names", where)
		}
		for _, p := range t.Names {
			if len(p) > maxMediaPattern || strings.Trim(p, "* ") == "" {
				bad("%s: pattern %q is empty, only wildcards or too long", where, p)
			}
		}
	}
	return errors.Join(errs...)
}

// MatchMedia matches the media devices against the catalog and returns the
// Media to store: the devices as reported and the findings derived here,
// in device order (one per device and tool). A nil catalog or nil media
// yields media without findings.
func MatchMedia(cat *MediaCatalog, m *agentv1.Media) *agentv1.Media {
	if m == nil {
		return nil
	}
	out := &agentv1.Media{Devices: m.GetDevices()}
	if cat == nil {
		return out
	}
	out.CatalogVersion = cat.Version
	for _, d := range m.GetDevices() {
		for i := range cat.Tools {
			t := &cat.Tools[i]
			if slices.ContainsFunc(t.Names, func(p string) bool { return GlobFold(p, d.GetName()) }) {
				out.Findings = append(out.Findings, &agentv1.MediaFinding{ToolId: t.ID, Name: t.Name,
					Category: t.Category, Device: d.GetName(), Source: d.GetSource()})
			}
		}
	}
	return out
}

// GlobFold reports whether name matches pattern as a whole, ignoring case
// (Unicode simple folding) and surrounding space; "*" in pattern matches
// any run of characters, every other character itself.
func GlobFold(pattern, name string) bool {
	p, n := []rune(strings.ToLower(strings.TrimSpace(pattern))), []rune(strings.ToLower(strings.TrimSpace(name)))
	// Iterative matching with one backtrack point: linear in practice,
	// never exponential.
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case pi < len(p) && p[pi] == n[ni]:
			pi++
			ni++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
