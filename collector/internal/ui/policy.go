package ui

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

const (
	// policyVersionRows is how many recorded rule sets the page lists.
	policyVersionRows = 20
	// dryRunRows bounds the hits a dry-run lists (all are counted).
	dryRunRows = 500
	// maxDraft is the largest draft rule file a dry-run takes.
	maxDraft = 512 << 10
)

// policiesPage is the policies page's data.
type policiesPage struct {
	// Known is false when the UI was built without the live rule set.
	Known    bool
	Status   detect.LiveStatus
	Catalogs []dryRunField // name and version
	Files    []textLink    // the loaded files and their source pages
	Rules    []policyRule
	Disabled int // rules an administrator disabled
	Versions []store.PolicyVersion
	IsAdmin  bool
	// Draft and DryRun are the dry-run form's content and result.
	Draft  string
	DryRun *dryRunResult
}

type policyRule struct {
	detect.Rule
	Category  string
	SourceURL string
	// Override is set when an administrator disabled the rule in the UI.
	Override *store.RuleOverride
	// Active is whether the collector evaluates the rule: enabled in its
	// file and not disabled by an override.
	Active bool
}

// dryRunResult is a draft's validation error or what it would raise.
type dryRunResult struct {
	Error   string
	Devices int // evaluated
	Hits    []dryRunHit
	Total   int // all hits; Hits holds at most dryRunRows
	ByRule  []dryRunCount
}

type dryRunHit struct {
	store.DryRunHit
	DeviceURL string
	Evidence  []dryRunField
}

// dryRunField is a name and a value (an evidence field, a catalog's
// version).
type dryRunField struct{ Key, Value string }

type dryRunCount struct {
	RuleID string
	Hits   int
}

// draftValue shows an evidence value: strings as they are, anything else
// as JSON. The template escapes it.
func draftValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func adminRole(sess accounts.Session) bool { return sess.User.Role == accounts.RoleAdmin }

// policies shows the active rule set: its status (and the error of the
// last refused edit), its rules with their enabled state, the recorded
// versions and a dry-run form.
func (s *Server) policies(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	p, err := s.policiesData(r, sess)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "policies", "Policies", p)
}

func (s *Server) policiesData(r *http.Request, sess accounts.Session) (*policiesPage, error) {
	p := &policiesPage{IsAdmin: adminRole(sess)}
	var err error
	if p.Versions, err = s.store.PolicyVersions(r.Context(), policyVersionRows); err != nil {
		return nil, err
	}
	live := s.opts.Live
	if live == nil {
		return p, nil
	}
	p.Known, p.Status = true, live.Status()
	for _, k := range slices.Sorted(maps.Keys(p.Status.Catalogs)) {
		p.Catalogs = append(p.Catalogs, dryRunField{Key: k, Value: p.Status.Catalogs[k]})
	}
	overrides, err := s.store.RuleOverrides(r.Context())
	if err != nil {
		return nil, err
	}
	byID := map[string]*store.RuleOverride{}
	for i := range overrides {
		byID[overrides[i].RuleID] = &overrides[i]
	}
	e := live.Engine()
	for _, f := range e.Files() {
		p.Files = append(p.Files, textLink{Text: f, URL: policySourceURL(f, 0)})
	}
	for _, x := range e.Rules() {
		row := policyRule{Rule: x, Category: x.Category(), SourceURL: policySourceURL(x.File, x.Line), Override: byID[x.ID]}
		// The live set's own state decides what runs; the stored override
		// is shown with it (another replica's edit reaches this one at
		// its next refresh).
		row.Active = x.Enabled && !live.IsDisabled(x.ID)
		if row.Override != nil || live.IsDisabled(x.ID) {
			p.Disabled++
		}
		p.Rules = append(p.Rules, row)
	}
	return p, nil
}

// policySourceURL is the source page of a policy file, at a line when line > 0.
func policySourceURL(file string, line int) string {
	u := "/ui/policies/source?" + url.Values{"file": {file}}.Encode()
	if line > 0 {
		u += fmt.Sprintf("#L%d", line)
	}
	return u
}

// sourcePage is a policy file's source, line by line.
type sourcePage struct {
	File  string
	Lines []sourceLine
	Rules []textLink // the file's rules and their lines' anchors
}

type sourceLine struct {
	N    int
	Text string
}

// policySource shows a file of the active rule set. Only the files the
// set was loaded from are served (detect.Engine.Source): the parameter is
// a key, never a path opened on disk.
func (s *Server) policySource(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	if s.opts.Live == nil {
		return store.ErrNotFound
	}
	file := r.URL.Query().Get("file")
	e := s.opts.Live.Engine()
	b, ok := e.Source(file)
	if !ok {
		return fmt.Errorf("policy file %q: %w", file, store.ErrNotFound)
	}
	p := sourcePage{File: file}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		p.Lines = append(p.Lines, sourceLine{N: i + 1, Text: l})
	}
	for _, x := range e.Rules() {
		if x.File == file {
			p.Rules = append(p.Rules, textLink{Text: x.ID, URL: fmt.Sprintf("#L%d", x.Line)})
		}
	}
	return s.render(w, r, http.StatusOK, "policy_source", file, p)
}

