package api

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// The credentials' lifecycle (admin only): API tokens listed, created with
// an expiry and revoked; users listed, disabled and enabled, their role and
// password changed. Every change is audited.

func (s *Server) listTokens(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, nil, nil); err != nil {
		return nil, err
	}
	tokens, err := s.accounts.ListTokens(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"tokens": tokens}, nil
}

// createToken takes {"name", "role", "expires_in"} (a Go duration, e.g.
// "720h"; empty: never) and answers the token's plaintext, shown once.
func (s *Server) createToken(r *http.Request, tok accounts.Token) (any, error) {
	var req struct {
		Name      string `json:"name"`
		Role      string `json:"role"`
		ExpiresIn string `json:"expires_in"`
	}
	if err := decodeStrict(r, &req); err != nil {
		return nil, err
	}
	var until time.Time
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "expires_in: a positive duration like 720h")
		}
		until = time.Now().Add(d)
	}
	plain, t, err := s.accounts.CreateTokenExpiring(r.Context(), req.Name, req.Role, until, actorName(tok))
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": t.ID, "token": plain, "role": t.Role, "expires_at": until}, nil
}

func (s *Server) revokeToken(r *http.Request, tok accounts.Token) (any, error) {
	if err := s.accounts.RevokeToken(r.Context(), r.PathValue("id"), actorName(tok)); err != nil {
		return nil, err
	}
	return map[string]any{"revoked": r.PathValue("id")}, nil
}

func (s *Server) listUsers(r *http.Request, _ accounts.Token) (any, error) {
	if _, err := query(r, nil, nil); err != nil {
		return nil, err
	}
	users, err := s.accounts.ListUsers(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"users": users}, nil
}

// patchUser takes {"role", "disabled", "password"}, each optional.
func (s *Server) patchUser(r *http.Request, tok accounts.Token) (any, error) {
	var req struct {
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
		Password *string `json:"password"`
	}
	if err := decodeStrict(r, &req); err != nil {
		return nil, err
	}
	return s.accounts.UpdateUser(r.Context(), r.PathValue("username"), accounts.UserChange{Role: req.Role, Disabled: req.Disabled, Password: req.Password}, actorName(tok))
}

// decodeStrict decodes a JSON body of at most 64 KiB with no unknown
// fields.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	}
	return nil
}
