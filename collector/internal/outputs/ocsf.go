package outputs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// OCSF Detection Finding (class 2004, category 2 Findings), schema 1.1.0.
const (
	ocsfVersion  = "1.1.0"
	ocsfClass    = 2004
	ocsfCategory = 2
)

// ocsfActivity is the finding's activity: 1 Create (a new alert), 3
// Close (resolved, or a false positive), 2 Update otherwise.
func ocsfActivity(ev Event) (int, string) {
	switch {
	case ev.Event == store.EventNew || ev.Event == EventTest:
		return 1, "Create"
	case ev.Alert.Status == store.StatusResolved || ev.Alert.Status == store.StatusFalsePositive:
		return 3, "Close"
	}
	return 2, "Update"
}

// ocsfStatus maps an alert status to the finding's status_id.
func ocsfStatus(st string) (int, string) {
	switch st {
	case store.StatusOpen:
		return 1, "New"
	case store.StatusAcknowledged:
		return 2, "In Progress"
	case store.StatusFalsePositive:
		return 3, "Suppressed"
	case store.StatusResolved:
		return 4, "Resolved"
	}
	return 0, "Unknown"
}

// ocsfSeverity maps a severity to severity_id (2 Low … 5 Critical).
func ocsfSeverity(sev string) (int, string) {
	switch sev {
	case "low":
		return 2, "Low"
	case "medium":
		return 3, "Medium"
	case "high":
		return 4, "High"
	case "critical":
		return 5, "Critical"
	}
	return 0, "Unknown"
}

// ocsf formats an alert event as an OCSF Detection Finding (see the
// README for the mapping).
func ocsf(ev Event, e env) ([]byte, error) {
	a := ev.Alert
	if a == nil {
		return nil, fmt.Errorf("ocsf: %s event is not an alert", ev.Event)
	}
	act, actName := ocsfActivity(ev)
	st, stName := ocsfStatus(a.Status)
	sev, sevName := ocsfSeverity(a.Severity)
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	info := map[string]any{
		"uid":             strconv.FormatInt(a.ID, 10),
		"title":           a.Title,
		"desc":            a.Description,
		"types":           a.Tags,
		"created_time":    ms(a.FirstSeen),
		"first_seen_time": ms(a.FirstSeen),
		"last_seen_time":  ms(a.LastSeen),
		"modified_time":   ms(a.UpdatedAt),
		"analytic":        map[string]any{"uid": a.RuleID, "name": a.RuleID, "type_id": 1, "type": "Rule"},
	}
	if l := e.link(a); l != "" {
		info["src_url"] = l
	}
	device := map[string]any{"hostname": a.Hostname, "uid": a.DeviceID, "type_id": 0, "type": "Unknown"}
	if a.Person != "" {
		device["owner"] = map[string]any{"name": a.Person}
	}
	f := map[string]any{
		"class_uid": ocsfClass, "class_name": "Detection Finding",
		"category_uid": ocsfCategory, "category_name": "Findings",
		"activity_id": act, "activity_name": actName,
		"type_uid": ocsfClass*100 + act, "type_name": "Detection Finding: " + actName,
		"time":        ms(ev.At),
		"severity_id": sev, "severity": sevName,
		"status_id": st, "status": stName, "status_detail": a.Status,
		"message":      a.Title,
		"count":        a.Count,
		"finding_info": info,
		"device":       device,
		"evidences":    []any{map[string]any{"data": a.Evidence}},
		"metadata": map[string]any{
			"version": ocsfVersion, "uid": ev.UID, "event_code": ev.Event,
			"product": map[string]any{"name": "bonafide", "vendor_name": "bonafide", "version": e.Version},
		},
	}
	if a.Assignee != "" {
		f["assignee"] = map[string]any{"name": a.Assignee}
	}
	return marshal(f)
}

// fileSink appends one OCSF finding per line to a file, rotated by size:
// FILE becomes FILE.1, FILE.1 FILE.2 and so on, up to max_files.
type fileSink struct {
	o   *Output
	env env
	mu  sync.Mutex
}

func (s *fileSink) Send(ctx context.Context, ev Event) error {
	b, err := ocsf(ev, s.env)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if fi, err := os.Stat(s.o.Path); err == nil && fi.Size() > 0 && fi.Size()+int64(len(b)) > int64(s.o.MaxSizeMB)<<20 {
		if err := rotate(s.o.Path, s.o.MaxFiles); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(s.o.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	// Durable before the output moves past the event.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rotate shifts path to path.1, path.1 to path.2 … keeping max files
// besides path.
func rotate(path string, max int) error {
	os.Remove(path + "." + strconv.Itoa(max))
	for i := max - 1; i >= 1; i-- {
		old := path + "." + strconv.Itoa(i)
		if err := os.Rename(old, path+"."+strconv.Itoa(i+1)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(path, path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	return nil
}

func (s *fileSink) Close() error { return nil }
