package sessions

import (
	"strings"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestMacParseUtmpxPlaso(t *testing.T) {
	data := readTestdata(t, "utmpx-macos-plaso.bin")
	if len(data)%macUtmpxRecordSize != 0 {
		t.Fatalf("size %d is not a multiple of %d", len(data), macUtmpxRecordSize)
	}
	recs := macParseUtmpx(data)
	if len(recs) != 7 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0].User != "utmpx-1.00" || recs[0].Type != macUtmpxSignature {
		t.Errorf("signature: %+v", recs[0])
	}
	if recs[1].Type != utBootTime || !recs[1].Time.Equal(time.Unix(1384365154, 0)) {
		t.Errorf("boot: %+v", recs[1])
	}
	cur := macCurrentFromUtmpx(recs)
	if len(cur) == 0 {
		t.Fatal("no USER_PROCESS")
	}
	for _, s := range cur {
		if s.User != "moxilo" {
			t.Errorf("%+v", s)
		}
		t.Logf("%+v", s)
	}
	if cur[0].Line != "console" || cur[0].Type != agentv1.LoginSession_TYPE_CONSOLE {
		t.Errorf("first: %+v", cur[0])
	}
}

func TestMacParseLastJC(t *testing.T) {
	out := readTestdata(t, "last-osx-10.14.6-jc.txt")
	now := time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)
	all := macParseLast(out, now, time.UTC)
	var lines, pseudo int
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "reboot ") || strings.HasPrefix(l, "shutdown "):
			pseudo++
		case strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "wtmp begins"):
			lines++
		}
	}
	if len(all) != lines {
		t.Fatalf("%d sessions, %d login lines (%d pseudo)", len(all), lines, pseudo)
	}
	newest := all[len(all)-1]
	if newest.User != "kbrazil" || newest.Line != "ttys002" || !newest.Start.Equal(time.Date(2020, 2, 28, 14, 45, 0, 0, time.UTC)) || !newest.End.IsZero() {
		t.Errorf("newest: %+v", newest)
	}
	oldest := all[0]
	// "root console Tue Jul 2 08:52 - 08:52 (00:00)".
	if oldest.User != "root" || oldest.Line != "console" || !oldest.Start.Equal(time.Date(2019, 7, 2, 8, 52, 0, 0, time.UTC)) ||
		!oldest.End.Equal(oldest.Start) {
		t.Errorf("oldest: %+v", oldest)
	}
	for _, s := range all {
		// "kbrazil console Thu Dec 12 12:10 - 07:50 (56+19:39)".
		if s.Line == "console" && s.Start.Equal(time.Date(2019, 12, 12, 12, 10, 0, 0, time.UTC)) {
			if !s.End.Equal(time.Date(2020, 2, 7, 7, 50, 0, 0, time.UTC)) {
				t.Errorf("multi-day end: %v", s.End)
			}
		}
		// "root console Fri Feb 7 23:25 - shutdown (00:00)".
		if s.User == "root" && s.Start.Equal(time.Date(2020, 2, 7, 23, 25, 0, 0, time.UTC)) && !s.End.Equal(s.Start) {
			t.Errorf("shutdown end: %v", s.End)
		}
		if !s.End.IsZero() && s.End.Before(s.Start) {
			t.Errorf("ends before start: %+v", s)
		}
	}
	// Cursor: first call is capped, second returns nothing, a new line
	// at the newest minute is returned alone.
	h1, c1 := macHistory(macParseLast(out, now, time.UTC), "")
	if len(h1) != min(lines, MaxHistory) {
		t.Errorf("first: %d", len(h1))
	}
	h2, c2 := macHistory(macParseLast(out, now, time.UTC), c1)
	if len(h2) != 0 || c2 != c1 {
		t.Errorf("second: %d %q %q", len(h2), c1, c2)
	}
	more := append([]byte("kbrazil   ttys009   10.0.0.5   Fri Feb 28 14:45   still logged in\n"), out...)
	h3, _ := macHistory(macParseLast(more, now, time.UTC), c1)
	if len(h3) != 1 || h3[0].Host != "10.0.0.5" || h3[0].Type != agentv1.LoginSession_TYPE_SSH {
		t.Errorf("third: %+v", h3)
	}
}
