// Package ingest is the collector's gRPC AgentService: enrollment, check-in
// and report intake. Every other call than Enroll is authenticated by the
// per-device client certificate, and every report is validated before
// anything of it is stored.
package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/ca"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Config is what the service tells agents and how it judges them.
type Config struct {
	ScanInterval      time.Duration
	HeartbeatInterval time.Duration
	CheckInInterval   time.Duration
	// Catalogs, KVM and Locator.Networks are the initial catalogs;
	// SetCatalogs replaces them while the service runs.
	Catalogs []*agentv1.Catalog
	// KVM is the catalog the collector matches USB devices and displays
	// against itself; nil means the embedded one.
	KVM *policies.KVMCatalog
	// Media and Routers are the catalogs media devices and gateway MACs
	// are matched against; nil means the embedded ones.
	Media   *policies.MediaCatalog
	Routers *policies.RoutersCatalog
	// TrustedProxies may forward the agent's address (x-forwarded-for or
	// forwarded metadata); the listener handles PROXY-protocol headers.
	TrustedProxies proxyproto.Trusted
	// Locator says where egress addresses are; nil: unknown everywhere.
	Locator *Locator
	// MaxEnrollments bounds the enrollments in progress and
	// MaxInFlightReports the Report calls in progress; a call beyond the
	// bound is refused at once with ResourceExhausted and a retry-after
	// hint (see Admit). Zero: unbounded.
	MaxEnrollments     int
	MaxInFlightReports int
	// Presence is the presence-check flow; nil: no presence checks.
	Presence Presence
	// Limits bound calls and connections per peer (see GRPCServer).
	Limits ConnLimits
	// Quota bounds the reports and bytes one agent stores per UTC day; a
	// Report call past it is refused with ResourceExhausted and a
	// retry-after of the next day, and raises agent_report_flood once a
	// day. Zero fields: unbounded.
	Quota store.Quota
}

// Presence is the presence-check flow as the service needs it (package
// presence implements it).
type Presence interface {
	// AwaitingAgent names a check of the device that waits for the
	// agent's report ("" when none does).
	AwaitingAgent(ctx context.Context, deviceID string) (string, error)
	// Notice is what the agent is told of a check of the device that
	// waits for the person's answer (nil when none does).
	Notice(ctx context.Context, deviceID string) (*agentv1.PresenceCheckNotice, error)
	// Corroborate judges a check with the snapshot the device's agent
	// reported for it, received from egress address ip.
	Corroborate(ctx context.Context, deviceID, checkID, reportID string, ip netip.Addr, sn *agentv1.HostSnapshot) error
}

// Catalogs are the parts of the policy tree the service uses besides the
// rules, which an admin may edit while it runs (see SetCatalogs).
type Catalogs struct {
	// Agent are the catalogs agents match locally, sent at enrollment and
	// CheckIn.
	Agent []*agentv1.Catalog
	// KVM is the catalog every snapshot's USB devices and displays are
	// matched against; nil means the embedded one.
	KVM *policies.KVMCatalog
	// Media and Routers are the catalogs every snapshot's media devices
	// and default gateway are matched against; nil means the embedded ones.
	Media   *policies.MediaCatalog
	Routers *policies.RoutersCatalog
	// Networks classifies egress addresses (with the declared offices
	// merged in); nil classifies nothing.
	Networks *policies.NetworksCatalog
}

// catalogState is an immutable set of active catalogs and the agent
// configuration that carries them.
type catalogState struct {
	cfg      *agentv1.AgentConfig
	agent    []*agentv1.Catalog
	kvm      *policies.KVMCatalog
	media    *policies.MediaCatalog
	routers  *policies.RoutersCatalog
	networks *policies.NetworksCatalog
}

// Server implements agentv1.AgentServiceServer.
type Server struct {
	agentv1.UnimplementedAgentServiceServer
	store    *store.Store
	ca       *ca.Authority
	rules    store.Evaluator
	log      *slog.Logger
	limiter  *failureLimiter
	now      func() time.Time
	trusted  proxyproto.Trusted
	geoip    *geo.DB
	presence Presence

	enrollGate, reportGate *gate
	limits                 ConnLimits
	quota                  store.Quota

	intervals       *agentv1.AgentConfig // the configuration without catalogs or version
	embeddedKVM     *policies.KVMCatalog
	embeddedMedia   *policies.MediaCatalog
	embeddedRouters *policies.RoutersCatalog
	cur             atomic.Pointer[catalogState]
}

