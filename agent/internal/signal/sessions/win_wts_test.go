package sessions

import (
	"encoding/binary"
	"testing"
	"time"
)

func winClientAddr(family uint32, addr ...byte) []byte {
	b := make([]byte, winWTSClientAddressSize)
	binary.LittleEndian.PutUint32(b, family)
	copy(b[6:], addr)
	return b
}

func TestWinParseWTSClientAddress(t *testing.T) {
	v6 := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	for _, tt := range []struct {
		in   []byte
		want string
	}{
		{winClientAddr(winAFInet, 203, 0, 113, 7), "203.0.113.7"},
		{winClientAddr(winAFInet, 127, 0, 0, 1), ""},
		{winClientAddr(winAFInet, 0, 0, 0, 0), ""},
		{winClientAddr(winAFInet6, v6...), "2001:db8::1"},
		{winClientAddr(0, 1, 2, 3, 4), ""},
		{winClientAddr(winAFInet, 1, 2, 3, 4)[:23], ""},
		{nil, ""},
	} {
		if got := winParseWTSClientAddress(tt.in); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWinCurrentSession(t *testing.T) {
	info := make([]byte, winWTSInfoSize)
	logon := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	binary.LittleEndian.PutUint64(info[winWTSInfoLogonTimeOffset:], uint64(logon.UnixNano()/100)+116444736000000000)

	s := winCurrentSession(winWTSSession{WinStation: "RDP-Tcp#3", User: "alice", Domain: "CORP", Protocol: 2,
		ClientAddress: winClientAddr(winAFInet, 198, 51, 100, 23), Info: info})
	if got := winFmtSession(s); got != `CORP\alice|TYPE_REMOTE_DESKTOP|198.51.100.23|RDP-Tcp#3|2026-03-02T08:30:00Z|-` {
		t.Errorf("rdp: %s", got)
	}
	s = winCurrentSession(winWTSSession{WinStation: "Console", User: "bob", Protocol: 0,
		ClientAddress: winClientAddr(winAFInet, 198, 51, 100, 23), Info: info[:100]})
	if got := winFmtSession(s); got != `bob|TYPE_CONSOLE||Console|-|-` {
		t.Errorf("console: %s", got)
	}
	s = winCurrentSession(winWTSSession{WinStation: "Console", User: "bob", Protocol: -1})
	if s.GetType().String() != "TYPE_CONSOLE" {
		t.Errorf("unknown protocol on Console: %v", s.GetType())
	}
	for _, u := range []string{"", "SYSTEM", "DWM-2", "HOST$"} {
		if s := winCurrentSession(winWTSSession{User: u, Protocol: 0}); s != nil {
			t.Errorf("%q: want nil, got %v", u, s)
		}
	}
}

func TestWinFiletime(t *testing.T) {
	if !winFiletime(0).IsZero() || !winFiletime(116444736000000000).IsZero() || !winFiletime(^uint64(0)).IsZero() {
		t.Error("want zero for unset or implausible FILETIME")
	}
	if got := winFiletime(116444736000000000 + 15); !got.Equal(time.Unix(0, 1500)) {
		t.Errorf("got %v", got)
	}
}
