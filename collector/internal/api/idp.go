package api

import (
	"net/http"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// listIdP is the identity-provider connectors' state (serve --idp): cursor,
// last event, last poll and error, events stored, lag.
func (s *Server) listIdP(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, nil, nil); err != nil {
		return nil, err
	}
	cs, err := s.store.IdPConnectors(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"connectors": cs}, nil
}

// personSignins lists a person's identity-provider sign-ins, newest
// first (limit, before: an RFC 3339 time).
func (s *Server) personSignins(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"limit", "before"}, nil)
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetPerson(r.Context(), r.PathValue("email"))
	if err != nil {
		return nil, err
	}
	var before time.Time
	if b := q.Get("before"); b != "" {
		if before, err = time.Parse(time.RFC3339Nano, b); err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "before must be an RFC 3339 time")
		}
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	ss, err := s.store.PersonSignins(r.Context(), p.Email, before, int(limit))
	if err != nil {
		return nil, err
	}
	return map[string]any{"signins": ss}, nil
}
