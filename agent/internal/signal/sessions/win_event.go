package sessions

// Pure parser for Windows Security log events rendered as XML
// (EvtRender with EvtRenderEventXml, the same text Event Viewer shows in
// its "XML View" and wevtutil qe /f:xml prints). It compiles and is
// tested on every OS; sessions_windows.go reads the events.
//
// The schema (learn.microsoft.com, "4624(S): An account was successfully
// logged on" and the pages for 4634, 4647, 4778, 4779):
//
//	<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
//	  <System>
//	    <EventID>4624</EventID>
//	    <TimeCreated SystemTime="2015-11-12T00:24:35.079785200Z"/>
//	    <EventRecordID>211</EventRecordID>
//	    ...
//	  </System>
//	  <EventData>
//	    <Data Name="TargetUserName">Administrator</Data>
//	    ...
//	  </EventData>
//	</Event>
//
// EventData fields read, per event:
//
//	4624 logon:        TargetUserName, TargetDomainName, TargetLogonId,
//	                   TargetLinkedLogonId, LogonType, IpAddress,
//	                   WorkstationName
//	4634 logoff:       TargetUserName, TargetDomainName, TargetLogonId,
//	                   LogonType
//	4647 user logoff:  TargetUserName, TargetDomainName, TargetLogonId
//	4778 reconnected,  AccountName, AccountDomain, LogonID, SessionName,
//	4779 disconnected: ClientName, ClientAddress
//
// The input is untrusted: it is size-capped, parsed with encoding/xml
// (which neither fetches external entities nor expands custom ones), and
// every numeric field is parsed leniently; an unparseable field is left
// zero rather than failing the whole event.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Security event IDs the sessions signal reads.
const (
	winEventLogon        = 4624
	winEventLogoff       = 4634
	winEventUserLogoff   = 4647
	winEventReconnect    = 4778
	winEventDisconnect   = 4779
	winMaxEventXML       = 64 << 10 // a Security event is a few KiB
	winMaxEventDataItems = 128      // 4624 version 2 has 27
	winMaxFieldLen       = 1024     // longer Data values are truncated
)

// Logon types (the LogonType field of 4624 and 4634).
const (
	winLogonInteractive       = 2
	winLogonNetwork           = 3
	winLogonBatch             = 4
	winLogonService           = 5
	winLogonUnlock            = 7
	winLogonNetworkCleartext  = 8
	winLogonNewCredentials    = 9
	winLogonRemoteInteractive = 10
	winLogonCachedInteractive = 11
	winLogonCachedRemote      = 12
	winLogonCachedUnlock      = 13
)

// winEvent is the part of one Security event the sessions signal uses.
type winEvent struct {
	// RecordID is System/EventRecordID, the log position.
	RecordID uint64
	// EventID is System/EventID (4624, 4634, 4647, 4778, 4779, or another
	// ID, which the assembly ignores).
	EventID uint32
	// Time is System/TimeCreated/@SystemTime; zero when missing.
	Time time.Time
	// User and Domain are TargetUserName/TargetDomainName (4624, 4634,
	// 4647) or AccountName/AccountDomain (4778, 4779); "-" becomes "".
	User   string
	Domain string
	// LogonID is TargetLogonId (4624, 4634, 4647) or LogonID (4778,
	// 4779), a hexadecimal LUID such as "0x8dcdc".
	LogonID uint64
	// LinkedLogonID is TargetLinkedLogonId of 4624 (version 2): the other
	// half of a split-token (elevated / filtered) logon; 0 when none.
	LinkedLogonID uint64
	// LogonType is LogonType of 4624/4634; 0 when absent.
	LogonType int
	// Address is IpAddress (4624) or ClientAddress (4778/4779) as
	// recorded; "-" becomes "".
	Address string
	// Workstation is WorkstationName (4624) or ClientName (4778/4779).
	Workstation string
	// SessionName is SessionName of 4778/4779, e.g. "RDP-Tcp#6" or
	// "Console".
	SessionName string
}

