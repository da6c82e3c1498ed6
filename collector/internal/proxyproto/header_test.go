package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"testing"
)

// v2 builds a v2 header. cmd 0 = LOCAL, 1 = PROXY; fam as on the wire.
func v2(cmd, fam byte, addrs []byte, tlvs ...TLV) []byte {
	var body []byte
	body = append(body, addrs...)
	for _, t := range tlvs {
		body = append(body, t.Type, byte(len(t.Value)>>8), byte(len(t.Value)))
		body = append(body, t.Value...)
	}
	h := append([]byte{}, v2Signature...)
	h = append(h, 0x20|cmd, fam, byte(len(body)>>8), byte(len(body)))
	return append(h, body...)
}

func addrs4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func addrs6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

// withCRC fills in the CRC32C TLV, which must be the last TLV.
func withCRC(h []byte) []byte {
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func TestParseHeaderValid(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		local bool
		proto string
		src   string
		dst   string
		tlvs  int
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n"), false, "TCP4", "192.0.2.10:56324", "198.51.100.1:443", 0},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"), false, "TCP6", "[2001:db8::1]:65535", "[2001:db8::2]:0", 0},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), true, "UNKNOWN", "", "", 0},
		{"v1 unknown with junk", []byte("PROXY UNKNOWN ffff::1 whatever\r\n"), true, "UNKNOWN", "", "", 0},
		{"v2 tcp4", v2(1, 0x11, addrs4("203.0.113.7", "10.0.0.1", 40000, 443)), false, "TCP4", "203.0.113.7:40000", "10.0.0.1:443", 0},
		{"v2 tcp6", v2(1, 0x21, addrs6("2001:db8::7", "2001:db8::1", 1, 2)), false, "TCP6", "[2001:db8::7]:1", "[2001:db8::1]:2", 0},
		{"v2 local", v2(0, 0x00, nil), true, "UNKNOWN", "", "", 0},
		{"v2 local with addresses", v2(0, 0x11, addrs4("203.0.113.7", "10.0.0.1", 1, 2)), true, "TCP4", "", "", 0},
		{"v2 unspec", v2(1, 0x00, nil), true, "UNKNOWN", "", "", 0},
		{"v2 unix", v2(1, 0x31, make([]byte, 216)), true, "UNIX", "", "", 0},
		{"v2 tlvs", v2(1, 0x11, addrs4("203.0.113.7", "10.0.0.1", 1, 2),
			TLV{0x01, []byte("h2")}, TLV{tlvNOOP, make([]byte, 5)}, TLV{0x02, []byte("example.com")}, TLV{0xEA, []byte("vpce-123")}),
			false, "TCP4", "203.0.113.7:1", "10.0.0.1:2", 3},
		{"v2 crc", withCRC(v2(1, 0x11, addrs4("203.0.113.7", "10.0.0.1", 1, 2), TLV{0x01, []byte("h2")}, TLV{tlvCRC32C, make([]byte, 4)})),
			false, "TCP4", "203.0.113.7:1", "10.0.0.1:2", 2},
	}
	for _, tc := range tests {
		payload := []byte("\x16\x03\x01rest-of-stream")
		h, n, err := ParseHeader(append(bytes.Clone(tc.in), payload...))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if n != len(tc.in) {
			t.Errorf("%s: consumed %d, want %d", tc.name, n, len(tc.in))
		}
		if h.Local != tc.local || h.Protocol != tc.proto || len(h.TLVs) != tc.tlvs {
			t.Errorf("%s: %+v", tc.name, h)
		}
		if tc.src != "" && (h.Source.String() != tc.src || h.Destination.String() != tc.dst) {
			t.Errorf("%s: %v -> %v, want %s -> %s", tc.name, h.Source, h.Destination, tc.src, tc.dst)
		}
		if tc.src == "" && h.Source.IsValid() {
			t.Errorf("%s: source %v, want none", tc.name, h.Source)
		}
		// Every proper prefix is incomplete, never invalid or accepted.
		for i := range len(tc.in) {
			if _, _, err := ParseHeader(tc.in[:i]); !IsIncomplete(err) {
				t.Errorf("%s: prefix of %d bytes: %v, want incomplete", tc.name, i, err)
				break
			}
		}
	}
}

