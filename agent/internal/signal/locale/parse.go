package locale

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// The text parsers below read untrusted configuration files. They never
// fail: a malformed line is skipped.

const (
	maxLines     = 8192
	maxListItems = 32 // layouts in one comma-separated list
)

// lines splits data into at most maxLines lines without line terminators.
func lines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxText)
	for sc.Scan() && len(out) < maxLines {
		out = append(out, strings.TrimRight(sc.Text(), "\r"))
	}
	return out
}

// parseShellVars reads KEY=value assignments as in /etc/default/locale,
// /etc/locale.conf and /etc/default/keyboard (shell syntax without
// expansion: "export " prefixes, "#" comments and quotes are handled).
func parseShellVars(data []byte) map[string]string {
	out := map[string]string{}
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		l = strings.TrimPrefix(l, "export ")
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case v != "" && (v[0] == '"' || v[0] == '\''):
			// A quoted value ends at its closing quote.
			if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
				v = v[1 : 1+end]
			} else {
				v = v[1:]
			}
		default:
			// An unquoted value ends at a comment.
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		out[k] = v
	}
	return out
}

// localeFromVars picks the system locale from locale variables: LANG,
// else LC_ALL, else LC_CTYPE.
func localeFromVars(vars map[string]string) string {
	for _, k := range []string{"LANG", "LC_ALL", "LC_CTYPE"} {
		if v := cleanID(vars[k]); v != "" {
			return v
		}
	}
	return ""
}

// xkbLayouts pairs a comma-separated XKB layout list with its variant
// list: "us,kr" and ",kr104" give "us" and "kr(kr104)", XKB's own
// layout(variant) notation.
func xkbLayouts(layouts, variants string) []layoutEntry {
	ls := strings.Split(layouts, ",")
	vs := strings.Split(variants, ",")
	var out []layoutEntry
	for i, l := range ls {
		if i >= maxListItems {
			break
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if i < len(vs) {
			if v := strings.TrimSpace(vs[i]); v != "" {
				l += "(" + v + ")"
			}
		}
		out = append(out, layoutEntry{layout: l})
	}
	return out
}

// parseXorgKeyboard reads the XkbLayout and XkbVariant options of an
// xorg.conf(.d) file, e.g. `Option "XkbLayout" "us,kr"` in an InputClass
// section (as systemd-localed writes 00-keyboard.conf). Option names are
// case-insensitive and ignore "_" and spaces, as in xorg.conf(5). The
// last value of each option wins.
func parseXorgKeyboard(data []byte) (layouts, variants string) {
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		f := quotedFields(l)
		if len(f) < 3 || !strings.EqualFold(f[0], "Option") {
			continue
		}
		switch xorgName(f[1]) {
		case "xkblayout":
			layouts = f[2]
		case "xkbvariant":
			variants = f[2]
		}
	}
	return layouts, variants
}

func xorgName(s string) string {
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "_", "")
	return strings.ReplaceAll(s, " ", "")
}

// quotedFields splits a line into whitespace-separated words and
// double-quoted strings (quotes removed).
func quotedFields(l string) []string {
	var out []string
	for len(out) < 8 {
		l = strings.TrimLeft(l, " \t")
		if l == "" {
			break
		}
		if l[0] == '"' {
			end := strings.IndexByte(l[1:], '"')
			if end < 0 {
				out = append(out, l[1:])
				break
			}
			out = append(out, l[1:1+end])
			l = l[2+end:]
			continue
		}
		end := strings.IndexAny(l, " \t\"")
		if end < 0 {
			end = len(l)
		}
		out = append(out, l[:end])
		l = l[end:]
	}
	return out
}

// localectlStatus is what `localectl status` prints about the locale and
// the X11 keyboard.
type localectlStatus struct {
	vars              map[string]string // System Locale assignments
	x11Layout, x11Var string
}

// parseLocalectl reads `localectl status` output:
//
//	System Locale: LANG=de_DE.utf8
//	               LANGUAGE=de_DE.utf8
//	    VC Keymap: n/a
//	   X11 Layout: us
//
// Continuation lines without a "Label:" belong to the previous label.
// "n/a" means unset.
func parseLocalectl(data []byte) localectlStatus {
	st := localectlStatus{vars: map[string]string{}}
	label := ""
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		val := l
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.Contains(k, "=") {
			label, val = k, strings.TrimSpace(v)
		}
		if val == "n/a" {
			continue
		}
		switch label {
		case "System Locale":
			if k, v, ok := strings.Cut(val, "="); ok {
				st.vars[k] = v
			}
		case "X11 Layout":
			st.x11Layout = val
		case "X11 Variant":
			st.x11Var = val
		}
	}
	return st
}

