// Package api is the collector's JSON API under /api/v1, authenticated by
// bearer tokens from `bonafide-collector token create --role`.
//
// Errors are JSON objects {"error": {"code": "...", "message": "..."}} with
// stable codes: unauthenticated, forbidden, not_found, invalid_argument,
// internal.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/presence"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Server serves the API.
type Server struct {
	store    *store.Store
	accounts *accounts.Store
	log      *slog.Logger
	mux      *http.ServeMux
	policies *detect.Live
	outputs  *outputs.Manager  // nil: no outputs (see SetOutputs)
	presence *presence.Service // nil: no presence checks (see SetPresence)
}

// New builds the API handler.
func New(st *store.Store, log *slog.Logger, policies *detect.Live) *Server {
	s := &Server{store: st, accounts: accounts.New(st), log: log, mux: http.NewServeMux(), policies: policies}
	s.handle("GET /api/v1/alerts", accounts.RoleViewer, s.listAlerts)
	s.handle("GET /api/v1/alerts/{id}", accounts.RoleViewer, s.getAlert)
	s.handle("PATCH /api/v1/alerts/{id}", accounts.RoleAnalyst, s.patchAlert)
	s.handle("PATCH /api/v1/alerts", accounts.RoleAnalyst, s.patchAlerts)
	s.handle("GET /api/v1/suppressions", accounts.RoleViewer, s.listSuppressions)
	s.handle("POST /api/v1/suppressions", accounts.RoleAnalyst, s.createSuppression)
	s.handle("DELETE /api/v1/suppressions/{id}", accounts.RoleAnalyst, s.deleteSuppression)
	s.handle("GET /api/v1/devices", accounts.RoleViewer, s.listDevices)
	s.handle("GET /api/v1/devices/{id}", accounts.RoleViewer, s.getDevice)
	s.handle("GET /api/v1/people", accounts.RoleViewer, s.listPeople)
	s.handle("GET /api/v1/people/{email}", accounts.RoleViewer, s.getPerson)
	s.handle("GET /api/v1/farms", accounts.RoleViewer, s.listFarms)
	s.handle("GET /api/v1/farms/{id}", accounts.RoleViewer, s.getFarm)
	s.handle("POST /api/v1/people", accounts.RoleAdmin, s.postPeople)
	s.handle("GET /api/v1/policies", accounts.RoleViewer, s.getPolicies)
	s.handle("POST /api/v1/policies/dry-run", accounts.RoleAnalyst, s.dryRun)
	s.handle("GET /api/v1/outputs", accounts.RoleViewer, s.listOutputs)
	s.handle("GET /api/v1/idp", accounts.RoleViewer, s.listIdP)
	s.handle("GET /api/v1/people/{email}/signins", accounts.RoleViewer, s.personSignins)
	s.handle("POST /api/v1/outputs/{name}/test", accounts.RoleAdmin, s.testOutput)
	s.handle("GET /api/v1/audit", accounts.RoleAdmin, s.listAudit)
	s.routeCases()
	s.handle("GET /api/v1/tokens", accounts.RoleAdmin, s.listTokens)
	s.handle("POST /api/v1/tokens", accounts.RoleAdmin, s.createToken)
	s.handle("DELETE /api/v1/tokens/{id}", accounts.RoleAdmin, s.revokeToken)
	s.handle("GET /api/v1/users", accounts.RoleAdmin, s.listUsers)
	s.handle("PATCH /api/v1/users/{username}", accounts.RoleAdmin, s.patchUser)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, code, msg string) error { return &apiError{status, code, msg} }

type handlerFunc func(r *http.Request, actor accounts.Token) (any, error)

var roleRank = map[string]int{accounts.RoleViewer: 1, accounts.RoleAnalyst: 2, accounts.RoleAdmin: 3}

// handle registers a route that needs at least role min.
func (s *Server) handle(pattern, min string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tok, err := s.authenticate(r)
		if err == nil && roleRank[tok.Role] < roleRank[min] {
			err = errorf(http.StatusForbidden, "forbidden", "this action needs the "+min+" role; the token has "+tok.Role)
		}
		var out any
		if err == nil {
			out, err = h(r, tok)
		}
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(out)
	})
}

