package activity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureNow is the "now" the loginctl fixtures were written for.
var fixtureNow = time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)

func TestParseSessionList(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"list_sessions_v252.txt", []string{"2", "5", "c1"}},
		{"list_sessions_v256.txt", []string{"3", "12", "c1"}},
	}
	for _, tt := range tests {
		if got := parseSessionList(readFixture(t, tt.file)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.file, got, tt.want)
		}
	}
	if got := parseSessionList([]byte("1 a\n1 b\n$(x) c\n;rm d\n\n")); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("dedupe/validation: got %q", got)
	}
}

func TestParseShowSession(t *testing.T) {
	got := parseShowSession(readFixture(t, "show_session_gnome_idle.txt"))
	want := loginSession{
		IdleHint: true, IdleSinceHint: 1767226200000000, Active: true, Remote: false,
		Type: "wayland", Class: "user", hasIdleHint: true, hasIdleSince: true,
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// CRLF, junk lines, unknown keys, values with '='.
	got = parseShowSession([]byte("junk\r\nIdleHint=yes\r\nName=a=b\nIdleSinceHint=-5\nActive=maybe\n"))
	if !got.IdleHint || !got.hasIdleHint || got.hasIdleSince || got.Active {
		t.Errorf("messy input: got %+v", got)
	}
}

func TestSessionIdle(t *testing.T) {
	tests := []struct {
		file   string
		want   time.Duration
		wantOK bool
	}{
		{"show_session_gnome_active.txt", 0, true},
		{"show_session_gnome_idle.txt", 50 * time.Minute, true},
		{"show_session_x11_never.txt", 0, false},
		{"show_session_tty.txt", 2 * time.Minute, true},
		{"show_session_ssh.txt", 0, false},
		{"show_session_greeter.txt", 0, false},
		{"show_session_background.txt", 0, false},
	}
	for _, tt := range tests {
		d, ok := parseShowSession(readFixture(t, tt.file)).idle(fixtureNow)
		if d != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got (%v, %v), want (%v, %v)", tt.file, d, ok, tt.want, tt.wantOK)
		}
	}
	// Idle hint in the future (clock set back): 0, not negative.
	s := parseShowSession(readFixture(t, "show_session_gnome_idle.txt"))
	if d, ok := s.idle(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); d != 0 || !ok {
		t.Errorf("future hint: got (%v, %v)", d, ok)
	}
}

func TestLeastIdle(t *testing.T) {
	var all []loginSession
	for _, f := range []string{"show_session_gnome_idle.txt", "show_session_tty.txt", "show_session_ssh.txt", "show_session_x11_never.txt"} {
		all = append(all, parseShowSession(readFixture(t, f)))
	}
	if d, ok := leastIdle(all, fixtureNow); d != 2*time.Minute || !ok {
		t.Errorf("got (%v, %v), want (2m, true)", d, ok)
	}
	if _, ok := leastIdle(all[2:], fixtureNow); ok {
		t.Error("ssh + never-hinting desktop: want ok=false")
	}
	if _, ok := leastIdle(nil, fixtureNow); ok {
		t.Error("no sessions: want ok=false")
	}
}

func TestMacHIDIdleTime(t *testing.T) {
	ns, err := macHIDIdleTime(readFixture(t, "ioreg_iohidsystem.plist"))
	if err != nil || ns != 42_500_000_000 {
		t.Fatalf("got (%d, %v), want 42500000000", ns, err)
	}
	if _, err := macHIDIdleTime(nil); !errors.Is(err, errMacNoIdle) {
		t.Errorf("empty output: got %v, want errMacNoIdle", err)
	}
	empty := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><array/></plist>`)
	if _, err := macHIDIdleTime(empty); !errors.Is(err, errMacNoIdle) {
		t.Errorf("no entries: got %v, want errMacNoIdle", err)
	}
	if _, err := macHIDIdleTime([]byte("<plist><array><dict>")); err == nil || errors.Is(err, errMacNoIdle) {
		t.Errorf("broken plist: got %v, want a decoding error", err)
	}
	// Old releases: 8 bytes of data, little-endian; and a property on a child.
	data := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><array><dict>
<key>IOObjectClass</key><string>IOHIDSystem</string>
<key>IORegistryEntryChildren</key><array><dict><key>HIDIdleTime</key><data>AMqaOwAAAAA=</data></dict></array>
</dict></array></plist>`)
	if ns, err := macHIDIdleTime(data); err != nil || ns != 1_000_000_000 {
		t.Errorf("data form on child: got (%d, %v), want 1e9", ns, err)
	}
	// Negative integer: not a usable value.
	neg := []byte(`<plist version="1.0"><array><dict><key>HIDIdleTime</key><integer>-1</integer></dict></array></plist>`)
	if _, err := macHIDIdleTime(neg); !errors.Is(err, errMacNoIdle) {
		t.Errorf("negative: got %v, want errMacNoIdle", err)
	}
}

