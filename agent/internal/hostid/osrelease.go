package hostid

import (
	"fmt"
	"io"
	"strings"
)

// maxOSReleaseSize is the largest os-release file parsed (real ones are
// under 1 KiB).
const maxOSReleaseSize = 64 << 10

// parseOSRelease parses an os-release(5) file: newline-separated KEY=value
// assignments in a subset of shell syntax. Values may be unquoted, in single
// quotes (literal) or in double quotes (where \$ \" \\ and \` are escapes);
// quoted and unquoted parts may be concatenated. Blank lines, comments
// ("#") and lines that are not a valid assignment are skipped, as is a line
// with an unterminated quote. Later assignments win, as in the shell.
// Format: https://www.freedesktop.org/software/systemd/man/latest/os-release.html
func parseOSRelease(r io.Reader) (map[string]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxOSReleaseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read os-release: %w", err)
	}
	if len(b) > maxOSReleaseSize {
		return nil, fmt.Errorf("os-release larger than %d bytes", maxOSReleaseSize)
	}
	vars := make(map[string]string)
	for line := range strings.Lines(string(b)) {
		key, value, ok := parseOSReleaseLine(strings.TrimRight(line, "\n"))
		if ok {
			vars[key] = value
		}
	}
	return vars, nil
}

func parseOSReleaseLine(line string) (key, value string, ok bool) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	key, raw, found := strings.Cut(line, "=")
	if !found || !isShellName(key) {
		return "", "", false
	}
	value, ok = shellUnquote(raw)
	return key, value, ok
}

// isShellName reports whether s is a shell variable name: a letter or
// underscore, then letters, digits or underscores.
func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// shellUnquote decodes the right-hand side of an assignment. Unquoted text
// is taken literally except that a backslash escapes the next character and
// surrounding white space is dropped (like systemd's env-file parser, which
// also keeps white space inside an unquoted value). It reports false for an
// unterminated quote.
func shellUnquote(raw string) (string, bool) {
	var b strings.Builder
	// lastKept is b.Len() after the last character that must not be trimmed
	// (anything quoted or escaped, or non-blank).
	lastKept := 0
	i := 0
	for i < len(raw) {
		c := raw[i]
		switch c {
		case '\'':
			j := strings.IndexByte(raw[i+1:], '\'')
			if j < 0 {
				return "", false
			}
			b.WriteString(raw[i+1 : i+1+j])
			lastKept = b.Len()
			i += j + 2
		case '"':
			i++
			closed := false
			for i < len(raw) && !closed {
				c := raw[i]
				switch {
				case c == '"':
					closed = true
					i++
				case c == '\\' && i+1 < len(raw) && strings.IndexByte("$`\"\\", raw[i+1]) >= 0:
					b.WriteByte(raw[i+1])
					i += 2
				default:
					b.WriteByte(c)
					i++
				}
			}
			if !closed {
				return "", false
			}
			lastKept = b.Len()
		case '\\':
			if i+1 < len(raw) {
				b.WriteByte(raw[i+1])
				lastKept = b.Len()
			}
			i += 2
		case ' ', '\t', '\r':
			if b.Len() > 0 {
				b.WriteByte(c)
			}
			i++
		default:
			b.WriteByte(c)
			lastKept = b.Len()
			i++
		}
	}
	return b.String()[:lastKept], true
}
