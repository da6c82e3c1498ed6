package locale

import (
	"encoding/json"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func loadWinSnapshot(t *testing.T, name string) winSnapshot {
	t.Helper()
	var s winSnapshot
	if err := json.Unmarshal(readTestdata(t, "win/"+name), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWinBuild(t *testing.T) {
	const koTIP = "0412:{A028AE76-01B1-46C2-99C4-ACD9858AE02F}{B5FE1F02-D5F2-4445-9C03-C568F23C99A1}"
	const zhTIP = "0804:{81D4E9C9-1D3B-41BC-9E6C-4B40BF79E35E}{FA550B04-5AD7-411F-A5AC-CA038EC515D7}"
	const sid2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
	tests := []struct {
		file string
		want *agentv1.Locale
	}{
		{"korean_farm.json", &agentv1.Locale{
			Timezone:         "Asia/Seoul",
			UtcOffsetSeconds: 32400,
			SystemLocale:     "ko-KR",
			KeyboardLayouts: []*agentv1.KeyboardLayout{
				kl("jdoe", "00000409", false, winSourcePreload),
				kl("jdoe", "00000412", false, winSourcePreload),
				kl("jdoe", "E0010412", true, winSourcePreload),
				kl("jdoe", "00000409", false, winSourceUserProfile),
				kl("jdoe", koTIP, true, winSourceUserProfile),
				kl(sid2, "00000804", false, winSourcePreload),
				kl(sid2, zhTIP, true, winSourceUserProfile),
			},
		}},
		{"us_laptop.json", &agentv1.Locale{
			Timezone:         "America/New_York",
			UtcOffsetSeconds: -18000,
			SystemLocale:     "en-US",
			KeyboardLayouts: []*agentv1.KeyboardLayout{
				kl("alice", "00000409", false, winSourcePreload),
				kl("alice", "00000409", false, winSourceUserProfile),
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			checkProto(t, winBuild(loadWinSnapshot(t, tc.file), testNow), tc.want)
		})
	}
}

func TestWinLangIDLocale(t *testing.T) {
	for in, want := range map[string]string{
		"0412":     "ko-KR",
		"00000804": "zh-CN",
		"0409":     "en-US",
		"0c0a":     "es-ES",
		"0457":     "lcid:0457",
		"":         "",
		"zz":       "",
		"0":        "",
	} {
		if got := winLangIDLocale(in); got != want {
			t.Errorf("winLangIDLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWinUserName(t *testing.T) {
	for _, c := range [][3]string{
		{`C:\Users\jdoe`, "S-1", "jdoe"},
		{`%SystemDrive%\Users\alice\`, "S-1", "alice"},
		{"", "S-1-5-21-9", "S-1-5-21-9"},
	} {
		if got := winUserName(c[0], c[1]); got != c[2] {
			t.Errorf("winUserName(%q) = %q, want %q", c[0], got, c[2])
		}
	}
}

func TestWinZoneUnknown(t *testing.T) {
	got := winBuild(winSnapshot{TimeZoneKeyName: "Mars Standard Time", InstallLanguage: "0457"}, testNow)
	checkProto(t, got, &agentv1.Locale{SystemLocale: "lcid:0457"})
}
