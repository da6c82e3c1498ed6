package outputs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syslog facility (4: security/authorization) and the severities of
// alert severities (RFC 5424 section 6.2.1).
const syslogFacility = 4

func syslogSeverity(ev Event) int {
	if ev.Alert == nil {
		return 6 // informational
	}
	switch ev.Alert.Severity {
	case "critical":
		return 2
	case "high":
		return 3
	case "medium":
		return 4
	}
	return 5 // notice
}

// maxUDP is the largest syslog message sent over UDP (one datagram).
const maxUDP = 65000

// rfc5424 is one syslog message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME
// PROCID MSGID STRUCTURED-DATA MSG, with the header fields reduced to
// printable ASCII of their maximum length ("-" when empty).
func rfc5424(severity int, at time.Time, hostname, msgid, msg string) []byte {
	field := func(s string, max int) string {
		s = strings.Map(func(r rune) rune {
			if r < 33 || r > 126 {
				return -1
			}
			return r
		}, s)
		if len(s) > max {
			s = s[:max]
		}
		if s == "" {
			return "-"
		}
		return s
	}
	return fmt.Appendf(nil, "<%d>1 %s %s bonafide %d %s - %s", syslogFacility*8+severity,
		at.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), field(hostname, 255), os.Getpid(), field(msgid, 32), msg)
}

// octetCounted frames a message for a stream (RFC 6587 octet counting,
// RFC 5425 on TLS): its length in bytes, a space, the message.
func octetCounted(msg []byte) []byte {
	return append(strconv.AppendInt(nil, int64(len(msg)), 10), append([]byte{' '}, msg...)...)
}

// syslogSink writes to one syslog receiver over one connection, dialled
// again after an error.
type syslogSink struct {
	o    *Output
	env  env
	mu   sync.Mutex
	conn net.Conn
	tls  *tls.Config
}

func newSyslog(o *Output, e env) (*syslogSink, error) {
	s := &syslogSink{o: o, env: e}
	if o.Protocol == "tls" {
		host, _, _ := net.SplitHostPort(o.Address)
		s.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if len(o.caPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(o.caPEM) {
				return nil, fmt.Errorf("output %s: ca_file holds no PEM certificate", o.Name)
			}
			s.tls.RootCAs = pool
		}
	}
	return s, nil
}

func (s *syslogSink) message(ev Event) ([]byte, error) {
	var msg string
	if s.o.Format == "json" {
		b, err := jsonBody(ev, s.env)
		if err != nil {
			return nil, err
		}
		msg = string(b)
	} else {
		msg = cef(ev, s.env)
	}
	m := rfc5424(syslogSeverity(ev), ev.At, s.env.Hostname, ev.Event, msg)
	if s.o.Protocol == "udp" {
		if len(m) > maxUDP {
			m = m[:maxUDP]
		}
		return m, nil
	}
	return octetCounted(m), nil
}

func (s *syslogSink) Send(ctx context.Context, ev Event) error {
	m, err := s.message(ev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.o.Protocol != "udp" && peerClosed(s.conn) {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		if s.conn, err = s.dial(ctx); err != nil {
			return err
		}
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.o.Timeout))
	if _, err := s.conn.Write(m); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog %s: %w", s.o.Address, err)
	}
	return nil
}

func (s *syslogSink) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	network := "tcp"
	if s.o.Protocol == "udp" {
		network = "udp"
	}
	var d net.Dialer
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: s.tls}).DialContext(ctx, network, s.o.Address)
	} else {
		c, err = d.DialContext(ctx, network, s.o.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("syslog %s: %w", s.o.Address, err)
	}
	return c, nil
}

// peerClosed reports whether a stream's receiver has closed it (or sent
// something, which syslog receivers do not), so that a message is not
// written into a connection that is already gone.
func peerClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	return nil
}
