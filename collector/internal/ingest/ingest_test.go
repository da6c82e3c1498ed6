package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// collector is a real gRPC server over TLS on loopback with a real SQLite
// store behind it.
type collector struct {
	addr   string
	ca     *ca.Authority
	store  *store.Store
	secret string
}

func startCollector(t *testing.T, opts ...func(*ingest.Config)) *collector {
	t.Helper()
	return startCollectorOn(t, filepath.Join(t.TempDir(), "bonafide.db"), opts...)
}

// startCollectorOn is startCollector with its database at dsn (a SQLite
// file or a PostgreSQL URL).
func startCollectorOn(t *testing.T, dsn string, opts ...func(*ingest.Config)) *collector {
	t.Helper()
	cfg := ingest.Config{HeartbeatInterval: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	st := storetest.Open(t, dsn)
	authority, _, err := ca.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.ServerCertificate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := ingest.New(st, authority, rules, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := svc.GRPCServer(cert)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	secret, _, err := st.CreateSecret(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &collector{addr: lis.Addr().String(), ca: authority, store: st, secret: secret}
}

// conn dials the collector, with a client certificate when cert is non-nil.
func (c *collector) conn(t *testing.T, cert *tls.Certificate) agentv1.AgentServiceClient {
	t.Helper()
	return c.connFrom(t, cert, "")
}

// connFrom dials from a local address ("" for any).
func (c *collector) connFrom(t *testing.T, cert *tls.Certificate, source string) agentv1.AgentServiceClient {
	t.Helper()
	var d net.Dialer
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	cfg := &tls.Config{RootCAs: c.ca.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return agentv1.NewAgentServiceClient(cc)
}

type agent struct {
	id, deviceID string
	cert         tls.Certificate
	rpc          agentv1.AgentServiceClient
}

func identity(serial string) *agentv1.HostIdentity {
	return &agentv1.HostIdentity{HardwareUuid: "4c4c4544-0042-3510-8052-b7c04f4e3132", SerialNumber: serial,
		Hostname: "laptop-" + serial, Os: &agentv1.OperatingSystem{Family: "linux"}}
}

func csr(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func (c *collector) enroll(t *testing.T, serial string) *agent {
	t.Helper()
	key, der := csr(t)
	resp, err := c.conn(t, nil).Enroll(context.Background(), &agentv1.EnrollRequest{Secret: c.secret, Identity: identity(serial), Csr: der})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	a := &agent{id: resp.GetAgentId(), deviceID: resp.GetDeviceId(), cert: tls.Certificate{Certificate: [][]byte{resp.GetCertificate()}, PrivateKey: key}}
	a.rpc = c.conn(t, &a.cert)
	return a
}

// enrollErr enrolls hardware serial and returns the error.
func (c *collector) enrollErr(t *testing.T, serial string) error {
	t.Helper()
	_, der := csr(t)
	_, err := c.conn(t, nil).Enroll(context.Background(), &agentv1.EnrollRequest{Secret: c.secret, Identity: identity(serial), Csr: der})
	return err
}

func (a *agent) snapshot(serial string) *agentv1.Report {
	id := identity(serial)
	id.AgentId = a.id
	return &agentv1.Report{ReportId: uuid.NewString(), Sequence: 1, CreatedAt: timestamppb.Now(),
		Body: &agentv1.Report_Snapshot{Snapshot: &agentv1.HostSnapshot{Identity: id}}}
}

func (c *collector) reportCount(t *testing.T, deviceID string) int64 {
	t.Helper()
	n, err := c.store.ReportCount(context.Background(), deviceID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if !strings.Contains(status.Convert(err).Message(), contains) {
		t.Fatalf("message %q does not mention %q", status.Convert(err).Message(), contains)
	}
}

func TestEnrollReportIdempotent(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	leaf, _ := x509.ParseCertificate(a.cert.Certificate[0])
	if id, ok := ca.AgentID(leaf); !ok || id != a.id {
		t.Fatalf("certificate URI SAN names %q, want %q", id, a.id)
	}
	rep := a.snapshot("SN1")
	for range 3 { // a retried report is stored once
		resp, err := a.rpc.Report(context.Background(), &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetAckedReportIds(); len(got) != 1 || got[0] != rep.GetReportId() {
			t.Fatalf("acked %v", got)
		}
	}
	if n := c.reportCount(t, a.deviceID); n != 1 {
		t.Fatalf("stored %d reports, want 1", n)
	}
	d, err := c.store.GetDevice(context.Background(), a.deviceID)
	if err != nil || d.Hostname != "laptop-SN1" || d.LastIP != "127.0.0.1" {
		t.Fatalf("device %+v, %v", d, err)
	}
}

// TestEnrollClaimingHardware: hardware identity is a claim, not a key.
// An enrollment claiming the SMBIOS identity of an active device gets a
// device of its own (the answer names nothing of the other device), and
// duplicate_hardware_identity fires on it when it reports; the claimed
// device is untouched.
func TestEnrollClaimingHardware(t *testing.T) {
	c := startCollector(t)
	a1 := c.enroll(t, "SN1")
	a2 := c.enroll(t, "SN1")
	b := c.enroll(t, "SN2")
	if a1.deviceID == a2.deviceID || a1.id == a2.id {
		t.Fatalf("claimed hardware: device %s/%s agents %s/%s, want a device of its own", a1.deviceID, a2.deviceID, a1.id, a2.id)
	}
	if b.deviceID == a1.deviceID || b.deviceID == a2.deviceID {
		t.Fatal("different hardware got the same device")
	}
	ctx := context.Background()
	for _, a := range []*agent{a1, a2, a1} {
		if _, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}}); err != nil {
			t.Fatal(err)
		}
	}
	alerts, err := c.store.ListAlerts(ctx, store.AlertFilter{RuleID: "duplicate_hardware_identity"})
	if err != nil || len(alerts) != 1 || alerts[0].DeviceID != a2.deviceID || alerts[0].Evidence["claims_device"] != a1.deviceID {
		t.Fatalf("alerts %+v, %v; want one on the claimant %s naming %s", alerts, err, a2.deviceID, a1.deviceID)
	}
	d, err := c.store.GetDevice(ctx, a1.deviceID)
	if err != nil || d.AgentID != a1.id {
		t.Fatalf("claimed device %+v, %v: its agent changed", d, err)
	}
}

func TestUnauthenticated(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	anon := c.conn(t, nil)
	_, err := anon.Report(context.Background(), &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}})
	wantCode(t, err, codes.Unauthenticated, "client certificate required")
	_, err = anon.CheckIn(context.Background(), &agentv1.CheckInRequest{})
	wantCode(t, err, codes.Unauthenticated, "client certificate required")

	// A certificate from another CA is refused by the TLS handshake.
	other, _, _ := ca.LoadOrCreate(t.TempDir())
	key, der := csr(t)
	forged, err := other.SignAgent(der, a.id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cli := c.conn(t, &tls.Certificate{Certificate: [][]byte{forged.Raw}, PrivateKey: key})
	if _, err := cli.Report(context.Background(), &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}}); err == nil {
		t.Fatal("a certificate from a foreign CA was accepted")
	}
	if n := c.reportCount(t, a.deviceID); n != 0 {
		t.Fatalf("stored %d reports", n)
	}
}

func TestRevokedDeviceRefused(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	other := c.enroll(t, "SN2")
	ctx := context.Background()
	if _, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}}); err != nil {
		t.Fatal(err)
	}
	if err := c.store.RevokeDevice(ctx, a.deviceID, "test"); err != nil {
		t.Fatal(err)
	}
	_, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}})
	wantCode(t, err, codes.PermissionDenied, "revoked")
	_, err = a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{})
	wantCode(t, err, codes.PermissionDenied, "revoked")
	if n := c.reportCount(t, a.deviceID); n != 1 {
		t.Fatalf("stored %d reports, want 1", n)
	}
	// Its hardware cannot enroll again: no certificate, no agent.
	wantCode(t, c.enrollErr(t, "SN1"), codes.PermissionDenied, "revoked")
	// Everyone else is still served.
	if _, err := other.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{other.snapshot("SN2")}}); err != nil {
		t.Fatal(err)
	}
}