func (s *Server) authenticate(r *http.Request) (accounts.Token, error) {
	h := r.Header.Get("Authorization")
	plain, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || plain == "" {
		return accounts.Token{}, errorf(http.StatusUnauthorized, "unauthenticated", "bearer token required")
	}
	tok, err := s.accounts.TokenByPlaintext(r.Context(), plain)
	if errors.Is(err, store.ErrNotFound) {
		return accounts.Token{}, errorf(http.StatusUnauthorized, "unauthenticated", "token not valid")
	}
	return tok, err
}

// writeErr maps an error to its HTTP status and stable code, in one place.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		ae = &apiError{http.StatusNotFound, "not_found", "not found"}
	case errors.Is(err, store.ErrInvalid):
		ae = &apiError{http.StatusBadRequest, "invalid_argument", err.Error()}
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Error("api", "path", r.URL.Path, "err", err)
		ae = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bonafide"`)
	}
	writeError(w, ae.status, ae.code, ae.message)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// query is the request's query string, refused when it names a parameter
// the endpoint does not know (a misspelt filter would otherwise match
// everything) or gives one twice, or when a parameter of choices has
// another value. choices maps such a parameter to its values; the empty
// value (the parameter's default) is always accepted.
func query(r *http.Request, known []string, choices map[string][]string) (url.Values, error) {
	q := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch v := q[name]; {
		case !slices.Contains(known, name):
			return nil, errorf(http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("unknown query parameter %q (this endpoint takes %s)", name, cmp.Or(strings.Join(known, ", "), "none")))
		case len(v) > 1:
			return nil, errorf(http.StatusBadRequest, "invalid_argument", fmt.Sprintf("query parameter %q given %d times", name, len(v)))
		case v[0] != "" && choices[name] != nil && !slices.Contains(choices[name], v[0]):
			return nil, errorf(http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("unknown %s %q (one of %s)", name, v[0], strings.Join(choices[name], ", ")))
		}
	}
	return q, nil
}

func intParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "invalid_argument", name+" must be a non-negative integer")
	}
	return n, nil
}

// alertChoices are the values of GET /api/v1/alerts's enumerated filters;
// status=all (what the web UI's queue sends) is every status, like no
// status at all.
var alertChoices = map[string][]string{
	"status":   {"all", store.StatusOpen, store.StatusAcknowledged, store.StatusResolved, store.StatusFalsePositive},
	"severity": store.Severities,
	"sort":     {store.SortNewest, store.SortSeverity, store.SortLastSeen},
	"grouped":  {"true", "false"},
}

func (s *Server) listAlerts(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"status", "severity", "rule_id", "device_id", "sort", "cursor", "limit", "case_id", "grouped"}, alertChoices)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	caseID, err := intParam(r, "case_id")
	if err != nil {
		return nil, err
	}
	f := store.AlertFilter{Status: q.Get("status"), Severity: q.Get("severity"), RuleID: q.Get("rule_id"),
		DeviceID: q.Get("device_id"), Sort: cmp.Or(q.Get("sort"), store.SortNewest), Cursor: q.Get("cursor"), Limit: int(limit),
		CaseID: caseID, Ungrouped: q.Get("grouped") == "true"}
	if f.Status == "all" {
		f.Status = ""
	}
	alerts, err := s.store.ListAlerts(r.Context(), f)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"alerts": alerts}
	if f.Ungrouped && f.Cursor == "" {
		// The grouped queue: the active cases first (every page of
		// alerts lists only those no active case holds).
		cs, err := s.store.ListCases(r.Context(), store.CaseFilter{Limit: 1000})
		if err != nil {
			return nil, err
		}
		resp["cases"] = cs
	}
	if len(alerts) > 0 && len(alerts) == store.PageLimit(f.Limit) {
		resp["next_cursor"] = store.AlertCursor(f.Sort, alerts[len(alerts)-1])
	}
	return resp, nil
}

func alertID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, "not_found", "no such alert")
	}
	return id, nil
}

type alertDetail struct {
	store.Alert
	Timeline []store.AuditEntry `json:"timeline"`
}

