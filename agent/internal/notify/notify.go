// Package notify shows a short notification to the person at the laptop:
// today, that their company asks them to answer a presence check. The
// text is the agent's own (see Presence); the one piece that comes from
// the collector, the origin of the check's pages, is shown only when it
// is a plain http(s) scheme and host name. Showing is best-effort and
// bounded by a deadline; where the agent cannot reach the person's
// desktop, Show fails with an error saying why.
//
//   - Linux: the active graphical session's user on a local seat (logind),
//     over their session D-Bus (org.freedesktop.Notifications.Notify),
//     with gdbus run as that user.
//   - macOS: the console user, with launchctl asuser and osascript's
//     display notification.
//   - Windows: the active console session, with WTSSendMessageW.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Limits of a message.
const (
	MaxSummary = 100
	MaxBody    = 600
	// timeout bounds one notification, the commands it runs included.
	timeout = 20 * time.Second
)

// Message is a notification.
type Message struct {
	Summary string
	Body    string
}

// Notifier shows messages on the machine under Root ("" or "/": the live
// system; a fixture root holds the session files and buses it names).
type Notifier struct {
	Root string
	Log  *slog.Logger
}

// Show shows m to the person at the machine, within a deadline. The text
// is sanitised and bounded first (see Clean).
func (n *Notifier) Show(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m = Message{Summary: Clean(m.Summary, MaxSummary), Body: Clean(m.Body, MaxBody)}
	if m.Summary == "" {
		return fmt.Errorf("notify: empty summary")
	}
	root := n.Root
	if root == "" {
		root = "/"
	}
	return show(ctx, root, m)
}

// Clean keeps printable ASCII but for the characters that mean something
// to the notification layers (markup, quoting: < > & " \ `), turns
// whitespace into single spaces and cuts the text to max bytes. The
// agent's texts never need more, and no layer below (D-Bus markup,
// AppleScript strings, GVariant text) can then read it as code.
func Clean(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			space = b.Len() > 0
			continue
		case r < 0x21 || r > 0x7e || strings.ContainsRune("<>&\"\\`", r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		if b.Len() >= max {
			break
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// Origin returns s when it is an origin the agent may show: http or https,
// a host name of letters, digits, dots and hyphens, an optional port, no
// user, path, query or fragment; plain http only for localhost (browsers
// allow WebAuthn nowhere else without TLS). Otherwise "".
func Origin(s string) string {
	if len(s) > 300 {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return ""
	}
	host := u.Hostname()
	if host == "" || len(host) > 253 || strings.HasPrefix(host, ".") || strings.HasPrefix(host, "-") {
		return ""
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return ""
		}
	}
	if p := u.Port(); p != "" {
		for _, r := range p {
			if r < '0' || r > '9' {
				return ""
			}
		}
		if len(p) > 5 {
			return ""
		}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && strings.EqualFold(host, "localhost"):
	default:
		return ""
	}
	o := u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		o += ":" + p
	}
	return strings.ToLower(o)
}

// Presence is the notification of a presence check that expires at
// expires: the agent's fixed text, naming the origin of the genuine link
// when origin is valid (see Origin). The link itself is not in it: the
// person received it through their company's channels (e-mail, chat).
func Presence(origin string, expires, now time.Time) Message {
	mins := int((expires.Sub(now) + time.Minute - 1) / time.Minute)
	mins = min(max(mins, 1), 24*60)
	within := fmt.Sprintf("%d minutes", mins)
	if mins == 1 {
		within = "1 minute"
	}
	link := "Open the link your company sent you (by e-mail or chat)"
	if o := Origin(origin); o != "" {
		link = "Open the link your company sent you (by e-mail or chat; it starts with " + o + "/presence/check/)"
	}
	return Message{
		Summary: "Presence check: please confirm you are at this laptop",
		Body: link + " on this laptop within " + within +
			" and confirm with the laptop's screen lock (fingerprint, face or PIN). Nothing on your screen, camera or files is read.",
	}
}