func TestReportNamingAnotherDevice(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	victim := c.enroll(t, "SN2")
	rep := a.snapshot("SN2")
	rep.GetSnapshot().Identity.AgentId = victim.id
	_, err := a.rpc.Report(context.Background(), &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}})
	wantCode(t, err, codes.PermissionDenied, "names agent")
	for _, d := range []string{a.deviceID, victim.deviceID} {
		if n := c.reportCount(t, d); n != 0 {
			t.Fatalf("device %s has %d reports", d, n)
		}
	}
}

func TestEnrollRefusals(t *testing.T) {
	c := startCollector(t)
	cli := c.conn(t, nil)
	ctx := context.Background()
	_, der := csr(t)
	_, err := cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: c.secret, Identity: &agentv1.HostIdentity{Hostname: "x"}, Csr: der})
	wantCode(t, err, codes.InvalidArgument, "hardware_uuid")
	_, err = cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: c.secret, Identity: identity("SN1"), Csr: []byte("not a csr")})
	wantCode(t, err, codes.InvalidArgument, "CSR")
	// One laptop retrying the same wrong secret does not lock its
	// office's address out.
	for range 30 {
		_, err = cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: "bfe_wrong", Identity: identity("SN1"), Csr: der})
		wantCode(t, err, codes.PermissionDenied, "secret")
	}
	if _, err := cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: c.secret, Identity: identity("SN9"), Csr: der}); err != nil {
		t.Fatalf("enrollment after one laptop's retries of a wrong secret: %v", err)
	}
	for i := range 9 {
		_, err = cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: fmt.Sprintf("bfe_guess%d", i), Identity: identity("SN1"), Csr: der})
		wantCode(t, err, codes.PermissionDenied, "secret")
	}
	// After ten distinct wrong secrets (guessing) this address is refused,
	// even with the right secret.
	_, err = cli.Enroll(ctx, &agentv1.EnrollRequest{Secret: c.secret, Identity: identity("SN1"), Csr: der})
	wantCode(t, err, codes.ResourceExhausted, "too many")
}

