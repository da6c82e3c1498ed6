package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// serve starts a wrapped listener on 127.0.0.1 and returns it with a
// channel of accepted connections.
func serve(t *testing.T, trusted Trusted, timeout time.Duration) (net.Listener, <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, trusted, timeout)
	t.Cleanup(func() { l.Close() })
	ch := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ch)
				return
			}
			t.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return l, ch
}

// dial connects and writes each chunk separately with a short pause.
func dial(t *testing.T, l net.Listener, chunks ...[]byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		for i, ch := range chunks {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := c.Write(ch); err != nil {
				return
			}
		}
	}()
	return c
}

func accept(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func readN(t *testing.T, c net.Conn, n int) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	return buf, err
}

var loopback = Trusted{netip.MustParsePrefix("127.0.0.0/8")}

func TestListenerTrusted(t *testing.T) {
	payload := []byte("\x16\x03\x01hello after the header")
	tests := []struct {
		name   string
		chunks [][]byte
		want   string // RemoteAddr; "" = the real peer
	}{
		{"v1 tcp4", [][]byte{append([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 51000 8443\r\n"), payload...)}, "203.0.113.9:51000"},
		{"v1 tcp6", [][]byte{append([]byte("PROXY TCP6 2001:db8::9 2001:db8::1 51000 8443\r\n"), payload...)}, "[2001:db8::9]:51000"},
		{"v1 unknown", [][]byte{append([]byte("PROXY UNKNOWN\r\n"), payload...)}, ""},
		{"v2 tcp4", [][]byte{append(v2(1, 0x11, addrs4("198.51.100.20", "127.0.0.1", 40001, 8443)), payload...)}, "198.51.100.20:40001"},
		{"v2 tcp6 tlvs", [][]byte{append(v2(1, 0x21, addrs6("2001:db8::20", "2001:db8::1", 40002, 8443),
			TLV{0x01, []byte("h2")}, TLV{0x02, []byte("collector.example")}), payload...)}, "[2001:db8::20]:40002"},
		{"v2 local", [][]byte{append(v2(0, 0x00, nil), payload...)}, ""},
		{"v1 split", [][]byte{[]byte("PRO"), []byte("XY TCP4 203.0.113.9 127.0.0.1 "), []byte("51000 8443\r"), append([]byte("\n"), payload...)}, "203.0.113.9:51000"},
		{"v2 split", func() [][]byte {
			h := v2(1, 0x11, addrs4("198.51.100.21", "127.0.0.1", 40003, 8443), TLV{0xE0, bytes.Repeat([]byte{7}, 300)})
			return [][]byte{h[:5], h[5:14], h[14:100], append(h[100:], payload[:3]...), payload[3:]}
		}(), "198.51.100.21:40003"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, ch := serve(t, loopback, 2*time.Second)
			client := dial(t, l, tc.chunks...)
			c := accept(t, ch)
			got, err := readN(t, c, len(payload))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("payload %q, want %q", got, payload)
			}
			want := tc.want
			if want == "" {
				want = client.LocalAddr().String()
			}
			if ra := c.RemoteAddr().String(); ra != want {
				t.Errorf("RemoteAddr %s, want %s", ra, want)
			}
			if pc, ok := c.(*Conn); !ok || pc.ProxyAddr().String() != client.LocalAddr().String() {
				t.Errorf("ProxyAddr wrong or not a *Conn: %T", c)
			}
			// The stream continues normally in both directions.
			if _, err := c.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			if b, err := readN(t, client, 2); err != nil || string(b) != "ok" {
				t.Errorf("reply %q %v", b, err)
			}
		})
	}
}

func TestListenerRemoteAddrFirst(t *testing.T) {
	l, ch := serve(t, loopback, 2*time.Second)
	dial(t, l, []byte("PROXY TCP4 203.0.113.9 127.0.0.1 51000 8443\r\nabc"))
	c := accept(t, ch)
	if ra := c.RemoteAddr().String(); ra != "203.0.113.9:51000" {
		t.Errorf("RemoteAddr %s", ra)
	}
	if b, err := readN(t, c, 3); err != nil || string(b) != "abc" {
		t.Errorf("read %q %v", b, err)
	}
}

func TestListenerUntrusted(t *testing.T) {
	// Trust only an address that is not the test client's.
	l, ch := serve(t, Trusted{netip.MustParsePrefix("192.0.2.0/24")}, time.Second)
	hdr := []byte("PROXY TCP4 203.0.113.9 127.0.0.1 51000 8443\r\nrest")
	client := dial(t, l, hdr)
	c := accept(t, ch)
	if _, ok := c.(*Conn); ok {
		t.Error("untrusted connection was wrapped")
	}
	got, err := readN(t, c, len(hdr))
	if err != nil || !bytes.Equal(got, hdr) {
		t.Errorf("read %q %v, want the header bytes untouched", got, err)
	}
	if ra := c.RemoteAddr().String(); ra != client.LocalAddr().String() {
		t.Errorf("RemoteAddr %s, want real peer %s", ra, client.LocalAddr())
	}
}

func TestListenerMalformed(t *testing.T) {
	tests := map[string][]byte{
		"tls without header": []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
		"bad v1":             []byte("PROXY TCP4 203.0.113.9 127.0.0.1 99999 8443\r\n"),
		"bad v2":             v2(1, 0x21, addrs4("1.2.3.4", "5.6.7.8", 1, 2)),
		"v1 too long":        []byte("PROXY UNKNOWN " + strings.Repeat("x", 200)),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			l, ch := serve(t, loopback, 2*time.Second)
			client := dial(t, l, in)
			c := accept(t, ch)
			if _, err := readN(t, c, 1); !errors.Is(err, ErrInvalidHeader) {
				t.Errorf("Read: %v, want ErrInvalidHeader", err)
			}
			// The server side closed the connection.
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := client.Read(make([]byte, 1)); err == nil {
				t.Error("connection still open")
			}
		})
	}
}

