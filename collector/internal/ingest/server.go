package ingest

import (
	"crypto/tls"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// GRPCServer builds the collector's gRPC server: TLS with optional client
// certificates (Enroll has none yet; every other AgentService call requires
// one), the message size cap, the AgentService, health and reflection (so
// grpcurl works against it). The health server is returned so that
// shutdown can mark it NOT_SERVING. The interceptors given (metrics) run
// before authentication.
func (s *Server) GRPCServer(cert tls.Certificate, interceptors ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server) {
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.ChainUnaryInterceptor(append(interceptors, s.Authenticate)...),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(20*time.Second),
	)
	agentv1.RegisterAgentServiceServer(gs, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs, hs
}