func TestBadInputRefusedNothingStored(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	ctx := context.Background()
	cases := []struct {
		name     string
		mutate   func(*agentv1.Report) []*agentv1.Report
		code     codes.Code
		contains string
	}{
		{"invalid UTF-8", func(r *agentv1.Report) []*agentv1.Report {
			r.GetSnapshot().Identity.Hostname = "bad\xff\xfe"
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "invalid UTF-8"},
		{"long string", func(r *agentv1.Report) []*agentv1.Report {
			r.GetSnapshot().Identity.Hostname = strings.Repeat("a", 5000)
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "at most 4096"},
		{"absurd count", func(r *agentv1.Report) []*agentv1.Report {
			usb := &agentv1.Usb{}
			for range 10001 {
				usb.Devices = append(usb.Devices, &agentv1.UsbDevice{VendorId: 1})
			}
			r.GetSnapshot().Usb = usb
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "at most 10000"},
		{"future timestamp", func(r *agentv1.Report) []*agentv1.Report {
			r.CreatedAt = timestamppb.New(time.Now().AddDate(5, 0, 0))
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "in the future"},
		{"bad report id", func(r *agentv1.Report) []*agentv1.Report {
			r.ReportId = "../../etc/passwd"
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "UUID"},
		{"bad presence check id", func(r *agentv1.Report) []*agentv1.Report {
			r.PresenceCheckId = "'; DROP TABLE presence_checks; --"
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "presence_check_id"},
		{"presence check id on a heartbeat", func(r *agentv1.Report) []*agentv1.Report {
			r.Body = &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{Identity: r.GetSnapshot().GetIdentity()}}
			r.PresenceCheckId = "00000000-0000-4000-8000-000000000001"
			return []*agentv1.Report{r}
		}, codes.InvalidArgument, "presence_check_id"},
		{"too many reports", func(r *agentv1.Report) []*agentv1.Report {
			var rs []*agentv1.Report
			for range ingest.MaxReportsPerCall + 1 {
				rs = append(rs, a.snapshot("SN1"))
			}
			return rs
		}, codes.InvalidArgument, "in one call"},
		{"one bad report spoils its batch", func(r *agentv1.Report) []*agentv1.Report {
			r.GetSnapshot().Identity.Hostname = "bad\xff"
			return []*agentv1.Report{a.snapshot("SN1"), r}
		}, codes.InvalidArgument, "invalid UTF-8"},
		{"over the size cap", func(r *agentv1.Report) []*agentv1.Report {
			d := &agentv1.Displays{}
			for range 200 { // 200 × 32 KiB EDIDs ≈ 6.5 MB > 4 MiB
				d.Displays = append(d.Displays, &agentv1.Display{Edid: make([]byte, 32<<10)})
			}
			r.GetSnapshot().Displays = d
			return []*agentv1.Report{r}
		}, codes.ResourceExhausted, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: tc.mutate(a.snapshot("SN1"))})
			wantCode(t, err, tc.code, tc.contains)
			if n := c.reportCount(t, a.deviceID); n != 0 {
				t.Fatalf("%d reports stored from a refused call", n)
			}
		})
	}
	// The collector keeps serving the same agent afterwards.
	if _, err := a.rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}}); err != nil {
		t.Fatal(err)
	}
	if n := c.reportCount(t, a.deviceID); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}

