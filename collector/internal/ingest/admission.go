package ingest

import (
	"context"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Retry-after hints sent with ResourceExhausted: about how long the work
// in progress takes to drain. Agents wait at least that long, plus jitter.
const (
	enrollRetryAfter = 5 * time.Second
	reportRetryAfter = 2 * time.Second
)

// gate bounds the calls of one kind in progress. A call that finds it full
// is refused at once with ResourceExhausted and a retry-after hint, instead
// of queueing (for the database writer) past its caller's deadline.
type gate struct {
	slots      chan struct{} // nil: unbounded
	what       string
	retryAfter time.Duration
}

func newGate(n int, what string, retryAfter time.Duration) *gate {
	g := &gate{what: what, retryAfter: retryAfter}
	if n > 0 {
		g.slots = make(chan struct{}, n)
	}
	return g
}

// enter takes a slot; the returned function gives it back.
func (g *gate) enter() (release func(), err error) {
	if g.slots == nil {
		return func() {}, nil
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
		return nil, busy("collector busy: too many "+g.what+" in progress; retry later", g.retryAfter)
	}
}

// busy is ResourceExhausted with a RetryInfo detail.
func busy(msg string, retryAfter time.Duration) error {
	st, err := status.New(codes.ResourceExhausted, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	if err != nil {
		return status.Error(codes.ResourceExhausted, msg)
	}
	return st.Err()
}

// Admit is a unary interceptor that bounds the enrollments and the report
// calls in progress (Config.MaxEnrollments, Config.MaxInFlightReports).
// It runs before authentication, so a refused call costs no database work.
func (s *Server) Admit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var g *gate
	switch info.FullMethod {
	case agentv1.AgentService_Enroll_FullMethodName:
		g = s.enrollGate
	case agentv1.AgentService_Report_FullMethodName:
		g = s.reportGate
	default:
		return handler(ctx, req)
	}
	release, err := g.enter()
	if err != nil {
		return nil, err
	}
	defer release()
	return handler(ctx, req)
}
