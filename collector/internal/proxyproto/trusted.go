package proxyproto

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Trusted lists the networks of proxies and load balancers whose PROXY
// headers and forwarded-for headers are believed. It implements flag.Value
// so that a repeatable --trusted-proxy flag can fill it.
type Trusted []netip.Prefix

// Contains reports whether a is in one of the trusted networks. IPv4-mapped
// IPv6 addresses count as IPv4.
func (t Trusted) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefix reads a CIDR ("10.0.0.0/8") or a bare address (a /32 or
// /128). IPv4-mapped IPv6 forms are turned into IPv4 and host bits are
// cleared.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: zones are not allowed", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// ParseTrusted parses several prefixes; each value may itself be a
// comma-separated list.
func ParseTrusted(values ...string) (Trusted, error) {
	var t Trusted
	for _, v := range values {
		if err := t.Set(v); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Set adds the prefixes in s (comma-separated) to t (flag.Value).
func (t *Trusted) Set(s string) error {
	for f := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		p, err := ParsePrefix(f)
		if err != nil {
			return err
		}
		*t = append(*t, p)
	}
	return nil
}

// String lists the prefixes comma-separated (flag.Value).
func (t *Trusted) String() string {
	if t == nil {
		return ""
	}
	s := make([]string, len(*t))
	for i, p := range *t {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// addrOf extracts the IP address of a net.Addr (TCP, UDP, IP or anything
// whose String is "host:port" or a bare address). It returns the zero Addr
// when there is none.
func addrOf(a net.Addr) netip.Addr {
	switch x := a.(type) {
	case nil:
		return netip.Addr{}
	case *net.TCPAddr:
		if x == nil {
			return netip.Addr{}
		}
		return x.AddrPort().Addr().Unmap().WithZone("")
	case *net.UDPAddr:
		if x == nil {
			return netip.Addr{}
		}
		return x.AddrPort().Addr().Unmap().WithZone("")
	}
	return parseHostAddr(a.String())
}

// parseHostAddr reads "ip", "ip:port", "[ip]" or "[ip]:port".
func parseHostAddr(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}
