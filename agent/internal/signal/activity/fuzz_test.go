package activity

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"
)

func FuzzParseShowSession(f *testing.F) {
	for _, name := range []string{
		"show_session_gnome_active.txt", "show_session_gnome_idle.txt", "show_session_x11_never.txt",
		"show_session_tty.txt", "show_session_ssh.txt", "show_session_greeter.txt",
	} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte("IdleHint=yes\nIdleSinceHint=18446744073709551615\nType=tty\nClass=user\nActive=yes\nRemote=no\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := parseShowSession(data)
		d, ok := s.idle(fixtureNow)
		if d < 0 {
			t.Fatalf("negative idle %v", d)
		}
		if ok && !s.local() {
			t.Fatalf("ok for a non-local session %+v", s)
		}
	})
}

func FuzzParseSessionList(f *testing.F) {
	f.Add(readFixture(f, "list_sessions_v252.txt"))
	f.Add(readFixture(f, "list_sessions_v256.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids := parseSessionList(data)
		if len(ids) > maxSessions {
			t.Fatalf("%d ids", len(ids))
		}
		for _, id := range ids {
			if !validSessionID(id) || id[0] == '-' {
				t.Fatalf("invalid id %q", id)
			}
		}
	})
}

func FuzzMacHIDIdleTime(f *testing.F) {
	f.Add(readFixture(f, "ioreg_iohidsystem.plist"))
	f.Add([]byte(`<plist version="1.0"><array><dict><key>HIDIdleTime</key><data>AMqaOwAAAAA=</data></dict></array></plist>`))
	f.Add([]byte("bplist00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ns, err := macHIDIdleTime(data)
		if err != nil && ns != 0 {
			t.Fatalf("error %v with value %d", err, ns)
		}
	})
}

func FuzzWTSIdle(f *testing.F) {
	f.Add(wtsBuffer(134_117_000_000_000_000-900_000_000, 134_117_000_000_000_000))
	f.Add(wtsBuffer(0, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ok, err := wtsIdle(data)
		if d < 0 || (err != nil && ok) {
			t.Fatalf("got (%v, %v, %v)", d, ok, err)
		}
		if len(data) >= wtsInfoSize && err != nil {
			t.Fatalf("full buffer rejected: %v", err)
		}
	})
}

// FuzzParseGdbusIdle: whatever gdbus (or whatever answers on the bus)
// prints, the parser accepts only "(uint64 N,)\n" or "(uint32 N,)\n" of the
// type asked, and the idle time it returns is N milliseconds, never
// negative; it prints back to the same bytes.
func FuzzParseGdbusIdle(f *testing.F) {
	for _, s := range []string{"(uint64 42500,)\n", "(uint32 4294967295,)\n", "(uint64 18446744073709551615,)\n",
		"(uint64 0,)\n", "(uint64 007,)\n", "(uint32 4294967296,)\n", "(uint64 1, uint64 2)\n", "(int64 -5,)\n",
		"(@t 5,)\n", "(uint64 5,)", "Error: GDBus.Error:org.freedesktop.DBus.Error.NotSupported: no\n"} {
		f.Add([]byte(s), s[1:7] == "uint32")
	}
	f.Fuzz(func(t *testing.T, data []byte, u32 bool) {
		typ := "uint64"
		if u32 {
			typ = "uint32"
		}
		d, err := parseGdbusIdle(data, typ)
		if err != nil {
			if d != 0 {
				t.Fatalf("error %v with %v", err, d)
			}
			return
		}
		if d < 0 || d%time.Millisecond != 0 {
			t.Fatalf("idle %v", d)
		}
		ms := uint64(d / time.Millisecond)
		if ms < maxIdleMillis || !bytes.HasPrefix(data, []byte("("+typ+" ")) {
			if want := "(" + typ + " " + strconv.FormatUint(ms, 10) + ",)\n"; string(data) != want {
				t.Fatalf("%q parsed as %v", data, d)
			}
		}
	})
}

// TestLiveIdle runs this OS's reader; the result depends on the machine,
// so it is only logged.
func TestLiveIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, ok, err := LiveIdle(ctx)
	t.Logf("LiveIdle: idle=%v ok=%v err=%v", d, ok, err)
	if d < 0 {
		t.Errorf("negative idle %v", d)
	}
	// And the readers the agent runs on the live system.
	idle, rhythm := Readers("/")
	for name, f := range map[string]IdleFunc{"idle": idle, "rhythm": rhythm} {
		if f == nil {
			continue
		}
		d, ok, err := f(ctx)
		t.Logf("Readers %s: idle=%v ok=%v err=%v", name, d, ok, err)
		if d < 0 {
			t.Errorf("negative idle %v", d)
		}
	}
}
