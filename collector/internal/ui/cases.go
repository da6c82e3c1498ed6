package ui

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// The case list and the case page: a case groups the alerts of one
// suspected farm or person (store/cases.go); its page carries the
// decision (status, owner, outcome), the notes, the response checklist,
// the timeline and the pictures, and exports the evidence package
// (package cases).

func (s *Server) routeCases() {
	s.handle("GET /ui/cases", accounts.RoleViewer, s.casesList)
	s.handle("GET /ui/cases/{id}", accounts.RoleViewer, s.casePage)
	s.handle("POST /ui/cases/{id}", accounts.RoleAnalyst, s.caseAction)
	s.handle("POST /ui/cases/{id}/steps/{step}", accounts.RoleAnalyst, s.caseStep)
	s.handle("POST /ui/cases/{id}/package", accounts.RoleAnalyst, s.casePackage)
	s.handle("GET /ui/cases/{id}/report", accounts.RoleViewer, s.caseReport)
}

var caseStatuses = []string{"active", "all", store.CaseOpen, store.CaseInvestigating, store.CaseClosed, store.CaseMerged}

// casesPage is the case list's data.
type casesPage struct {
	Status   string
	Statuses []string
	Cases    []caseRow
	Next     string // the next page's URL; "" on the last
}

type caseRow struct {
	store.Case
	URL string
}

func caseURL(id int64) string { return "/ui/cases/" + strconv.FormatInt(id, 10) }

func (s *Server) casesList(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	q := r.URL.Query()
	p := casesPage{Status: cmp.Or(q.Get("status"), "active"), Statuses: caseStatuses}
	var after int64
	if c := q.Get("cursor"); c != "" {
		var err error
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after <= 0 {
			return fmt.Errorf("cursor %q: %w", c, store.ErrInvalid)
		}
	}
	list, err := s.store.ListCases(r.Context(), store.CaseFilter{Status: p.Status, AfterID: after, Limit: pageSize})
	if err != nil {
		return err
	}
	for _, c := range list {
		p.Cases = append(p.Cases, caseRow{Case: c, URL: caseURL(c.ID)})
	}
	if len(list) == pageSize {
		p.Next = "/ui/cases?" + url.Values{"status": {p.Status}, "cursor": {strconv.FormatInt(list[len(list)-1].ID, 10)}}.Encode()
	}
	return s.render(w, r, http.StatusOK, "cases", "Cases", p)
}

// casePageData is the case page's data.
type casePageData struct {
	Case       store.Case
	Record     *cases.Record
	Outcomes   []string
	Statuses   []string
	Where      template.HTML
	Activity   []personActivity
	Graph      *farmGraph
	FarmURL    string
	Merged     string // the case this one was merged into
	Timeline   []cases.Event
	Hidden     int // timeline events left out
	Devices    []caseDevice
	SubjectURL string
}

type personActivity struct {
	Who string
	Map *heatmap
}

type caseDevice struct {
	cases.Device
	URL       string
	PersonURL string
}

// caseTimelineRows bounds the timeline shown (the latest events); the
// evidence package holds them all.
const caseTimelineRows = 300

