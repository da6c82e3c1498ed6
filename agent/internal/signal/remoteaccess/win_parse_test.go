package remoteaccess

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"testing/fstest"
)

// tcpRow4 builds a MIB_TCPROW_OWNER_PID as documented: six DWORDs
// (little-endian), addresses as their bytes in order, ports big-endian in
// the DWORD's first two bytes (the high two bytes are junk Windows may
// leave there, so the test puts some in).
func tcpRow4(state uint32, laddr string, lport uint16, raddr string, rport uint16, pid uint32) []byte {
	r := make([]byte, winTCPRowSize)
	binary.LittleEndian.PutUint32(r[0:], state)
	la, ra := netip.MustParseAddr(laddr).As4(), netip.MustParseAddr(raddr).As4()
	copy(r[4:8], la[:])
	binary.BigEndian.PutUint16(r[8:], lport)
	r[10], r[11] = 0xAB, 0xCD
	copy(r[12:16], ra[:])
	binary.BigEndian.PutUint16(r[16:], rport)
	binary.LittleEndian.PutUint32(r[20:], pid)
	return r
}

// tcpRow6 builds a MIB_TCP6ROW_OWNER_PID.
func tcpRow6(state uint32, laddr string, lscope uint32, lport uint16, raddr string, rport uint16, pid uint32) []byte {
	r := make([]byte, winTCP6RowSize)
	la, ra := netip.MustParseAddr(laddr).As16(), netip.MustParseAddr(raddr).As16()
	copy(r[0:16], la[:])
	binary.LittleEndian.PutUint32(r[16:], lscope)
	binary.BigEndian.PutUint16(r[20:], lport)
	copy(r[24:40], ra[:])
	binary.BigEndian.PutUint16(r[44:], rport)
	binary.LittleEndian.PutUint32(r[48:], state)
	binary.LittleEndian.PutUint32(r[52:], pid)
	return r
}

func tcpTable(rows ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(rows)))
	for _, r := range rows {
		b = append(b, r...)
	}
	return b
}

func TestParseTCPTableOwnerPID4(t *testing.T) {
	b := tcpTable(
		tcpRow4(2, "0.0.0.0", 3389, "0.0.0.0", 0, 1104),
		tcpRow4(5, "192.168.1.23", 50512, "140.82.112.25", 443, 6120),
		tcpRow4(11, "192.168.1.23", 50600, "17.57.146.20", 5223, 77), // TIME_WAIT: dropped
		tcpRow4(2, "127.0.0.1", 7070, "0.0.0.0", 4444, 6120),         // remote port of a listener is junk
	)
	b = append(b, 0, 0, 0, 0) // slack after the rows is ignored
	socks, err := parseTCPTableOwnerPID(b, winAFInet)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Protocol: "tcp", LocalAddr: "0.0.0.0", LocalPort: 3389, RemoteAddr: "0.0.0.0", Listening: true, PID: 1104},
		{Protocol: "tcp", LocalAddr: "192.168.1.23", LocalPort: 50512, RemoteAddr: "140.82.112.25", RemotePort: 443, PID: 6120},
		{Protocol: "tcp", LocalAddr: "127.0.0.1", LocalPort: 7070, RemoteAddr: "0.0.0.0", Listening: true, PID: 6120},
	}
	if !reflect.DeepEqual(socks, want) {
		t.Errorf("got\n%+v\nwant\n%+v", socks, want)
	}
}

func TestParseTCPTableOwnerPID6(t *testing.T) {
	b := tcpTable(
		tcpRow6(2, "::", 0, 3389, "::", 0, 1104),
		tcpRow6(5, "fe80::1", 12, 49700, "fe80::2", 5938, 3000),
		tcpRow6(5, "2001:db8::5", 0, 49701, "2001:db8::9", 443, 3000),
	)
	socks, err := parseTCPTableOwnerPID(b, winAFInet6)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Protocol: "tcp", LocalAddr: "::", LocalPort: 3389, RemoteAddr: "::", Listening: true, PID: 1104},
		{Protocol: "tcp", LocalAddr: "fe80::1%12", LocalPort: 49700, RemoteAddr: "fe80::2", RemotePort: 5938, PID: 3000},
		{Protocol: "tcp", LocalAddr: "2001:db8::5", LocalPort: 49701, RemoteAddr: "2001:db8::9", RemotePort: 443, PID: 3000},
	}
	if !reflect.DeepEqual(socks, want) {
		t.Errorf("got\n%+v\nwant\n%+v", socks, want)
	}
}

