package ui

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// pageSize is how many alerts the queue shows at once.
const pageSize = 50

func (s *Server) overview(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	o, err := s.store.Overview(r.Context(), time.Now())
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "overview", "Overview", o)
}

// queue is the alert queue page's data.
type queue struct {
	Filter url.Values
	// Grouped is the default view: the active cases, then the alerts no
	// active case holds (view=all lists every alert).
	Grouped    bool
	Cases      []store.Case
	AllURL     string // the same filters, every alert
	GroupedURL string
	Alerts     []store.Alert
	Next       url.Values // the next page's query; nil on the last page
	Statuses   []string
	Severities []string
	Sorts      [][2]string // value, label
	Message    string
}

var (
	statuses = []string{store.StatusOpen, store.StatusAcknowledged, store.StatusResolved, store.StatusFalsePositive}
	sorts    = [][2]string{{store.SortNewest, "newest first"}, {store.SortSeverity, "most severe first"}, {store.SortLastSeen, "last fired first"}}
)

// matchLimit caps how many devices and rules a search matches.
const matchLimit = 200

// alerts is the queue: filtered by status (open by default; "all" for
// every status), severity, rule and host name, searched (q), sorted, a
// page at a time.
func (s *Server) alerts(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	q := r.URL.Query()
	f := store.AlertFilter{Status: q.Get("status"), Severity: q.Get("severity"), RuleID: strings.TrimSpace(q.Get("rule")),
		Sort: cmp.Or(q.Get("sort"), store.SortNewest), Cursor: q.Get("cursor"), Limit: pageSize}
	switch {
	case f.Status == "":
		f.Status = store.StatusOpen
	case f.Status == "all":
		f.Status = ""
	case !store.ValidStatus(f.Status):
		return fmt.Errorf("status %q: %w", f.Status, store.ErrInvalid)
	}
	if f.Severity != "" && !slices.Contains(store.Severities, f.Severity) {
		return fmt.Errorf("severity %q: %w", f.Severity, store.ErrInvalid)
	}
	if !slices.ContainsFunc(sorts, func(o [2]string) bool { return o[0] == f.Sort }) {
		return fmt.Errorf("sort %q: %w", f.Sort, store.ErrInvalid)
	}
	data := queue{Filter: url.Values{"status": {cmp.Or(q.Get("status"), store.StatusOpen)}, "severity": {f.Severity},
		"rule": {f.RuleID}, "host": {strings.TrimSpace(q.Get("host"))}, "q": {strings.TrimSpace(q.Get("q"))}, "sort": {f.Sort}},
		Statuses: statuses, Severities: store.Severities, Sorts: sorts}
	if c := q.Get("case"); c != "" {
		id, err := strconv.ParseInt(c, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("case %q: %w", c, store.ErrInvalid)
		}
		f.CaseID = id
		data.Filter.Set("case", c)
	}
	switch v := q.Get("view"); v {
	case "", "grouped":
		// A search, a rule, a host or a case looks at every alert.
		data.Grouped = f.CaseID == 0 && f.RuleID == "" && data.Filter.Get("host") == "" && data.Filter.Get("q") == ""
	case "all":
		data.Filter.Set("view", "all")
	default:
		return fmt.Errorf("view %q: %w", v, store.ErrInvalid)
	}
	all, grouped := maps.Clone(data.Filter), maps.Clone(data.Filter)
	all.Set("view", "all")
	grouped.Del("view")
	data.AllURL, data.GroupedURL = "/ui/alerts?"+all.Encode(), "/ui/alerts?"+grouped.Encode()
	if data.Grouped {
		f.Ungrouped = true
		if f.Cursor == "" {
			cs, err := s.store.ListCases(r.Context(), store.CaseFilter{Limit: pageSize})
			if err != nil {
				return err
			}
			data.Cases = cs
		}
	}
	if host := data.Filter.Get("host"); host != "" {
		devices, err := s.store.DevicesByHostname(r.Context(), host)
		if err != nil {
			return err
		}
		if len(devices) == 0 {
			data.Message = "No device is called " + host + "."
			return s.render(w, r, http.StatusOK, "alerts", "Alerts", data)
		}
		f.DeviceID = devices[0].ID
		if len(devices) > 1 {
			data.Message = fmt.Sprintf("%d devices are called %s; showing the first (%s).", len(devices), host, devices[0].ID)
		}
	}
	if term := data.Filter.Get("q"); term != "" {
		if id, err := strconv.ParseInt(strings.TrimPrefix(term, "#"), 10, 64); err == nil && id > 0 {
			if _, err := s.store.GetAlert(r.Context(), id); err == nil {
				http.Redirect(w, r, fmt.Sprintf("/ui/alerts/%d", id), http.StatusSeeOther)
				return nil
			}
		}
		m, err := s.search(r, term)
		if err != nil {
			return err
		}
		f.Match = m
	}
	list, err := s.store.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	data.Alerts = list
	if len(list) == pageSize {
		data.Next = maps.Clone(data.Filter)
		data.Next.Set("cursor", store.AlertCursor(f.Sort, list[len(list)-1]))
	}
	return s.render(w, r, http.StatusOK, "alerts", "Alerts", data)
}

