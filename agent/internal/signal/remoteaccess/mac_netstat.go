package remoteaccess

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// parseMacNetstat parses `netstat -anv -p tcp` on macOS and returns the
// LISTEN and ESTABLISHED TCP sockets.
//
// Rows are "tcp4|tcp6|tcp46 Recv-Q Send-Q local foreign state …". The
// owning process is in a column the header names "pid" (older releases:
// "… rhiwat shiwat pid epid state options …") or "process:pid" (newer
// releases, e.g. "rapportd:512"; the process name may contain spaces).
// The header locates that column; without a header the pid is left 0.
// Addresses are "a.b.c.d.port", "v6addr.port", "*.port" or "*.*".
func parseMacNetstat(b []byte) ([]Socket, error) {
	var socks []Socket
	pidCol, after := -1, 0 // pid column index and the number of header columns after it
	procPID := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), macMaxLine)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Proto") {
			h := strings.ReplaceAll(line, "Local Address", "Local-Address")
			cols := strings.Fields(strings.ReplaceAll(h, "Foreign Address", "Foreign-Address"))
			pidCol = -1
			for i, c := range cols {
				if c == "pid" || c == "process:pid" {
					pidCol, after, procPID = i, len(cols)-i-1, c == "process:pid"
					break
				}
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "tcp") {
			continue
		}
		var listening bool
		switch f[5] {
		case "LISTEN":
			listening = true
		case "ESTABLISHED":
		default:
			continue
		}
		laddr, lport, ok1 := splitMacAddr(f[3])
		raddr, rport, ok2 := splitMacAddr(f[4])
		if !ok1 || !ok2 {
			continue
		}
		s := Socket{Protocol: "tcp", LocalAddr: laddr, LocalPort: lport, RemoteAddr: raddr, RemotePort: rport, Listening: listening}
		if pidCol > 5 && len(f) > pidCol {
			tok := f[pidCol]
			if procPID {
				// The process name may have spaces: the column spans
				// what is left once the fixed columns after it are removed.
				if end := len(f) - after; end > pidCol {
					tok = strings.Join(f[pidCol:end], " ")
				}
				if i := strings.LastIndexByte(tok, ':'); i >= 0 {
					tok = tok[i+1:]
				}
			}
			if pid, err := strconv.ParseInt(tok, 10, 32); err == nil && pid > 0 {
				s.PID = int32(pid)
			}
		}
		socks = append(socks, s)
	}
	if err := sc.Err(); err != nil {
		return socks, fmt.Errorf("parse netstat output: %w", err)
	}
	return socks, nil
}

// splitMacAddr splits a BSD netstat address "host.port" at its last dot.
// "*" ports are 0.
func splitMacAddr(s string) (addr string, port uint32, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || i == len(s)-1 {
		return "", 0, false
	}
	addr, p := s[:i], s[i+1:]
	if p == "*" {
		return addr, 0, true
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return addr, uint32(n), true
}
