package upload

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// MaxMessageBytes is the collector's cap on one gRPC message.
const MaxMessageBytes = 4 << 20

// Pin says how the agent trusts the collector before enrollment.
type Pin struct {
	// Fingerprint is the hex SHA-256 of the collector's CA certificate.
	Fingerprint string
	// CAFile is a PEM file with the CA instead.
	CAFile string
}

// EnrollOptions are the inputs of Enroll.
type EnrollOptions struct {
	Collector     string
	Secret        string
	Pin           Pin
	SourceAddress string
	Identity      *agentv1.HostIdentity
}

// Enroll connects to the collector trusting only the pinned CA, sends the
// secret with a CSR for the enrollment key (see enrollKey) and stores the
// issued certificate, the CA and the enrollment record in the state
// directory: one attempt, on a connection of its own (Enroller keeps one
// between attempts).
func (s *State) Enroll(ctx context.Context, o EnrollOptions, log *slog.Logger) (Enrollment, error) {
	en, err := s.NewEnroller(o, log)
	if err != nil {
		return Enrollment{}, err
	}
	defer en.Close()
	return en.Enroll(ctx, o.Identity)
}

// Enroller enrolls over one connection kept between attempts, so that an
// attempt the collector refused because it was busy (ResourceExhausted,
// which comes with a retry-after hint) is tried again without a new TLS
// handshake, and one whose connection was closed reconnects resuming the
// TLS session: a fleet enrolling at once costs the collector little more
// per refusal than the refusal itself.
type Enroller struct {
	state             *State
	collector, source string
	secret            string
	tlsCfg            *tls.Config                       // with the session cache
	pinned            *atomic.Pointer[x509.Certificate] // the CA the last handshake was verified with
	conn              *grpc.ClientConn                  // nil: dial at the next attempt
	hint              httpHint
	key               *ecdsa.PrivateKey // the enrollment key and its CSR, read (or made) once
	csr               []byte
}

// NewEnroller prepares enrollment with the collector of o (o.Identity is
// not used: each attempt gives its own). Nothing is dialled before the
// first attempt.
func (s *State) NewEnroller(o EnrollOptions, log *slog.Logger) (*Enroller, error) {
	if o.Collector == "" || o.Secret == "" {
		return nil, errors.New("enroll needs the collector address and the enrollment secret")
	}
	verify, err := pinVerifier(o.Pin, log)
	if err != nil {
		return nil, err
	}
	pinned := new(atomic.Pointer[x509.Certificate])
	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below, at every handshake (a resumed one too)
		VerifyConnection: func(cs tls.ConnectionState) error {
			ca, err := verify(cs.PeerCertificates)
			if err == nil {
				pinned.Store(ca)
			}
			return err
		},
		ClientSessionCache: tls.NewLRUClientSessionCache(1),
	}
	return &Enroller{state: s, collector: o.Collector, source: o.SourceAddress, secret: o.Secret, tlsCfg: tlsCfg, pinned: pinned}, nil
}

// Close closes the connection.
func (e *Enroller) Close() error {
	if e.conn == nil {
		return nil
	}
	err := e.conn.Close()
	e.conn = nil
	return err
}

// Enroll makes one attempt to enroll the host id. The connection is kept
// for the next attempt when the collector answered (busy, or refusing the
// request), and dialled afresh after a connection failure.
func (e *Enroller) Enroll(ctx context.Context, id *agentv1.HostIdentity) (Enrollment, error) {
	s := e.state
	if e.key == nil {
		var err error
		if e.key, e.csr, err = s.enrollKey(); err != nil {
			return Enrollment{}, err
		}
	}
	key, csr := e.key, e.csr
	var err error
	if e.conn == nil {
		if e.conn, e.hint, err = dial(e.collector, e.source, e.tlsCfg); err != nil {
			return Enrollment{}, err
		}
	}
	resp, err := agentv1.NewAgentServiceClient(e.conn).Enroll(ctx, &agentv1.EnrollRequest{Secret: e.secret, Identity: id, Csr: csr})
	if err != nil && RetryAfter(err) == 0 && (status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded) {
		// The connection failed or hangs: a new one next time, rather
		// than waiting out gRPC's own reconnection backoff.
		e.Close()
	}
	if err != nil && e.hint.plain.Load() {
		return Enrollment{}, fmt.Errorf("enroll: %w", e.hint.explain(err))
	}
	if status.Code(err) == codes.AlreadyExists {
		// The key is another device's (a state directory cloned
		// mid-enrollment): the next attempt starts with a new one.
		e.key, e.csr = nil, nil
		if rerr := os.Remove(s.path(enrollKeyFile)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return Enrollment{}, rerr
		}
	}
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll at %s: %w", e.collector, err)
	}
	pinned := e.pinned.Load()
	if pinned == nil {
		return Enrollment{}, errors.New("enroll: collector not verified")
	}
	if err := mkdirPrivate(s.Dir); err != nil {
		return Enrollment{}, err
	}
	if err := writeAtomic(s.path("ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pinned.Raw}), 0o644); err != nil {
		return Enrollment{}, err
	}
	if err := s.saveCertificate(key, resp.GetCertificate()); err != nil {
		return Enrollment{}, err
	}
	en := Enrollment{AgentID: resp.GetAgentId(), DeviceID: resp.GetDeviceId(), Collector: e.collector, EnrolledAt: time.Now().UTC()}
	b, _ := json.MarshalIndent(en, "", "  ")
	if err := writeAtomic(s.path("enrollment.json"), b, 0o644); err != nil {
		return Enrollment{}, err
	}
	if err := os.Remove(s.path(enrollKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Enrollment{}, err
	}
	return en, nil
}

// pinVerifier returns a function that checks the server's chain against the
// pin and returns the CA certificate that anchors it. Without any pin the
// root the server presents is trusted on first use and its fingerprint
// logged, as ssh does.
func pinVerifier(p Pin, log *slog.Logger) (func([]*x509.Certificate) (*x509.Certificate, error), error) {
	var fromFile []*x509.Certificate
	if p.CAFile != "" {
		b, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
				fromFile = append(fromFile, c)
			}
		}
		if len(fromFile) == 0 {
			return nil, fmt.Errorf("CA file %s holds no certificate", p.CAFile)
		}
	}
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p.Fingerprint), ":", ""))
	return func(chain []*x509.Certificate) (*x509.Certificate, error) {
		if len(chain) == 0 {
			return nil, errors.New("collector sent no certificate")
		}
		candidates := fromFile
		if len(candidates) == 0 {
			// The presented chain, top first, so that first use pins the CA.
			candidates = slices.Clone(chain)
			slices.Reverse(candidates)
		}
		for _, ca := range candidates {
			sum := sha256.Sum256(ca.Raw)
			fp := hex.EncodeToString(sum[:])
			if want != "" && fp != want {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
				continue
			}
			if want == "" && len(fromFile) == 0 {
				log.Warn("no CA fingerprint given: trusting the collector's CA on first use", "sha256", fp)
			}
			return ca, nil
		}
		if want != "" {
			return nil, fmt.Errorf("collector's CA does not match the pinned fingerprint %s", want)
		}
		return nil, errors.New("collector's certificate is not issued by the given CA")
	}, nil
}

