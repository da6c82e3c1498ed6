package notify

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"  Presence\tcheck\n\n now ":            "Presence check now",
		`<b>bold</b> & "quoted" \ back` + "`x`": "bbold/b quoted backx",
		"it's fine":                             "it's fine",
		"caf\u00e9 \u202eevil\x00\x1b[31m":      "caf evil[31m",
	} {
		if got := Clean(in, 100); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Clean(strings.Repeat("ab ", 100), 10); got != "ab ab ab a" {
		t.Errorf("cut: %q", got)
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://bonafide.example.com":        "https://bonafide.example.com",
		"https://Bonafide.Example.com:8443/":  "https://bonafide.example.com:8443",
		"http://localhost:8080":               "http://localhost:8080",
		"http://bonafide.example.com":         "", // plain http only for localhost
		"https://bonafide.example.com/x":      "",
		"https://user@bonafide.example.com":   "",
		"https://bonafide.example.com?q=1":    "",
		"https://bonafide.example.com#f":      "",
		"javascript:alert(1)":                 "",
		"https://evil.example\"; do shell":    "",
		"https://xn--80ak6aa92e.com":          "https://xn--80ak6aa92e.com",
		"https://b\u043enafide.example.com":   "", // a Cyrillic o
		"https://[::1]:8443":                  "",
		"https://-bad.example.com":            "",
		"https://host:99999999":               "",
		"":                                    "",
		"https://" + strings.Repeat("a", 300): "",
	} {
		if got := Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPresenceText(t *testing.T) {
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	m := Presence("https://bonafide.example.com", now.Add(9*time.Minute+time.Second), now)
	if !strings.Contains(m.Body, "it starts with https://bonafide.example.com/presence/check/") || !strings.Contains(m.Body, "within 10 minutes") {
		t.Fatalf("body %q", m.Body)
	}
	if Clean(m.Body, MaxBody) != m.Body || Clean(m.Summary, MaxSummary) != m.Summary {
		t.Fatalf("the agent's own text does not survive Clean: %+v", m)
	}
	// A forged origin is left out, not shown.
	m = Presence(`https://x.example.com" & do shell script "rm -rf ~`, now.Add(30*time.Second), now)
	if strings.Contains(m.Body, "x.example.com") || strings.Contains(m.Body, "starts with") || !strings.Contains(m.Body, "within 1 minute ") {
		t.Fatalf("body %q", m.Body)
	}
	if m := Presence("", now.Add(72*time.Hour), now); !strings.Contains(m.Body, "within 1440 minutes") {
		t.Fatalf("long expiry: %q", m.Body)
	}
}

func TestGVariantString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "'plain'",
		`it's`:       `'it\'s'`,
		`a\b`:        `'a\\b'`,
		"line\nnext": `'line\u000anext'`,
	} {
		if got := gvariantString(in); got != want {
			t.Errorf("gvariantString(%q) = %s, want %s", in, got, want)
		}
	}
	args := gdbusArgs(Message{Summary: "S", Body: "B"})
	if i := slices.Index(args, "--method"); i < 0 || args[i+1] != "org.freedesktop.Notifications.Notify" ||
		!slices.Equal(args[i+2:], []string{"'bonafide'", "uint32 0", "'dialog-information'", "'S'", "'B'", "@as []", "@a{sv} {}", "int32 -1"}) {
		t.Fatalf("gdbus arguments %q", args)
	}
}

// macOS has no machine here: the arguments are checked, and hostile text
// cannot close the AppleScript string (Clean drops quotes and
// backslashes; appleScriptString escapes them anyway).
func TestLaunchctlArgs(t *testing.T) {
	m := Message{Summary: "Presence check", Body: "Open it's link"}
	got := launchctlArgs(501, m)
	want := []string{"asuser", "501", "/usr/bin/osascript", "-e",
		`display notification "Open it's link" with title "bonafide" subtitle "Presence check"`}
	if !slices.Equal(got, want) {
		t.Fatalf("launchctl %q\nwant      %q", got, want)
	}
	if s := appleScriptString(`a" & (do shell script "id") & "\`); s != `"a\" & (do shell script \"id\") & \"\\"` {
		t.Fatalf("escaped %s", s)
	}
	evil := Message{Summary: Clean(`x" & (do shell script "id") & "`, MaxSummary), Body: "b"}
	if s := launchctlArgs(501, evil)[4]; strings.Count(s, `"`) != 6 {
		t.Fatalf("a quote got through: %s", s)
	}
}
