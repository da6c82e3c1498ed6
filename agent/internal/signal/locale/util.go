package locale

import (
	"errors"
	"io"
	"io/fs"
	"unicode"
	"unicode/utf8"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	maxText    = 256 << 10 // a configuration text file
	maxPlist   = 1 << 20   // a preferences property list
	maxPasswd  = 1 << 20
	maxUsers   = 256
	maxLayouts = 256 // per scan
	maxID      = 128 // bytes of a reported layout id or locale
)

var errTooLarge = errors.New("locale: file too large")

// readCapped reads the regular file name of fsys, failing when it is
// larger than limit bytes.
func readCapped(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fs.ErrInvalid
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// cleanID returns s when it is a short printable UTF-8 string without
// spaces at either end, else "". Every layout id and locale read from a
// file passes through it.
func cleanID(s string) string {
	if s == "" || len(s) > maxID || !utf8.ValidString(s) {
		return ""
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return ""
		}
	}
	if unicode.IsSpace(rune(s[0])) || unicode.IsSpace(rune(s[len(s)-1])) {
		return ""
	}
	return s
}

// layoutEntry is one layout or input method parsed from a file.
type layoutEntry struct {
	layout string
	ime    bool
}

// layoutSet collects keyboard layouts without duplicates, in order of
// discovery, up to maxLayouts.
type layoutSet struct {
	seen map[[3]string]bool
	list []*agentv1.KeyboardLayout
}

func (s *layoutSet) add(user, source string, entries []layoutEntry) {
	for _, e := range entries {
		id := cleanID(e.layout)
		if id == "" || len(s.list) >= maxLayouts {
			continue
		}
		k := [3]string{user, id, source}
		if s.seen[k] {
			continue
		}
		if s.seen == nil {
			s.seen = map[[3]string]bool{}
		}
		s.seen[k] = true
		s.list = append(s.list, &agentv1.KeyboardLayout{User: user, Layout: id, InputMethod: e.ime, Source: source})
	}
}