// New makes the service.
func New(st *store.Store, authority *ca.Authority, rules store.Evaluator, cfg Config, log *slog.Logger) (*Server, error) {
	kvm, err := policies.KVM(policies.FS())
	if err != nil {
		return nil, fmt.Errorf("embedded KVM catalog: %w", err)
	}
	media, err := policies.Media(policies.FS())
	if err != nil {
		return nil, fmt.Errorf("embedded media catalog: %w", err)
	}
	routers, err := policies.Routers(policies.FS())
	if err != nil {
		return nil, fmt.Errorf("embedded routers catalog: %w", err)
	}
	s := &Server{store: st, ca: authority, rules: rules, log: log,
		limiter: newFailureLimiter(10, 10*time.Minute), now: time.Now,
		trusted: cfg.TrustedProxies, embeddedKVM: kvm, embeddedMedia: media, embeddedRouters: routers, presence: cfg.Presence,
		limits: cfg.Limits.withDefaults(), quota: cfg.Quota,
		enrollGate: newGate(cfg.MaxEnrollments, "enrollments", enrollRetryAfter),
		reportGate: newGate(cfg.MaxInFlightReports, "reports", reportRetryAfter),
		intervals: &agentv1.AgentConfig{
			ScanInterval:      durationpb.New(cfg.ScanInterval),
			HeartbeatInterval: durationpb.New(cfg.HeartbeatInterval),
			CheckinInterval:   durationpb.New(cfg.CheckInInterval),
		}}
	c := Catalogs{Agent: cfg.Catalogs, KVM: cfg.KVM, Media: cfg.Media, Routers: cfg.Routers}
	if cfg.Locator != nil {
		s.geoip, c.Networks = cfg.Locator.GeoIP, cfg.Locator.Networks
	}
	s.SetCatalogs(c)
	return s, nil
}

// SetCatalogs makes c the active catalogs: the next report is matched and
// classified with them, and agents receive the new agent catalogs at their
// next CheckIn (the configuration version changes when they do). Reports
// being processed finish with the catalogs they started with.
func (s *Server) SetCatalogs(c Catalogs) {
	ac := proto.CloneOf(s.intervals)
	ac.Catalogs = c.Agent
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ac)
	sum := sha256.Sum256(b)
	ac.Version = hex.EncodeToString(sum[:8])
	kvm := c.KVM
	if kvm == nil {
		kvm = s.embeddedKVM
	}
	media, routers := c.Media, c.Routers
	if media == nil {
		media = s.embeddedMedia
	}
	if routers == nil {
		routers = s.embeddedRouters
	}
	s.cur.Store(&catalogState{cfg: ac, agent: c.Agent, kvm: kvm, media: media, routers: routers, networks: c.Networks})
}

// Catalogs returns the active catalogs (the embedded KVM catalog when none
// was given) and the version of the configuration agents receive.
func (s *Server) Catalogs() (c Catalogs, configVersion string) {
	st := s.cur.Load()
	return Catalogs{Agent: st.agent, KVM: st.kvm, Media: st.media, Routers: st.routers, Networks: st.networks}, st.cfg.GetVersion()
}

type agentKey struct{}

