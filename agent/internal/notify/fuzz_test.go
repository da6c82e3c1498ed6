package notify

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var originShape = regexp.MustCompile(`^(https://[a-z0-9.-]+|http://localhost)(:[0-9]{1,5})?$`)

// FuzzPresence: whatever origin the collector sends, the notification is
// the agent's text, unchanged by Clean (nothing a layer below could read
// as markup or quoting), within bounds, naming the origin only in its
// strict shape.
func FuzzPresence(f *testing.F) {
	for _, s := range []string{"https://bonafide.example.com", "http://localhost:8080", `https://x" & do shell script "id`,
		"https://a.example.com/<b>", "javascript:alert(1)", "https://user:pw@host", "https://ex\u0430mple.com"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, origin string) {
		o := Origin(origin)
		if o != "" && !originShape.MatchString(o) {
			t.Fatalf("Origin(%q) = %q", origin, o)
		}
		m := Presence(origin, now.Add(10*time.Minute), now)
		if Clean(m.Summary, MaxSummary) != m.Summary || Clean(m.Body, MaxBody) != m.Body {
			t.Fatalf("text changed by Clean: %+v", m)
		}
		if o == "" && strings.Contains(m.Body, "starts with") || o != "" && !strings.Contains(m.Body, "starts with "+o+"/presence/check/)") {
			t.Fatalf("origin %q shown as %q", o, m.Body)
		}
	})
}
