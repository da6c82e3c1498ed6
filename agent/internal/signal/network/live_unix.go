//go:build linux || darwin

package network

import (
	"net"
	"net/netip"
)

// ipNetPrefix converts a net.Addr from net.Interface.Addrs.
func ipNetPrefix(a net.Addr) (netip.Prefix, bool) {
	ipn, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits, _ := ipn.Mask.Size()
	if len(ipn.Mask) == 0 {
		bits = ip.BitLen()
	}
	return netip.PrefixFrom(ip, bits), true
}
