package outputs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

var at = time.Date(2026, 12, 6, 17, 0, 0, 123456000, time.UTC)

func alertEvent(ev string) Event {
	return Event{UID: "3f2c5b8e-1111-4222-8333-444455556666", Event: ev, At: at, Alert: &store.Alert{
		ID: 42, RuleID: "remote_access_running", Title: "AnyDesk | running\\now", Severity: "high", Status: "open",
		Description: "a=b\\c\nsecond line\r\nthird", DeviceID: "dev-1", Hostname: "laptop 7", Person: "Ana Pérez",
		FirstSeen: at.Add(-time.Hour), LastSeen: at, UpdatedAt: at, Count: 3, Evidence: map[string]any{"tool": "AnyDesk"}, Tags: []string{"T1219"},
	}}
}

var testEnv = env{Collector: "https://bonafide.example.com/", Version: "1.2|3", Hostname: "collector-1"}

// TestCEFEscaping: header fields escape | and \ and lose line breaks;
// extension values escape = and \ and write line breaks as \n, \r.
func TestCEFEscaping(t *testing.T) {
	got := cef(alertEvent(store.EventNew), testEnv)
	want := `CEF:0|Bonafide|bonafide-collector|1.2\|3|remote_access_running|AnyDesk \| running\\now|8|` +
		`rt=1796576400123 act=new externalId=42 dhost=laptop 7 duser=Ana Pérez cs1Label=rule cs1=remote_access_running ` +
		`cs2Label=status cs2=open cs3Label=deviceId cs3=dev-1 cs4Label=url cs4=https://bonafide.example.com/ui/alerts/42 ` +
		`start=1796572800123 end=1796576400123 cnt=3 msg=a\=b\\c\nsecond line\nthird`
	if got != want {
		t.Fatalf("cef\n got %s\nwant %s", got, want)
	}
	if strings.ContainsAny(got, "\r\n") {
		t.Fatal("a CEF line holds a line break")
	}
	for _, c := range []struct{ in, header, value string }{
		{`a|b`, `a\|b`, `a|b`},
		{`a\b`, `a\\b`, `a\\b`},
		{`a=b`, `a=b`, `a\=b`},
		{"a\nb", "a b", `a\nb`},
		{"a\rb", "a b", `a\rb`},
		{"a\r\nb", "a b", `a\nb`},
		{`\|=`, `\\\|=`, `\\|\=`},
	} {
		if h := cefHeader.Replace(c.in); h != c.header {
			t.Errorf("header %q: %q, want %q", c.in, h, c.header)
		}
		if v := cefValue.Replace(c.in); v != c.value {
			t.Errorf("value %q: %q, want %q", c.in, v, c.value)
		}
	}
	// An audit entry.
	au := Event{UID: "u", Event: store.EventAudit, At: at, Audit: &store.AuditEntry{ID: 7, At: at, Actor: "user:ana", Action: "update",
		TargetType: "alert", TargetID: "42", Detail: map[string]any{"note": "x=y"}}}
	if got, want := cef(au, testEnv), `CEF:0|Bonafide|bonafide-collector|1.2\|3|audit:update|user:ana: update alert 42|1|`+
		`rt=1796576400123 act=audit externalId=7 suser=user:ana cs1Label=targetType cs1=alert cs2Label=targetId cs2=42 msg={"note":"x\=y"}`; got != want {
		t.Fatalf("audit cef\n got %s\nwant %s", got, want)
	}
}

// TestRFC5424Framing: the header fields, printable ASCII of bounded
// length, and octet counting in bytes (not runes).
func TestRFC5424Framing(t *testing.T) {
	msg := rfc5424(3, at, "bad host\nname", "new", "CEF:0|é|x")
	re := regexp.MustCompile(`^<35>1 2026-12-06T17:00:00\.123456Z badhostname bonafide \d+ new - CEF:0\|é\|x$`)
	if !re.Match(msg) {
		t.Fatalf("rfc5424: %q", msg)
	}
	if m := rfc5424(6, at, "", strings.Repeat("m", 40), "x"); !bytes.Contains(m, []byte(" - bonafide ")) || !bytes.Contains(m, []byte(" "+strings.Repeat("m", 32)+" - x")) {
		t.Fatalf("empty hostname, long msgid: %q", m)
	}
	framed := octetCounted(msg)
	n, rest, ok := bytes.Cut(framed, []byte(" "))
	if !ok {
		t.Fatal("no length")
	}
	if l, _ := strconv.Atoi(string(n)); l != len(rest) || !bytes.Equal(rest, msg) || l == len([]rune(string(msg))) {
		t.Fatalf("octet count %s for %d bytes", n, len(rest))
	}

	// Over a stream every message is framed; over UDP it is the datagram.
	s := &syslogSink{o: &Output{Format: "cef", Protocol: "tcp"}, env: testEnv}
	m, _ := s.message(alertEvent(store.EventNew))
	if n, rest, _ := bytes.Cut(m, []byte(" ")); strconv.Itoa(len(rest)) != string(n) || !bytes.HasPrefix(rest, []byte("<35>1 ")) {
		t.Fatalf("tcp: %q", m)
	}
	s.o.Protocol, s.o.Format = "udp", "json"
	m, _ = s.message(alertEvent(store.EventNew))
	if !bytes.HasPrefix(m, []byte("<35>1 ")) || !bytes.Contains(m, []byte(` new - {`)) {
		t.Fatalf("udp json: %q", m)
	}
	big := alertEvent(store.EventNew)
	big.Alert.Description = strings.Repeat("x", 2*maxUDP)
	if m, _ = s.message(big); len(m) != maxUDP {
		t.Fatalf("udp datagram of %d bytes", len(m))
	}
}