// winXMLEvent is the encoding/xml view of <Event>. Names match on the
// local name, whatever the namespace.
type winXMLEvent struct {
	System struct {
		EventID     string `xml:"EventID"`
		RecordID    string `xml:"EventRecordID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
	} `xml:"System"`
	EventData struct {
		Data []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"Data"`
	} `xml:"EventData"`
}

// winParseEvent parses one event rendered as XML. The document may be a
// bare <Event> or an <Events> wrapper (wevtutil /e:Events); the first
// <Event> is read.
func winParseEvent(data []byte) (ev winEvent, err error) {
	if len(data) > winMaxEventXML {
		return winEvent{}, fmt.Errorf("sessions: event XML is %d bytes, over the %d-byte cap", len(data), winMaxEventXML)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	// EvtRender declares no encoding, but wevtutil files say utf-8 (and
	// UTF-16 once re-encoded); only UTF-8 text reaches us, so accept the
	// declaration whatever it names and read the bytes as UTF-8.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var start xml.StartElement
	for depth := 0; ; {
		tok, err := dec.Token()
		if err == io.EOF {
			return winEvent{}, errors.New("sessions: no <Event> element")
		}
		if err != nil {
			return winEvent{}, fmt.Errorf("sessions: event XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "Event" {
				start = se
				break
			}
			depth++
			if depth > 2 {
				return winEvent{}, errors.New("sessions: no <Event> element")
			}
		}
	}
	var x winXMLEvent
	if err := dec.DecodeElement(&x, &start); err != nil {
		return winEvent{}, fmt.Errorf("sessions: event XML: %w", err)
	}
	if len(x.EventData.Data) > winMaxEventDataItems {
		return winEvent{}, fmt.Errorf("sessions: event has %d Data items, over the cap of %d", len(x.EventData.Data), winMaxEventDataItems)
	}

	id, err := strconv.ParseUint(strings.TrimSpace(x.System.EventID), 10, 32)
	if err != nil {
		return winEvent{}, fmt.Errorf("sessions: bad EventID %q", winClip(x.System.EventID))
	}
	ev.EventID = uint32(id)
	ev.RecordID, err = strconv.ParseUint(strings.TrimSpace(x.System.RecordID), 10, 64)
	if err != nil {
		return winEvent{}, fmt.Errorf("sessions: bad EventRecordID %q", winClip(x.System.RecordID))
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(x.System.TimeCreated.SystemTime)); err == nil {
		ev.Time = t.UTC()
	}

	fields := make(map[string]string, len(x.EventData.Data))
	for _, d := range x.EventData.Data {
		if _, dup := fields[d.Name]; !dup {
			fields[d.Name] = winField(d.Value)
		}
	}
	switch ev.EventID {
	case winEventLogon, winEventLogoff, winEventUserLogoff:
		ev.User = fields["TargetUserName"]
		ev.Domain = fields["TargetDomainName"]
		ev.LogonID = winParseHex(fields["TargetLogonId"])
		ev.LinkedLogonID = winParseHex(fields["TargetLinkedLogonId"])
		if n, err := strconv.Atoi(fields["LogonType"]); err == nil && n >= 0 && n < 1<<16 {
			ev.LogonType = n
		}
		ev.Address = fields["IpAddress"]
		ev.Workstation = fields["WorkstationName"]
	case winEventReconnect, winEventDisconnect:
		ev.User = fields["AccountName"]
		ev.Domain = fields["AccountDomain"]
		ev.LogonID = winParseHex(fields["LogonID"])
		ev.Address = fields["ClientAddress"]
		ev.Workstation = fields["ClientName"]
		ev.SessionName = fields["SessionName"]
	}
	return ev, nil
}

// winField trims a Data value, caps its length and maps the "-" the
// Security log writes for an empty field to "".
func winField(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > winMaxFieldLen {
		s = strings.ToValidUTF8(s[:winMaxFieldLen], "")
	}
	if s == "-" {
		return ""
	}
	return s
}

// winParseHex parses a LUID as the log writes it ("0x8dcdc"); 0 when
// unparseable.
func winParseHex(s string) uint64 {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0
	}
	return n
}

// winClip shortens untrusted text for an error message.
func winClip(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}
