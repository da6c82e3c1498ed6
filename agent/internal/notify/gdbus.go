package notify

import (
	"strconv"
	"strings"
)

// gdbusArgs calls org.freedesktop.Notifications.Notify (Desktop
// Notifications Specification 1.2) with gdbus: app name, replaces id 0,
// icon, summary, body, no actions, no hints, the server's default
// timeout. Every argument is typed GVariant text, so gdbus needs no
// introspection and no text can be read as another type.
func gdbusArgs(m Message) []string {
	return []string{"call", "--session", "--timeout", strconv.Itoa(int(timeout.Seconds())),
		"--dest", "org.freedesktop.Notifications", "--object-path", "/org/freedesktop/Notifications",
		"--method", "org.freedesktop.Notifications.Notify",
		gvariantString("bonafide"), "uint32 0", gvariantString("dialog-information"),
		gvariantString(m.Summary), gvariantString(m.Body), "@as []", "@a{sv} {}", "int32 -1"}
}

// gvariantString quotes s as a GVariant text-format string.
func gvariantString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(r)>>4, 16))
			b.WriteString(strconv.FormatInt(int64(r)&15, 16))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
