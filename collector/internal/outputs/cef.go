package outputs

import (
	"strconv"
	"strings"
	"time"
)

// cefHeader escapes a CEF header field: backslash and pipe are escaped,
// line breaks (not allowed in the header) become spaces.
var cefHeader = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r\n", " ", "\r", " ", "\n", " ")

// cefValue escapes a CEF extension value: backslash and equals sign are
// escaped, line breaks written as \n and \r.
var cefValue = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r\n", `\n`, "\r", `\r`, "\n", `\n`)

// cefSeverity maps a severity to CEF's 0–10.
func cefSeverity(sev string) int {
	switch sev {
	case "critical":
		return 10
	case "high":
		return 8
	case "medium":
		return 5
	case "low":
		return 3
	}
	return 1
}

func cefTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// cef formats ev as one ArcSight CEF line (see the README for the field
// mapping): CEF:0|Bonafide|bonafide-collector|version|signature|name|severity|extension.
func cef(ev Event, e env) string {
	var sig, name string
	sev := 1
	var ext [][2]string
	add := func(k, v string) {
		if v != "" {
			ext = append(ext, [2]string{k, v})
		}
	}
	// custom adds a labelled custom string (cs1 … cs6) when it has a value.
	custom := func(n int, label, v string) {
		if v != "" {
			ext = append(ext, [2]string{"cs" + strconv.Itoa(n) + "Label", label}, [2]string{"cs" + strconv.Itoa(n), v})
		}
	}
	add("rt", cefTime(ev.At))
	add("act", ev.Event)
	if a := ev.Alert; a != nil {
		sig, name, sev = a.RuleID, a.Title, cefSeverity(a.Severity)
		if a.ID != 0 {
			add("externalId", strconv.FormatInt(a.ID, 10))
		}
		add("dhost", a.Hostname)
		add("duser", a.Person)
		custom(1, "rule", a.RuleID)
		custom(2, "status", a.Status)
		custom(3, "deviceId", a.DeviceID)
		custom(4, "url", e.link(a))
		custom(5, "assignee", a.Assignee)
		add("start", cefTime(a.FirstSeen))
		add("end", cefTime(a.LastSeen))
		add("cnt", strconv.FormatInt(a.Count, 10))
		add("msg", a.Description)
	} else if a := ev.Audit; a != nil {
		sig, name = "audit:"+a.Action, auditSummary(a)
		add("externalId", strconv.FormatInt(a.ID, 10))
		add("suser", a.Actor)
		custom(1, "targetType", a.TargetType)
		custom(2, "targetId", a.TargetID)
		if len(a.Detail) > 0 {
			d, _ := marshal(a.Detail)
			add("msg", string(d))
		}
	}
	var b strings.Builder
	b.WriteString("CEF:0|Bonafide|bonafide-collector|")
	for _, f := range []string{e.Version, sig, name} {
		b.WriteString(cefHeader.Replace(f))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(sev))
	b.WriteByte('|')
	for i, kv := range ext {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(cefValue.Replace(kv[1]))
	}
	return b.String()
}