// Authenticate is a unary interceptor that requires a valid, unrevoked
// client certificate for every AgentService call but Enroll. Health and
// reflection services are left open.
func (s *Server) Authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	switch info.FullMethod {
	case agentv1.AgentService_CheckIn_FullMethodName, agentv1.AgentService_Report_FullMethodName:
	default:
		return handler(ctx, req)
	}
	cert := peerCertificate(ctx)
	if cert == nil {
		return nil, status.Error(codes.Unauthenticated, "client certificate required: enroll first")
	}
	id, ok := ca.AgentID(cert)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "client certificate has no agent id")
	}
	a, err := s.store.AgentByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.Unauthenticated, "unknown agent")
	}
	if err != nil {
		return nil, s.internal("load agent", err)
	}
	if a.Revoked {
		return nil, status.Error(codes.PermissionDenied, "device revoked")
	}
	// A renewed certificate retires the one before it, once it is used.
	switch serial := cert.SerialNumber.Text(16); {
	case a.CertSerial == "" || serial == a.CertSerial && a.PrevCertSerial == "":
	case serial == a.CertSerial:
		if err := s.store.CertUsed(ctx, a.ID, serial); err != nil {
			return nil, s.internal("retire certificate", err)
		}
	case serial != a.PrevCertSerial:
		return nil, status.Error(codes.Unauthenticated, "certificate retired: it was renewed")
	}
	return handler(context.WithValue(ctx, agentKey{}, a), req)
}

func peerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// internal logs an unexpected failure and hides its detail from the agent.
func (s *Server) internal(what string, err error) error {
	s.log.Error(what, "err", err)
	return status.Error(codes.Unavailable, what+" failed; retry later")
}

