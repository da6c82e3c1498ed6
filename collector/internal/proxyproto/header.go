// Package proxyproto recovers the real client address of connections that
// arrive through a trusted load balancer or reverse proxy: from a PROXY
// protocol v1/v2 header (HAProxy's proxy-protocol.txt) on raw TCP, and from
// X-Forwarded-For / Forwarded headers on HTTP and gRPC.
//
// Only peers listed as trusted are believed. Anything else (a header sent by
// an untrusted peer, a forwarded-for value added by the client itself) is
// ignored, so that an attacker cannot pick the address the collector
// attributes a laptop's traffic to.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// Header is a decoded PROXY protocol header.
type Header struct {
	Version int // 1 or 2
	// Local is true when the header carries no client address to use: a v2
	// LOCAL command (health checks from the proxy itself), v1 "UNKNOWN", or
	// a v2 PROXY command with an unspecified or Unix address family. The
	// connection's real endpoints apply.
	Local bool
	// Protocol is "TCP4", "TCP6", "UDP4", "UDP6", "UNIX", "UNIX_DGRAM" or
	// "UNKNOWN".
	Protocol string
	// Source and Destination are the client and the address it connected
	// to; both are invalid when Local.
	Source, Destination netip.AddrPort
	// TLVs are the v2 type-length-value extensions, in order.
	TLVs []TLV
}

// TLV is one PROXY protocol v2 extension.
type TLV struct {
	Type  byte
	Value []byte
}

// v2 TLV types used here (proxy-protocol.txt §2.2).
const (
	tlvCRC32C = 0x03
	tlvNOOP   = 0x04
)

const (
	// maxV1 is the longest v1 header including CRLF (spec §2.1: 107).
	maxV1 = 107
	// v2HeaderLen is the fixed part of a v2 header.
	v2HeaderLen = 16
	// MaxHeaderLen is the longest header ParseHeader may need to see.
	MaxHeaderLen = v2HeaderLen + 0xffff
)

var (
	v1Prefix    = []byte("PROXY ")
	v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

	// ErrInvalidHeader is returned (wrapped) for bytes that are not a valid
	// PROXY protocol header.
	ErrInvalidHeader = errors.New("proxyproto: invalid PROXY protocol header")
	// errIncomplete means the bytes so far are a valid beginning of a
	// header but more are needed.
	errIncomplete = errors.New("proxyproto: incomplete PROXY protocol header")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidHeader, fmt.Sprintf(format, args...))
}

// ParseHeader decodes the PROXY protocol header (v1 or v2) at the start of
// b. It returns the header and its length in bytes. When b is a valid but
// incomplete beginning of a header it returns an error for which
// IsIncomplete is true; bytes that cannot start a header fail at once with
// ErrInvalidHeader. It never reads past the header.
func ParseHeader(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, errIncomplete
	case b[0] == v1Prefix[0]:
		return parseV1(b)
	case b[0] == v2Signature[0]:
		return parseV2(b)
	}
	return Header{}, 0, invalid("no PROXY signature")
}

// IsIncomplete reports whether err from ParseHeader means more bytes are
// needed.
func IsIncomplete(err error) bool { return errors.Is(err, errIncomplete) }

// hasPrefixSoFar checks b against prefix for as many bytes as b has.
func hasPrefixSoFar(b, prefix []byte) (complete bool, ok bool) {
	n := min(len(b), len(prefix))
	if !bytes.Equal(b[:n], prefix[:n]) {
		return false, false
	}
	return len(b) >= len(prefix), true
}

func parseV1(b []byte) (Header, int, error) {
	complete, ok := hasPrefixSoFar(b, v1Prefix)
	if !ok {
		return Header{}, 0, invalid("bad v1 signature")
	}
	if !complete {
		return Header{}, 0, errIncomplete
	}
	end := bytes.IndexByte(b[:min(len(b), maxV1)], '\n')
	if end < 0 {
		if len(b) >= maxV1 {
			return Header{}, 0, invalid("v1 header longer than %d bytes", maxV1)
		}
		// Reject early what can no longer become valid.
		if bytes.ContainsAny(b, "\x00") {
			return Header{}, 0, invalid("v1 header contains NUL")
		}
		return Header{}, 0, errIncomplete
	}
	if end == 0 || b[end-1] != '\r' {
		return Header{}, 0, invalid("v1 header does not end in CRLF")
	}
	line := b[len(v1Prefix) : end-1]
	n := end + 1
	h := Header{Version: 1}
	fields := bytes.Split(line, []byte(" "))
	switch string(fields[0]) {
	case "UNKNOWN":
		// Anything may follow UNKNOWN; the receiver ignores it.
		h.Local, h.Protocol = true, "UNKNOWN"
		return h, n, nil
	case "TCP4", "TCP6":
		h.Protocol = string(fields[0])
	default:
		return Header{}, 0, invalid("v1 protocol %q", fields[0])
	}
	if len(fields) != 5 {
		return Header{}, 0, invalid("v1 header has %d fields, want 5", len(fields)+1)
	}
	src, err1 := parseV1Addr(fields[1], h.Protocol == "TCP4")
	dst, err2 := parseV1Addr(fields[2], h.Protocol == "TCP4")
	sp, err3 := parseV1Port(fields[3])
	dp, err4 := parseV1Port(fields[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Header{}, 0, err
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, n, nil
}

func parseV1Addr(f []byte, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(f))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, invalid("v1 address %q", f)
	}
	if v4 != a.Is4() {
		return netip.Addr{}, invalid("v1 address %q does not match the protocol", f)
	}
	return a, nil
}

