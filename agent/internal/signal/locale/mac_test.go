package locale

import (
	"context"
	"reflect"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestMacParseHIToolboxReal(t *testing.T) {
	got := macParseHIToolbox(readTestdata(t, "mac/com.apple.HIToolbox-plaso.plist"))
	want := []layoutEntry{{layout: "com.apple.keylayout.US"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMacReadFS(t *testing.T) {
	const src = "~/Library/Preferences/com.apple.HIToolbox.plist"
	root := buildRoot(t, map[string]string{
		"Library/Preferences/.GlobalPreferences.plist":               string(readTestdata(t, "mac/GlobalPreferences-ko-constructed.plist")),
		"Users/jdoe/Library/Preferences/com.apple.HIToolbox.plist":   string(readTestdata(t, "mac/com.apple.HIToolbox-korean-constructed.plist")),
		"Users/alice/Library/Preferences/com.apple.HIToolbox.plist":  string(readTestdata(t, "mac/com.apple.HIToolbox-plaso.plist")),
		"Users/bob/Library/Preferences/com.apple.HIToolbox.plist":    "garbage",
		"Users/Shared/Library/Preferences/com.apple.HIToolbox.plist": string(readTestdata(t, "mac/com.apple.HIToolbox-plaso.plist")),
	}, map[string]string{"etc/localtime": "/var/db/timezone/zoneinfo/Asia/Seoul"})
	got, err := macReadFS(context.Background(), osDirFS(root), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, got, &agentv1.Locale{
		Timezone:         "Asia/Seoul",
		UtcOffsetSeconds: 32400,
		SystemLocale:     "ko_KR",
		KeyboardLayouts: []*agentv1.KeyboardLayout{
			kl("alice", "com.apple.keylayout.US", false, src),
			kl("jdoe", "com.apple.keylayout.ABC", false, src),
			kl("jdoe", "com.apple.inputmethod.Korean.2SetKorean", true, src),
			kl("jdoe", "com.apple.inputmethod.SCIM", true, src),
		},
	})
}

func TestMacUserLocaleFallback(t *testing.T) {
	root := buildRoot(t, map[string]string{
		"Users/jdoe/Library/Preferences/.GlobalPreferences.plist": string(readTestdata(t, "mac/GlobalPreferences-ko-constructed.plist")),
	}, nil)
	got, err := macReadFS(context.Background(), osDirFS(root), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, got, &agentv1.Locale{SystemLocale: "ko_KR"})
}

func TestMacKeylayoutID(t *testing.T) {
	for name, want := range map[string]string{
		"U.S.":                    "com.apple.keylayout.US",
		"ABC":                     "com.apple.keylayout.ABC",
		"U.S. International - PC": "com.apple.keylayout.USInternational-PC",
		"Russian - Phonetic":      "com.apple.keylayout.Russian-Phonetic",
		" . ":                     "",
		"":                        "",
	} {
		if got := macKeylayoutID(name); got != want {
			t.Errorf("macKeylayoutID(%q) = %q, want %q", name, got, want)
		}
	}
}