// Enroll checks the secret, records the device and signs the agent's key.
func (s *Server) Enroll(ctx context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	ip := addrString(clientIP(ctx, s.trusted))
	if !s.limiter.allow(ip, s.now()) {
		return nil, status.Error(codes.ResourceExhausted, "too many failed enrollments from this address; wait and retry")
	}
	if err := validate(req.ProtoReflect(), s.now()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sec, err := s.store.MatchSecret(ctx, req.GetSecret())
	if errors.Is(err, store.ErrNotFound) {
		wrong := sha256.Sum256([]byte(req.GetSecret()))
		s.limiter.fail(ip, hex.EncodeToString(wrong[:8]), s.now())
		s.log.Warn("enrollment refused: bad secret", "ip", ip)
		return nil, status.Error(codes.PermissionDenied, "enrollment secret not valid")
	}
	if err != nil {
		return nil, s.internal("check secret", err)
	}
	id := req.GetIdentity()
	key := store.HardwareKey(id.GetHardwareUuid(), id.GetSerialNumber(), id.GetMachineId())
	if key == "" {
		return nil, status.Error(codes.InvalidArgument, "identity: hardware_uuid, serial_number or machine_id required")
	}
	agentID := uuid.NewString()
	cert, err := s.ca.SignAgent(req.GetCsr(), agentID, s.now())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// The key makes enrollment idempotent: a retry with the same key gets
	// the agent (and certificate) the first attempt created.
	keySum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	e, err := s.store.EnrollAgent(ctx, store.Enrollment{
		AgentID: agentID, SecretID: sec.ID, IP: ip, HardwareKey: key, Identity: deviceIdentity(id),
		Key: hex.EncodeToString(keySum[:]), Certificate: cert.Raw,
		CertSerial: cert.SerialNumber.Text(16), CertNotAfter: cert.NotAfter,
	})
	switch {
	case errors.Is(err, store.ErrKeyEnrolled):
		return nil, status.Error(codes.AlreadyExists, "this key is enrolled for another device: enroll with a new key")
	case errors.Is(err, store.ErrSecretUsedUp):
		return nil, status.Error(codes.PermissionDenied, "enrollment secret not valid")
	case err != nil && ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case err != nil:
		return nil, s.internal("enroll", err)
	case e.Revoked:
		return nil, status.Error(codes.PermissionDenied, "device revoked")
	case e.Created:
		s.log.Info("agent enrolled", "agent", e.AgentID, "device", e.DeviceID, "ip", ip, "secret", sec.ID)
	default:
		s.log.Info("agent enrollment retried", "agent", e.AgentID, "device", e.DeviceID, "ip", ip)
	}
	return &agentv1.EnrollResponse{
		AgentId: e.AgentID, DeviceId: e.DeviceID, Certificate: e.Certificate,
		CaCertificates: [][]byte{s.ca.Certificate().Raw}, Config: s.cur.Load().cfg,
	}, nil
}

func deviceIdentity(id *agentv1.HostIdentity) store.DeviceIdentity {
	return store.DeviceIdentity{
		HardwareUUID: id.GetHardwareUuid(), SerialNumber: id.GetSerialNumber(), MachineID: id.GetMachineId(),
		Hostname: id.GetHostname(), OSFamily: id.GetOs().GetFamily(), OSName: id.GetOs().GetName(),
		OSVersion: id.GetOs().GetVersion(), HardwareVendor: id.GetHardwareVendor(), HardwareModel: id.GetHardwareModel(),
		AgentVersion: id.GetAgentVersion(),
	}
}

// CheckIn returns changed configuration and renews the certificate on request.
func (s *Server) CheckIn(ctx context.Context, req *agentv1.CheckInRequest) (*agentv1.CheckInResponse, error) {
	a := ctx.Value(agentKey{}).(store.Agent)
	if err := validate(req.ProtoReflect(), s.now()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp := &agentv1.CheckInResponse{}
	if cfg := s.cur.Load().cfg; req.GetConfigVersion() != cfg.GetVersion() {
		resp.Config = cfg
	}
	if len(req.GetRenewCsr()) > 0 {
		cert, err := s.ca.SignAgent(req.GetRenewCsr(), a.ID, s.now())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if err := s.store.RenewAgentCert(ctx, a.ID, cert.SerialNumber.Text(16), cert.NotAfter); err != nil {
			return nil, s.internal("renew certificate", err)
		}
		resp.Certificate = cert.Raw
		s.log.Info("agent certificate renewed", "agent", a.ID, "not_after", cert.NotAfter)
	}
	if s.presence != nil {
		id, err := s.presence.AwaitingAgent(ctx, a.DeviceID)
		if err != nil {
			return nil, s.internal("presence checks", err)
		}
		if id != "" {
			resp.PresenceCheck = &agentv1.PresenceCheckRequest{CheckId: id}
		}
		if resp.PresenceNotice, err = s.presence.Notice(ctx, a.DeviceID); err != nil {
			return nil, s.internal("presence checks", err)
		}
	}
	return resp, nil
}

// isLowerUUID says whether s is a UUID in lower-case hex with dashes
// (^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$, checked
// without the regexp engine: every report's id is checked).
func isLowerUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// Report validates a batch and stores it; the reply lists what is durable.
func (s *Server) Report(ctx context.Context, req *agentv1.ReportRequest) (*agentv1.ReportResponse, error) {
	a := ctx.Value(agentKey{}).(store.Agent)
	now := s.now()
	if n := len(req.GetReports()); n == 0 || n > MaxReportsPerCall {
		return nil, status.Errorf(codes.InvalidArgument, "reports: %d in one call, want 1 to %d", n, MaxReportsPerCall)
	}
	if err := validate(req.ProtoReflect(), now); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ip := clientIP(ctx, s.trusted)
	cats := s.cur.Load() // one set of catalogs for the whole batch
	loc := &Locator{GeoIP: s.geoip, Networks: cats.networks}
	egress := loc.Egress(ip)
	addr := egress.IP // formatted once: it is addrString(ip) but for an IPv4-mapped address
	if ip.Is4In6() {
		addr = addrString(ip)
	}
	batch := store.IngestBatch{Agent: a, IP: addr, Egress: egress, ReceivedAt: now, ReportInterval: s.intervals.GetHeartbeatInterval().AsDuration(), Quota: s.quota,
		Reports: make([]store.IngestReport, 0, len(req.GetReports()))}
	for _, r := range req.GetReports() {
		in, err := prepare(r, a.ID, cats)
		if err != nil {
			return nil, err
		}
		batch.Reports = append(batch.Reports, in)
	}
	acked, err := s.store.Ingest(ctx, batch, s.rules)
	if errors.Is(err, store.ErrOverQuota) {
		return nil, s.overQuota(ctx, a, now)
	}
	if err != nil && ctx.Err() != nil { // the caller gave up waiting: nothing failed here
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		return nil, s.internal("store reports", err)
	}
	// Presence checks are judged once the report answering them is
	// durable; a retried report finds its check already judged.
	for _, r := range req.GetReports() {
		if id := r.GetPresenceCheckId(); id != "" && s.presence != nil && r.GetSnapshot() != nil {
			if err := s.presence.Corroborate(ctx, a.DeviceID, id, r.GetReportId(), ip, r.GetSnapshot()); err != nil {
				s.log.Error("presence check corroboration", "check", id, "device", a.DeviceID, "err", err)
			}
		}
	}
	return &agentv1.ReportResponse{AckedReportIds: acked}, nil
}

// overQuota raises agent_report_flood (once a day) and refuses the call
// until the next UTC day.
func (s *Server) overQuota(ctx context.Context, a store.Agent, now time.Time) error {
	raised, err := s.store.ReportFlood(ctx, a, s.quota, now)
	if err != nil {
		s.log.Error("raise agent_report_flood", "agent", a.ID, "err", err)
	}
	if raised {
		s.log.Warn("agent over its daily report quota: reports refused until tomorrow", "agent", a.ID, "device", a.DeviceID)
	}
	next := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	return busy("this agent's daily report quota is used up; retry after "+next.Format(time.RFC3339), next.Sub(now))
}

// prepare checks one report's own rules, matches a snapshot's peripherals,
// media devices and default gateway against the collector's catalogs
// (replacing what the agent claimed) and computes its digests.
func prepare(r *agentv1.Report, agentID string, cats *catalogState) (store.IngestReport, error) {
	kvm := cats.kvm
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, "report %q: "+format, append([]any{r.GetReportId()}, args...)...)
	}
	if !isLowerUUID(r.GetReportId()) {
		return store.IngestReport{}, bad("report_id must be a lower-case UUID")
	}
	if r.GetSequence() == 0 || r.GetSequence() > 1<<62 {
		return store.IngestReport{}, bad("sequence out of range")
	}
	if r.GetCreatedAt() == nil {
		return store.IngestReport{}, bad("created_at missing")
	}
	if id := r.GetPresenceCheckId(); id != "" && (!isLowerUUID(id) || r.GetSnapshot() == nil) {
		return store.IngestReport{}, bad("presence_check_id must be a lower-case UUID on a snapshot")
	}
	in := store.IngestReport{ReportID: r.GetReportId(), Sequence: r.GetSequence(), CreatedAt: r.GetCreatedAt().AsTime(), DroppedReports: r.GetDroppedReports()}
	var id *agentv1.HostIdentity
	switch b := r.GetBody().(type) {
	case *agentv1.Report_Snapshot:
		id = b.Snapshot.GetIdentity()
		sn := b.Snapshot
		sn.Peripherals = policies.MatchPeripherals(kvm, sn.GetUsb(), sn.GetDisplays())
		sn.Media = policies.MatchMedia(cats.media, sn.GetMedia())
		if r := sn.GetNetwork().GetDefaultRoute(); r != nil {
			r.GatewayMaker = policies.MatchGateway(cats.routers, r.GetGatewayMac())
		}
		in.PeripheralSerials = policies.PeripheralSerials(kvm, sn.GetUsb(), sn.GetDisplays())
		in.Snapshot = sn
		in.Activity = activityHours(sn.GetActivity())
		in.Data, in.Digest, in.Sections = Digest(b.Snapshot)
	case *agentv1.Report_Heartbeat:
		id = b.Heartbeat.GetIdentity()
		in.Activity = activityHours(b.Heartbeat.GetActivity())
	default:
		return store.IngestReport{}, bad("neither snapshot nor heartbeat")
	}
	if id == nil {
		return store.IngestReport{}, bad("identity missing")
	}
	if id.GetAgentId() != agentID {
		return store.IngestReport{}, status.Errorf(codes.PermissionDenied, "report %q names agent %q, but the certificate is agent %q",
			r.GetReportId(), id.GetAgentId(), agentID)
	}
	in.Identity = deviceIdentity(id)
	return in, nil
}

