package proxyproto

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Bounds on forwarded headers: how much of them is looked at, and how
// many hops are walked.
const (
	maxForwardedBytes = 8 << 10
	maxHops           = 64
)

// ClientIP is the client address of a gRPC call: the direct peer, unless
// that peer is a trusted proxy, in which case it is taken from the
// x-forwarded-for metadata (walking from the right past trusted proxies)
// or, when there is no x-forwarded-for, from the RFC 7239 forwarded
// metadata's for= parameters. Configure the proxy to set or overwrite the
// header it uses: a header the proxy passes through unchanged is written by
// the client.
func ClientIP(peerAddr net.Addr, md metadata.MD, trusted Trusted) netip.Addr {
	return clientIP(addrOf(peerAddr), md.Get("x-forwarded-for"), md.Get("forwarded"), trusted)
}

// HTTPClientIP is ClientIP for net/http requests (r.RemoteAddr and the
// X-Forwarded-For / Forwarded headers).
func HTTPClientIP(r *http.Request, trusted Trusted) netip.Addr {
	return clientIP(parseHostAddr(r.RemoteAddr), r.Header.Values("X-Forwarded-For"), r.Header.Values("Forwarded"), trusted)
}

func clientIP(peer netip.Addr, xff, fwd []string, trusted Trusted) netip.Addr {
	if !peer.IsValid() || !trusted.Contains(peer) {
		return peer
	}
	if hops := splitList(xff); len(hops) > 0 {
		return walk(peer, hops, parseHostAddr, trusted)
	}
	if hops := forwardedFor(fwd); len(hops) > 0 {
		return walk(peer, hops, parseForwardedNode, trusted)
	}
	return peer
}

// walk goes from the rightmost hop (added by the proxy nearest to us)
// leftwards, skipping trusted proxies, and returns the first address that
// is not trusted. When a hop is unparsable (or "unknown", obfuscated, or
// past maxHops) it stops and returns the last trusted address seen, since
// nothing further left can be believed.
func walk(peer netip.Addr, hops []string, parse func(string) netip.Addr, trusted Trusted) netip.Addr {
	last := peer
	for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxHops; i-- {
		a := parse(hops[i])
		if !a.IsValid() {
			return last
		}
		if !trusted.Contains(a) {
			return a
		}
		last = a
	}
	return last
}

// splitList joins repeated header values and splits them at commas.
func splitList(values []string) []string {
	var out []string
	total := 0
	for _, v := range values {
		total += len(v)
		if total > maxForwardedBytes {
			// Keep only the rightmost hops: they are the ones we trust.
			return nil
		}
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// forwardedFor returns the for= value of every element of RFC 7239
// Forwarded header values, in order ("" for an element without for=).
func forwardedFor(values []string) []string {
	var out []string
	total := 0
	for _, v := range values {
		total += len(v)
		if total > maxForwardedBytes {
			return nil
		}
		for _, elem := range splitQuoted(v, ',') {
			if strings.TrimSpace(elem) == "" {
				continue
			}
			var forVal string
			for _, pair := range splitQuoted(elem, ';') {
				k, val, ok := strings.Cut(pair, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					forVal = unquote(strings.TrimSpace(val))
				}
			}
			out = append(out, forVal)
		}
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		s = strings.ReplaceAll(s, `\"`, `"`)
		s = strings.ReplaceAll(s, `\\`, `\`)
	}
	return s
}

// parseForwardedNode reads an RFC 7239 node: "192.0.2.1", "192.0.2.1:80",
// "[2001:db8::1]" or "[2001:db8::1]:80". "unknown" and obfuscated
// identifiers ("_hidden") give the zero Addr.
func parseForwardedNode(s string) netip.Addr {
	if s == "" || s[0] == '_' || strings.EqualFold(s, "unknown") {
		return netip.Addr{}
	}
	if strings.HasPrefix(s, "[") {
		host := s[1:]
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(host[:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	host, _, _ := strings.Cut(s, ":")
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}
