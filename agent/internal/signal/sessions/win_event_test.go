package sessions

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func winMustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

func winReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "win", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWinParseEventFixtures(t *testing.T) {
	tests := []struct {
		file string
		want winEvent
	}{
		{"4624-msdocs.xml", winEvent{
			RecordID: 211, EventID: 4624,
			Time: winMustTime(t, "2015-11-12T00:24:35.0797852Z"),
			User: "Administrator", Domain: "WIN-GG82ULGC9GO",
			LogonID: 0x8dcdc, LogonType: 2,
			Address: "127.0.0.1", Workstation: "WIN-GG82ULGC9GO",
		}},
		{"4624-osquery.xml", winEvent{
			RecordID: 1599, EventID: 4624,
			Time: winMustTime(t, "2020-06-05T16:12:02.4523553Z"),
			User: "SYSTEM", Domain: "NT AUTHORITY",
			LogonID: 0x3e7, LogonType: 5,
		}},
		// A logon session of omerbenamram/evtx's samples/security.evtx:
		// fsir logs on at the console, logs off (4647), the session ends
		// (4634); and an anonymous network logon just before.
		{"4624-type2-evtx.xml", winEvent{
			RecordID: 2249, EventID: 4624,
			Time: winMustTime(t, "2017-04-14T01:19:50.1880056Z"),
			User: "fsir", Domain: "WIN-03DLIIOFRRA",
			LogonID: 0x38112, LogonType: 2,
			Address: "127.0.0.1", Workstation: "WIN-03DLIIOFRRA",
		}},
		{"4624-type3-evtx.xml", winEvent{
			RecordID: 2241, EventID: 4624,
			Time: winMustTime(t, "2017-04-14T01:19:46.4740280Z"),
			User: "ANONYMOUS LOGON", Domain: "NT AUTHORITY",
			LogonID: 0x24bf4, LogonType: 3,
		}},
		{"4647-evtx.xml", winEvent{
			RecordID: 2253, EventID: 4647,
			Time: winMustTime(t, "2017-04-14T01:20:20.1230577Z"),
			User: "fsir", Domain: "WIN-03DLIIOFRRA", LogonID: 0x38112,
		}},
		{"4634-evtx.xml", winEvent{
			RecordID: 2254, EventID: 4634,
			Time: winMustTime(t, "2017-04-14T01:20:24.5534654Z"),
			User: "fsir", Domain: "WIN-03DLIIOFRRA", LogonID: 0x38112, LogonType: 2,
		}},
		{"4778-msdocs.DERIVED.xml", winEvent{
			RecordID: 237651, EventID: 4778,
			Time: winMustTime(t, "2015-09-10T23:05:29.7438672Z"),
			User: "ladmin", Domain: "CONTOSO", LogonID: 0x1e01f6,
			Address: "10.0.0.100", Workstation: "WIN81", SessionName: "RDP-Tcp#6",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := winParseEvent(winReadFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// winReadEvents parses a fixture of one event per line, as
// scripts/evtx-xml.py and scripts/nxlog-json-xml.py print them.
func winReadEvents(t testing.TB, name string) []winEvent {
	t.Helper()
	var evs []winEvent
	for i, line := range strings.Split(string(winReadFixture(t, name)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		ev, err := winParseEvent([]byte(line))
		if err != nil {
			t.Fatalf("%s line %d: %v", name, i+1, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// Real RDP and cached-credential records (testdata/win/README.md): each
// field the agent reads, exactly.
func TestWinParseEventRealRDP(t *testing.T) {
	tests := []struct {
		file string
		line int // 0-based index of the event in the file
		want winEvent
	}{
		// OTRF WORKSTATION5: pgustavo's RDP logon from the Mac
		// "robertos-mbp", the two halves of a split token.
		{"rdp-reconnect-otrf.DERIVED.events", 0, winEvent{
			RecordID: 48135, EventID: 4624, Time: winMustTime(t, "2020-09-04T07:08:20Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0xa96e8, LinkedLogonID: 0xa992d,
			LogonType: 10, Address: "1.2.3.4", Workstation: "WORKSTATION5",
		}},
		{"rdp-reconnect-otrf.DERIVED.events", 1, winEvent{
			RecordID: 48137, EventID: 4624, Time: winMustTime(t, "2020-09-04T07:08:20Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0xa992d, LinkedLogonID: 0xa96e8,
			LogonType: 10, Address: "1.2.3.4", Workstation: "WORKSTATION5",
		}},
		{"rdp-reconnect-otrf.DERIVED.events", 2, winEvent{
			RecordID: 49208, EventID: 4779, Time: winMustTime(t, "2020-09-04T07:08:34Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0xa992d,
			Address: "1.2.3.4", Workstation: "robertos-mbp", SessionName: "RDP-Tcp#0",
		}},
		{"rdp-reconnect-otrf.DERIVED.events", 3, winEvent{
			RecordID: 49287, EventID: 4778, Time: winMustTime(t, "2020-09-04T07:08:35Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0xa992d,
			Address: "1.2.3.4", Workstation: "robertos-mbp", SessionName: "RDP-Tcp#1",
		}},
		// The unlock after the reconnect: its second pair has no address.
		{"rdp-reconnect-otrf.DERIVED.events", 8, winEvent{
			RecordID: 49480, EventID: 4624, Time: winMustTime(t, "2020-09-04T07:08:38Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0x105bfe, LinkedLogonID: 0x105f4e,
			LogonType: 7, Workstation: "WORKSTATION5",
		}},
		{"rdp-reconnect-otrf.DERIVED.events", 11, winEvent{
			RecordID: 49491, EventID: 4634, Time: winMustTime(t, "2020-09-04T07:08:38Z"),
			User: "pgustavo", Domain: "THESHIRE", LogonID: 0x105bfe, LogonType: 7,
		}},
		// OTRF MKT01: a UAC credential prompt (CredPro, consent.exe).
		{"uac-credpro-otrf.DERIVED.events", 0, winEvent{
			RecordID: 1, EventID: 4624, Time: winMustTime(t, "2023-08-15T09:54:30.820Z"),
			User: "pedro.gustavo", Domain: "PANDALAB", LogonID: 0xc10d0f, LinkedLogonID: 0xc10d27,
			LogonType: 11, Address: "::1", Workstation: "MKT01",
		}},
		{"uac-credpro-otrf.DERIVED.events", 2, winEvent{
			RecordID: 3, EventID: 4634, Time: winMustTime(t, "2023-08-15T09:54:30.822Z"),
			User: "pedro.gustavo", Domain: "PANDALAB", LogonID: 0xc10d27, LogonType: 11,
		}},
		// EVTX-to-MITRE-Attack fs01: admmarsid takes admmig's RDP session.
		{"rdp-hijack-evtx.events", 0, winEvent{
			RecordID: 1829816, EventID: 4779, Time: winMustTime(t, "2021-05-14T21:01:05.3700303Z"),
			User: "admmig", Domain: "OFFSEC", LogonID: 0x13b5e1e,
			Address: "10.23.23.9", Workstation: "JUMP01", SessionName: "RDP-Tcp#8",
		}},
		{"rdp-hijack-evtx.events", 1, winEvent{
			RecordID: 1829819, EventID: 4778, Time: winMustTime(t, "2021-05-14T21:01:05.8317487Z"),
			User: "admmarsid", Domain: "OFFSEC", LogonID: 0x6a423,
			Address: "10.23.23.9", Workstation: "JUMP01", SessionName: "RDP-Tcp#8",
		}},
	}
	counts := map[string]int{"rdp-reconnect-otrf.DERIVED.events": 12, "uac-credpro-otrf.DERIVED.events": 3, "rdp-hijack-evtx.events": 2}
	for file, n := range counts {
		if got := len(winReadEvents(t, file)); got != n {
			t.Errorf("%s: %d events, want %d", file, got, n)
		}
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s#%d", tt.file, tt.line), func(t *testing.T) {
			got := winReadEvents(t, tt.file)[tt.line]
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The 4778 sample as Microsoft published it is Event Viewer display text
// ("- " collapse markers between elements, a Markdown escape in the
// session name). encoding/xml reads the markers as character data between
// elements, so it parses; the escape stays in the value.
func TestWinParseEventEventViewerText(t *testing.T) {
	got, err := winParseEvent(winReadFixture(t, "4778-msdocs-eventviewer-xmlview.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := winEvent{
		RecordID: 237651, EventID: 4778,
		Time: winMustTime(t, "2015-09-10T23:05:29.7438672Z"),
		User: "ladmin", Domain: "CONTOSO", LogonID: 0x1e01f6,
		Address: "10.0.0.100", Workstation: "WIN81", SessionName: `RDP-Tcp\#6`,
	}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestWinParseEventErrors(t *testing.T) {
	const ok = `<Event><System><EventID>4624</EventID><EventRecordID>7</EventRecordID></System></Event>`
	if _, err := winParseEvent([]byte(ok)); err != nil {
		t.Fatalf("minimal event: %v", err)
	}
	bad := map[string]string{
		"empty":     ``,
		"not xml":   `hello`,
		"no event":  `<Events><Other/></Events>`,
		"deep":      `<a><b><c><Event/></c></b></a>`,
		"no id":     `<Event><System><EventRecordID>7</EventRecordID></System></Event>`,
		"bad id":    `<Event><System><EventID>x</EventID><EventRecordID>7</EventRecordID></System></Event>`,
		"no record": `<Event><System><EventID>4624</EventID></System></Event>`,
		"unclosed":  `<Event><System><EventID>4624</EventID>`,
		"entity":    `<!DOCTYPE e [<!ENTITY x "y">]><Event><System><EventID>&x;</EventID></System></Event>`,
		"too big":   `<Event>` + strings.Repeat(" ", winMaxEventXML) + `</Event>`,
		"too many data": `<Event><System><EventID>4624</EventID><EventRecordID>7</EventRecordID></System><EventData>` +
			strings.Repeat(`<Data Name="x">y</Data>`, winMaxEventDataItems+1) + `</EventData></Event>`,
	}
	for name, in := range bad {
		if _, err := winParseEvent([]byte(in)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestWinParseEventLenientFields(t *testing.T) {
	in := `<?xml version="1.0" encoding="utf-16"?><Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>` +
		`<EventID Qualifiers="0"> 4624 </EventID><EventRecordID>9</EventRecordID><TimeCreated SystemTime="garbage"/></System>` +
		`<EventData><Data Name="TargetUserName">alice</Data><Data Name="TargetUserName">mallory</Data>` +
		`<Data Name="TargetDomainName">-</Data><Data Name="TargetLogonId">zz</Data><Data Name="LogonType">-1</Data>` +
		`<Data Name="IpAddress">` + strings.Repeat("a", 2*winMaxFieldLen) + `</Data></EventData></Event>`
	ev, err := winParseEvent([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID != 4624 || ev.RecordID != 9 || !ev.Time.IsZero() || ev.User != "alice" || ev.Domain != "" ||
		ev.LogonID != 0 || ev.LogonType != 0 || len(ev.Address) != winMaxFieldLen {
		t.Errorf("got %+v", ev)
	}
}

func FuzzWinParseEvent(f *testing.F) {
	for _, name := range []string{
		"4624-msdocs.xml", "4624-osquery.xml", "4778-msdocs-eventviewer-xmlview.xml",
		"4778-msdocs.DERIVED.xml", "4624-type2-evtx.xml", "4647-evtx.xml", "4634-evtx.xml",
	} {
		f.Add(winReadFixture(f, name))
	}
	for _, name := range []string{"rdp-reconnect-otrf.DERIVED.events", "uac-credpro-otrf.DERIVED.events", "rdp-hijack-evtx.events"} {
		for line := range strings.Lines(string(winReadFixture(f, name))) {
			f.Add([]byte(line))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := winParseEvent(data)
		if err != nil {
			return
		}
		if len(ev.User) > winMaxFieldLen || len(ev.Address) > winMaxFieldLen || len(ev.SessionName) > winMaxFieldLen {
			t.Fatalf("field over cap: %+v", ev)
		}
		// Whatever parses must assemble without panicking.
		winSessions([]winEvent{ev, ev}, "")
	})
}