func TestParseHeaderInvalid(t *testing.T) {
	good4 := addrs4("203.0.113.7", "10.0.0.1", 1, 2)
	badCRC := withCRC(v2(1, 0x11, good4, TLV{tlvCRC32C, make([]byte, 4)}))
	badCRC[len(badCRC)-1] ^= 1
	tests := map[string][]byte{
		"tls hello":          []byte("\x16\x03\x01\x02\x00\x01"),
		"http":               []byte("GET / HTTP/1.1\r\n"),
		"lower case":         []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		"v1 no CR":           []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
		"v1 double space":    []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
		"v1 tcp5":            []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
		"v1 v6 in tcp4":      []byte("PROXY TCP4 ::1 ::2 1 2\r\n"),
		"v1 v4 in tcp6":      []byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
		"v1 port range":      []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
		"v1 port sign":       []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
		"v1 port zero pad":   []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
		"v1 zone":            []byte("PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n"),
		"v1 missing field":   []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
		"v1 extra field":     []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
		"v1 empty":           []byte("PROXY \r\n"),
		"v1 too long":        append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("a"), 120)...),
		"v1 nul":             []byte("PROXY TCP4 1.2\x00"),
		"v2 bad signature":   []byte("\r\n\r\n\x00\r\nQUIX\n"),
		"v2 version 1":       append(append([]byte{}, v2Signature...), 0x11, 0x11, 0, 0),
		"v2 command 2":       v2(2, 0x11, good4),
		"v2 family 4":        v2(1, 0x41, good4),
		"v2 proto 3":         v2(1, 0x13, good4),
		"v2 short addresses": v2(1, 0x21, good4),
		"v2 truncated tlv":   append(v2(1, 0x11, good4), 0x01),
		"v2 crc mismatch":    badCRC,
	}
	for name, in := range tests {
		// Fix the length of the hand-truncated TLV case so that the TLV
		// area itself is malformed rather than the header incomplete.
		if name == "v2 truncated tlv" {
			binary.BigEndian.PutUint16(in[14:16], uint16(len(in)-16))
		}
		_, _, err := ParseHeader(in)
		if !errors.Is(err, ErrInvalidHeader) {
			t.Errorf("%s: %v, want ErrInvalidHeader", name, err)
		}
	}
	if _, _, err := ParseHeader(nil); !IsIncomplete(err) {
		t.Errorf("empty input: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET /"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x11, addrs4("203.0.113.7", "10.0.0.1", 1, 2), TLV{0x01, []byte("h2")}))
	f.Add(v2(1, 0x21, addrs6("2001:db8::7", "2001:db8::1", 1, 2)))
	f.Add(v2(0, 0x00, nil))
	f.Add(withCRC(v2(1, 0x11, addrs4("203.0.113.7", "10.0.0.1", 1, 2), TLV{tlvCRC32C, make([]byte, 4)})))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			if !IsIncomplete(err) && !errors.Is(err, ErrInvalidHeader) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n <= 0 || n > len(b) || n > MaxHeaderLen {
			t.Fatalf("n=%d for %d bytes", n, len(b))
		}
		if h.Version == 1 && n > maxV1 {
			t.Fatalf("v1 header of %d bytes", n)
		}
		if h.Local == h.Source.IsValid() {
			t.Fatalf("Local=%v but source %v", h.Local, h.Source)
		}
		// The header alone parses the same, and trailing bytes are not
		// looked at.
		h2, n2, err := ParseHeader(b[:n])
		if err != nil || n2 != n || h2.Source != h.Source || h2.Local != h.Local {
			t.Fatalf("header alone: %+v %d %v", h2, n2, err)
		}
	})
}