func TestListenerTimeout(t *testing.T) {
	l, ch := serve(t, loopback, 150*time.Millisecond)
	dial(t, l, []byte("PROXY TCP4 203.0.113.9")) // never finished
	c := accept(t, ch)
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, errHeaderTimeout) {
		t.Errorf("Read: %v, want timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestListenerCallerDeadline(t *testing.T) {
	l, ch := serve(t, loopback, 5*time.Second)
	client := dial(t, l) // sends nothing yet
	c := accept(t, ch)
	// A caller deadline shorter than the header timeout bounds the header
	// read too.
	_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("Read succeeded")
	}
	if time.Since(start) > 2*time.Second {
		t.Error("caller deadline ignored")
	}
	_ = client
}

func TestListenerDoesNotBlockAccept(t *testing.T) {
	l, ch := serve(t, loopback, 5*time.Second)
	dial(t, l) // a trusted peer that never sends its header
	slow := accept(t, ch)
	dial(t, l, []byte("PROXY TCP4 203.0.113.5 127.0.0.1 1 2\r\n"))
	fast := accept(t, ch) // must arrive although the first has no header
	if ra := fast.RemoteAddr().String(); ra != "203.0.113.5:1" {
		t.Errorf("RemoteAddr %s", ra)
	}
	_ = slow
}

func TestTrusted(t *testing.T) {
	tr, err := ParseTrusted("10.0.0.0/8", "192.0.2.7, 2001:db8::/32", "::ffff:198.51.100.0/120", "10.1.2.3/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"10.9.9.9", "192.0.2.7", "::ffff:10.0.0.1", "2001:db8::5", "198.51.100.200"} {
		if !tr.Contains(netip.MustParseAddr(s)) {
			t.Errorf("%s not trusted", s)
		}
	}
	for _, s := range []string{"192.0.2.8", "11.0.0.1", "2001:db9::1", "198.51.101.1"} {
		if tr.Contains(netip.MustParseAddr(s)) {
			t.Errorf("%s trusted", s)
		}
	}
	if tr.Contains(netip.Addr{}) {
		t.Error("zero Addr trusted")
	}
	if got := tr.String(); got != "10.0.0.0/8,192.0.2.7/32,2001:db8::/32,198.51.100.0/24,10.0.0.0/8" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "fe80::1%eth0", "1.2.3"} {
		if _, err := ParseTrusted(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