// setRule disables a rule (action=disable, with an optional reason) or
// enables it again (action=enable). The change is stored (and audited),
// applied to this collector's live set at once and reaches other replicas
// at their next refresh.
func (s *Server) setRule(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id := r.PathValue("id")
	var enable bool
	switch a := r.PostFormValue("action"); a {
	case "disable":
	case "enable":
		enable = true
	default:
		return fmt.Errorf("action %q: %w", a, store.ErrInvalid)
	}
	if s.opts.Live == nil {
		return errors.New("the collector's rule set is not available to the UI")
	}
	if !enable {
		// Only a loaded rule can be disabled; enabling also clears the
		// override of a rule that has since left the files.
		i := slices.IndexFunc(s.opts.Live.Engine().Rules(), func(x detect.Rule) bool { return x.ID == id })
		if i < 0 {
			return fmt.Errorf("rule %q: %w", id, store.ErrNotFound)
		}
	}
	changed, err := s.store.SetRuleEnabled(r.Context(), id, enable, r.PostFormValue("reason"), actor(sess))
	if err != nil {
		return err
	}
	if _, err := s.store.SyncRuleOverrides(r.Context(), s.opts.Live); err != nil {
		return err
	}
	msg := "Rule " + id + " disabled."
	switch {
	case !changed && enable:
		msg = "Rule " + id + " was not disabled."
	case !changed:
		msg = "Rule " + id + " was already disabled."
	case enable:
		msg = "Rule " + id + " enabled."
	}
	if changed {
		s.log.Info("ui rule override", "rule", id, "enabled", enable, "user", sess.User.Username)
	}
	http.Redirect(w, r, "/ui/policies?"+url.Values{"done": {msg}}.Encode()+"#rules", http.StatusSeeOther)
	return nil
}

// policyDryRun evaluates a draft rule file over the fleet, as
// POST /api/v1/policies/dry-run does, and shows the policies page with
// what would fire or why the draft does not load. Nothing is stored.
func (s *Server) policyDryRun(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	p, err := s.policiesData(r, sess)
	if err != nil {
		return err
	}
	p.Draft = r.PostFormValue("draft")
	p.DryRun = &dryRunResult{}
	status := http.StatusOK
	switch res, err := s.runDraft(r, p.Draft); {
	case errors.Is(err, store.ErrInvalid):
		status, p.DryRun.Error = http.StatusBadRequest, strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": ")
	case err != nil:
		return err
	default:
		p.DryRun = res
	}
	return s.render(w, r, status, "policies", "Policies: dry-run", p)
}

// runDraft loads a draft, runs its own test cases and evaluates it over the
// fleet. A draft that does not load or fails its tests is ErrInvalid, the
// message naming file:line.
func (s *Server) runDraft(r *http.Request, draft string) (*dryRunResult, error) {
	switch {
	case strings.TrimSpace(draft) == "":
		return nil, fmt.Errorf("%w: paste a rule file (YAML with a rules: list) to try", store.ErrInvalid)
	case len(draft) > maxDraft:
		return nil, fmt.Errorf("%w: the draft is larger than %d KiB", store.ErrInvalid, maxDraft>>10)
	}
	e, err := detect.LoadDraft([]byte(draft))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	var failed []string
	for _, res := range e.Test(r.Context()) {
		if res.Err != nil {
			failed = append(failed, fmt.Sprintf("%s:%d %s/%s: %v", res.File, res.Line, res.RuleID, res.Name, res.Err))
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("%w: the draft's own tests fail:\n%s", store.ErrInvalid, strings.Join(failed, "\n"))
	}
	hits, devices, err := s.store.DryRun(r.Context(), e, time.Now())
	if err != nil {
		return nil, err
	}
	res := &dryRunResult{Devices: devices, Total: len(hits)}
	counts := map[string]int{}
	for _, h := range hits {
		counts[h.RuleID]++
	}
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		res.ByRule = append(res.ByRule, dryRunCount{RuleID: id, Hits: counts[id]})
	}
	slices.SortStableFunc(hits, func(a, b store.DryRunHit) int {
		return cmp.Or(cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	for _, h := range hits[:min(len(hits), dryRunRows)] {
		row := dryRunHit{DryRunHit: h, DeviceURL: uiDeviceHref(h.DeviceID)}
		for _, k := range slices.Sorted(maps.Keys(h.Evidence)) {
			row.Evidence = append(row.Evidence, dryRunField{Key: k, Value: draftValue(h.Evidence[k])})
		}
		res.Hits = append(res.Hits, row)
	}
	return res, nil
}