func (s *Server) alertDetail(ctx context.Context, id int64) (any, error) {
	a, err := s.store.GetAlert(ctx, id)
	if err != nil {
		return nil, err
	}
	tl, err := s.store.AlertTimeline(ctx, a)
	if err != nil {
		return nil, err
	}
	return alertDetail{a, tl}, nil
}

func (s *Server) getAlert(r *http.Request, _ accounts.Token) (any, error) {
	id, err := alertID(r)
	if err != nil {
		return nil, err
	}
	return s.alertDetail(r.Context(), id)
}

func (s *Server) patchAlert(r *http.Request, actor accounts.Token) (any, error) {
	id, err := alertID(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Status   *string `json:"status"`
		Assignee *string `json:"assignee"`
		Note     *string `json:"note"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	for _, f := range []*string{body.Assignee, body.Note} {
		if f != nil && len(*f) > 4096 {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "assignee and note are limited to 4096 bytes")
		}
	}
	if _, err := s.store.UpdateAlert(r.Context(), id, store.AlertChange{Status: body.Status, Assignee: body.Assignee, Note: body.Note},
		actorName(actor)); err != nil {
		return nil, err
	}
	return s.alertDetail(r.Context(), id)
}

// patchAlerts applies one triage change to several alerts:
// {"ids": [1, 2], "status": …, "assignee": …, "note": …}. Each alert's
// change is recorded in its own timeline; an unknown id fails the request
// before anything changes.
func (s *Server) patchAlerts(r *http.Request, actor accounts.Token) (any, error) {
	var body struct {
		IDs      []int64 `json:"ids"`
		Status   *string `json:"status"`
		Assignee *string `json:"assignee"`
		Note     *string `json:"note"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	if len(body.IDs) == 0 || len(body.IDs) > 1000 {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "ids: 1 to 1000 alert ids")
	}
	for _, f := range []*string{body.Assignee, body.Note} {
		if f != nil && len(*f) > 4096 {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "assignee and note are limited to 4096 bytes")
		}
	}
	for _, id := range body.IDs {
		if _, err := s.store.GetAlert(r.Context(), id); err != nil {
			return nil, err
		}
	}
	updated := []store.Alert{}
	for _, id := range body.IDs {
		a, err := s.store.UpdateAlert(r.Context(), id, store.AlertChange{Status: body.Status, Assignee: body.Assignee, Note: body.Note},
			actorName(actor))
		if err != nil {
			return nil, err
		}
		updated = append(updated, a)
	}
	return map[string]any{"alerts": updated}, nil
}

// actorName is how the audit log names the holder of a token.
func actorName(t accounts.Token) string { return "token:" + t.ID + "(" + t.Name + ")" }

func (s *Server) listDevices(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"sort", "cursor", "limit"}, map[string][]string{"sort": {"id", "risk"}})
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	f := store.DeviceFilter{AfterID: q.Get("cursor"), Limit: int(limit), ByRisk: q.Get("sort") == "risk"}
	devices, err := s.store.ListDevices(r.Context(), f)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"devices": devices}
	if len(devices) > 0 && len(devices) == store.PageLimit(f.Limit) && !f.ByRisk {
		resp["next_cursor"] = devices[len(devices)-1].ID
	}
	return resp, nil
}

type deviceDetail struct {
	store.Device
	RiskHistory []store.RiskPoint `json:"risk_history"`
	Agents      []store.AgentInfo `json:"agents"`
	ReportCount int64             `json:"report_count"`
	Snapshot    json.RawMessage   `json:"snapshot"`
}

