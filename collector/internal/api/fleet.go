package api

import (
	"net/http"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// listFarms lists the active clusters of linked devices, highest farm
// score first; ?suspected=true keeps those a fleet rule flagged.
func (s *Server) listFarms(r *http.Request, _ accounts.Token) (any, error) {
	q, err := query(r, []string{"suspected", "limit"}, map[string][]string{"suspected": {"true", "false"}})
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	clusters, err := s.store.ListClusters(r.Context(), q.Get("suspected") == "true", int(limit))
	if err != nil {
		return nil, err
	}
	return map[string]any{"farms": clusters}, nil
}

// getFarm shows one cluster with its timeline.
func (s *Server) getFarm(r *http.Request, _ accounts.Token) (any, error) {
	return s.store.GetCluster(r.Context(), r.PathValue("id"))
}

// getPerson shows one person with their devices' risk and the score's
// history.
func (s *Server) getPerson(r *http.Request, _ accounts.Token) (any, error) {
	ctx := r.Context()
	p, err := s.store.GetPerson(ctx, r.PathValue("email"))
	if err != nil {
		return nil, err
	}
	hist, err := s.store.RiskHistory(ctx, "person", p.Email)
	if err != nil {
		return nil, err
	}
	return struct {
		store.Person
		RiskHistory []store.RiskPoint `json:"risk_history"`
	}{p, hist}, nil
}