func (s *Server) casePage(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	ctx := r.Context()
	rec, err := cases.Build(ctx, s.store, id, "", time.Now())
	if err != nil {
		return err
	}
	p := casePageData{Case: rec.Case, Record: rec, Outcomes: store.CaseOutcomes,
		Statuses: []string{store.CaseOpen, store.CaseInvestigating, store.CaseClosed}}
	if p.Where, err = cases.WhereSVG(rec.Where); err != nil {
		return err
	}
	if rec.Case.MergedInto != 0 {
		p.Merged = caseURL(rec.Case.MergedInto)
	}
	switch rec.Case.Kind {
	case store.CaseFarm:
		p.SubjectURL = "/ui/farms/" + url.PathEscape(rec.Case.Subject)
	case store.CasePerson:
		p.SubjectURL = uiPersonHref(rec.Case.Subject)
	}
	for _, d := range rec.Devices {
		p.Devices = append(p.Devices, caseDevice{Device: d, URL: uiDeviceHref(d.ID), PersonURL: personURL(d.Person)})
	}
	if rec.Farm != nil {
		cl, err := s.store.GetCluster(ctx, rec.Farm.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		g := layoutGraph(cl.Members, cl.Evidence)
		g.FarmID = rec.Farm.ID
		p.Graph, p.FarmURL = &g, "/ui/farms/"+url.PathEscape(rec.Farm.ID)
	}
	for _, person := range rec.People {
		h, err := s.store.PersonActivity(ctx, person.Email)
		if err != nil {
			return err
		}
		zone, zoneName := time.UTC, ""
		if loc, err := time.LoadLocation(person.Timezone); err == nil && person.Timezone != "" {
			zone, zoneName = loc, person.Timezone
		}
		p.Activity = append(p.Activity, personActivity{Who: cmp.Or(person.Name, person.Email), Map: newHeatmap(h, zone, zoneName)})
	}
	// Newest first on the page.
	tl := slices.Clone(rec.Timeline)
	slices.Reverse(tl)
	if len(tl) > caseTimelineRows {
		p.Hidden, tl = len(tl)-caseTimelineRows, tl[:caseTimelineRows]
	}
	p.Timeline = tl
	return s.render(w, r, http.StatusOK, "case", fmt.Sprintf("Case %d", id), p)
}

// caseAction changes the case: action update (status, outcome, owner) or
// note (text).
func (s *Server) caseAction(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	msg := "Saved."
	switch r.PostFormValue("action") {
	case "update":
		c := store.CaseChange{}
		if v := r.PostFormValue("status"); v != "" {
			c.Status = &v
		}
		if v := r.PostFormValue("outcome"); v != "" || r.PostFormValue("status") != store.CaseClosed {
			c.Outcome = &v
		}
		if v, ok := r.PostForm["owner"]; ok {
			owner := strings.TrimSpace(v[0])
			c.Owner = &owner
		}
		if _, err := s.store.UpdateCase(r.Context(), id, c, actor(sess)); err != nil {
			return err
		}
	case "note":
		if _, err := s.store.AddCaseNote(r.Context(), id, r.PostFormValue("text"), actor(sess)); err != nil {
			return err
		}
		msg = "Note added."
	default:
		return fmt.Errorf("unknown action %q: %w", r.PostFormValue("action"), store.ErrInvalid)
	}
	http.Redirect(w, r, caseURL(id)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

// caseStep ticks (done=1) or unticks (done=0) a checklist step.
func (s *Server) caseStep(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	step := r.PathValue("step")
	done := r.PostFormValue("done") != "0"
	if _, err := s.store.TickStep(r.Context(), id, step, done, r.PostFormValue("note"), actor(sess)); err != nil {
		return err
	}
	msg := "Step ticked."
	if step == store.StepRevokeAgents && done {
		msg = "The case's laptops are revoked; their agents are refused from now on."
	}
	http.Redirect(w, r, caseURL(id)+"?done="+url.QueryEscape(msg)+"#checklist", http.StatusSeeOther)
	return nil
}

// casePackage sends the evidence package (a POST: exporting is recorded
// in the audit log).
func (s *Server) casePackage(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	pkg, err := cases.ExportCase(r.Context(), s.store, id, actor(sess), time.Now())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+cases.FileName(id)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(pkg.Zip)
	return err
}

// caseReport shows the report as it would be exported (not signed, not
// recorded), under the report's own policy: no script, inline style only.
func (s *Server) caseReport(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	rec, err := cases.Build(r.Context(), s.store, id, actor(sess), time.Now())
	if err != nil {
		return err
	}
	html, err := cases.Report(rec, "(computed at export)", "(shown at export)")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(html)
	return err
}
