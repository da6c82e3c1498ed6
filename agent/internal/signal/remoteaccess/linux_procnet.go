package remoteaccess

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// linuxSocket is a Socket read from /proc/net with the inode that ties it
// to a process's file descriptors.
type linuxSocket struct {
	Socket
	Inode uint64
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	linuxTCPEstablished = 0x01
	linuxTCPClose       = 0x07 // an unconnected (bound) UDP socket
	linuxTCPListen      = 0x0A
)

// linuxMaxProcNet bounds how many bytes of one /proc/net file are parsed.
const linuxMaxProcNet = 64 << 20

// parseLinuxProcNet parses /proc/net/tcp, tcp6, udp or udp6 (proc_net(5)).
// protocol is "tcp" or "udp"; order is the byte order of the host that
// wrote the file (the kernel prints each 32-bit word of an address in host
// order). Kept: TCP sockets in LISTEN or ESTABLISHED, UDP sockets bound
// without a peer (reported as listening) or connected. Other states and
// malformed lines are skipped.
func parseLinuxProcNet(b []byte, protocol string, order binary.ByteOrder) ([]linuxSocket, error) {
	if len(b) > linuxMaxProcNet {
		return nil, fmt.Errorf("/proc/net/%s: %d bytes, more than %d", protocol, len(b), linuxMaxProcNet)
	}
	var out []linuxSocket
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := bytes.Fields(sc.Bytes())
		if len(f) < 10 {
			continue
		}
		st, err := strconv.ParseUint(string(f[3]), 16, 8)
		if err != nil {
			continue
		}
		laddr, lport, ok1 := parseLinuxHexAddr(f[1], order)
		raddr, rport, ok2 := parseLinuxHexAddr(f[2], order)
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		s := linuxSocket{Socket: Socket{Protocol: protocol, LocalAddr: laddr, LocalPort: lport}, Inode: inode}
		switch {
		case protocol == "tcp" && st == linuxTCPListen,
			protocol == "udp" && st == linuxTCPClose && rport == 0:
			s.Listening = true
		case st == linuxTCPEstablished && rport != 0:
			s.RemoteAddr, s.RemotePort = raddr, rport
		default:
			continue
		}
		if lport == 0 {
			continue
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return out, fmt.Errorf("/proc/net/%s: %w", protocol, err)
	}
	return out, nil
}

// parseLinuxHexAddr decodes "0100007F:1B9E" (IPv4) or a 32-hex-digit IPv6
// address and port.
func parseLinuxHexAddr(b []byte, order binary.ByteOrder) (string, uint32, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return "", 0, false
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return "", 0, false
	}
	raw := b[:i]
	if len(raw) != 8 && len(raw) != 32 {
		return "", 0, false
	}
	words := make([]byte, len(raw)/2)
	if _, err := hex.Decode(words, raw); err != nil {
		return "", 0, false
	}
	ip := make([]byte, len(words))
	for w := 0; w+4 <= len(words); w += 4 {
		// The kernel printed each word as a host-order integer.
		v := binary.BigEndian.Uint32(words[w:])
		order.PutUint32(ip[w:], v)
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "", 0, false
	}
	return addr.Unmap().String(), uint32(port), true
}
