package store

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// A snapshot's section digests (IngestReport.Sections) are stored as a
// JSON object of strings, as encoding/json writes a map: keys sorted, no
// space. Every report's are written, and compared with the stored ones
// (diffSections); this file encodes and reads them without a map or
// reflection.

// section is one section's name and digest.
type section struct{ name, digest string }

// sectionList is a snapshot's section digests, sorted by name.
type sectionList []section

// sortedSections lists m sorted by name.
func sortedSections(m map[string]string) sectionList {
	l := make(sectionList, 0, len(m))
	for name, d := range m {
		l = append(l, section{name, d})
	}
	slices.SortFunc(l, func(a, b section) int { return strings.Compare(a.name, b.name) })
	return l
}

// json is the list as encoding/json encodes it as a map. Names and
// digests are field names and hex, which need no escaping; a list with
// anything else is left to encoding/json.
func (l sectionList) json() string {
	n := 2
	for _, s := range l {
		if !plainJSON(s.name) || !plainJSON(s.digest) {
			m := make(map[string]string, len(l))
			for _, s := range l {
				m[s.name] = s.digest
			}
			b, _ := json.Marshal(m)
			return string(b)
		}
		n += len(s.name) + len(s.digest) + 6
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, s := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(s.name)
		b.WriteString(`":"`)
		b.WriteString(s.digest)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// plainJSON says whether encoding/json writes s as it is between quotes:
// printable ASCII but for the quote, the backslash and what it escapes
// for HTML (<, >, &).
func plainJSON(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// parseSections reads stored section digests (JSON, "" when none) into
// buf, sorted by name. What sectionList.json writes it reads without
// decoding (the names and digests are substrings of from); anything else
// is decoded by encoding/json, as a map (what does not decode is no
// sections).
func parseSections(from string, buf sectionList) sectionList {
	l, ok := scanSections(from, buf)
	if ok {
		return l
	}
	var m map[string]string
	json.Unmarshal([]byte(from), &m)
	l = buf[:0]
	for _, name := range slices.Sorted(maps.Keys(m)) {
		l = append(l, section{name, m[name]})
	}
	return l
}

// scanSections reads a JSON object of plain strings (see plainJSON) whose
// keys are sorted and distinct, as sectionList.json writes it; ok is
// false for anything else.
func scanSections(from string, buf sectionList) (l sectionList, ok bool) {
	l = buf[:0]
	s, ok := strings.CutPrefix(from, "{")
	if !ok {
		return nil, false
	}
	if s == "}" {
		return l, true
	}
	// str cuts a quoted plain string off the front of s.
	str := func() (string, bool) {
		rest, ok := strings.CutPrefix(s, `"`)
		if !ok {
			return "", false
		}
		v, rest, ok := strings.Cut(rest, `"`)
		if !ok || !plainJSON(v) {
			return "", false
		}
		s = rest
		return v, true
	}
	for {
		name, ok := str()
		if !ok || len(l) > 0 && l[len(l)-1].name >= name {
			return nil, false
		}
		if s, ok = strings.CutPrefix(s, ":"); !ok {
			return nil, false
		}
		digest, ok := str()
		if !ok {
			return nil, false
		}
		l = append(l, section{name, digest})
		switch {
		case s == "}":
			return l, true
		case strings.HasPrefix(s, ","):
			s = s[1:]
		default:
			return nil, false
		}
	}
}
