package cases_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/api"
	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// TestCaseTimelineAPI: GET /api/v1/cases/{id} carries the case's
// timeline, newest first, with the laptop's item-level changes (AnyDesk,
// the IP-KVM) verbatim, as the evidence package has them.
func TestCaseTimelineAPI(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		st, id := hostileCase(t, dsn)
		token, _, err := accounts.New(st).CreateToken(t.Context(), "viewer", accounts.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
		t.Cleanup(srv.Close)
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/cases/%d", srv.URL, id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Timeline      []cases.Event `json:"timeline"`
			TimelineTotal int           `json:"timeline_total"`
			Capped        []string      `json:"capped"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET the case: %s %v", resp.Status, err)
		}
		if len(got.Timeline) == 0 || got.TimelineTotal != len(got.Timeline) || got.Capped != nil {
			t.Errorf("%d events of %d, capped %q", len(got.Timeline), got.TimelineTotal, got.Capped)
		}
		if !slices.IsSortedFunc(got.Timeline, func(a, b cases.Event) int { return b.At.Compare(a.At) }) {
			t.Errorf("the timeline is not newest first: %+v", got.Timeline)
		}
		checkChanges(t, got.Timeline)
	})
}

// cappedCase stores five laptops of 51 snapshots each, every snapshot
// swapping twelve USB devices, the last of them reporting from 52
// addresses in turn, and a case of their alerts.
func cappedCase(tb testing.TB, dsn string) (*store.Store, int64) {
	tb.Helper()
	ctx := context.Background()
	st := storetest.Open(tb, dsn)
	_, sec, err := st.CreateSecret(ctx, "test")
	if err != nil {
		tb.Fatal(err)
	}
	var alerts []int64
	t0 := time.Now().Add(-time.Hour)
	for d := range 5 {
		id := store.DeviceIdentity{SerialNumber: fmt.Sprint("SN-", d), Hostname: fmt.Sprint("lt-", d), OSFamily: "linux", AgentVersion: "1.0.0"}
		agentID := fmt.Sprint("agent-", d)
		if _, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: sec.ID, IP: "198.51.100.1", HardwareKey: "hw-" + agentID,
			Identity: id, CertSerial: "c-" + agentID, CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
			tb.Fatal(err)
		}
		a, err := st.AgentByID(ctx, agentID)
		if err != nil {
			tb.Fatal(err)
		}
		var reports []store.IngestReport
		for k := range 51 {
			sn := &agentv1.HostSnapshot{Identity: &agentv1.HostIdentity{Hostname: id.Hostname}, Usb: &agentv1.Usb{}}
			for j := range 12 {
				sn.Usb.Devices = append(sn.Usb.Devices, &agentv1.UsbDevice{Location: fmt.Sprint("1-", j), VendorId: 0x1234, ProductId: uint32(100*k + j)})
			}
			r := store.IngestReport{ReportID: fmt.Sprint("r", k), Sequence: uint64(k + 1), CreatedAt: t0, Identity: id, Snapshot: sn}
			r.Data, r.Digest, r.Sections = ingest.Digest(sn)
			reports = append(reports, r)
		}
		rules := fires{{RuleID: "kvm_usb_identity", Title: "IP-KVM", Severity: "medium", Description: "d"}}
		if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: "198.51.100.1", ReceivedAt: t0.Add(time.Duration(d) * time.Minute),
			ReportInterval: time.Minute, Egress: detect.Egress{IP: "198.51.100.1", Status: "ok"}, Reports: reports}, rules); err != nil {
			tb.Fatal(err)
		}
		for k := range 51 * (d / 4) { // lt-4 then moves 51 times: 52 egress changes
			ip := fmt.Sprint("203.0.113.", k+1)
			if _, err := st.Ingest(ctx, store.IngestBatch{Agent: a, IP: ip, ReceivedAt: t0.Add(time.Duration(10+k) * time.Minute),
				ReportInterval: time.Minute, Egress: detect.Egress{IP: ip, Status: "ok"},
				Reports: []store.IngestReport{{ReportID: fmt.Sprint("h", k), Sequence: uint64(100 + k), CreatedAt: t0, Identity: id}}}, rules); err != nil {
				tb.Fatal(err)
			}
		}
		list, err := st.ListAlerts(ctx, store.AlertFilter{DeviceID: a.DeviceID})
		if err != nil || len(list) != 1 {
			tb.Fatalf("alerts of %s: %v %v", agentID, list, err)
		}
		alerts = append(alerts, list[0].ID)
	}
	c, err := st.CreateCase(ctx, "five laptops", alerts, "user:ana")
	if err != nil {
		tb.Fatal(err)
	}
	return st, c.ID
}

// TestCaseTimelineCapped: five laptops of 51 snapshots each, every
// snapshot swapping twelve USB devices (24 changes), make 6,000 changes;
// the record keeps each laptop's latest 50 snapshots, its newest 500
// changes, and the case's newest 2,000 in all (so none of the laptop
// that reported first), and of lt-4's 52 egress changes its latest 50;
// and it says so, in the record and the report.
func TestCaseTimelineCapped(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		st, id := cappedCase(t, dsn)
		rec, err := cases.Build(t.Context(), st, id, "user:ana", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		n, perDevice := 0, map[string]int{}
		for _, e := range rec.Timeline {
			if e.Kind == "device" {
				n++
				perDevice[e.Device]++
				if strings.HasPrefix(e.Text, "first snapshot") {
					t.Errorf("the first of 51 snapshots is described: %+v", e)
				}
			}
		}
		// lt-0 reported first: its 500 changes are the oldest.
		if n != 2000 || len(perDevice) != 4 || perDevice["lt-0"] != 0 {
			t.Errorf("%d device events over laptops %v, want the newest 2000, of lt-1 to lt-4", n, perDevice)
		}
		capped := strings.Join(rec.Capped, "\n")
		for _, want := range []string{"Laptop lt-0: only the changes of its latest 50 snapshots are included",
			"Laptop lt-4: only the newest 500 changes of its snapshots are included; 700 older ones are left out.",
			"Only the newest 2000 changes of the laptops' snapshots are included", "; 500 older ones are left out.",
			"Laptop lt-4: only its latest 50 egress changes are included"} {
			if !strings.Contains(capped, want) {
				t.Errorf("capped lacks %q:\n%s", want, capped)
			}
		}
		if len(rec.Capped) != 12 {
			t.Errorf("%d cap notes, want 12:\n%s", len(rec.Capped), capped)
		}
		if n := strings.Count(capped, "egress"); n != 1 {
			t.Errorf("%d egress notes, want lt-4's alone", n)
		}
		html, err := cases.Report(rec, "sum", "key")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(html), `class="meta capped"`) || !strings.Contains(string(html), "Only the newest 2000 changes") {
			t.Error("the report does not say it is capped")
		}
	})
}

// BenchmarkBuildCapped measures reading and diffing the capped case's
// history: 5 laptops × 51 snapshots, 6,000 changes cut to 2,000.
func BenchmarkBuildCapped(b *testing.B) {
	st, id := cappedCase(b, filepath.Join(b.TempDir(), "bonafide.db"))
	for b.Loop() {
		if _, err := cases.Build(context.Background(), st, id, "bench", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
