package locale

import (
	"context"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The Linux reader. All paths are relative to the root of fsys.
//
//   - Time zone: the target of the /etc/localtime symlink (…/zoneinfo/
//     Area/City), else /etc/timezone (Debian), else only the offset from
//     /etc/localtime's TZif contents.
//   - System locale: LANG in /etc/locale.conf (systemd) or
//     /etc/default/locale (Debian).
//   - System keyboard: XKBLAYOUT/XKBVARIANT in /etc/default/keyboard, and
//     Option "XkbLayout"/"XkbVariant" in /etc/X11/xorg.conf.d/*.conf
//     (systemd-localed writes 00-keyboard.conf).
//   - Per user (accounts of /etc/passwd with uid >= 1000 whose home
//     exists): fcitx5 (~/.config/fcitx5/profile), fcitx 4
//     (~/.config/fcitx/profile) and KDE (~/.config/kxkbrc).
//
// Not read: IBus and GNOME keep their input sources in dconf
// (~/.config/dconf/user, a binary GVDB database keyed
// /org/gnome/desktop/input-sources/sources and
// /desktop/ibus/general/preload-engines); ~/.config/ibus holds only bus
// addresses. The console keymap (/etc/vconsole.conf KEYMAP) uses other
// names than XKB and is left out too.

const (
	maxXorgConfs = 64
	minUserUID   = 1000
	nobodyUID    = 65534
)

// userConfigs are the per-user files read, relative to the home
// directory, with their parser.
var userConfigs = []struct {
	rel   string
	parse func([]byte) []layoutEntry
}{
	{".config/fcitx5/profile", parseFcitx5Profile},
	{".config/fcitx/profile", parseFcitx4Profile},
	{".config/kxkbrc", parseKxkbrc},
}

func readLinux(ctx context.Context, fsys fs.FS, now time.Time) (*agentv1.Locale, error) {
	out := &agentv1.Locale{}
	out.Timezone, out.UtcOffsetSeconds, _ = readLocaltime(fsys, "etc/localtime", "etc/timezone", now)
	out.SystemLocale = linuxSystemLocale(fsys)
	var ls layoutSet
	linuxSystemLayouts(fsys, &ls)
	for _, u := range linuxUsers(fsys) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, c := range userConfigs {
			b, err := readCapped(fsys, path.Join(u.home, c.rel), maxText)
			if err != nil {
				continue
			}
			ls.add(u.name, "~/"+c.rel, c.parse(b))
		}
	}
	out.KeyboardLayouts = ls.list
	return out, nil
}

func linuxSystemLocale(fsys fs.FS) string {
	for _, p := range []string{"etc/locale.conf", "etc/default/locale"} {
		if b, err := readCapped(fsys, p, maxText); err == nil {
			if l := localeFromVars(parseShellVars(b)); l != "" {
				return l
			}
		}
	}
	return ""
}

func linuxSystemLayouts(fsys fs.FS, ls *layoutSet) {
	if b, err := readCapped(fsys, "etc/default/keyboard", maxText); err == nil {
		v := parseShellVars(b)
		ls.add("", "/etc/default/keyboard", xkbLayouts(v["XKBLAYOUT"], v["XKBVARIANT"]))
	}
	const dir = "etc/X11/xorg.conf.d"
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conf") || n >= maxXorgConfs {
			continue
		}
		n++
		p := path.Join(dir, e.Name())
		if b, err := readCapped(fsys, p, maxText); err == nil {
			if l, v := parseXorgKeyboard(b); l != "" {
				ls.add("", "/"+p, xkbLayouts(l, v))
			}
		}
	}
}

// linuxUsers lists the human accounts (uid >= 1000, not nobody) whose
// home directory exists under the root, sorted by name; home is relative
// to the root.
func linuxUsers(fsys fs.FS) []passwdEntry {
	b, err := readCapped(fsys, "etc/passwd", maxPasswd)
	if err != nil {
		return nil
	}
	var out []passwdEntry
	seen := map[string]bool{}
	for _, e := range parsePasswd(b) {
		if e.uid < minUserUID || e.uid == nobodyUID || seen[e.name] || len(out) >= maxUsers {
			continue
		}
		home := strings.TrimPrefix(path.Clean("/"+e.home), "/")
		if home == "" || !fs.ValidPath(home) {
			continue
		}
		if st, err := fs.Stat(fsys, home); err != nil || !st.IsDir() {
			continue
		}
		seen[e.name] = true
		out = append(out, passwdEntry{name: e.name, uid: e.uid, home: home})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
