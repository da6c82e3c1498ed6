package locale

import (
	"context"
	"strings"
	"time"

	"golang.org/x/sys/windows/registry"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	winMaxValues   = 256
	winMaxSubkeys  = 256
	winProfileList = `SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\`
)

// readLive reads the registry into a winSnapshot. Only user hives that
// are loaded (users logged on, or kept loaded by a service) are under
// HKEY_USERS; other users' NTUSER.DAT files are not loaded or parsed.
func readLive(ctx context.Context, now time.Time) (*agentv1.Locale, error) {
	s := winSnapshot{
		TimeZoneKeyName: winRegString(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\TimeZoneInformation`, "TimeZoneKeyName"),
		LocaleName:      winRegString(registry.USERS, `.DEFAULT\Control Panel\International`, "LocaleName"),
		LanguageDefault: winRegString(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Nls\Language`, "Default"),
		InstallLanguage: winRegString(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Nls\Language`, "InstallLanguage"),
	}
	for _, sid := range winSubkeys(registry.USERS, "") {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(sid, "S-1-5-21-") || strings.HasSuffix(sid, "_Classes") {
			continue
		}
		u := winUser{
			SID:              sid,
			ProfileImagePath: winRegString(registry.LOCAL_MACHINE, winProfileList+sid, "ProfileImagePath"),
			Preload:          winStringValues(registry.USERS, sid+`\Keyboard Layout\Preload`),
			Substitutes:      winStringValues(registry.USERS, sid+`\Keyboard Layout\Substitutes`),
			UserProfile:      map[string][]string{},
		}
		up := sid + `\Control Panel\International\User Profile`
		for _, tag := range winSubkeys(registry.USERS, up) {
			u.UserProfile[tag] = winValueNames(registry.USERS, up+`\`+tag)
		}
		s.Users = append(s.Users, u)
	}
	out := winBuild(s, now)
	if _, ok := zoneOffset(out.Timezone, now); !ok {
		_, off := now.In(time.Local).Zone()
		out.UtcOffsetSeconds = int32(off)
	}
	return out, nil
}

// winRegString reads a REG_SZ or REG_EXPAND_SZ value (unexpanded); "" on
// any failure.
func winRegString(root registry.Key, path, name string) string {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	v, _, err := k.GetStringValue(name)
	if err != nil || len(v) > maxID {
		return ""
	}
	return v
}

func winSubkeys(root registry.Key, path string) []string {
	k, err := registry.OpenKey(root, path, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return nil
	}
	defer k.Close()
	names, _ := k.ReadSubKeyNames(winMaxSubkeys)
	return names
}

func winValueNames(root registry.Key, path string) []string {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	names, _ := k.ReadValueNames(winMaxValues)
	return names
}

// winStringValues reads the string values of a key, by value name.
func winStringValues(root registry.Key, path string) map[string]string {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	names, _ := k.ReadValueNames(winMaxValues)
	out := map[string]string{}
	for _, n := range names {
		if v, _, err := k.GetStringValue(n); err == nil && len(v) <= maxID {
			out[n] = v
		}
	}
	return out
}
