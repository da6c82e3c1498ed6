package locale

import (
	"bytes"
	"context"
	"testing"
	"time"

	"testing/fstest"
)

// The fuzz targets feed untrusted bytes to every parser: none may panic,
// and what they return must be bounded.

func FuzzParseShellVars(f *testing.F) {
	f.Add([]byte("XKBLAYOUT=\"us,kr\"\nXKBVARIANT=\",kr104\"\n"))
	f.Add([]byte("export LANG='C.UTF-8' # c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := parseShellVars(b)
		xkbLayouts(v["XKBLAYOUT"], v["XKBVARIANT"])
		localeFromVars(v)
	})
}

func FuzzParseXorgKeyboard(f *testing.F) {
	f.Add([]byte("Section \"InputClass\"\n Option \"XkbLayout\" \"us,kr\"\n Option \"XkbVariant\" \",kr104\"\nEndSection\n"))
	f.Add([]byte("Option \"XkbLayout\" \"unterminated"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, v := parseXorgKeyboard(b)
		if len(xkbLayouts(l, v)) > maxListItems {
			t.Fatal("too many layouts")
		}
	})
}

func FuzzParseLocalectl(f *testing.F) {
	f.Add([]byte("   System Locale: LANG=de_DE.utf8\n                  LANGUAGE=de_DE.utf8\n       VC Keymap: n/a\n      X11 Layout: us\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st := parseLocalectl(b)
		localeFromVars(st.vars)
		xkbLayouts(st.x11Layout, st.x11Var)
	})
}

func FuzzParseINIProfiles(f *testing.F) {
	f.Add([]byte("[Groups/0]\nName=Default\nDefault Layout=us\n[Groups/0/Items/0]\nName=keyboard-us\n[Groups/0/Items/1]\nName=hangul\n"))
	f.Add([]byte("[Profile]\nEnabledIMList=fcitx-keyboard-us:True,hangul:True,pinyin:False\n"))
	f.Add([]byte("[Layout]\nLayoutList=us,kr\nVariantList=,kr104\nUse=true\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ls layoutSet
		ls.add("u", "a", parseFcitx5Profile(b))
		ls.add("u", "b", parseFcitx4Profile(b))
		ls.add("u", "c", parseKxkbrc(b))
		if len(ls.list) > maxLayouts {
			t.Fatal("too many layouts")
		}
	})
}

func FuzzParsePasswd(f *testing.F) {
	f.Add([]byte("jdoe:x:1000:1000::/home/jdoe:/bin/bash\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePasswd(b)
		fsys := fstest.MapFS{"etc/passwd": {Data: b}, "home/jdoe": {Mode: 0o755 | 1<<31}}
		readLinux(context.Background(), fsys, time.Unix(0, 0))
	})
}

func FuzzMacPlists(f *testing.F) {
	f.Add(readTestdata(f, "mac/com.apple.HIToolbox-plaso.plist"))
	f.Add(readTestdata(f, "mac/com.apple.HIToolbox-korean-constructed.plist"))
	f.Add(readTestdata(f, "mac/GlobalPreferences-ko-constructed.plist"))
	f.Fuzz(func(t *testing.T, b []byte) {
		macParseGlobalPrefs(b)
		var ls layoutSet
		ls.add("u", "s", macParseHIToolbox(b))
	})
}

func FuzzWinParseTIP(f *testing.F) {
	f.Add("0412:{A028AE76-01B1-46C2-99C4-ACD9858AE02F}{B5FE1F02-D5F2-4445-9C03-C568F23C99A1}")
	f.Add("0409:00000409")
	f.Fuzz(func(t *testing.T, s string) {
		if e, ok := winParseTIP(s); ok && cleanID(e.layout) == "" {
			t.Fatalf("accepted an unreportable id %q", e.layout)
		}
		winLangIDLocale(s)
		winUserName(s, "S")
		winPreload(map[string]string{s: s, "1": s}, map[string]string{s: s})
	})
}

func FuzzZoneFromLink(f *testing.F) {
	f.Add("/usr/share/zoneinfo/Asia/Seoul")
	f.Fuzz(func(t *testing.T, s string) {
		if z := zoneFromLink(s); z != "" && (len(z) > maxZoneName || bytes.Contains([]byte(z), []byte(".."))) {
			t.Fatalf("bad zone %q", z)
		}
	})
}
