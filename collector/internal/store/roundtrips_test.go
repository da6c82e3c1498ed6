package store_test

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
)

// roundTrips counts the round trips of the clients of a TCP proxy to a
// PostgreSQL server (proxyPostgres): the times a client writes after the
// server answered it, however many segments either sends; and the
// statements they run (statements): the Execute and simple Query messages
// they send.
type roundTrips struct{ n, statements atomic.Int64 }

// messages follows one client's stream of PostgreSQL frontend messages,
// split across reads anyhow, and counts its statements into rt.
type messages struct {
	rt *roundTrips
	// started: past the startup messages, which have no type byte.
	started bool
	// head is the part read of the current message's type and length;
	// left the bytes of its body still to come.
	head []byte
	left int
}

// feed reads b, the next bytes of the stream.
func (m *messages) feed(b []byte) {
	for len(b) > 0 {
		if m.left > 0 {
			n := min(m.left, len(b))
			m.left, b = m.left-n, b[n:]
			continue
		}
		size := 5 // type and length
		if !m.started {
			size = 8 // length and protocol or request code
		}
		n := min(size-len(m.head), len(b))
		m.head, b = append(m.head, b[:n]...), b[n:]
		if len(m.head) < size {
			return
		}
		if m.started {
			if m.head[0] == 'E' || m.head[0] == 'Q' {
				m.rt.statements.Add(1)
			}
			m.left = int(binary.BigEndian.Uint32(m.head[1:])) - 4
		} else {
			m.left = int(binary.BigEndian.Uint32(m.head)) - 8
			// An SSL or GSS encryption request (refused: the tests
			// connect without either) is followed by the startup
			// message.
			code := binary.BigEndian.Uint32(m.head[4:])
			m.started = code != 80877103 && code != 80877104
		}
		m.head = m.head[:0]
	}
}

// proxyPostgres starts a proxy to the server of dsn and returns the dsn
// through it, with the count of its clients' round trips.
func proxyPostgres(t *testing.T, dsn string) (string, *roundTrips) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rt := &roundTrips{}
	server := u.Host
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go rt.relay(client, server)
		}
	}()
	u.Host = ln.Addr().String()
	return u.String(), rt
}

// relay carries one client's connection to the server and back.
func (rt *roundTrips) relay(client net.Conn, server string) {
	defer client.Close()
	up, err := net.Dial("tcp", server)
	if err != nil {
		return
	}
	defer up.Close()
	var answered atomic.Bool
	answered.Store(true)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				answered.Store(true)
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	m := &messages{rt: rt}
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if answered.Swap(false) {
				rt.n.Add(1)
			}
			m.feed(buf[:n])
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF || err != nil {
			return
		}
	}
}
