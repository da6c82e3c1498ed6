package ingest

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestReportCallerGone: a report whose caller's deadline passed before it
// was stored is refused with the caller's own code (DeadlineExceeded), as
// an enrollment is, not as the collector's failure: no error is logged,
// and the agent's retry of it is stored.
func TestReportCallerGone(t *testing.T) {
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	var log bytes.Buffer
	svc := benchService(t, st, &log)
	_, sec, err := st.CreateSecret(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	a := enrollBenchAgent(t, st, sec.ID, 1, false)
	req := &agentv1.ReportRequest{Reports: []*agentv1.Report{{ReportId: uuid.NewString(), Sequence: 1, CreatedAt: timestamppb.Now(),
		Body: &agentv1.Report_Snapshot{Snapshot: a.snap}}}}
	gone, cancel := context.WithDeadline(a.ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := svc.Report(gone, req); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Report after the caller's deadline: %v, want DeadlineExceeded", err)
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("logged as the collector's failure:\n%s", log.String())
	}
	resp, err := svc.Report(a.ctx, req)
	if err != nil || len(resp.GetAckedReportIds()) != 1 {
		t.Fatalf("the retry: %v, %v", resp, err)
	}
	dev := a.ctx.Value(agentKey{}).(store.Agent).DeviceID
	if n, err := st.ReportCount(t.Context(), dev); n != 1 || err != nil {
		t.Errorf("%d reports stored (%v), want 1", n, err)
	}
}