// ErrPlainHTTP: the collector address answered the TLS handshake in plain
// HTTP, as the collector's HTTP port (web UI and API) does.
var ErrPlainHTTP = errors.New("answered plain HTTP: is this the collector's HTTP port? agents use its gRPC port (serve --grpc-listen, default 8443)")

// httpHint wraps the TLS credentials of a connection to the collector and
// remembers whether the last handshake was answered in plain HTTP, which
// gRPC reports only as a failed handshake.
type httpHint struct {
	credentials.TransportCredentials
	addr  string
	plain *atomic.Bool
}

func (h httpHint) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := h.TransportCredentials.ClientHandshake(ctx, authority, raw)
	var rec tls.RecordHeaderError
	h.plain.Store(errors.As(err, &rec) && string(rec.RecordHeader[:]) == "HTTP/")
	if h.plain.Load() {
		err = fmt.Errorf("%s %w", h.addr, ErrPlainHTTP)
	}
	return conn, info, err
}

func (h httpHint) Clone() credentials.TransportCredentials {
	return httpHint{h.TransportCredentials.Clone(), h.addr, h.plain}
}

// explain is err from a call on the connection, or, when the collector
// answered in plain HTTP, that alone.
func (h httpHint) explain(err error) error {
	if err != nil && h.plain.Load() {
		return fmt.Errorf("%s %w", h.addr, ErrPlainHTTP)
	}
	return err
}

func dial(addr, source string, tlsCfg *tls.Config) (*grpc.ClientConn, httpHint, error) {
	hint := httpHint{credentials.NewTLS(tlsCfg), addr, new(atomic.Bool)}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(hint),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
	if source != "" {
		local, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(source, "0"))
		if err != nil {
			return nil, hint, fmt.Errorf("source_address: %w", err)
		}
		d := net.Dialer{LocalAddr: local, Timeout: 20 * time.Second}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, hint, fmt.Errorf("connect %s: %w", addr, err)
	}
	return conn, hint, nil
}

// Client is an authenticated connection to the collector.
type Client struct {
	conn  *grpc.ClientConn
	hint  httpHint
	svc   agentv1.AgentServiceClient
	state *State
}

// Connect opens an mTLS connection using the enrolled certificate. The
// certificate is read at each handshake, so a renewal takes effect on the
// next connection.
func (s *State) Connect(collector, source string) (*Client, error) {
	if _, err := s.Certificate(); err != nil {
		return nil, err
	}
	pool, err := s.CAPool()
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(collector)
	if err != nil {
		return nil, fmt.Errorf("collector address %q: %w", collector, err)
	}
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		ServerName: host,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.Certificate()
		},
	}
	conn, hint, err := dial(collector, source, tlsCfg)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, hint: hint, svc: agentv1.NewAgentServiceClient(conn), state: s}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Report delivers reports and returns the ids the collector acknowledged.
func (c *Client) Report(ctx context.Context, reports []*agentv1.Report) ([]string, error) {
	resp, err := c.svc.Report(ctx, &agentv1.ReportRequest{Reports: reports})
	if err != nil {
		return nil, c.hint.explain(err)
	}
	return resp.GetAckedReportIds(), nil
}

// RenewBefore is how long before expiry the agent asks for a new certificate
// (a third of the collector's 30-day validity).
const RenewBefore = 10 * 24 * time.Hour

// CheckIn reports the agent's state, renews the certificate when it is due
// and returns the configuration when it changed (nil otherwise).
func (c *Client) CheckIn(ctx context.Context, req *agentv1.CheckInRequest) (*agentv1.CheckInResponse, error) {
	notAfter, err := c.state.NotAfter()
	if err != nil {
		return nil, err
	}
	var key *ecdsa.PrivateKey
	if time.Until(notAfter) < RenewBefore {
		k, csr, err := newKey()
		if err != nil {
			return nil, err
		}
		key, req.RenewCsr = k, csr
	}
	resp, err := c.svc.CheckIn(ctx, req)
	if err != nil {
		return nil, c.hint.explain(err)
	}
	if key != nil && len(resp.GetCertificate()) > 0 {
		if err := c.state.saveCertificate(key, resp.GetCertificate()); err != nil {
			return nil, fmt.Errorf("store renewed certificate: %w", err)
		}
	}
	return resp, nil
}
