package notify

import (
	"strconv"
	"strings"
)

// launchctlArgs shows m in the console user's session on macOS: a root
// service cannot post notifications itself, so launchctl asuser runs
// osascript in that user's bootstrap namespace. Title and text are
// AppleScript string literals (see appleScriptString).
func launchctlArgs(uid uint32, m Message) []string {
	script := "display notification " + appleScriptString(m.Body) + " with title " + appleScriptString("bonafide") +
		" subtitle " + appleScriptString(m.Summary)
	return []string{"asuser", strconv.FormatUint(uint64(uid), 10), "/usr/bin/osascript", "-e", script}
}

// appleScriptString quotes s as an AppleScript string literal: inside
// double quotes only the backslash and the double quote are special, and
// a line break is kept out (Clean has removed the first two already).
func appleScriptString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ", "\r", " ")
	return `"` + r.Replace(s) + `"`
}
