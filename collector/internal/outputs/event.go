package outputs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// EventTest is the event of a test sent from the UI or the API.
const EventTest = "test"

// Event is what an output sends: an alert event (Alert set) or an audit
// entry (Audit set).
type Event struct {
	// UID is the delivery id: the same on every retry.
	UID   string
	Event string // new, reopened, status, audit, test
	At    time.Time
	Alert *store.Alert
	Audit *store.AuditEntry
}

// decode turns an outbox row into an Event.
func decode(ev store.OutboxEvent) (Event, error) {
	e := Event{UID: ev.UID, Event: ev.Event, At: ev.At}
	if ev.Event == store.EventAudit {
		a, err := ev.AuditEntry()
		if err != nil {
			return e, fmt.Errorf("outbox event %s: %w", ev.UID, err)
		}
		e.Audit = &a
		return e, nil
	}
	a, err := ev.Alert()
	if err != nil {
		return e, fmt.Errorf("outbox event %s: %w", ev.UID, err)
	}
	e.Alert = &a
	return e, nil
}

// testEvent is the event "send test event" sends: a made-up alert.
func testEvent(uid string, now time.Time) Event {
	now = now.UTC().Truncate(time.Millisecond)
	return Event{UID: uid, Event: EventTest, At: now, Alert: &store.Alert{
		RuleID: "bonafide_test", Title: "Test event from bonafide", Severity: "low", Status: store.StatusOpen,
		Description: "An administrator sent this test event to check the output.", Tags: []string{},
		Hostname: "test-host", Person: "test.person@example.com", FirstSeen: now, LastSeen: now, UpdatedAt: now, Count: 1,
		Evidence: map[string]any{},
	}}
}

// env is what formatting needs besides the event.
type env struct {
	// Collector is the web UI's address (--public-url), for links.
	Collector string
	Version   string
	Hostname  string
}

// link is the address of the alert's page in the web UI ("" for a test
// event or without a public URL).
func (e env) link(a *store.Alert) string {
	if a.ID == 0 || e.Collector == "" {
		return ""
	}
	return strings.TrimSuffix(e.Collector, "/") + "/ui/alerts/" + strconv.FormatInt(a.ID, 10)
}

// jsonBody is the webhook's and syslog json's body: the API's alert (or
// audit entry) object with event, collector and the alert's url.
func jsonBody(ev Event, e env) ([]byte, error) {
	var obj any = ev.Audit
	if ev.Alert != nil {
		obj = ev.Alert
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["event"], m["collector"] = ev.Event, e.Collector
	if ev.Alert != nil {
		if l := e.link(ev.Alert); l != "" {
			m["url"] = l
		}
	}
	return marshal(m)
}

// summary is a one-line description of an audit entry.
func auditSummary(a *store.AuditEntry) string {
	s := fmt.Sprintf("%s: %s %s %s", a.Actor, a.Action, a.TargetType, a.TargetID)
	// A presence check's request is the person's notification: it names
	// them and carries the one-time link.
	if link, ok := a.Detail["link"].(string); ok && a.Action == "presence_check_requested" {
		person, _ := a.Detail["person"].(string)
		s += fmt.Sprintf(" for %s: please open %s on your work laptop", person, link)
	}
	return s
}

// marshal is JSON without HTML escaping: receivers read <, > and & as
// they are.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
