package ui

import (
	"net/http"

	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// idpView shows the identity-provider connectors (serve --idp): where each
// stands, its last event, last error and lag.
func (s *Server) idpView(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	cs, err := s.store.IdPConnectors(r.Context())
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "idp", "Identity providers", cs)
}
