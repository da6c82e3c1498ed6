package remoteaccess

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bonafide-sec/bonafide/agent/internal/fsx"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"howett.net/plist"
)

// A tool's client ID is the address its UI shows (AnyDesk ID, TeamViewer
// ID, RustDesk ID). The catalog's client_id entries say where each tool
// keeps it, with the public source of each location and format; e.g.
// AnyDesk "ad.anynet.id=<digits>" in system.conf (glpi-agent
// Remote_Mgmt/AnyDesk.pm), TeamViewer ClientID in HKLM\SOFTWARE[\WOW6432Node]\TeamViewer
// and "[int32] ClientID = <n>" in /opt/teamviewer/config/global.conf
// (teamviewer/TeamViewerPS), RustDesk "id = '<id>'" in RustDesk.toml
// (glpi-agent Remote_Mgmt/RustDesk.pm, rustdesk/hbb_common config.rs).
//
// These files also hold passwords, salts and keys. The parsers below look
// only at the line (or plist key) the catalog names and return nothing but
// a value that passes validClientID; every other line is skipped without
// being kept.

const (
	// clientIDMaxFile bounds a client ID file: the files are a few KiB.
	clientIDMaxFile = 64 << 10
	// clientIDMaxLen bounds a reported ID (AnyDesk and TeamViewer IDs are
	// 9–10 digits, RustDesk's 9 digits or a custom ID).
	clientIDMaxLen = 64
	// clientIDMaxMatches bounds the files one globbed location is tried in.
	clientIDMaxMatches = 256
)

// validClientID reports whether s may be reported as a client ID: 1 to 64
// characters of [A-Za-z0-9_-].
func validClientID(s string) bool {
	if s == "" || len(s) > clientIDMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseClientID extracts the value of key from a client ID file of the
// given format (policies.ClientID*), or "" when the key is absent or its
// value is not a valid ID.
func parseClientID(b []byte, format, key string) string {
	var id string
	switch format {
	case policies.ClientIDKeyValue:
		id = parseKeyValueID(b, key)
	case policies.ClientIDTeamViewerConf:
		id = parseTeamViewerConfID(b, key)
	case policies.ClientIDTOML:
		id = parseTOMLID(b, key)
	case policies.ClientIDPlist:
		id = parsePlistID(b, key)
	}
	if !validClientID(id) {
		return ""
	}
	return id
}

// clientIDLines calls fn with each line of b (without its line ending,
// white space trimmed) until fn returns false.
func clientIDLines(b []byte, fn func(line string) bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), clientIDMaxFile+1)
	for sc.Scan() {
		if !fn(strings.TrimSpace(sc.Text())) {
			return
		}
	}
}

// parseKeyValueID reads AnyDesk's system.conf: "key=value" lines; the
// first line whose key is exactly key gives the value.
func parseKeyValueID(b []byte, key string) string {
	var id string
	clientIDLines(b, func(line string) bool {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != key {
			return true
		}
		id = strings.TrimSpace(v)
		return false
	})
	return id
}

// parseTeamViewerConfID reads TeamViewer's Linux global.conf: lines
// "[type] Name = value" (type int32, int64, strng, bin, …; a strng value is
// double-quoted). The first line named exactly key gives the value.
func parseTeamViewerConfID(b []byte, key string) string {
	var id string
	clientIDLines(b, func(line string) bool {
		rest, ok := strings.CutPrefix(line, "[")
		if !ok {
			return true
		}
		typ, rest, ok := strings.Cut(rest, "]")
		if !ok {
			return true
		}
		name, v, ok := strings.Cut(rest, "=")
		if !ok || strings.TrimSpace(name) != key {
			return true
		}
		v = strings.TrimSpace(v)
		if strings.TrimSpace(typ) == "strng" {
			v = unquote(v, '"')
		}
		id = v
		return false
	})
	return id
}

