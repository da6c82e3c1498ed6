package api

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// The cases API: a case groups the alerts of one suspected farm or person
// (store/cases.go); its evidence package is built by package cases.

func (s *Server) routeCases() {
	s.handle("GET /api/v1/cases", accounts.RoleViewer, s.listCases)
	s.handle("POST /api/v1/cases", accounts.RoleAnalyst, s.createCase)
	s.handle("GET /api/v1/cases/{id}", accounts.RoleViewer, s.getCase)
	s.handle("PATCH /api/v1/cases/{id}", accounts.RoleAnalyst, s.patchCase)
	s.handle("POST /api/v1/cases/{id}/notes", accounts.RoleAnalyst, s.addCaseNote)
	s.handle("POST /api/v1/cases/{id}/checklist/{step}", accounts.RoleAnalyst, s.tickStep)
	s.mux.HandleFunc("GET /api/v1/cases/{id}/package", s.casePackage)
}

var caseChoices = map[string][]string{
	"status": {"active", "all", store.CaseOpen, store.CaseInvestigating, store.CaseClosed, store.CaseMerged},
	"kind":   {store.CaseFarm, store.CasePerson, store.CaseManual},
}

// listCases lists cases newest first: ?status= active (the default: open
// or investigating), all or one status; ?kind=, ?owner=, ?cursor=, ?limit=.
func (s *Server) listCases(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"status", "kind", "owner", "cursor", "limit"}, caseChoices)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	after, err := intParam(r, "cursor")
	if err != nil {
		return nil, err
	}
	f := store.CaseFilter{Status: q.Get("status"), Kind: q.Get("kind"), Owner: q.Get("owner"), AfterID: after, Limit: int(limit)}
	list, err := s.store.ListCases(r.Context(), f)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"cases": list}
	if len(list) > 0 && len(list) == store.PageLimit(f.Limit) {
		resp["next_cursor"] = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return resp, nil
}

func caseID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, "not_found", "no such case")
	}
	return id, nil
}

// decode reads a JSON body of at most max bytes, refusing unknown fields.
func decode(r *http.Request, max int64, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	return nil
}

// createCase opens a case by hand: {"title": …, "alert_ids": [1, 2]}.
func (s *Server) createCase(r *http.Request, tok accounts.Token) (any, error) {
	var body struct {
		Title    string  `json:"title"`
		AlertIDs []int64 `json:"alert_ids"`
	}
	if err := decode(r, 1<<20, &body); err != nil {
		return nil, err
	}
	c, err := s.store.CreateCase(r.Context(), body.Title, body.AlertIDs, actorName(tok))
	if err != nil {
		return nil, err
	}
	return s.caseDetail(r, c.ID)
}

// caseDetail is a case with its alerts (at most 1000), notes and the audit
// log of the case and its alerts; GET adds its timeline.
type caseDetail struct {
	store.Case
	AlertList []store.Alert      `json:"alert_list"`
	Notes     []store.CaseNote   `json:"notes"`
	Audit     []store.AuditEntry `json:"audit"`
	// Timeline is the newest caseTimelineRows events of the evidence
	// package's timeline, newest first, of TimelineTotal; Capped is what
	// the package itself leaves out.
	Timeline      []cases.Event `json:"timeline,omitempty"`
	TimelineTotal int           `json:"timeline_total,omitempty"`
	Capped        []string      `json:"capped,omitempty"`
}

// caseTimelineRows bounds the timeline GET /api/v1/cases/{id} returns.
const caseTimelineRows = 1000

func (s *Server) caseDetail(r *http.Request, id int64) (caseDetail, error) {
	ctx := r.Context()
	c, err := s.store.GetCase(ctx, id)
	if err != nil {
		return caseDetail{}, err
	}
	d := caseDetail{Case: c}
	if d.AlertList, err = s.store.ListAlerts(ctx, store.AlertFilter{CaseID: id, Limit: 1000}); err != nil {
		return caseDetail{}, err
	}
	if d.Notes, err = s.store.CaseNotes(ctx, id); err != nil {
		return caseDetail{}, err
	}
	if d.Audit, err = s.store.CaseAudit(ctx, id); err != nil {
		return caseDetail{}, err
	}
	return d, nil
}

