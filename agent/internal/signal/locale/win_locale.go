package locale

import (
	"sort"
	"strconv"
	"strings"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The Windows mapping, kept pure: locale_windows.go reads the registry
// into a winSnapshot and winBuild turns it into the signal.
//
// Registry locations (documented in testdata/win/SOURCES.md):
//
//   - HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation
//     TimeZoneKeyName: the Windows zone ("Korea Standard Time").
//   - HKU\.DEFAULT\Control Panel\International LocaleName ("en-US"), else
//     HKLM\SYSTEM\CurrentControlSet\Control\Nls\Language Default, else
//     InstallLanguage (LANGIDs in hex, "0409").
//   - Per loaded user hive HKU\<SID>: Keyboard Layout\Preload (values
//     "1", "2", … = KLIDs such as "00000412"), Keyboard Layout\Substitutes
//     (KLID → KLID) and Control Panel\International\User Profile\<tag>
//     (value names "0409:00000409" for a layout, "0412:{CLSID}{profile
//     GUID}" for a text input processor, i.e. an IME).
//   - HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\<SID>
//     ProfileImagePath, whose last element names the user.

const (
	winSourcePreload     = `HKCU\Keyboard Layout\Preload`
	winSourceUserProfile = `HKCU\Control Panel\International\User Profile`
)

// winUser is what the registry says about one loaded user hive.
type winUser struct {
	SID              string              `json:"sid"`
	ProfileImagePath string              `json:"profileImagePath"`
	Preload          map[string]string   `json:"preload"`     // value name → KLID
	Substitutes      map[string]string   `json:"substitutes"` // KLID → KLID
	UserProfile      map[string][]string `json:"userProfile"` // language tag → value names
}

// winSnapshot is the registry data the Windows reader uses.
type winSnapshot struct {
	TimeZoneKeyName string    `json:"timeZoneKeyName"`
	LocaleName      string    `json:"localeName"`
	LanguageDefault string    `json:"languageDefault"`
	InstallLanguage string    `json:"installLanguage"`
	Users           []winUser `json:"users"`
}

// winBuild maps a snapshot to the signal. The offset is 0 when the zone
// is unknown; the live reader then falls back to the local one.
func winBuild(s winSnapshot, now time.Time) *agentv1.Locale {
	out := &agentv1.Locale{Timezone: winZones[strings.TrimSpace(s.TimeZoneKeyName)]}
	out.UtcOffsetSeconds, _ = zoneOffset(out.Timezone, now)
	out.SystemLocale = cleanID(strings.TrimSpace(s.LocaleName))
	if out.SystemLocale == "" {
		out.SystemLocale = winLangIDLocale(s.LanguageDefault)
	}
	if out.SystemLocale == "" {
		out.SystemLocale = winLangIDLocale(s.InstallLanguage)
	}
	users := append([]winUser(nil), s.Users...)
	sort.SliceStable(users, func(i, j int) bool { return users[i].SID < users[j].SID })
	var ls layoutSet
	for _, u := range users {
		name := winUserName(u.ProfileImagePath, u.SID)
		ls.add(name, winSourcePreload, winPreload(u.Preload, u.Substitutes))
		ls.add(name, winSourceUserProfile, winUserProfile(u.UserProfile))
	}
	out.KeyboardLayouts = ls.list
	return out
}

// winUserName is the last element of a profile path
// ("C:\Users\jdoe" → "jdoe"), else the SID.
func winUserName(profilePath, sid string) string {
	p := strings.TrimRight(strings.TrimSpace(profilePath), `\/`)
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		p = p[i+1:]
	}
	if n := cleanID(p); n != "" {
		return n
	}
	return sid
}

// winKLID normalises a keyboard layout id: eight hex digits, upper case.
func winKLID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 8 {
		return "", false
	}
	if _, err := strconv.ParseUint(s, 16, 32); err != nil {
		return "", false
	}
	return strings.ToUpper(s), true
}

// winKLIDIsIME reports whether a KLID is a legacy (IMM32) input method:
// their KLIDs start with E ("E0010412").
func winKLIDIsIME(klid string) bool { return klid[0] == 'E' }