// TestOCSFFinding: the Detection Finding's class, activity, status and
// severity, and the alert's fields where OCSF puts them.
func TestOCSFFinding(t *testing.T) {
	for _, c := range []struct {
		event, status      string
		activity, statusID int
	}{
		{store.EventNew, "open", 1, 1},
		{store.EventStatus, "acknowledged", 2, 2},
		{store.EventStatus, "resolved", 3, 4},
		{store.EventStatus, "false_positive", 3, 3},
		{store.EventReopened, "open", 2, 1},
	} {
		ev := alertEvent(c.event)
		ev.Alert.Status = c.status
		b, err := ocsf(ev, testEnv)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			ClassUID    int   `json:"class_uid"`
			CategoryUID int   `json:"category_uid"`
			ActivityID  int   `json:"activity_id"`
			TypeUID     int   `json:"type_uid"`
			SeverityID  int   `json:"severity_id"`
			StatusID    int   `json:"status_id"`
			Time        int64 `json:"time"`
			Info        struct {
				UID, Title, SrcURL string
				Analytic           struct{ UID string }
			} `json:"finding_info"`
			Device struct {
				Hostname, UID string
				Owner         struct{ Name string }
			}
			Metadata struct {
				Version, UID string
				Product      struct{ Name string }
			}
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.ClassUID != 2004 || f.CategoryUID != 2 || f.ActivityID != c.activity || f.TypeUID != 200400+c.activity ||
			f.StatusID != c.statusID || f.SeverityID != 4 || f.Time != at.UnixMilli() {
			t.Errorf("%s %s: %s", c.event, c.status, b)
		}
		if f.Info.UID != "42" || f.Info.Analytic.UID != "remote_access_running" || f.Device.Hostname != "laptop 7" ||
			f.Device.Owner.Name != "Ana Pérez" || f.Metadata.UID != ev.UID || f.Metadata.Version != "1.1.0" {
			t.Errorf("fields: %s", b)
		}
	}
	if _, err := ocsf(Event{Event: store.EventAudit, Audit: &store.AuditEntry{}}, testEnv); err == nil {
		t.Fatal("an audit entry made a finding")
	}
}

// TestOCSFFileRotation: lines go to the file until it would pass
// max_size_mb, which then becomes FILE.1 (FILE.1 FILE.2 …), keeping
// max_files.
func TestOCSFFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.ocsf.jsonl")
	s := &fileSink{o: &Output{Path: path, MaxSizeMB: 1, MaxFiles: 2}, env: testEnv}
	ev := alertEvent(store.EventNew)
	ev.Alert.Description = strings.Repeat("d", 100<<10) // about 100 KiB a line
	for i := range 35 {
		ev.Alert.ID = int64(i + 1)
		if err := s.Send(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(file string) []int {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []int
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Info struct{ UID string } `json:"finding_info"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(l.Info.UID)
			out = append(out, n)
		}
		if fi, _ := f.Stat(); fi.Size() > 1<<20 {
			t.Errorf("%s: %d bytes", file, fi.Size())
		}
		return out
	}
	cur, one, two := ids(path), ids(path+".1"), ids(path+".2")
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("more than max_files rotated files")
	}
	all := append(append(two, one...), cur...)
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Fatalf("lines out of order across rotation: %v %v %v", two, one, cur)
		}
	}
	if all[len(all)-1] != 35 || len(one) != 10 {
		t.Fatalf("rotation: %v %v %v", two, one, cur)
	}
}

// TestChatMessages: Slack and Teams messages name the title, severity,
// host and person and link to the alert; Slack's mrkdwn is escaped.
func TestChatMessages(t *testing.T) {
	ev := alertEvent(store.EventNew)
	ev.Alert.Person = "<!channel> & co"
	b, err := slackBody(ev, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`[HIGH] AnyDesk | running\\now`, `laptop 7`, `&lt;!channel&gt; &amp; co`, `<https://bonafide.example.com/ui/alerts/42|Open the alert in bonafide>`} {
		if !strings.Contains(s, want) {
			t.Errorf("slack message lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, "<!channel>") {
		t.Errorf("slack message mentions the channel: %s", s)
	}
	b, err = teamsBody(ev, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var card struct {
		Type        string
		Attachments []struct {
			ContentType string
			Content     struct {
				Type    string
				Body    []map[string]any
				Actions []struct{ Type, URL string }
			}
		}
	}
	if err := json.Unmarshal(b, &card); err != nil {
		t.Fatal(err)
	}
	c := card.Attachments[0]
	if card.Type != "message" || c.ContentType != "application/vnd.microsoft.card.adaptive" || c.Content.Type != "AdaptiveCard" ||
		c.Content.Body[0]["text"] != ev.Alert.Title || c.Content.Actions[0].URL != "https://bonafide.example.com/ui/alerts/42" ||
		!strings.Contains(string(b), `"Person","value":"<!channel> & co"`) {
		t.Fatalf("teams card: %s", b)
	}
}

// TestPresenceNotification: a presence check's request reaches chat with
// the person and the one-time link (it is their notification).
func TestPresenceNotification(t *testing.T) {
	ev := Event{UID: "u1", Event: store.EventAudit, At: at, Audit: &store.AuditEntry{Actor: "token:ana", Action: "presence_check_requested",
		TargetType: "presence_check", TargetID: "c1", Detail: map[string]any{"person": "alice@example.com", "link": "https://b.example.com/presence/check/T"}}}
	for name, format := range map[string]func(Event, env) ([]byte, error){"slack": slackBody, "teams": teamsBody} {
		b, err := format(ev, env{})
		if err != nil || !strings.Contains(string(b), "alice@example.com: please open https://b.example.com/presence/check/T on your work laptop") {
			t.Errorf("%s: %s %v", name, b, err)
		}
	}
}
