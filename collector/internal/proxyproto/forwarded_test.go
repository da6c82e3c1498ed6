package proxyproto

import (
	"net"
	"net/http"
	"net/netip"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrusted("127.0.0.0/8", "10.0.0.0/8", "2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}
	stranger := &net.TCPAddr{IP: net.ParseIP("203.0.113.50"), Port: 5000}
	tests := []struct {
		name string
		peer net.Addr
		md   metadata.MD
		want string
	}{
		{"no headers, trusted peer", proxy, nil, "127.0.0.1"},
		{"xff from untrusted peer ignored", stranger, metadata.Pairs("x-forwarded-for", "198.51.100.1"), "203.0.113.50"},
		{"forwarded from untrusted peer ignored", stranger, metadata.Pairs("forwarded", "for=198.51.100.1"), "203.0.113.50"},
		{"xff single", proxy, metadata.Pairs("x-forwarded-for", "198.51.100.1"), "198.51.100.1"},
		{"xff spoofed left part", proxy, metadata.Pairs("x-forwarded-for", "1.1.1.1, 198.51.100.1, 10.0.0.5"), "198.51.100.1"},
		{"xff repeated header", proxy, metadata.Pairs("x-forwarded-for", "1.1.1.1", "x-forwarded-for", "198.51.100.2"), "198.51.100.2"},
		{"xff all trusted", proxy, metadata.Pairs("x-forwarded-for", "10.0.0.9, 10.0.0.5"), "10.0.0.9"},
		{"xff garbage stops", proxy, metadata.Pairs("x-forwarded-for", "198.51.100.1, garbage, 10.0.0.5"), "10.0.0.5"},
		{"xff with port", proxy, metadata.Pairs("x-forwarded-for", "198.51.100.1:4444"), "198.51.100.1"},
		{"xff ipv6", proxy, metadata.Pairs("x-forwarded-for", "2001:db8::1, 2001:db8:ffff::2"), "2001:db8::1"},
		{"xff mapped", proxy, metadata.Pairs("x-forwarded-for", "::ffff:198.51.100.3"), "198.51.100.3"},
		{"forwarded", proxy, metadata.Pairs("forwarded", `for=192.0.2.60;proto=https;by=10.0.0.1, For="[2001:db8:cafe::17]:4711"`), "2001:db8:cafe::17"},
		{"forwarded skips trusted", proxy, metadata.Pairs("forwarded", `for=192.0.2.60, for=10.0.0.2`), "192.0.2.60"},
		{"forwarded unknown", proxy, metadata.Pairs("forwarded", `for=192.0.2.60, for=unknown`), "127.0.0.1"},
		{"forwarded obfuscated", proxy, metadata.Pairs("forwarded", `for=_hidden`), "127.0.0.1"},
		{"forwarded quoted comma", proxy, metadata.Pairs("forwarded", `for="192.0.2.61:80";x="a,b"`), "192.0.2.61"},
		{"xff preferred over forwarded", proxy, metadata.Pairs("forwarded", "for=192.0.2.60", "x-forwarded-for", "198.51.100.7"), "198.51.100.7"},
	}
	for _, tc := range tests {
		if got := ClientIP(tc.peer, tc.md, trusted); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	if got := ClientIP(nil, nil, trusted); got.IsValid() {
		t.Errorf("nil peer: %v", got)
	}
}

func TestHTTPClientIP(t *testing.T) {
	trusted, _ := ParseTrusted("127.0.0.1")
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.Header.Add("X-Forwarded-For", "203.0.113.1")
	if got := HTTPClientIP(r, trusted); got != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("trusted: %v", got)
	}
	r.RemoteAddr = "[2001:db8::9]:1234"
	if got := HTTPClientIP(r, trusted); got != netip.MustParseAddr("2001:db8::9") {
		t.Errorf("untrusted: %v", got)
	}
	r.RemoteAddr = "127.0.0.1:1234"
	r.Header.Del("X-Forwarded-For")
	r.Header.Add("Forwarded", "for=198.51.100.9")
	if got := HTTPClientIP(r, trusted); got != netip.MustParseAddr("198.51.100.9") {
		t.Errorf("forwarded: %v", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("1.1.1.1, 198.51.100.1", `for=192.0.2.60;proto=https, for="[2001:db8::1]:80"`)
	f.Add("", `for="\"x`)
	trusted, _ := ParseTrusted("127.0.0.0/8")
	peer := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		md := metadata.MD{}
		if xff != "" {
			md.Append("x-forwarded-for", xff)
		}
		if fwd != "" {
			md.Append("forwarded", fwd)
		}
		if got := ClientIP(peer, md, trusted); !got.IsValid() {
			t.Fatalf("invalid result for %q %q", xff, fwd)
		}
	})
}
