package ingest

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// Bounds on what a peer without a certificate, or one agent, can hold open
// on the gRPC listener. An agent makes one call at a time on one
// connection; a peer without a certificate can only enroll.
const (
	// DefaultCallTimeout bounds every call, including one whose request
	// message never arrives (a HEADERS-only stream).
	DefaultCallTimeout = 2 * time.Minute
	// DefaultMaxConnsPerAddress bounds the TCP connections from one
	// address (not from a trusted proxy), before TLS: an office behind one
	// NAT holds one per laptop.
	DefaultMaxConnsPerAddress = 1024
	// DefaultMaxUnauthConnsPerAddress bounds the TLS connections without a
	// client certificate from one client address (the real one behind a
	// trusted proxy), and DefaultUnauthConnLifetime how long each may stay.
	DefaultMaxUnauthConnsPerAddress = 64
	DefaultUnauthConnLifetime       = 2 * time.Minute
	// DefaultMaxConnsPerAgent bounds the connections of one certificate.
	DefaultMaxConnsPerAgent = 4
)

// TLS handshakes in progress: at most handshakeSlots at once, and
// handshakeSlotsPerAddress for one client address, each given
// handshakeTimeout once it starts; a connection waits at most
// handshakeWait for a slot (its bytes wait in the socket, costing
// nothing) and is then closed. In a stampede the handshakes that start
// finish in time, instead of thousands progressing so slowly together that
// their clients' deadlines pass and the work is lost; a client that starts
// a handshake and never finishes it holds a slot for handshakeTimeout, and
// one address never more than its share.
const (
	handshakeSlots           = 64
	handshakeSlotsPerAddress = 16
	handshakeTimeout         = 10 * time.Second
	handshakeWait            = 15 * time.Second
)

// ConnLimits are the bounds the gRPC server enforces per connection; zero
// fields take the defaults above.
type ConnLimits struct {
	CallTimeout              time.Duration
	MaxConnsPerAddress       int
	MaxUnauthConnsPerAddress int
	UnauthConnLifetime       time.Duration
	MaxConnsPerAgent         int
}

func (l ConnLimits) withDefaults() ConnLimits {
	if l.CallTimeout <= 0 {
		l.CallTimeout = DefaultCallTimeout
	}
	if l.MaxConnsPerAddress <= 0 {
		l.MaxConnsPerAddress = DefaultMaxConnsPerAddress
	}
	if l.MaxUnauthConnsPerAddress <= 0 {
		l.MaxUnauthConnsPerAddress = DefaultMaxUnauthConnsPerAddress
	}
	if l.UnauthConnLifetime <= 0 {
		l.UnauthConnLifetime = DefaultUnauthConnLifetime
	}
	if l.MaxConnsPerAgent <= 0 {
		l.MaxConnsPerAgent = DefaultMaxConnsPerAgent
	}
	return l
}

// counter counts open connections by key and refuses one past max.
type counter struct {
	mu  sync.Mutex
	n   map[string]int
	max int
}

func newCounter(max int) *counter { return &counter{n: map[string]int{}, max: max} }

// take counts one more connection for key; false when key is at max.
func (c *counter) take(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

func (c *counter) give(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// LimitListener refuses (closes at once) a TCP connection from an address
// that already holds max; connections from trusted proxies are not counted
// here (they carry many clients, counted after TLS by their real address).
func LimitListener(inner net.Listener, max int, trusted proxyproto.Trusted) net.Listener {
	if max <= 0 {
		max = DefaultMaxConnsPerAddress
	}
	return &limitListener{Listener: inner, count: newCounter(max), trusted: trusted}
}

type limitListener struct {
	net.Listener
	count   *counter
	trusted proxyproto.Trusted
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr())
		if l.trusted.Contains(ip) {
			return c, nil
		}
		key := ip.String()
		if !l.count.take(key) {
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: sync.OnceFunc(func() { l.count.give(key) })}, nil
	}
}

// countedConn gives its count back when it is closed.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// guardCreds wraps the server's TLS credentials: after the handshake it
// counts the connection against its agent (client certificate) or, without
// a certificate, against its client address, refusing one past the bound;
// a connection without a certificate is closed after its lifetime.
type guardCreds struct {
	credentials.TransportCredentials
	limits     ConnLimits
	agents     *counter
	unauth     *counter
	handshakes *slots
}

func newGuardCreds(inner credentials.TransportCredentials, l ConnLimits) *guardCreds {
	return &guardCreds{TransportCredentials: inner, limits: l,
		agents: newCounter(l.MaxConnsPerAgent), unauth: newCounter(l.MaxUnauthConnsPerAddress),
		handshakes: newSlots(handshakeSlots, handshakeSlotsPerAddress)}
}

