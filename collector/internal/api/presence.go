package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/bonafide-sec/bonafide/collector/internal/presence"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
)

// SetPresence enables the presence-check endpoints.
func (s *Server) SetPresence(p *presence.Service) {
	s.presence = p
	s.handle("POST /api/v1/people/{email}/presence-checks", accounts.RoleAnalyst, s.requestPresenceCheck)
	s.handle("GET /api/v1/presence-checks/{id}", accounts.RoleViewer, s.getPresenceCheck)
	s.handle("GET /api/v1/people/{email}/presence", accounts.RoleViewer, s.getPersonPresence)
	s.handle("POST /api/v1/people/{email}/presence-enrolments", accounts.RoleAnalyst, s.createPresenceEnrolment)
}

// presenceErr maps the presence flow's refusals to API errors.
func presenceErr(err error) error {
	switch {
	case errors.Is(err, presence.ErrNotEnrolled), errors.Is(err, presence.ErrOutsideWorkHours),
		errors.Is(err, presence.ErrNoDevice), errors.Is(err, presence.ErrDisabled):
		return errorf(http.StatusConflict, "failed_precondition", err.Error())
	case errors.Is(err, presencestore.ErrCap):
		return errorf(http.StatusTooManyRequests, "resource_exhausted", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "no such person")
	}
	return err
}

// decodeBody decodes an optional JSON body (empty: v stays as it is).
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	return nil
}

func (s *Server) requestPresenceCheck(r *http.Request, tok accounts.Token) (any, error) {
	var body struct {
		DeviceID string `json:"device_id"`
		Note     string `json:"note"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	c, err := s.presence.Request(r.Context(), email(r), body.DeviceID, body.Note, actorName(tok))
	if err != nil {
		return nil, presenceErr(err)
	}
	return c, nil
}

func (s *Server) getPresenceCheck(r *http.Request, _ accounts.Token) (any, error) {
	return presencestore.New(s.store).GetCheck(r.Context(), r.PathValue("id"))
}

func (s *Server) getPersonPresence(r *http.Request, _ accounts.Token) (any, error) {
	p, err := s.store.GetPerson(r.Context(), email(r))
	if err != nil {
		return nil, err
	}
	creds, err := presencestore.New(s.store).Credentials(r.Context(), p.Email)
	if err != nil {
		return nil, err
	}
	checks, err := presencestore.New(s.store).ListChecks(r.Context(), p.Email, 50)
	if err != nil {
		return nil, err
	}
	return map[string]any{"person": p.Email, "enrolled": len(creds) > 0, "credentials": creds, "checks": checks}, nil
}

func (s *Server) createPresenceEnrolment(r *http.Request, tok accounts.Token) (any, error) {
	var body struct {
		DeviceID string `json:"device_id"`
		Roaming  bool   `json:"roaming"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	e, err := s.presence.CreateEnrolment(r.Context(), email(r), body.DeviceID, body.Roaming, actorName(tok))
	if err != nil {
		return nil, presenceErr(err)
	}
	return e, nil
}

// email is the path's person; stored emails are lower case.
func email(r *http.Request) string { return strings.ToLower(r.PathValue("email")) }
