package sessions

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winFmtSession prints a session compactly for comparisons.
func winFmtSession(s *agentv1.LoginSession) string {
	ts := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "-"
		}
		return t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s", s.GetUser(), s.GetType(), s.GetSourceAddress(), s.GetTerminal(),
		ts(s.GetStartedAt()), ts(s.GetEndedAt()))
}

func winFmtSessions(ss []*agentv1.LoginSession) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(winFmtSession(s))
		b.WriteByte('\n')
	}
	return b.String()
}

func winCheckSessions(t *testing.T, got []*agentv1.LoginSession, want ...string) {
	t.Helper()
	w := strings.Join(want, "\n")
	if len(want) > 0 {
		w += "\n"
	}
	if g := winFmtSessions(got); g != w {
		t.Errorf("sessions:\n%s\nwant:\n%s", g, w)
	}
}

// The real records (testdata/win/README.md), one machine at a time.
func TestWinSessionsFixtures(t *testing.T) {
	parse := func(names ...string) []winEvent {
		var evs []winEvent
		for _, name := range names {
			if strings.HasSuffix(name, ".events") {
				evs = append(evs, winReadEvents(t, name)...)
				continue
			}
			ev, err := winParseEvent(winReadFixture(t, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	for _, tt := range []struct {
		name       string
		events     []winEvent
		cursor     string
		wantCursor string
		want       []string
	}{
		{
			// fsir at the console, an anonymous network logon, the
			// user's logoff (4647) and the session's end (4634).
			name:       "evtx console",
			events:     parse("4624-type3-evtx.xml", "4624-type2-evtx.xml", "4647-evtx.xml", "4634-evtx.xml"),
			wantCursor: "evt:2254",
			want:       []string{`WIN-03DLIIOFRRA\fsir|TYPE_CONSOLE|||2017-04-14T01:19:50.1880056Z|2017-04-14T01:20:20.1230577Z`},
		},
		{
			// An RDP logon (split token), a disconnect and reconnect 15 s
			// later, then the unlock of the reconnected session: its
			// logons (type 7, from the client's address and from "-")
			// open nothing and their logoffs end nothing.
			name:       "otrf rdp reconnect",
			events:     parse("rdp-reconnect-otrf.DERIVED.events"),
			wantCursor: "evt:49491",
			want:       []string{`THESHIRE\pgustavo|TYPE_REMOTE_DESKTOP|1.2.3.4|RDP-Tcp#1|2020-09-04T07:08:20Z|-`},
		},
		{
			// Resumed after the reconnect, the session's start is not in
			// the history: the unlock is all there is of it, an RDP
			// unlock from the client and a console one from "-", each
			// ended within the second. Known: history read from a cursor
			// cannot tell an unlock from a logon.
			name:       "otrf rdp reconnect from cursor",
			events:     parse("rdp-reconnect-otrf.DERIVED.events"),
			cursor:     "evt:49287",
			wantCursor: "evt:49491",
			want: []string{
				`THESHIRE\pgustavo|TYPE_REMOTE_DESKTOP|1.2.3.4||2020-09-04T07:08:38Z|2020-09-04T07:08:38Z`,
				`THESHIRE\pgustavo|TYPE_CONSOLE|||2020-09-04T07:08:38Z|2020-09-04T07:08:38Z`,
			},
		},
		{
			// A UAC credential prompt on its own: a cached-interactive
			// logon that its split half's logoff ends 2 ms later.
			name:       "otrf uac prompt alone",
			events:     parse("uac-credpro-otrf.DERIVED.events"),
			wantCursor: "evt:3",
			want:       []string{`PANDALAB\pedro.gustavo|TYPE_CONSOLE|||2023-08-15T09:54:30.82Z|2023-08-15T09:54:30.822Z`},
		},
		{
			// The same prompt inside the user's open session (the logon
			// is not in the source: added here) opens and ends nothing.
			name: "otrf uac prompt in a session",
			events: func() []winEvent {
				evs := []winEvent{{RecordID: 1, EventID: winEventLogon, Time: winMustTime(t, "2023-08-15T09:00:00Z"),
					User: "pedro.gustavo", Domain: "PANDALAB", LogonID: 0x77, LogonType: winLogonInteractive}}
				for _, ev := range parse("uac-credpro-otrf.DERIVED.events") {
					ev.RecordID += 10
					evs = append(evs, ev)
				}
				return evs
			}(),
			wantCursor: "evt:13",
			want:       []string{`PANDALAB\pedro.gustavo|TYPE_CONSOLE|||2023-08-15T09:00:00Z|-`},
		},
		{
			// RDP session hijack: admmig's session RDP-Tcp#8 is
			// disconnected and admmarsid's logon reconnects to it.
			name:       "evtx rdp hijack",
			events:     parse("rdp-hijack-evtx.events"),
			wantCursor: "evt:1829819",
			want:       []string{`OFFSEC\admmarsid|TYPE_REMOTE_DESKTOP|10.23.23.9|RDP-Tcp#8|2021-05-14T21:01:05.8317487Z|-`},
		},
		{
			// Microsoft's and osquery's documented samples (three
			// machines): a service logon, a console logon, a reconnect.
			name:       "documented samples",
			events:     parse("4624-osquery.xml", "4624-msdocs.xml", "4778-msdocs.DERIVED.xml"),
			wantCursor: "evt:237651",
			want: []string{
				`WIN-GG82ULGC9GO\Administrator|TYPE_CONSOLE|||2015-11-12T00:24:35.0797852Z|-`,
				`CONTOSO\ladmin|TYPE_REMOTE_DESKTOP|10.0.0.100|RDP-Tcp#6|2015-09-10T23:05:29.7438672Z|-`,
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, cursor := winSessions(tt.events, tt.cursor)
			if cursor != tt.wantCursor {
				t.Errorf("cursor = %q, want %q", cursor, tt.wantCursor)
			}
			winCheckSessions(t, got, tt.want...)
		})
	}
}

var winT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func winAt(sec int) time.Time { return winT0.Add(time.Duration(sec) * time.Second) }

func winLogon(rec uint64, sec int, user string, typ int, id uint64, ip string) winEvent {
	return winEvent{RecordID: rec, EventID: winEventLogon, Time: winAt(sec), User: user, Domain: "CORP",
		LogonID: id, LogonType: typ, Address: ip}
}

func winOff(rec uint64, sec int, evID uint32, id uint64) winEvent {
	return winEvent{RecordID: rec, EventID: evID, Time: winAt(sec), User: "x", Domain: "CORP", LogonID: id}
}

func winRe(rec uint64, sec int, evID uint32, user string, id uint64, session, ip, client string) winEvent {
	return winEvent{RecordID: rec, EventID: evID, Time: winAt(sec), User: user, Domain: "CORP", LogonID: id,
		SessionName: session, Address: ip, Workstation: client}
}

func TestWinSessionsPairingAndFilters(t *testing.T) {
	events := []winEvent{
		winLogon(10, 0, "alice", winLogonInteractive, 0x100, "127.0.0.1"),
		// Split token: the elevated half, linked to 0x100.
		func() winEvent {
			e := winLogon(11, 0, "alice", winLogonInteractive, 0x101, "127.0.0.1")
			e.LinkedLogonID = 0x100
			return e
		}(),
		winLogon(12, 1, "DWM-1", winLogonInteractive, 0x200, ""),
		winLogon(13, 1, "UMFD-1", winLogonInteractive, 0x201, ""),
		winLogon(14, 2, "LAPTOP$", winLogonNetwork, 0x202, ""),
		winLogon(15, 3, "bob", winLogonNetwork, 0x203, "198.51.100.9"),
		winLogon(16, 4, "svc", winLogonService, 0x204, ""),
		// Unlocks of users without an open session: console when local,
		// RDP from elsewhere.
		winLogon(17, 5, "frank", winLogonUnlock, 0x300, "::1"),
		winLogon(18, 6, "erin", winLogonUnlock, 0x301, "198.51.100.4"),
		winLogon(19, 7, "carol", winLogonCachedInteractive, 0x400, "-"),
		winLogon(20, 8, "dave", winLogonRemoteInteractive, 0x500, ""),
		winOff(21, 60, winEventLogoff, 0x300),
		winOff(22, 100, winEventUserLogoff, 0x101), // ends alice's split logon
		winOff(23, 101, winEventLogoff, 0x100),     // already ended: ignored
		winOff(24, 102, winEventLogoff, 0x999),     // unknown logon
		winLogon(25, 103, "alice", winLogonInteractive, 0x100, ""),
		// Inside alice's open session: an unlock (local and from
		// elsewhere), a cached-credential prompt, their logoffs.
		winLogon(26, 104, "alice", winLogonUnlock, 0x600, "::1"),
		winLogon(27, 105, "ALICE", winLogonCachedUnlock, 0x601, "198.51.100.4"),
		winLogon(28, 106, "alice", winLogonCachedInteractive, 0x602, "::1"),
		winOff(29, 106, winEventLogoff, 0x600),
		winOff(30, 106, winEventLogoff, 0x602),
	}
	events[10].Workstation = "DAVE-HOME"
	got, cursor := winSessions(events, "")
	if cursor != "evt:30" {
		t.Errorf("cursor = %q", cursor)
	}
	winCheckSessions(t, got,
		`CORP\alice|TYPE_CONSOLE|||2026-03-02T09:00:00Z|2026-03-02T09:01:40Z`,
		`CORP\frank|TYPE_CONSOLE|||2026-03-02T09:00:05Z|2026-03-02T09:01:00Z`,
		`CORP\erin|TYPE_REMOTE_DESKTOP|198.51.100.4||2026-03-02T09:00:06Z|-`,
		`CORP\carol|TYPE_CONSOLE|||2026-03-02T09:00:07Z|-`,
		`CORP\dave|TYPE_REMOTE_DESKTOP|DAVE-HOME||2026-03-02T09:00:08Z|-`,
		`CORP\alice|TYPE_CONSOLE|||2026-03-02T09:01:43Z|-`,
	)
}

func TestWinSessionsReconnect(t *testing.T) {
	events := []winEvent{
		// Console logon, then someone takes the session over RDP.
		winLogon(1, 0, "alice", winLogonInteractive, 0x10, "127.0.0.1"),
		winRe(2, 600, winEventDisconnect, "alice", 0x10, "Console", "LOCAL", "Unknown"),
		// The reconnect's own authentication logon, then the 4778.
		winLogon(3, 605, "alice", winLogonRemoteInteractive, 0x20, "203.0.113.50"),
		winRe(4, 606, winEventReconnect, "alice", 0x10, "RDP-Tcp#2", "203.0.113.50", "FARM-7"),
		winOff(5, 607, winEventLogoff, 0x20), // transient logon ends: session goes on
		winRe(6, 900, winEventDisconnect, "alice", 0x10, "RDP-Tcp#2", "203.0.113.50", "FARM-7"),
		// Back at the console (fast user switching reconnect).
		winRe(7, 1000, winEventReconnect, "alice", 0x10, "Console", "LOCAL", "Unknown"),
		// A reconnect with no preceding logon, from another address,
		// while the console entry is open: the console entry ends.
		winRe(8, 1200, winEventReconnect, "alice", 0x10, "RDP-Tcp#3", "::ffff:192.0.2.1", "X"),
		winOff(9, 1500, winEventUserLogoff, 0x10),
	}
	got, _ := winSessions(events, "")
	winCheckSessions(t, got,
		`CORP\alice|TYPE_CONSOLE|||2026-03-02T09:00:00Z|2026-03-02T09:10:00Z`,
		`CORP\alice|TYPE_REMOTE_DESKTOP|203.0.113.50|RDP-Tcp#2|2026-03-02T09:10:05Z|2026-03-02T09:15:00Z`,
		`CORP\alice|TYPE_CONSOLE||Console|2026-03-02T09:16:40Z|2026-03-02T09:20:00Z`,
		`CORP\alice|TYPE_REMOTE_DESKTOP|192.0.2.1|RDP-Tcp#3|2026-03-02T09:20:00Z|2026-03-02T09:25:00Z`,
	)
}

func TestWinSessionsCursor(t *testing.T) {
	events := []winEvent{
		winLogon(5, 0, "alice", winLogonInteractive, 0x1, ""),
		winLogon(6, 1, "bob", winLogonInteractive, 0x2, ""),
		winLogon(7, 2, "carol", winLogonNetwork, 0x3, ""),
	}
	for _, tt := range []struct {
		cursor, wantCursor string
		wantN              int
	}{
		{"", "evt:7", 2},
		{"garbage", "evt:7", 2},
		{"evt:5", "evt:7", 1},
		{"evt:6", "evt:7", 0},
		{"evt:7", "evt:7", 0},
		{"evt:100", "evt:100", 0},
		{"evt:-1", "evt:7", 2},
	} {
		got, cursor := winSessions(events, tt.cursor)
		if len(got) != tt.wantN || cursor != tt.wantCursor {
			t.Errorf("cursor %q: %d sessions, cursor %q; want %d, %q", tt.cursor, len(got), cursor, tt.wantN, tt.wantCursor)
		}
	}
	if got, cursor := winSessions(nil, ""); len(got) != 0 || cursor != "" {
		t.Errorf("no events: %v %q", got, cursor)
	}
}

func TestWinSessionsMaxHistory(t *testing.T) {
	var events []winEvent
	for i := range MaxHistory + 37 {
		// Given out of order: assembly sorts by record ID.
		rec := uint64(MaxHistory + 37 - i)
		events = append(events, winLogon(rec, int(rec), fmt.Sprintf("u%d", rec), winLogonInteractive, rec, ""))
	}
	got, cursor := winSessions(events, "")
	if len(got) != MaxHistory || cursor != fmt.Sprintf("evt:%d", MaxHistory+37) {
		t.Fatalf("%d sessions, cursor %q", len(got), cursor)
	}
	if got[0].GetUser() != `CORP\u38` || got[MaxHistory-1].GetUser() != fmt.Sprintf(`CORP\u%d`, MaxHistory+37) {
		t.Errorf("kept %s … %s", got[0].GetUser(), got[MaxHistory-1].GetUser())
	}
}
