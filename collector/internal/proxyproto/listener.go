package proxyproto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultHeaderTimeout bounds how long a trusted peer has to send its
// PROXY header when NewListener is given no timeout.
const DefaultHeaderTimeout = 5 * time.Second

// NewListener wraps inner. Connections from a trusted peer must begin with
// a PROXY protocol v1 or v2 header, which is read lazily by the first Read
// or RemoteAddr call (never in Accept, so one slow peer cannot hold up the
// others) within headerTimeout; the connection's RemoteAddr is then the
// client address the header names. A trusted peer that sends no valid
// header has its connection closed, and Read returns the error.
// Connections from other peers are returned untouched: nothing is read
// from them, so a header they send reaches the application as ordinary
// (and, for TLS, invalid) bytes.
func NewListener(inner net.Listener, trusted Trusted, headerTimeout time.Duration) net.Listener {
	if headerTimeout <= 0 {
		headerTimeout = DefaultHeaderTimeout
	}
	return &listener{Listener: inner, trusted: trusted, timeout: headerTimeout}
}

type listener struct {
	net.Listener
	trusted Trusted
	timeout time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.trusted.Contains(addrOf(c.RemoteAddr())) {
		return c, nil
	}
	return &Conn{Conn: c, timeout: l.timeout}, nil
}

// Conn is a connection from a trusted proxy. Its header is read on the
// first Read, RemoteAddr or Header call.
type Conn struct {
	net.Conn
	timeout time.Duration

	once   sync.Once
	header Header
	remote net.Addr
	err    error

	mu           sync.Mutex
	rest         []byte    // bytes read past the header, returned by Read first
	readDeadline time.Time // the caller's read deadline
	inHeader     bool
}

// Read reads application data, after the PROXY header.
func (c *Conn) Read(p []byte) (int, error) {
	c.once.Do(c.readHeader)
	if c.err != nil {
		return 0, c.err
	}
	c.mu.Lock()
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.rest = nil
		}
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// RemoteAddr is the client address from the PROXY header; the proxy's own
// address for a LOCAL/UNKNOWN header or when the header was invalid.
func (c *Conn) RemoteAddr() net.Addr {
	c.once.Do(c.readHeader)
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// ProxyAddr is the address of the proxy that sent the connection.
func (c *Conn) ProxyAddr() net.Addr { return c.Conn.RemoteAddr() }

// Header returns the PROXY header, reading it if needed.
func (c *Conn) Header() (Header, error) {
	c.once.Do(c.readHeader)
	return c.header, c.err
}

// SetDeadline sets both deadlines; the read deadline also bounds the
// header read.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	in := c.inHeader
	c.mu.Unlock()
	if in {
		// The header read owns the read deadline; it restores this one.
		return c.Conn.SetWriteDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	in := c.inHeader
	c.mu.Unlock()
	if in {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

var errHeaderTimeout = errors.New("proxyproto: timed out waiting for the PROXY header")

func (c *Conn) readHeader() {
	c.mu.Lock()
	c.inHeader = true
	deadline := time.Now().Add(c.timeout)
	if !c.readDeadline.IsZero() && c.readDeadline.Before(deadline) {
		deadline = c.readDeadline
	}
	c.mu.Unlock()

	err := c.Conn.SetReadDeadline(deadline)
	if err == nil {
		err = c.parse()
	}

	c.mu.Lock()
	c.inHeader = false
	restore := c.readDeadline
	c.mu.Unlock()
	if err == nil {
		err = c.Conn.SetReadDeadline(restore)
	}
	if err != nil {
		c.err = err
		c.mu.Lock()
		c.rest = nil
		c.mu.Unlock()
		_ = c.Conn.Close()
	}
}

func (c *Conn) parse() error {
	buf := make([]byte, 0, 256)
	for {
		h, n, err := ParseHeader(buf)
		if err == nil {
			c.header = h
			if !h.Local && h.Source.IsValid() {
				c.remote = net.TCPAddrFromAddrPort(h.Source)
			}
			if n < len(buf) {
				c.mu.Lock()
				c.rest = buf[n:]
				c.mu.Unlock()
			}
			return nil
		}
		if !IsIncomplete(err) {
			return err
		}
		if len(buf) == cap(buf) {
			next := min(2*cap(buf), MaxHeaderLen)
			if next <= len(buf) {
				return invalid("header too long")
			}
			buf = append(make([]byte, 0, next), buf...)
		}
		// Read no more than the largest header could still need, so that
		// little application data is buffered.
		m, rerr := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr != nil && m == 0 {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return errHeaderTimeout
			}
			return fmt.Errorf("proxyproto: reading PROXY header: %w", rerr)
		}
	}
}