func parseV1Port(f []byte) (uint16, error) {
	if len(f) == 0 || len(f) > 5 || f[0] == '0' && len(f) > 1 {
		return 0, invalid("v1 port %q", f)
	}
	for _, c := range f {
		if c < '0' || c > '9' {
			return 0, invalid("v1 port %q", f)
		}
	}
	p, err := strconv.ParseUint(string(f), 10, 16)
	if err != nil {
		return 0, invalid("v1 port %q", f)
	}
	return uint16(p), nil
}

func parseV2(b []byte) (Header, int, error) {
	complete, ok := hasPrefixSoFar(b, v2Signature)
	if !ok {
		return Header{}, 0, invalid("bad v2 signature")
	}
	if !complete {
		return Header{}, 0, errIncomplete
	}
	if len(b) > 12 && b[12]>>4 != 2 {
		return Header{}, 0, invalid("v2 version %d", b[12]>>4)
	}
	if len(b) < v2HeaderLen {
		return Header{}, 0, errIncomplete
	}
	verCmd, fam := b[12], b[13]
	length := int(binary.BigEndian.Uint16(b[14:16]))
	cmd := verCmd & 0x0f
	if cmd > 1 {
		return Header{}, 0, invalid("v2 command %d", cmd)
	}
	if len(b) < v2HeaderLen+length {
		return Header{}, 0, errIncomplete
	}
	n := v2HeaderLen + length
	body := b[v2HeaderLen:n]
	h := Header{Version: 2, Local: cmd == 0}

	af, proto := fam>>4, fam&0x0f
	if af > 3 || proto > 2 {
		return Header{}, 0, invalid("v2 family %#x", fam)
	}
	var addrLen int
	switch af {
	case 1:
		addrLen = 12
	case 2:
		addrLen = 36
	case 3:
		addrLen = 216
	}
	if len(body) < addrLen {
		return Header{}, 0, invalid("v2 address block %d bytes, family %#x needs %d", len(body), fam, addrLen)
	}
	h.Protocol = v2Protocol(af, proto)
	if !h.Local {
		switch {
		case af == 1 && proto != 0:
			src := netip.AddrFrom4([4]byte(body[0:4]))
			dst := netip.AddrFrom4([4]byte(body[4:8]))
			h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
			h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
		case af == 2 && proto != 0:
			src := netip.AddrFrom16([16]byte(body[0:16]))
			dst := netip.AddrFrom16([16]byte(body[16:32]))
			h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
			h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
		default:
			// UNSPEC family or protocol, or a Unix socket: no IP address
			// to use; the spec says to keep the real endpoints.
			h.Local = true
		}
	}
	tlvs, crcAt, err := parseTLVs(body[addrLen:])
	if err != nil {
		return Header{}, 0, err
	}
	h.TLVs = tlvs
	if crcAt >= 0 {
		if err := checkCRC(b[:n], v2HeaderLen+addrLen+crcAt); err != nil {
			return Header{}, 0, err
		}
	}
	return h, n, nil
}

func v2Protocol(af, proto byte) string {
	switch {
	case af == 1 && proto == 1:
		return "TCP4"
	case af == 1 && proto == 2:
		return "UDP4"
	case af == 2 && proto == 1:
		return "TCP6"
	case af == 2 && proto == 2:
		return "UDP6"
	case af == 3 && proto == 1:
		return "UNIX"
	case af == 3 && proto == 2:
		return "UNIX_DGRAM"
	}
	return "UNKNOWN"
}

// parseTLVs splits the TLV area. crcAt is the offset in b of the value of
// the CRC32C TLV, or -1 when there is none.
func parseTLVs(b []byte) (out []TLV, crcAt int, err error) {
	crcAt = -1
	off := 0
	for off < len(b) {
		if len(b)-off < 3 {
			return nil, -1, invalid("truncated v2 TLV")
		}
		typ := b[off]
		l := int(binary.BigEndian.Uint16(b[off+1 : off+3]))
		if len(b)-off-3 < l {
			return nil, -1, invalid("v2 TLV %#x length %d exceeds header", typ, l)
		}
		val := b[off+3 : off+3+l]
		switch typ {
		case tlvNOOP:
		case tlvCRC32C:
			if crcAt >= 0 || l != 4 {
				return nil, -1, invalid("v2 CRC32C TLV repeated or not 4 bytes")
			}
			crcAt = off + 3
			fallthrough
		default:
			out = append(out, TLV{Type: typ, Value: bytes.Clone(val)})
		}
		off += 3 + l
	}
	return out, crcAt, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCRC verifies a PP2_TYPE_CRC32C TLV whose value is at hdr[at:at+4]:
// the CRC32c of the whole header with that field zeroed.
func checkCRC(hdr []byte, at int) error {
	want := binary.BigEndian.Uint32(hdr[at : at+4])
	c := bytes.Clone(hdr)
	clear(c[at : at+4])
	if crc32.Checksum(c, castagnoli) != want {
		return invalid("v2 CRC32C mismatch")
	}
	return nil
}
