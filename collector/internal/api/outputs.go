package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// SetOutputs gives the API the alert outputs (serve --outputs) for GET
// /api/v1/outputs and the test event; without them the list is empty.
func (s *Server) SetOutputs(o *outputs.Manager) { s.outputs = o }

// listOutputs is the outputs' configuration (without secrets), the last
// refused edit of the outputs file, and each output's delivery state.
func (s *Server) listOutputs(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, nil, nil); err != nil {
		return nil, err
	}
	if s.outputs == nil {
		return outputs.Status{Outputs: []outputs.OutputStatus{}}, nil
	}
	return s.outputs.Status(r.Context())
}

// testOutput sends a test event to one output at once and says whether
// the receiver took it.
func (s *Server) testOutput(r *http.Request, _ accounts.Token) (any, error) {
	if s.outputs == nil {
		return nil, errorf(http.StatusNotFound, "not_found", "no outputs are configured (serve --outputs)")
	}
	id, err := s.outputs.SendTest(r.Context(), r.PathValue("name"))
	switch {
	case errors.Is(err, outputs.ErrNoOutput):
		return nil, errorf(http.StatusNotFound, "not_found", "no output named "+strconv.Quote(r.PathValue("name")))
	case err != nil: // the receiver's answer is the result, not an API error
		return map[string]string{"delivery": id, "status": "failed", "error": err.Error()}, nil
	}
	return map[string]string{"delivery": id, "status": "delivered"}, nil
}

// listAudit pages the audit log oldest first: cursor (next_cursor of the
// page before: the last id seen), since and until (RFC 3339), limit.
func (s *Server) listAudit(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"cursor", "since", "until", "limit"}, nil)
	if err != nil {
		return nil, err
	}
	var f store.AuditFilter
	if f.After, err = intParam(r, "cursor"); err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	f.Limit = int(min(limit, 1000))
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return nil, errorf(http.StatusBadRequest, "invalid_argument", p.name+" must be an RFC 3339 time (2026-01-02T15:04:05Z)")
			}
		}
	}
	entries, err := s.store.AuditLog(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"entries": entries}
	if len(entries) > 0 && len(entries) == store.PageLimit(f.Limit) {
		out["next_cursor"] = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	return out, nil
}
