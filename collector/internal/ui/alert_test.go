package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// TestAlertPageFarmAndOpened: a farm rule's alert links to its farm view,
// a device rule's does not, and each page's timeline starts with the
// alert being opened.
func TestAlertPageFarmAndOpened(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a, err := f.st.AgentByID(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	farm := fires{detect.Finding{RuleID: "laptop_farm_escalated", Title: "Suspected laptop farm", Severity: "critical",
		Category: "fleet", Evidence: map[string]any{"cluster": "c-0123456789ab", "people": 4}}}
	id := store.DeviceIdentity{SerialNumber: "SN1", Hostname: xssHost, OSFamily: "linux", AgentVersion: "1.0.0"}
	if _, err := f.st.Ingest(ctx, store.IngestBatch{Agent: a, IP: "198.51.100.1", ReceivedAt: time.Now(), ReportInterval: time.Minute,
		Reports: []store.IngestReport{{ReportID: "r2", Sequence: 2, CreatedAt: time.Now(), Identity: id}}}, farm); err != nil {
		t.Fatal(err)
	}
	alerts, err := f.st.ListAlerts(ctx, store.AlertFilter{RuleID: "laptop_farm_escalated"})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("farm alert: %v %v", alerts, err)
	}

	c := f.client(t)
	f.signIn(t, c, "vic")
	link := `href="/ui/farms/c-0123456789ab"`
	const opened = `<strong>system</strong> opened`
	_, page, _ := get(t, c, f.srv.URL+"/ui/alerts/"+itoa(alerts[0].ID))
	if !strings.Contains(page, link) || !strings.Contains(page, opened) {
		t.Errorf("farm alert page: want a link to its farm (%s) and the opened entry:\n%s", link, page)
	}
	_, page, _ = get(t, c, f.srv.URL+"/ui/alerts/"+itoa(f.alertID))
	if strings.Contains(page, "/ui/farms/") || !strings.Contains(page, opened) {
		t.Errorf("device alert page: want no farm link and the opened entry:\n%s", page)
	}
}