// iniSection is one [section] of an INI file with its keys; a key given
// twice keeps its last value.
type iniSection struct {
	name string
	keys map[string]string
}

const maxSections = 1024

// parseINI reads the INI dialect of fcitx and KDE configuration files:
// "[Section]" headers, "Key=Value" lines, "#" and ";" comments. Keys
// before the first header are in a section named "".
func parseINI(data []byte) []iniSection {
	out := []iniSection{{keys: map[string]string{}}}
	for _, l := range lines(data) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			if end := strings.IndexByte(l, ']'); end > 0 && len(out) < maxSections {
				out = append(out, iniSection{name: l[1:end], keys: map[string]string{}})
			}
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			out[len(out)-1].keys[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// fcitxName classifies an fcitx input method name: "keyboard-<layout>"
// and "keyboard-<layout>-<variant>" are plain XKB layouts (reported in
// XKB notation, "us", "us(dvp)"); any other name ("hangul", "pinyin",
// "mozc", "rime", …) is an input method engine.
func fcitxName(name string) layoutEntry {
	name = strings.TrimSpace(name)
	if rest, ok := strings.CutPrefix(name, "keyboard-"); ok && rest != "" {
		l, v, _ := strings.Cut(rest, "-")
		if v != "" {
			l += "(" + v + ")"
		}
		return layoutEntry{layout: l}
	}
	return layoutEntry{layout: name, ime: true}
}

// parseFcitx5Profile reads ~/.config/fcitx5/profile: every group's items
// ("[Groups/0/Items/1]" with "Name=hangul") and its "Default Layout".
func parseFcitx5Profile(data []byte) []layoutEntry {
	var out []layoutEntry
	for _, s := range parseINI(data) {
		if !strings.HasPrefix(s.name, "Groups/") {
			continue
		}
		if strings.Contains(s.name, "/Items/") {
			if n := s.keys["Name"]; n != "" {
				out = append(out, fcitxName(n))
			}
			continue
		}
		if l := s.keys["Default Layout"]; l != "" {
			out = append(out, fcitxName("keyboard-"+l))
		}
	}
	return out
}

// parseFcitx4Profile reads ~/.config/fcitx/profile: EnabledIMList is a
// comma-separated list of name:True|False, e.g.
// "fcitx-keyboard-us:True,hangul:True,pinyin:False". Only enabled ones
// are returned.
func parseFcitx4Profile(data []byte) []layoutEntry {
	var out []layoutEntry
	for _, s := range parseINI(data) {
		list, ok := s.keys["EnabledIMList"]
		if !ok {
			continue
		}
		for i, item := range strings.Split(list, ",") {
			if i >= maxListItems {
				break
			}
			name, enabled, _ := strings.Cut(strings.TrimSpace(item), ":")
			if name == "" || !strings.EqualFold(enabled, "True") {
				continue
			}
			out = append(out, fcitxName(strings.TrimPrefix(name, "fcitx-")))
		}
	}
	return out
}

// parseKxkbrc reads KDE's ~/.config/kxkbrc: [Layout] LayoutList=us,kr
// with VariantList=,kr104. With Use=false KDE does not apply the list,
// and nothing is returned.
func parseKxkbrc(data []byte) []layoutEntry {
	for _, s := range parseINI(data) {
		if s.name != "Layout" {
			continue
		}
		if use, ok := s.keys["Use"]; ok && strings.EqualFold(use, "false") {
			return nil
		}
		return xkbLayouts(s.keys["LayoutList"], s.keys["VariantList"])
	}
	return nil
}

// passwdEntry is an account of /etc/passwd.
type passwdEntry struct {
	name string
	uid  int
	home string
}

// parsePasswd reads /etc/passwd (name:password:uid:gid:gecos:home:shell).
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	for _, l := range lines(data) {
		f := strings.Split(l, ":")
		if len(f) != 7 || f[0] == "" || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-' {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil || uid < 0 {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, home: f[5]})
	}
	return out
}
