package locale

import (
	"context"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"howett.net/plist"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The macOS reader, over a filesystem with the macOS layout (the live one
// is os.DirFS("/")); it is pure so that tests run on any OS.
//
//   - Time zone: the target of /etc/localtime
//     (/var/db/timezone/zoneinfo/Asia/Seoul).
//   - System locale: AppleLocale ("en_US") of
//     /Library/Preferences/.GlobalPreferences.plist, else of the first
//     user's ~/Library/Preferences/.GlobalPreferences.plist.
//   - Per user (/Users/* except Shared): the input sources of
//     ~/Library/Preferences/com.apple.HIToolbox.plist.
//
// Preferences are binary or XML property lists. cfprefsd may hold
// changes made in the last moments in memory before writing them.

const (
	macHIToolbox   = "Library/Preferences/com.apple.HIToolbox.plist"
	macGlobalPrefs = "Library/Preferences/.GlobalPreferences.plist"
)

func macReadFS(ctx context.Context, fsys fs.FS, now time.Time) (*agentv1.Locale, error) {
	out := &agentv1.Locale{}
	out.Timezone, out.UtcOffsetSeconds, _ = readLocaltime(fsys, "etc/localtime", "", now)
	if b, err := readCapped(fsys, macGlobalPrefs, maxPlist); err == nil {
		out.SystemLocale = macParseGlobalPrefs(b)
	}
	var ls layoutSet
	for _, u := range macUsers(fsys) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		home := path.Join("Users", u)
		if out.SystemLocale == "" {
			if b, err := readCapped(fsys, path.Join(home, macGlobalPrefs), maxPlist); err == nil {
				out.SystemLocale = macParseGlobalPrefs(b)
			}
		}
		if b, err := readCapped(fsys, path.Join(home, macHIToolbox), maxPlist); err == nil {
			ls.add(u, "~/"+macHIToolbox, macParseHIToolbox(b))
		}
	}
	out.KeyboardLayouts = ls.list
	return out, nil
}

// macUsers lists the directories of /Users, sorted, without Shared and
// hidden ones.
func macUsers(fsys fs.FS) []string {
	ents, err := fs.ReadDir(fsys, "Users")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || n == "Shared" || strings.HasPrefix(n, ".") || len(out) >= maxUsers {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// macDecode decodes a binary or XML property list into generic values;
// nil when it is not one.
func macDecode(data []byte) (v any) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	if _, err := plist.Unmarshal(data, &v); err != nil {
		return nil
	}
	return v
}

// macParseGlobalPrefs returns AppleLocale of a .GlobalPreferences.plist.
func macParseGlobalPrefs(data []byte) string {
	m, _ := macDecode(data).(map[string]any)
	s, _ := m["AppleLocale"].(string)
	return cleanID(s)
}

// macParseHIToolbox reads the input sources of com.apple.HIToolbox.plist:
// AppleEnabledInputSources and AppleSelectedInputSources are arrays of
// dictionaries whose InputSourceKind says what they are:
//
//   - "Keyboard Layout": "KeyboardLayout Name" (e.g. "U.S."), reported
//     as the input source id com.apple.keylayout.<name> with spaces and
//     dots removed ("com.apple.keylayout.US"); the id of the current
//     layout, AppleCurrentKeyboardLayoutInputSourceID, is taken as is.
//   - "Input Mode": an input method's mode, "Input Mode" (e.g.
//     "com.apple.inputmethod.Korean.2SetKorean").
//   - "Keyboard Input Method": the input method itself, "Bundle ID"
//     (e.g. "com.apple.inputmethod.Korean"); left out when one of its
//     modes is listed.
//
// Other kinds ("Non Keyboard Input Method": the character viewer, press
// and hold) are not keyboards and are skipped.
func macParseHIToolbox(data []byte) []layoutEntry {
	m, _ := macDecode(data).(map[string]any)
	if m == nil {
		return nil
	}
	var dicts []map[string]any
	for _, key := range []string{"AppleEnabledInputSources", "AppleSelectedInputSources"} {
		arr, _ := m[key].([]any)
		for i, it := range arr {
			if i >= maxLayouts {
				break
			}
			if d, ok := it.(map[string]any); ok {
				dicts = append(dicts, d)
			}
		}
	}
	str := func(d map[string]any, k string) string { s, _ := d[k].(string); return strings.TrimSpace(s) }
	withModes := map[string]bool{}
	for _, d := range dicts {
		if str(d, "InputSourceKind") == "Input Mode" && str(d, "Input Mode") != "" {
			withModes[str(d, "Bundle ID")] = true
		}
	}
	var out []layoutEntry
	if cur := str(m, "AppleCurrentKeyboardLayoutInputSourceID"); cur != "" {
		out = append(out, layoutEntry{layout: cur})
	}
	for _, d := range dicts {
		switch str(d, "InputSourceKind") {
		case "Keyboard Layout":
			if id := macKeylayoutID(str(d, "KeyboardLayout Name")); id != "" {
				out = append(out, layoutEntry{layout: id})
			}
		case "Input Mode":
			if mode := str(d, "Input Mode"); mode != "" {
				out = append(out, layoutEntry{layout: mode, ime: true})
			}
		case "Keyboard Input Method":
			if b := str(d, "Bundle ID"); b != "" && !withModes[b] {
				out = append(out, layoutEntry{layout: b, ime: true})
			}
		}
	}
	return dedupEntries(out)
}

// macKeylayoutID derives a keyboard layout's input source id from its
// name: "U.S." → "com.apple.keylayout.US", "U.S. International - PC" →
// "com.apple.keylayout.USInternational-PC".
func macKeylayoutID(name string) string {
	if name == "" {
		return ""
	}
	name = strings.ReplaceAll(name, " - ", "-")
	name = strings.NewReplacer(" ", "", ".", "").Replace(name)
	if name == "" {
		return ""
	}
	return "com.apple.keylayout." + name
}

// dedupEntries drops repeated layouts, keeping the first.
func dedupEntries(in []layoutEntry) []layoutEntry {
	seen := map[string]bool{}
	var out []layoutEntry
	for _, e := range in {
		if seen[e.layout] {
			continue
		}
		seen[e.layout] = true
		out = append(out, e)
	}
	return out
}