// parseTOMLID reads a top-level "key = 'value'" (or "value", or a bare
// integer) line of a TOML file, before the first [table] header: enough
// for RustDesk.toml, whose id is a top-level string. It is not a TOML
// parser: anything else, including a multi-line string, gives "".
func parseTOMLID(b []byte, key string) string {
	var id string
	clientIDLines(b, func(line string) bool {
		if line == "" || line[0] == '#' {
			return true
		}
		if line[0] == '[' {
			return false // a table: the top level is over
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || unquoteAny(strings.TrimSpace(k)) != key {
			return true
		}
		v = strings.TrimSpace(v)
		switch {
		case v == "":
		case v[0] == '\'' || v[0] == '"':
			end := strings.IndexByte(v[1:], v[0])
			if end < 0 {
				return false
			}
			tail := strings.TrimSpace(v[end+2:])
			if tail != "" && tail[0] != '#' {
				return false
			}
			id = v[1 : end+1]
		default: // a bare integer
			if i := strings.IndexAny(v, " \t#"); i >= 0 {
				v = v[:i]
			}
			if _, err := strconv.ParseUint(v, 10, 64); err == nil {
				id = v
			}
		}
		return false
	})
	return id
}

// unquote removes one pair of q quotes around s, if present.
func unquote(s string, q byte) string {
	if len(s) >= 2 && s[0] == q && s[len(s)-1] == q {
		return s[1 : len(s)-1]
	}
	return s
}

// unquoteAny removes one pair of ' or " quotes around a TOML key.
func unquoteAny(s string) string {
	return unquote(unquote(s, '"'), '\'')
}

// parsePlistID reads a top-level string or integer key of an XML or binary
// property list (TeamViewer's ClientID is an integer).
func parsePlistID(b []byte, key string) (id string) {
	defer func() {
		if recover() != nil { // a malformed plist must not stop the scan
			id = ""
		}
	}()
	var m map[string]any
	if _, err := plist.Unmarshal(b, &m); err != nil {
		return ""
	}
	switch v := m[key].(type) {
	case string:
		return v
	case uint64:
		return strconv.FormatUint(v, 10)
	case int64:
		if v >= 0 {
			return strconv.FormatInt(v, 10)
		}
	}
	return ""
}

// clientIDReader reads the locations of a catalog's client_id entries on
// one OS.
type clientIDReader struct {
	goos string // windows, darwin or linux
	root string // the scanned root ("/" for the live system)
	live bool   // root is the live system: Windows folders come from the environment
	// getenv looks up the Windows folder variables (os.Getenv).
	getenv func(string) string
	// registry reads an HKLM value as a string; nil when the registry is
	// not to be read (not Windows, or a scanned root that is not live).
	registry func(key, value string) string
}

// winClientIDDirs are the folders a windows client_id file may start with
// (policies checks the catalog for them): the environment variable on the
// live system, its default, and the path under a scanned root.
func winClientIDDirs() [3]struct{ prefix, env, def, rel string } {
	return [...]struct{ prefix, env, def, rel string }{
		{`%ProgramData%\`, "ProgramData", `C:\ProgramData`, "ProgramData"},
		{`%SystemRoot%\`, "SystemRoot", `C:\Windows`, "Windows"},
		{`%SystemDrive%\`, "SystemDrive", `C:`, ""},
	}
}

// locate returns the directory a client_id file is read under and the
// fs.Glob pattern of the file in it; ok is false for a file it cannot
// place.
func (r clientIDReader) locate(file string) (dir, pattern string, ok bool) {
	if r.goos != "windows" {
		pattern = strings.TrimPrefix(file, "/")
		if !strings.HasPrefix(file, "/") || !fs.ValidPath(pattern) || pattern == "." {
			return "", "", false
		}
		return r.root, pattern, true
	}
	for _, d := range winClientIDDirs() {
		rest, found := strings.CutPrefix(file, d.prefix)
		if !found {
			continue
		}
		pattern = strings.ReplaceAll(rest, `\`, "/")
		if !fs.ValidPath(pattern) || pattern == "." {
			return "", "", false
		}
		if !r.live {
			return filepath.Join(r.root, d.rel), pattern, true
		}
		v := ""
		if r.getenv != nil {
			v = r.getenv(d.env)
		}
		if v == "" {
			v = d.def
		}
		return strings.TrimRight(v, `\`) + `\`, pattern, true
	}
	return "", "", false
}

// read returns the client ID at one location, or "". A globbed file is
// tried in each of its (sorted) matches until one holds a valid ID.
func (r clientIDReader) read(s policies.ClientIDSpec) string {
	if s.Registry != "" {
		if r.goos != "windows" || r.registry == nil {
			return ""
		}
		if id := r.registry(s.Registry, s.Value); validClientID(id) {
			return id
		}
		return ""
	}
	dir, pattern, ok := r.locate(s.File)
	if !ok {
		return ""
	}
	return readClientIDFile(os.DirFS(dir), pattern, s.Format, s.Key)
}

// readClientIDFile tries the regular files matching pattern in fsys, in
// order, and returns the first valid ID. Only regular files are opened, at
// most clientIDMaxFile bytes each: a FIFO planted at the path must not block
// the scan, and a symbolic link (e.g. a user's RustDesk.toml pointing at a
// root-only file) is not followed.
func readClientIDFile(fsys fs.FS, pattern, format, key string) string {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return ""
	}
	slices.Sort(names)
	if len(names) > clientIDMaxMatches {
		names = names[:clientIDMaxMatches]
	}
	for _, n := range names {
		st, err := fs.Lstat(fsys, n)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := fsx.ReadCapped(fsys, n, clientIDMaxFile)
		if err != nil {
			continue
		}
		if id := parseClientID(b, format, key); id != "" {
			return id
		}
	}
	return ""
}

// setClientIDs fills ClientId of every tool in ra that the catalog gives
// client_id locations for on r.goos: the first location, in catalog order,
// that holds a valid ID. Only tools already found are looked at.
func setClientIDs(ra *agentv1.RemoteAccess, cat *policies.RemoteAccessCatalog, r clientIDReader) {
	if ra == nil || cat == nil {
		return
	}
	for _, rt := range ra.Tools {
		for i := range cat.Tools {
			t := &cat.Tools[i]
			if t.ID != rt.ToolId {
				continue
			}
			m, _ := osMatchFor(t, r.goos)
			for _, s := range m.ClientID {
				if id := r.read(s); id != "" {
					rt.ClientId = id
					break
				}
			}
			break
		}
	}
}

// liveRoot reports whether root is the live system's root.
func liveRoot(root string) bool {
	c := filepath.Clean(root)
	return c == "/" || c == `\`
}