func TestParseTCPTableOwnerPIDBounds(t *testing.T) {
	full := tcpTable(tcpRow4(2, "0.0.0.0", 1, "0.0.0.0", 0, 1))
	for _, b := range [][]byte{nil, {1, 0}, full[:len(full)-1], {0xff, 0xff, 0xff, 0xff}} {
		if _, err := parseTCPTableOwnerPID(b, winAFInet); !errors.Is(err, errWinShortTCPTable) {
			t.Errorf("% x: err = %v, want errWinShortTCPTable", b, err)
		}
	}
	if s, err := parseTCPTableOwnerPID([]byte{0, 0, 0, 0}, winAFInet6); err != nil || len(s) != 0 {
		t.Errorf("empty table: %v, %v", s, err)
	}
	if _, err := parseTCPTableOwnerPID(full, 99); err == nil {
		t.Error("unknown family: want an error")
	}
}

func FuzzParseTCPTableOwnerPID(f *testing.F) {
	f.Add(tcpTable(tcpRow4(2, "0.0.0.0", 3389, "0.0.0.0", 0, 4), tcpRow4(5, "10.0.0.1", 5, "10.0.0.2", 6, 7)), false)
	f.Add(tcpTable(tcpRow6(5, "fe80::1", 3, 49700, "fe80::2", 5938, 3000)), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		af, rowSize := winAFInet, winTCPRowSize
		if v6 {
			af, rowSize = winAFInet6, winTCP6RowSize
		}
		socks, err := parseTCPTableOwnerPID(b, af)
		if err != nil {
			if socks != nil {
				t.Fatalf("error %v with sockets", err)
			}
			return
		}
		if n := int(binary.LittleEndian.Uint32(b)); len(socks) > n || 4+n*rowSize > len(b) {
			t.Fatalf("%d sockets from %d entries in %d bytes", len(socks), n, len(b))
		}
		for _, s := range socks {
			if s.Protocol != "tcp" || s.LocalPort > 65535 || s.RemotePort > 65535 || s.PID < 0 || (s.Listening && s.RemotePort != 0) {
				t.Fatalf("bad socket %+v", s)
			}
			if _, err := netip.ParseAddr(s.RemoteAddr); err != nil {
				t.Fatalf("remote address %q: %v", s.RemoteAddr, err)
			}
		}
	})
}

func u32(v uint32) *uint32 { return &v }

func TestWinRDPFeature(t *testing.T) {
	listen := []Socket{{Protocol: "tcp", LocalAddr: "0.0.0.0", LocalPort: 3390, Listening: true}}
	f := winRDPFeature(winRDPSettings{DenyTSConnections: u32(0), PortNumber: u32(3390)}, listen)
	if f.GetKind() != "rdp" || !f.GetEnabled() || !f.GetListening() || f.GetPort() != 3390 || f.GetSource() == "" {
		t.Errorf("enabled on 3390: %v", f)
	}
	f = winRDPFeature(winRDPSettings{DenyTSConnections: u32(1)}, listen)
	if f.GetEnabled() || f.GetListening() || f.GetPort() != 3389 {
		t.Errorf("denied, default port: %v", f)
	}
	f = winRDPFeature(winRDPSettings{PortNumber: u32(70000)}, nil)
	if f.GetEnabled() || f.GetPort() != 3389 || f.GetSource() != "" {
		t.Errorf("unreadable deny value, bad port: %v", f)
	}
}

func TestWinNames(t *testing.T) {
	for st, want := range map[uint32]string{0: "boot", 1: "system", 3: "manual", 4: "disabled", 9: "unknown"} {
		if got := winStartMode(st, false); got != want {
			t.Errorf("winStartMode(%d) = %q, want %q", st, got, want)
		}
	}
	if winStartMode(2, false) != "auto" || winStartMode(2, true) != "auto_delayed" {
		t.Error("auto start modes")
	}
	if winServiceState(4) != "running" || winServiceState(1) != "stopped" || winServiceState(0) != "unknown" {
		t.Error("service states")
	}
}

func TestWinScanPaths(t *testing.T) {
	fsys := fstest.MapFS{
		"AnyDesk/AnyDesk.exe": {},
		"Google/Chrome Remote Desktop/131.0/remoting_host.exe": {}, // third level: not listed
		"top.exe": {},
	}
	got := winScanPaths(fsys, `C:\Program Files\`)
	var keys []string
	for _, in := range got {
		if in.Kind != "path" || in.Location != in.Key {
			t.Errorf("bad install %+v", in)
		}
		keys = append(keys, in.Key)
	}
	want := []string{`C:\Program Files\AnyDesk`, `C:\Program Files\AnyDesk\AnyDesk.exe`, `C:\Program Files\Google`, `C:\Program Files\Google\Chrome Remote Desktop`}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("got %q, want %q", keys, want)
	}
	if winScanPaths(fstest.MapFS{}, `C:\x`) != nil {
		t.Error("empty dir")
	}
}
