package ui

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// outputsPage is the outputs page's data.
type outputsPage struct {
	Configured bool // serve --outputs was given
	Status     outputs.Status
	IsAdmin    bool
}

// outputsView shows the alert outputs, the error of a refused edit of their
// file, and each output's delivery state.
func (s *Server) outputsView(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	p := outputsPage{IsAdmin: adminRole(sess), Status: outputs.Status{Outputs: []outputs.OutputStatus{}}}
	if s.opts.Outputs != nil {
		st, err := s.opts.Outputs.Status(r.Context())
		if err != nil {
			return err
		}
		p.Status, p.Configured = st, st.File != ""
	}
	return s.render(w, r, http.StatusOK, "outputs", "Outputs", p)
}

// testOutput sends a test event to one output and says how it went.
func (s *Server) testOutput(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	if s.opts.Outputs == nil {
		return store.ErrNotFound
	}
	name := r.PathValue("name")
	id, err := s.opts.Outputs.SendTest(r.Context(), name)
	if errors.Is(err, outputs.ErrNoOutput) {
		return store.ErrNotFound
	}
	msg := "Test event " + id + " delivered to " + name + "."
	if err != nil {
		msg = "Test event to " + name + " failed: " + err.Error()
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
	}
	s.log.Info("ui output test", "output", name, "user", sess.User.Username, "err", err)
	http.Redirect(w, r, "/ui/outputs?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}