func TestCheckInConfigAndRenewal(t *testing.T) {
	c := startCollector(t)
	a := c.enroll(t, "SN1")
	ctx := context.Background()
	resp, err := a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := resp.GetConfig()
	if cfg.GetVersion() == "" || cfg.GetHeartbeatInterval().AsDuration() != time.Minute {
		t.Fatalf("config %v", cfg)
	}
	resp, err = a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{ConfigVersion: cfg.GetVersion()})
	if err != nil || resp.GetConfig() != nil {
		t.Fatalf("unchanged config resent: %v %v", resp, err)
	}
	// A renewal whose answer is lost: the agent still holds its old
	// certificate, which works until the renewed one is used.
	_, lost := csr(t)
	if _, err = a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{ConfigVersion: cfg.GetVersion(), RenewCsr: lost}); err != nil {
		t.Fatal(err)
	}
	key, der := csr(t)
	resp, err = a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{ConfigVersion: cfg.GetVersion(), RenewCsr: der})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := ca.AgentID(leaf); id != a.id {
		t.Fatalf("renewed certificate names %q, want %q", id, a.id)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	// The renewed certificate is used: the old one is retired.
	renewed := c.conn(t, &tls.Certificate{Certificate: [][]byte{resp.GetCertificate()}, PrivateKey: key})
	if _, err := renewed.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{a.snapshot("SN1")}}); err != nil {
		t.Fatal(err)
	}
	_, err = a.rpc.CheckIn(ctx, &agentv1.CheckInRequest{})
	wantCode(t, err, codes.Unauthenticated, "retired")
	if _, err := renewed.CheckIn(ctx, &agentv1.CheckInRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestHealthWithoutClientCertificate(t *testing.T) {
	c := startCollector(t)
	cfg := &tls.Config{RootCAs: c.ca.Pool(), ServerName: "localhost"}
	cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
}

func TestReflectionListsAgentService(t *testing.T) {
	c := startCollector(t)
	cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: c.ca.Pool(), ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "bonafide.agent.v1.AgentService") || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Fatalf("services %v", names)
	}
}

// TestForwardedAddressFromTrustedProxyOnly: x-forwarded-for from an
// untrusted peer is ignored (the peer's own address is the egress); from a
// trusted proxy it is the egress.
func TestForwardedAddressFromTrustedProxyOnly(t *testing.T) {
	trusted, err := proxyproto.ParseTrusted("127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, func(cfg *ingest.Config) { cfg.TrustedProxies = trusted })
	a := c.enroll(t, "SN7")
	for i, tc := range []struct{ source, want string }{
		{"127.0.0.8", "127.0.0.8"},   // untrusted: header ignored
		{"127.0.0.9", "203.0.113.5"}, // trusted proxy: header used
	} {
		rpc := c.connFrom(t, &a.cert, tc.source)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", "203.0.113.5")
		rep := a.snapshot("SN7")
		rep.Sequence = uint64(i + 1)
		if _, err := rpc.Report(ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}}); err != nil {
			t.Fatal(err)
		}
		d, err := c.store.GetDevice(context.Background(), a.deviceID)
		if err != nil || d.LastIP != tc.want || d.Egress.IP != tc.want || d.Egress.Status != ingest.EgressNoDatabase {
			t.Fatalf("from %s: last_ip %q egress %+v (%v), want %s", tc.source, d.LastIP, d.Egress, err, tc.want)
		}
	}
}