// winPreload returns the layouts of Keyboard Layout\Preload in value
// order ("1", "2", …), each replaced by its Substitutes entry if any.
func winPreload(preload, subst map[string]string) []layoutEntry {
	names := make([]string, 0, len(preload))
	for n := range preload {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, ea := strconv.Atoi(names[i])
		b, eb := strconv.Atoi(names[j])
		if ea == nil && eb == nil && a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	substU := map[string]string{}
	for k, v := range subst {
		if kk, ok := winKLID(k); ok {
			substU[kk] = v
		}
	}
	var out []layoutEntry
	for _, n := range names {
		klid, ok := winKLID(preload[n])
		if !ok {
			continue
		}
		if s, ok := winKLID(substU[klid]); ok {
			klid = s
		}
		out = append(out, layoutEntry{layout: klid, ime: winKLIDIsIME(klid)})
	}
	return out
}

// winUserProfile returns the input methods listed under User Profile,
// language tags in sorted order, value names in sorted order.
func winUserProfile(profile map[string][]string) []layoutEntry {
	tags := make([]string, 0, len(profile))
	for t := range profile {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	var out []layoutEntry
	for _, t := range tags {
		vals := append([]string(nil), profile[t]...)
		sort.Strings(vals)
		for _, v := range vals {
			if e, ok := winParseTIP(v); ok {
				out = append(out, e)
			}
		}
	}
	return out
}

// winParseTIP parses an input profile as Windows writes it:
// "LLLL:KKKKKKKK" (a LANGID and a keyboard layout, reported as the KLID)
// or "LLLL:{CLSID}{profile GUID}" (a text input processor, an IME,
// reported whole in upper case). Any other value name is not a profile.
func winParseTIP(v string) (layoutEntry, bool) {
	lang, rest, ok := strings.Cut(strings.TrimSpace(v), ":")
	if !ok || len(lang) != 4 || !winIsHex(lang) {
		return layoutEntry{}, false
	}
	if klid, ok := winKLID(rest); ok {
		return layoutEntry{layout: klid, ime: winKLIDIsIME(klid)}, true
	}
	if len(rest) != 2*38 || !winIsGUID(rest[:38]) || !winIsGUID(rest[38:]) {
		return layoutEntry{}, false
	}
	return layoutEntry{layout: strings.ToUpper(lang + ":" + rest), ime: true}, true
}

func winIsHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// winIsGUID checks the registry form {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}.
func winIsGUID(s string) bool {
	if len(s) != 38 || s[0] != '{' || s[37] != '}' {
		return false
	}
	for i, c := range []byte(s[1:37]) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !winIsHex(string(c)) {
			return false
		}
	}
	return true
}

// winLangIDs maps common LANGIDs (the low word of an LCID, as the Nls
// keys store them in hex) to BCP 47 tags, after [MS-LCID].
var winLangIDs = map[uint16]string{
	0x0401: "ar-SA", 0x0402: "bg-BG", 0x0404: "zh-TW", 0x0405: "cs-CZ",
	0x0406: "da-DK", 0x0407: "de-DE", 0x0408: "el-GR", 0x0409: "en-US",
	0x040B: "fi-FI", 0x040C: "fr-FR", 0x040D: "he-IL", 0x040E: "hu-HU",
	0x0410: "it-IT", 0x0411: "ja-JP", 0x0412: "ko-KR", 0x0413: "nl-NL",
	0x0414: "nb-NO", 0x0415: "pl-PL", 0x0416: "pt-BR", 0x0418: "ro-RO",
	0x0419: "ru-RU", 0x041D: "sv-SE", 0x041E: "th-TH", 0x041F: "tr-TR",
	0x0421: "id-ID", 0x0422: "uk-UA", 0x0429: "fa-IR", 0x042A: "vi-VN",
	0x0439: "hi-IN", 0x043E: "ms-MY", 0x0450: "mn-MN", 0x0464: "fil-PH",
	0x0804: "zh-CN", 0x0809: "en-GB", 0x080A: "es-MX", 0x0816: "pt-PT",
	0x0C04: "zh-HK", 0x0C09: "en-AU", 0x0C0A: "es-ES", 0x1004: "zh-SG",
	0x1009: "en-CA", 0x4009: "en-IN",
}

// winLangIDLocale maps a hex LANGID or LCID ("0412", "00000412") to a
// BCP 47 tag, or "lcid:0412" when the table does not know it.
func winLangIDLocale(hex string) string {
	hex = strings.TrimSpace(hex)
	if hex == "" || len(hex) > 8 || !winIsHex(hex) {
		return ""
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v == 0 {
		return ""
	}
	id := uint16(v)
	if tag, ok := winLangIDs[id]; ok {
		return tag
	}
	return "lcid:" + strings.ToLower(strconv.FormatUint(uint64(id)|0x10000, 16)[1:])
}