// getCase is the case with its timeline: what the evidence package's
// timeline holds, newest first, at most caseTimelineRows events.
func (s *Server) getCase(r *http.Request, _ accounts.Token) (any, error) {
	id, err := caseID(r)
	if err != nil {
		return nil, err
	}
	d, err := s.caseDetail(r, id)
	if err != nil {
		return nil, err
	}
	rec, err := cases.Build(r.Context(), s.store, id, "", time.Now())
	if err != nil {
		return nil, err
	}
	d.TimelineTotal, d.Capped = len(rec.Timeline), rec.Capped
	d.Timeline = slices.Clone(rec.Timeline)
	slices.Reverse(d.Timeline)
	d.Timeline = d.Timeline[:min(len(d.Timeline), caseTimelineRows)]
	return d, nil
}

// patchCase changes a case: {"status", "outcome", "owner", "title",
// "note"}; closing needs an outcome (confirmed_fraud, benign,
// inconclusive) and resolves the case's open alerts.
func (s *Server) patchCase(r *http.Request, tok accounts.Token) (any, error) {
	id, err := caseID(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Status  *string `json:"status"`
		Outcome *string `json:"outcome"`
		Owner   *string `json:"owner"`
		Title   *string `json:"title"`
		Note    *string `json:"note"`
	}
	if err := decode(r, 64<<10, &body); err != nil {
		return nil, err
	}
	if body.Status != nil || body.Outcome != nil || body.Owner != nil || body.Title != nil {
		if _, err := s.store.UpdateCase(r.Context(), id, store.CaseChange{Status: body.Status, Outcome: body.Outcome, Owner: body.Owner,
			Title: body.Title}, actorName(tok)); err != nil {
			return nil, err
		}
	}
	if body.Note != nil {
		if _, err := s.store.AddCaseNote(r.Context(), id, *body.Note, actorName(tok)); err != nil {
			return nil, err
		}
	}
	return s.caseDetail(r, id)
}

func (s *Server) addCaseNote(r *http.Request, tok accounts.Token) (any, error) {
	id, err := caseID(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Text string `json:"text"`
	}
	if err := decode(r, 64<<10, &body); err != nil {
		return nil, err
	}
	return s.store.AddCaseNote(r.Context(), id, body.Text, actorName(tok))
}

// tickStep ticks (or, with "done": false, unticks) a checklist step:
// {"done": true, "note": …}. Ticking revoke_agents revokes the case's
// devices.
func (s *Server) tickStep(r *http.Request, tok accounts.Token) (any, error) {
	id, err := caseID(r)
	if err != nil {
		return nil, err
	}
	body := struct {
		Done *bool  `json:"done"`
		Note string `json:"note"`
	}{}
	if err := decode(r, 64<<10, &body); err != nil {
		return nil, err
	}
	done := body.Done == nil || *body.Done
	return s.store.TickStep(r.Context(), id, r.PathValue("step"), done, body.Note, actorName(tok))
}

// casePackage sends the case's evidence package (analyst): a zip of the
// report, the facts and the signed manifest.
func (s *Server) casePackage(w http.ResponseWriter, r *http.Request) {
	tok, err := s.authenticate(r)
	if err == nil && roleRank[tok.Role] < roleRank[accounts.RoleAnalyst] {
		err = errorf(http.StatusForbidden, "forbidden", "this action needs the analyst role; the token has "+tok.Role)
	}
	var id int64
	if err == nil {
		id, err = caseID(r)
	}
	var pkg *cases.Package
	if err == nil {
		pkg, err = cases.ExportCase(r.Context(), s.store, id, actorName(tok), time.Now())
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+cases.FileName(id)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Bonafide-Manifest-Sha256", pkg.ManifestSHA256)
	w.Write(pkg.Zip)
}
