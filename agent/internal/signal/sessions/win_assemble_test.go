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

// The fixture story: RDP logon, disconnect, reconnect from elsewhere,
// logoff; plus the documented console logon and a service logon.
func TestWinSessionsFixtures(t *testing.T) {
	var events []winEvent
	for _, name := range []string{
		"4624-osquery.xml", "4624-msdocs.xml", "4634.CONSTRUCTED.xml", "4624-rdp-type10.CONSTRUCTED.xml",
		"4647.CONSTRUCTED.xml", "4779-rdp.CONSTRUCTED.xml", "4778-msdocs.DERIVED.xml",
	} {
		ev, err := winParseEvent(winReadFixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		events = append(events, ev)
	}
	got, cursor := winSessions(events, "")
	if cursor != "evt:237701" {
		t.Errorf("cursor = %q", cursor)
	}
	winCheckSessions(t, got,
		`WIN-GG82ULGC9GO\Administrator|TYPE_CONSOLE|||2015-11-12T00:24:35.0797852Z|-`,
		`CONTOSO\ladmin|TYPE_REMOTE_DESKTOP|203.0.113.7||2015-09-10T22:58:01.125Z|2015-09-10T23:01:12.5Z`,
		`CONTOSO\ladmin|TYPE_REMOTE_DESKTOP|10.0.0.100|RDP-Tcp#6|2015-09-10T23:05:29.7438672Z|2015-09-10T23:40:00Z`,
	)
	// Only the logoffs are after this cursor: nothing to report, cursor moves.
	got, cursor = winSessions(events, "evt:237651")
	winCheckSessions(t, got)
	if cursor != "evt:237701" {
		t.Errorf("cursor = %q", cursor)
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
		winLogon(17, 5, "alice", winLogonUnlock, 0x300, "::1"),
		winLogon(18, 6, "alice", winLogonUnlock, 0x301, "198.51.100.4"),
		winLogon(19, 7, "carol", winLogonCachedInteractive, 0x400, "-"),
		winLogon(20, 8, "dave", winLogonRemoteInteractive, 0x500, ""),
		winOff(21, 60, winEventLogoff, 0x300),
		winOff(22, 100, winEventUserLogoff, 0x101), // ends alice's split logon
		winOff(23, 101, winEventLogoff, 0x100),     // already ended: ignored
		winOff(24, 102, winEventLogoff, 0x999),     // unknown logon
		winLogon(25, 103, "alice", winLogonInteractive, 0x100, ""),
	}
	events[10].Workstation = "DAVE-HOME"
	got, cursor := winSessions(events, "")
	if cursor != "evt:25" {
		t.Errorf("cursor = %q", cursor)
	}
	winCheckSessions(t, got,
		`CORP\alice|TYPE_CONSOLE|||2026-03-02T09:00:00Z|2026-03-02T09:01:40Z`,
		`CORP\alice|TYPE_CONSOLE|||2026-03-02T09:00:05Z|2026-03-02T09:01:00Z`,
		`CORP\alice|TYPE_REMOTE_DESKTOP|198.51.100.4||2026-03-02T09:00:06Z|-`,
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