func (g *guardCreds) Clone() credentials.TransportCredentials {
	return &guardCreds{TransportCredentials: g.TransportCredentials.Clone(), limits: g.limits, agents: g.agents, unauth: g.unauth, handshakes: g.handshakes}
}

func (g *guardCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	release, ok := g.handshakes.take(addrOf(raw.RemoteAddr()).String(), handshakeWait)
	if !ok {
		raw.Close()
		return nil, nil, errHandshakeBusy
	}
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	conn, info, err := g.TransportCredentials.ServerHandshake(raw)
	release()
	if err != nil {
		return conn, info, err
	}
	// What is left of the connection's setup (the HTTP/2 preface), which
	// gRPC bounds again afterwards.
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	var key string
	var count *counter
	if ti, ok := info.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
		id, _ := ca.AgentID(ti.State.VerifiedChains[0][0])
		key, count = "agent:"+id, g.agents
	} else {
		// The address the connection came from, the real client's behind
		// a PROXY-protocol header.
		key, count = addrOf(raw.RemoteAddr()).String(), g.unauth
	}
	if !count.take(key) {
		if count == g.agents {
			conn.Close()
			return nil, nil, errConnLimit
		}
		// An office behind one NAT address enrolling at once: rather
		// than closing what the client just paid a handshake for (it
		// would see an EOF and reconnect at once), the connection lives
		// long enough to refuse its calls with ResourceExhausted and a
		// retry-after hint (tapCall), so the agent backs off. Such
		// connections are bounded by the listener's per-address bound
		// and their short lifetime.
		time.AfterFunc(refusedConnLifetime, func() { conn.Close() })
		return conn, overBound{info}, nil
	}
	cc := &countedConn{Conn: conn, release: sync.OnceFunc(func() { count.give(key) })}
	if count == g.unauth {
		// Enough to enroll; the agent reconnects with its certificate.
		time.AfterFunc(g.limits.UnauthConnLifetime, func() { cc.Close() })
	}
	return cc, info, nil
}

var (
	errConnLimit     = status.Error(codes.ResourceExhausted, "too many connections from this peer")
	errHandshakeBusy = status.Error(codes.ResourceExhausted, "too many TLS handshakes in progress")
)

// slots bounds the holders of a resource, in all and per key; take waits
// for one (waiters are woken one at a time, as slots come free).
type slots struct {
	all  chan struct{}
	per  int
	mu   sync.Mutex
	keys map[string]*keySlots // keys with a holder or a waiter
}

type keySlots struct {
	held  chan struct{}
	users int // holders and waiters
}

func newSlots(n, perKey int) *slots {
	return &slots{all: make(chan struct{}, n), per: perKey, keys: map[string]*keySlots{}}
}

// take waits up to wait for a slot for key; release gives it back.
func (s *slots) take(key string, wait time.Duration) (release func(), ok bool) {
	s.mu.Lock()
	k := s.keys[key]
	if k == nil {
		k = &keySlots{held: make(chan struct{}, s.per)}
		s.keys[key] = k
	}
	k.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		if k.users--; k.users == 0 {
			delete(s.keys, key)
		}
		s.mu.Unlock()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case k.held <- struct{}{}:
	case <-timer.C:
		leave()
		return nil, false
	}
	select {
	case s.all <- struct{}{}:
	case <-timer.C:
		<-k.held
		leave()
		return nil, false
	}
	return sync.OnceFunc(func() {
		<-s.all
		<-k.held
		leave()
	}), true
}

// refusedConnLifetime is how long a connection over the per-address bound
// of connections without a certificate stays open: enough to answer the
// call it was opened for, shorter than the retry-after hint, so the retry
// comes on a new connection.
const refusedConnLifetime = 4 * time.Second

// overBound marks a connection over the per-address bound of connections
// without a certificate: every call on it is refused (see tapCall).
type overBound struct{ credentials.AuthInfo }

// tapCall gives every call a deadline (so a stream whose request message
// never comes is dropped) and refuses, before any of its message is read,
// every call on a connection over the per-address bound (ResourceExhausted
// with a retry-after hint) and an AgentService call other than Enroll on a
// connection without a client certificate.
func (s *Server) tapCall(timeout time.Duration) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if p, ok := peer.FromContext(ctx); ok {
			if _, over := p.AuthInfo.(overBound); over {
				return nil, busy("too many connections enrolling from this address; retry later", enrollRetryAfter)
			}
		}
		switch info.FullMethodName {
		case agentv1.AgentService_CheckIn_FullMethodName, agentv1.AgentService_Report_FullMethodName:
			if peerCertificate(ctx) == nil {
				return nil, status.Error(codes.Unauthenticated, "client certificate required: enroll first")
			}
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		context.AfterFunc(ctx, cancel)
		return ctx, nil
	}
}