func TestWTSInfoLayout(t *testing.T) {
	if n := binary.Size(wtsInfoW{}); n != wtsInfoSize {
		t.Errorf("binary.Size(wtsInfoW) = %d, want %d", n, wtsInfoSize)
	}
	if unsafe.Sizeof(uintptr(0)) == 8 {
		if n := unsafe.Sizeof(wtsInfoW{}); n != wtsInfoSize {
			t.Errorf("unsafe.Sizeof(wtsInfoW) = %d, want %d", n, wtsInfoSize)
		}
	}
	var w wtsInfoW
	if off := unsafe.Offsetof(w.LastInputTime); off != 192 {
		t.Errorf("LastInputTime offset %d, want 192", off)
	}
	if off := unsafe.Offsetof(w.CurrentTime); off != 208 {
		t.Errorf("CurrentTime offset %d, want 208", off)
	}
}

// wtsBuffer builds a WTSINFOW as the API returns it.
func wtsBuffer(last, current int64) []byte {
	info := wtsInfoW{State: 0, SessionID: 1, LastInputTime: last, CurrentTime: current, LogonTime: 133_000_000_000_000_000}
	copy(info.WinStationName[:], utf16ASCII("Console"))
	copy(info.UserName[:], utf16ASCII("alice"))
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, &info); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func utf16ASCII(s string) []uint16 {
	u := make([]uint16, len(s))
	for i := range s {
		u[i] = uint16(s[i])
	}
	return u
}

func TestWTSIdle(t *testing.T) {
	const cur = 134_117_000_000_000_000 // a FILETIME in 2026
	tests := []struct {
		name   string
		b      []byte
		want   time.Duration
		wantOK bool
		err    bool
	}{
		{"idle 90s", wtsBuffer(cur-900_000_000, cur), 90 * time.Second, true, false},
		{"just now", wtsBuffer(cur, cur), 0, true, false},
		{"input after current", wtsBuffer(cur+10, cur), 0, true, false},
		{"console reports 0", wtsBuffer(0, cur), 0, false, false},
		{"no current time", wtsBuffer(cur, 0), 0, false, false},
		{"short buffer", wtsBuffer(cur-1, cur)[:200], 0, false, true},
		{"longer buffer", append(wtsBuffer(cur-10_000_000, cur), 0, 0, 0, 0), time.Second, true, false},
	}
	for _, tt := range tests {
		d, ok, err := wtsIdle(tt.b)
		if d != tt.want || ok != tt.wantOK || (err != nil) != tt.err {
			t.Errorf("%s: got (%v, %v, %v), want (%v, %v, err=%v)", tt.name, d, ok, err, tt.want, tt.wantOK, tt.err)
		}
	}
	// The fields land where the C struct has them.
	b := wtsBuffer(0x0102030405060708, 0x1112131415161718)
	if got := binary.LittleEndian.Uint64(b[192:]); got != 0x0102030405060708 {
		t.Errorf("LastInputTime bytes at 192 = %#x", got)
	}
	if got := binary.LittleEndian.Uint64(b[208:]); got != 0x1112131415161718 {
		t.Errorf("CurrentTime bytes at 208 = %#x", got)
	}
	if !strings.HasPrefix(string(b[32:46]), "C\x00o\x00n\x00s\x00o\x00l\x00e\x00") {
		t.Errorf("WinStationName not at 32: %q", b[32:46])
	}
}

func TestUntilNextMinute(t *testing.T) {
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		now  time.Time
		want time.Duration
	}{
		{base, 61 * time.Second},
		{base.Add(30 * time.Second), 31 * time.Second},
		{base.Add(59*time.Second + 500*time.Millisecond), 1500 * time.Millisecond},
	} {
		if got := untilNextMinute(tt.now); got != tt.want {
			t.Errorf("untilNextMinute(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

// TestParseGdbusIdle: gdbus's answers from Mutter (uint64 ms) and
// kscreenlocker (uint32 ms) are read; any other shape is an error.
func TestParseGdbusIdle(t *testing.T) {
	for _, tt := range []struct {
		out, typ string
		want     time.Duration
		ok       bool
	}{
		{"(uint64 42500,)\n", "uint64", 42500 * time.Millisecond, true},
		{"(uint64 0,)\n", "uint64", 0, true},
		{"(uint32 7250,)\n", "uint32", 7250 * time.Millisecond, true},
		{"(uint32 4294967295,)\n", "uint32", 4294967295 * time.Millisecond, true},
		{"(uint64 18446744073709551615,)\n", "uint64", time.Duration(maxIdleMillis) * time.Millisecond, true},
		{"(uint32 4294967296,)\n", "uint32", 0, false}, // past uint32
		{"(uint32 7250,)\n", "uint64", 0, false},       // another type than asked
		{"(uint64 42500,)", "uint64", 0, false},        // no newline
		{"(uint64 42500,)\n\n", "uint64", 0, false},
		{"(uint64 042500,)\n", "uint64", 0, false},
		{"(uint64 -1,)\n", "uint64", 0, false},
		{"(uint64 +1,)\n", "uint64", 0, false},
		{"(uint64 1, uint64 2)\n", "uint64", 0, false},
		{"(@t 5,)\n", "uint64", 0, false},
		{"('42',)\n", "uint64", 0, false},
		{"()\n", "uint64", 0, false},
		{"", "uint64", 0, false},
		{"(uint64 5,)\n", "int64", 0, false},
	} {
		got, err := parseGdbusIdle([]byte(tt.out), tt.typ)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseGdbusIdle(%q, %s) = %v, %v; want %v ok=%v", tt.out, tt.typ, got, err, tt.want, tt.ok)
		}
	}
}