// activityHours converts reported activity hours (already validated).
func activityHours(a *agentv1.Activity) []activity.Hour {
	hours := a.GetHours()
	if len(hours) == 0 {
		return nil
	}
	out := make([]activity.Hour, len(hours))
	for i, h := range hours {
		out[i] = activity.Hour{Start: h.GetHour().AsTime(), Active: h.GetActiveMinutes(), Sampled: h.GetSampledMinutes()}
	}
	return out
}

// Digest encodes a snapshot deterministically and returns the encoding, the
// hex SHA-256 of its content (scan times and activity counts excluded, so
// an unchanged machine has an unchanged digest) and a short digest of each
// signal family. The content digest is taken over the families' digests.
//
// The snapshot is encoded once: the deterministic encoding holds the
// top-level fields in field-number order with a repeated field's entries
// next to each other, and a message field's value is the encoding of the
// message itself, so each family's digest is taken over its part of the
// encoding: a message family's value, or a list's entries, each with its
// length (as if each family were encoded on its own).
func Digest(sn *agentv1.HostSnapshot) (data []byte, digest string, sections map[string]string) {
	data, _ = proto.MarshalOptions{Deterministic: true}.Marshal(sn)
	fields := sn.ProtoReflect().Descriptor().Fields()
	// The content digest's input (each family's name and digest) and the
	// family digests are gathered on the stack; the family digests become
	// one hex string, which the sections share.
	var (
		fh     = sha256.New()
		cur    protoreflect.FieldDescriptor
		seen   uint64 // the fields done, by index
		sum    [sha256.Size]byte
		inBuf  [2048]byte
		in     = inBuf[:0]
		short  [64 * 8]byte
		names  [64]string
		nShort int
	)
	done := func() {
		if cur == nil {
			return
		}
		switch cur.Name() {
		case "scan_started_at", "scan_finished_at", "activity":
			return
		}
		fh.Sum(sum[:0])
		in = protowire.AppendString(in, string(cur.Name()))
		in = append(in, sum[:]...)
		if !cur.IsList() {
			copy(short[8*nShort:], sum[:8])
			names[nShort] = string(cur.Name())
			nShort++
		}
	}
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		fd := fields.ByNumber(num)
		if n < 0 || typ != protowire.BytesType || fd == nil || fd.Kind() != protoreflect.MessageKind || fd.Index() >= 64 ||
			fd == cur && !fd.IsList() || fd != cur && seen&(1<<fd.Index()) != 0 {
			digest, sections = digestByFamily(sn) // not laid out as expected
			return data, digest, sections
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			digest, sections = digestByFamily(sn)
			return data, digest, sections
		}
		if fd != cur {
			done()
			cur, seen = fd, seen|1<<fd.Index()
			fh.Reset()
		}
		if fd.IsList() {
			fh.Write(b[n : n+m]) // the entry with its length
		} else {
			fh.Write(v)
		}
		b = b[n+m:]
	}
	done()
	sum = sha256.Sum256(in)
	hexes := hex.EncodeToString(short[:8*nShort])
	sections = make(map[string]string, nShort)
	for i := range nShort {
		sections[names[i]] = hexes[16*i : 16*i+16]
	}
	return data, hex.EncodeToString(sum[:]), sections
}

// digestByFamily is Digest's content and family digests, each family
// encoded on its own, in field-number order (the encoding's).
func digestByFamily(sn *agentv1.HostSnapshot) (digest string, sections map[string]string) {
	opts := proto.MarshalOptions{Deterministic: true}
	h := sha256.New()
	sections = map[string]string{}
	m := sn.ProtoReflect()
	fields := m.Descriptor().Fields() // declared in field-number order
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		var b []byte
		switch v := m.Get(fd); {
		case fd.Name() == "scan_started_at" || fd.Name() == "scan_finished_at" || fd.Name() == "activity":
			continue
		case fd.IsList():
			for i := range v.List().Len() {
				e, _ := opts.Marshal(v.List().Get(i).Message().Interface())
				b = protowire.AppendBytes(b, e)
			}
		default:
			b, _ = opts.Marshal(v.Message().Interface())
		}
		sum := sha256.Sum256(b)
		h.Write(protowire.AppendString(nil, string(fd.Name())))
		h.Write(sum[:])
		if !fd.IsList() {
			sections[string(fd.Name())] = hex.EncodeToString(sum[:8])
		}
	}
	return hex.EncodeToString(h.Sum(nil)), sections
}
