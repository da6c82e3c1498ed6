package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
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
	ctx := context.Background()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	rules, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	svc, err := New(st, nil, rules, Config{ScanInterval: 15 * time.Minute, HeartbeatInterval: time.Minute, CheckInInterval: time.Hour},
		slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	agentID := uuid.NewString()
	sn := benchSnapshot(1, agentID)
	id := sn.GetIdentity()
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: sec.ID, IP: "203.0.113.1",
		HardwareKey: store.HardwareKey(id.GetHardwareUuid(), id.GetSerialNumber(), id.GetMachineId()),
		Identity:    deviceIdentity(id), CertSerial: "1", CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	a, err := st.AgentByID(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	req := &agentv1.ReportRequest{Reports: []*agentv1.Report{{ReportId: uuid.NewString(), Sequence: 1, CreatedAt: timestamppb.Now(),
		Body: &agentv1.Report_Snapshot{Snapshot: sn}}}}
	gone, cancel := context.WithDeadline(context.WithValue(ctx, agentKey{}, a), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := svc.Report(gone, req); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Report after the caller's deadline: %v, want DeadlineExceeded", err)
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("logged as the collector's failure:\n%s", log.String())
	}
	resp, err := svc.Report(context.WithValue(ctx, agentKey{}, a), req)
	if err != nil || len(resp.GetAckedReportIds()) != 1 {
		t.Fatalf("the retry: %v, %v", resp, err)
	}
	if n, err := st.ReportCount(ctx, a.DeviceID); n != 1 || err != nil {
		t.Errorf("%d reports stored (%v), want 1", n, fmt.Sprint(err))
	}
}