func (s *Server) getDevice(r *http.Request, _ accounts.Token) (any, error) {
	ctx := r.Context()
	d, err := s.store.GetDevice(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := deviceDetail{Device: d, Snapshot: json.RawMessage("null")}
	if out.Agents, err = s.store.DeviceAgents(ctx, d.ID); err != nil {
		return nil, err
	}
	if out.ReportCount, err = s.store.ReportCount(ctx, d.ID); err != nil {
		return nil, err
	}
	if out.RiskHistory, err = s.store.RiskHistory(ctx, "device", d.ID); err != nil {
		return nil, err
	}
	sn, err := s.store.LatestSnapshot(ctx, d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		var m agentv1.HostSnapshot
		if err := proto.Unmarshal(sn.Data, &m); err != nil {
			return nil, err
		}
		if out.Snapshot, err = protojson.Marshal(&m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Server) listPeople(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, []string{"cursor", "limit"}, nil); err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	people, err := s.store.ListPeople(r.Context(), r.URL.Query().Get("cursor"), int(limit))
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"people": people}
	if len(people) > 0 && len(people) == store.PageLimit(int(limit)) {
		resp["next_cursor"] = people[len(people)-1].Email
	}
	return resp, nil
}

// postPeople takes one person as JSON, or the HR export as text/csv
// (bad rows are reported per line, good rows kept).
func (s *Server) postPeople(r *http.Request, tok accounts.Token) (any, error) {
	actor := actorName(tok)
	body := io.LimitReader(r.Body, 64<<20)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		n, rowErrs, err := s.store.ImportPeople(r.Context(), body, actor)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", err.Error())
		}
		if rowErrs == nil {
			rowErrs = []store.RowError{}
		}
		return map[string]any{"imported": n, "errors": rowErrs}, nil
	}
	var p store.Person
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	return s.store.UpsertPerson(r.Context(), p, actor)
}

// ruleInfo is one active rule as the API shows it.
type ruleInfo struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
	Scope    string   `json:"scope"`
	Enabled  bool     `json:"enabled"` // in its file and not disabled in the UI
	Tags     []string `json:"tags"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
}

// getPolicies shows the active rule set, the last refused edit and the
// recorded versions.
func (s *Server) getPolicies(r *http.Request, _ accounts.Token) (any, error) {
	versions, err := s.store.PolicyVersions(r.Context(), 50)
	if err != nil {
		return nil, err
	}
	rules := []ruleInfo{}
	for _, x := range s.policies.Engine().Rules() {
		rules = append(rules, ruleInfo{ID: x.ID, Title: x.Title, Severity: x.Severity, Scope: string(x.Scope),
			Enabled: x.Enabled && !s.policies.IsDisabled(x.ID), Tags: x.Tags, File: x.File, Line: x.Line})
	}
	return map[string]any{"active": s.policies.Status(), "rules": rules, "versions": versions}, nil
}

// dryRun evaluates a draft rule file (YAML body, as under policies/rules/)
// against the current fleet and returns what would fire, creating no
// alerts. A draft that does not load is a 400 naming file:line:column; its
// own test cases must pass, as for any rule file.
func (s *Server) dryRun(r *http.Request, _ accounts.Token) (any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(body) > 1<<20 {
		return nil, errorf(http.StatusRequestEntityTooLarge, "invalid_argument", "draft larger than 1 MiB")
	}
	draft, err := detect.LoadDraft(body)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", err.Error())
	}
	for _, res := range draft.Test(r.Context()) {
		if res.Err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("%s:%d %s/%s: %v", res.File, res.Line, res.RuleID, res.Name, res.Err))
		}
	}
	hits, devices, err := s.store.DryRun(r.Context(), draft, time.Now())
	if err != nil {
		return nil, err
	}
	return map[string]any{"devices_evaluated": devices, "would_fire": hits}, nil
}

func (s *Server) listSuppressions(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, nil, nil); err != nil {
		return nil, err
	}
	list, err := s.store.ListSuppressions(r.Context(), time.Now())
	if err != nil {
		return nil, err
	}
	return map[string]any{"suppressions": list}, nil
}

// createSuppression takes {"rule_id", "device_id", "person", "network",
// "reason", "expires_at"}; at least one matcher, a reason and an expiry
// within a year are required.
func (s *Server) createSuppression(r *http.Request, tok accounts.Token) (any, error) {
	var x store.Suppression
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	if x.ID != 0 || x.CreatedBy != "" || !x.CreatedAt.IsZero() {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "id, created_by and created_at are set by the collector")
	}
	return s.store.CreateSuppression(r.Context(), x, actorName(tok))
}

func (s *Server) deleteSuppression(r *http.Request, tok accounts.Token) (any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, errorf(http.StatusBadRequest, "invalid_argument", "suppression id must be a positive integer")
	}
	if err := s.store.DeleteSuppression(r.Context(), id, actorName(tok)); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": id}, nil
}
