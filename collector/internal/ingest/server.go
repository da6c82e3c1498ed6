package ingest

import (
	"crypto/tls"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/reflection"
)

// maxStreamsPerConn bounds the concurrent calls on one agent connection.
const maxStreamsPerConn = 16

// bufferPool holds the buffers gRPC encodes and receives messages in:
// gRPC's default tiers jump from 32 KiB to 1 MiB, so every answer carrying
// the agent configuration (about 100 KiB of catalogs, in Enroll and the
// first CheckIn) held a 1 MiB buffer until the agent had read it; in an
// enrollment stampede, thousands at once. Tiers at every power of two up
// to the message cap keep each buffer within twice its message.
var bufferPool = func() mem.BufferPool {
	p, err := mem.NewBinaryTieredBufferPool(8, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22)
	if err != nil {
		panic(err) // the exponents above are valid
	}
	return p
}()

// GRPCServer builds the collector's gRPC server: TLS with optional client
// certificates (Enroll has none yet; every other AgentService call requires
// one), the message size cap, the AgentService, health and reflection (so
// grpcurl works against it). The health server is returned so that
// shutdown can mark it NOT_SERVING. The interceptors given (metrics) run
// before admission control and authentication.
//
// It is set for many mostly idle agents (10,000 and more on one
// collector): a bounded number of streams per connection (an agent makes
// one call at a time), connections idle for 15 minutes closed (the agent
// reconnects for its next call), dead peers (a laptop closed mid-connection)
// found by a ping after 5 idle minutes, a smaller read buffer per
// connection (8 KiB instead of 32) and message buffers sized to their
// messages (bufferPool). Admit bounds the work in progress.
//
// Against a hostile peer (Config.Limits): every call has a deadline, so a
// stream whose message never comes is dropped; CheckIn and Report streams
// without a client certificate are refused before anything is read; a
// connection without a certificate is bounded per client address and
// closed after its lifetime, and one agent's connections are bounded. The
// listener's per-address bound is LimitListener.
func (s *Server) GRPCServer(cert tls.Certificate, interceptors ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server) {
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	lim := s.limits
	gs := grpc.NewServer(
		grpc.Creds(newGuardCreds(credentials.NewTLS(tlsCfg), lim)),
		grpc.InTapHandle(s.tapCall(lim.CallTimeout)),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.ChainUnaryInterceptor(append(interceptors, s.Admit, s.Authenticate)...),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: 5 * time.Minute, Timeout: 20 * time.Second}),
		grpc.ReadBufferSize(8<<10),
		experimental.BufferPool(bufferPool),
		grpc.ConnectionTimeout(20*time.Second),
	)
	agentv1.RegisterAgentServiceServer(gs, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs, hs
}