// search is what the queue's search box matches: devices whose host
// name, serial or person's email starts with the term, and rules whose id
// or title contains it (case-insensitive).
func (s *Server) search(r *http.Request, term string) (*store.AlertMatch, error) {
	devices, err := s.store.SearchDevices(r.Context(), store.DeviceQuery{Search: term, Limit: matchLimit})
	if err != nil {
		return nil, err
	}
	m := &store.AlertMatch{}
	for _, d := range devices.Devices {
		m.DeviceIDs = append(m.DeviceIDs, d.ID)
	}
	if s.opts.Live == nil {
		m.RuleIDs = []string{term}
		return m, nil
	}
	lt := strings.ToLower(term)
	for _, rule := range s.opts.Live.Engine().Rules() {
		if len(m.RuleIDs) < matchLimit && (strings.Contains(strings.ToLower(rule.ID), lt) || strings.Contains(strings.ToLower(rule.Title), lt)) {
			m.RuleIDs = append(m.RuleIDs, rule.ID)
		}
	}
	return m, nil
}

// bulk applies one action to the alerts ticked in the queue.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	var ids []int64
	for _, v := range r.PostForm["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("alert id %q: %w", v, store.ErrInvalid)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 || len(ids) > 1000 {
		return fmt.Errorf("tick between 1 and 1000 alerts: %w", store.ErrInvalid)
	}
	if r.PostFormValue("action") == "case" {
		c, err := s.store.CreateCase(r.Context(), r.PostFormValue("note"), ids, actor(sess))
		if err != nil {
			return err
		}
		http.Redirect(w, r, caseURL(c.ID)+"?done="+url.QueryEscape(fmt.Sprintf("Case opened with %d alerts.", len(ids))), http.StatusSeeOther)
		return nil
	}
	c, err := change(r.PostFormValue("action"), r.PostFormValue("assignee"), r.PostFormValue("note"))
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.store.UpdateAlert(r.Context(), id, c, actor(sess)); err != nil {
			return fmt.Errorf("alert %d: %w", id, err)
		}
	}
	back := safeNext(r.PostFormValue("back"))
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"done="+url.QueryEscape(fmt.Sprintf("%d alerts updated", len(ids))), http.StatusSeeOther)
	return nil
}

// change is a triage action: a status (acknowledge, resolve,
// false_positive, reopen) or assign, with an optional note.
func change(action, assignee, note string) (store.AlertChange, error) {
	var c store.AlertChange
	status := map[string]string{"acknowledge": store.StatusAcknowledged, "resolve": store.StatusResolved,
		"false_positive": store.StatusFalsePositive, "reopen": store.StatusOpen}
	switch st, ok := status[action]; {
	case ok:
		c.Status = &st
	case action == "assign":
		assignee = strings.TrimSpace(assignee)
		c.Assignee = &assignee
	case action == "note":
	default:
		return c, fmt.Errorf("unknown action %q: %w", action, store.ErrInvalid)
	}
	if note = strings.TrimSpace(note); note != "" {
		if len(note) > 4000 {
			return c, fmt.Errorf("a note is at most 4000 bytes: %w", store.ErrInvalid)
		}
		c.Note = &note
	} else if action == "note" {
		return c, fmt.Errorf("write a note: %w", store.ErrInvalid)
	}
	return c, nil
}

// alertPage is the alert detail page's data.
type alertPage struct {
	Alert    store.Alert
	Device   store.Device
	Evidence evidence
	Timeline []store.AuditEntry
	Statuses []string
}

func (s *Server) alert(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	id, err := alertID(r)
	if err != nil {
		return err
	}
	a, err := s.store.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	p := alertPage{Alert: a, Statuses: statuses}
	if p.Device, err = s.store.GetDevice(r.Context(), a.DeviceID); err != nil {
		return err
	}
	p.Evidence = layoutEvidence(map[string]any(a.Evidence))
	if p.Timeline, err = s.store.AlertTimeline(r.Context(), a); err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "alert", a.Title, p)
}

func (s *Server) triage(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := alertID(r)
	if err != nil {
		return err
	}
	c, err := change(r.PostFormValue("action"), r.PostFormValue("assignee"), r.PostFormValue("note"))
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateAlert(r.Context(), id, c, actor(sess)); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/ui/alerts/%d?done=%s", id, url.QueryEscape("Saved.")), http.StatusSeeOther)
	return nil
}

// suppress stops the alert's rule from alerting on its device for a
// number of days, with a reason.
func (s *Server) suppress(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := alertID(r)
	if err != nil {
		return err
	}
	a, err := s.store.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	days, err := strconv.Atoi(r.PostFormValue("days"))
	if err != nil || days < 1 || days > 365 {
		return fmt.Errorf("suppress for 1 to 365 days: %w", store.ErrInvalid)
	}
	if _, err := s.store.CreateSuppression(r.Context(), store.Suppression{RuleID: a.RuleID, DeviceID: a.DeviceID,
		Reason: strings.TrimSpace(r.PostFormValue("reason")), ExpiresAt: time.Now().AddDate(0, 0, days)}, actor(sess)); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/ui/alerts/%d?done=%s", id, url.QueryEscape(fmt.Sprintf("Suppressed for %d days.", days))), http.StatusSeeOther)
	return nil
}

// alertID is the alert id in the path.
func alertID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, store.ErrNotFound
	}
	return id, nil
}
