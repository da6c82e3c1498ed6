package remoteaccess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Address families as GetExtendedTcpTable takes them.
const (
	winAFInet  = 2  // AF_INET
	winAFInet6 = 23 // AF_INET6
)

// MIB_TCP_STATE values kept from the table.
const (
	winTCPStateListen      = 2 // MIB_TCP_STATE_LISTEN
	winTCPStateEstablished = 5 // MIB_TCP_STATE_ESTAB
)

// Row sizes of the tables GetExtendedTcpTable fills for
// TCP_TABLE_OWNER_PID_ALL. Both tables are a DWORD dwNumEntries followed
// by the rows (every member is 4-byte aligned, so no padding):
//
//	MIB_TCPROW_OWNER_PID  { DWORD dwState, dwLocalAddr, dwLocalPort,
//	                        dwRemoteAddr, dwRemotePort, dwOwningPid }   24 bytes
//	MIB_TCP6ROW_OWNER_PID { UCHAR ucLocalAddr[16]; DWORD dwLocalScopeId,
//	                        dwLocalPort; UCHAR ucRemoteAddr[16];
//	                        DWORD dwRemoteScopeId, dwRemotePort, dwState,
//	                        dwOwningPid }                               56 bytes
//
// DWORDs are little-endian (every Windows architecture). Addresses are in
// network byte order, i.e. their bytes are the address bytes in order;
// ports are in network byte order in the low 16 bits, i.e. the first two
// bytes of the DWORD, big-endian.
const (
	winTCPRowSize  = 24
	winTCP6RowSize = 56
)

var errWinShortTCPTable = errors.New("tcp table shorter than its entry count")

// parseTCPTableOwnerPID parses a MIB_TCPTABLE_OWNER_PID (family
// winAFInet) or MIB_TCP6TABLE_OWNER_PID (winAFInet6) and returns its
// LISTEN and ESTABLISHED sockets. The entry count is checked against the
// buffer length; bytes after the last row are ignored.
func parseTCPTableOwnerPID(b []byte, family int) ([]Socket, error) {
	rowSize := winTCPRowSize
	switch family {
	case winAFInet:
	case winAFInet6:
		rowSize = winTCP6RowSize
	default:
		return nil, fmt.Errorf("tcp table: unknown address family %d", family)
	}
	if len(b) < 4 {
		return nil, errWinShortTCPTable
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4)/uint64(rowSize) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errWinShortTCPTable, n, len(b))
	}
	var socks []Socket
	for i := range int(n) {
		r := b[4+i*rowSize : 4+(i+1)*rowSize]
		var s Socket
		var state, pid uint32
		if family == winAFInet {
			state = binary.LittleEndian.Uint32(r[0:])
			s.LocalAddr = netip.AddrFrom4([4]byte(r[4:8])).String()
			s.LocalPort = winPort(r[8:12])
			s.RemoteAddr = netip.AddrFrom4([4]byte(r[12:16])).String()
			s.RemotePort = winPort(r[16:20])
			pid = binary.LittleEndian.Uint32(r[20:])
		} else {
			s.LocalAddr = winAddr6(r[0:16], binary.LittleEndian.Uint32(r[16:]))
			s.LocalPort = winPort(r[20:24])
			s.RemoteAddr = winAddr6(r[24:40], binary.LittleEndian.Uint32(r[40:]))
			s.RemotePort = winPort(r[44:48])
			state = binary.LittleEndian.Uint32(r[48:])
			pid = binary.LittleEndian.Uint32(r[52:])
		}
		switch state {
		case winTCPStateListen:
			s.Listening = true
			// Listening rows carry no meaningful remote end.
			s.RemotePort = 0
		case winTCPStateEstablished:
		default:
			continue
		}
		s.Protocol = "tcp"
		if pid <= 1<<31-1 {
			s.PID = int32(pid)
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// winPort reads a port stored in network byte order in the low 16 bits of
// a little-endian DWORD.
func winPort(dw []byte) uint32 {
	return uint32(binary.BigEndian.Uint16(dw[0:2]))
}

// winAddr6 formats an IPv6 address with its scope id (zone) when set.
func winAddr6(a []byte, scope uint32) string {
	ip := netip.AddrFrom16([16]byte(a))
	if scope != 0 && ip.IsLinkLocalUnicast() {
		ip = ip.WithZone(fmt.Sprint(scope))
	}
	return ip.String()
}
