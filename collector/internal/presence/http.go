package presence

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

//go:embed static templates
var assets embed.FS

// maxBody bounds a WebAuthn response a browser posts.
const maxBody = 64 << 10

// Handler serves the pages a person opens, under /presence/: the
// enrolment page (/presence/enrol/{token}), the check page
// (/presence/check/{token}), their WebAuthn ceremony endpoints and static
// files. The token in the path is the only key: pages carry no session.
func (s *Service) Handler() http.Handler {
	page := template.Must(template.ParseFS(assets, "templates/page.html"))
	static, _ := fs.Sub(assets, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /presence/static/", http.StripPrefix("/presence/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /presence/enrol/{token}", func(w http.ResponseWriter, r *http.Request) { s.enrolPage(w, r, page) })
	mux.HandleFunc("POST /presence/enrol/{token}/begin", s.enrolBegin)
	mux.HandleFunc("POST /presence/enrol/{token}/finish", s.enrolFinish)
	mux.HandleFunc("GET /presence/check/{token}", func(w http.ResponseWriter, r *http.Request) { s.checkPage(w, r, page) })
	mux.HandleFunc("POST /presence/check/{token}/begin", s.checkBegin)
	mux.HandleFunc("POST /presence/check/{token}/finish", s.checkFinish)
	mux.HandleFunc("GET /presence/check/{token}/status", s.checkStatus)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "+
			"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer") // the path is the key
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if !s.Enabled() {
			http.Error(w, ErrDisabled.Error(), http.StatusNotFound)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// pageData is what the page template shows.
type pageData struct {
	Kind      string // enrol or check
	Name      string
	Hostname  string
	State     string
	Reasons   []string
	ExpiresAt time.Time
	Problem   string // the link cannot be used: why
}

func (s *Service) render(w http.ResponseWriter, page *template.Template, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, d); err != nil {
		s.log.Error("presence page", "err", err)
	}
}

// jsonReply writes v, or {"error": msg} for an error status.
func jsonReply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	jsonReply(w, status, map[string]string{"error": msg})
}

// hostname is a device's host name for the pages ("" when unknown).
func (s *Service) hostname(ctx context.Context, deviceID string) string {
	d, err := s.st.GetDevice(ctx, deviceID)
	if err != nil {
		return ""
	}
	return d.Hostname
}

// enrolment reads the enrolment link of the request's token.
func (s *Service) enrolment(r *http.Request) (presencestore.Enrolment, string, error) {
	token := r.PathValue("token")
	if !validToken(token) {
		return presencestore.Enrolment{}, "", store.ErrNotFound
	}
	hash := tokenHash(token)
	e, err := s.checks.GetEnrolment(r.Context(), hash)
	if err == nil && (!e.UsedAt.IsZero() || !s.now().Before(e.ExpiresAt)) {
		err = presencestore.ErrDone
	}
	return e, hash, err
}

func (s *Service) enrolPage(w http.ResponseWriter, r *http.Request, page *template.Template) {
	e, _, err := s.enrolment(r)
	d := pageData{Kind: "enrol", ExpiresAt: e.ExpiresAt}
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.Problem = "This enrolment link is not valid."
		s.render(w, page, http.StatusNotFound, d)
		return
	case errors.Is(err, presencestore.ErrDone):
		d.Problem = "This enrolment link was already used or has expired. Ask IT for a new one."
		s.render(w, page, http.StatusGone, d)
		return
	case err != nil:
		s.log.Error("presence enrolment page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if p, err := s.st.GetPerson(r.Context(), e.Person); err == nil {
		d.Name = p.Name
	}
	d.Hostname = s.hostname(r.Context(), e.DeviceID)
	s.render(w, page, http.StatusOK, d)
}

// linkError answers a ceremony request whose link cannot be used.
func (s *Service) linkError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		jsonError(w, http.StatusNotFound, "this link is not valid")
	case errors.Is(err, presencestore.ErrDone):
		jsonError(w, http.StatusConflict, "this link was already used or has expired")
	default:
		s.log.Error("presence", "err", err)
		jsonError(w, http.StatusInternalServerError, "internal error")
	}
}

func (s *Service) saveSession(ctx context.Context, subject string, sd *webauthn.SessionData) error {
	b, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	return s.checks.SaveChallenge(ctx, subject, b, s.now().Add(ceremonyTimeout))
}

// takeSession removes a subject's ceremony state: each challenge is
// answered once.
func (s *Service) takeSession(ctx context.Context, subject string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	b, err := s.checks.TakeChallenge(ctx, subject, s.now())
	if err != nil {
		return sd, err
	}
	return sd, json.Unmarshal(b, &sd)
}

func (s *Service) enrolBegin(w http.ResponseWriter, r *http.Request) {
	e, hash, err := s.enrolment(r)
	if err != nil {
		s.linkError(w, err)
		return
	}
	u, _, err := s.loadUser(r.Context(), e.Person, nil)
	if err != nil {
		s.linkError(w, err)
		return
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	ropts := []webauthn.RegistrationOption{webauthn.WithExclusions(exclude)}
	if e.Roaming {
		// The laptop's own authenticator or a FIDO2 key where it has
		// none, with user verification (the key's PIN) all the same. No
		// hint: a hint would imply an attachment.
		ropts = append(ropts, webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired}))
	} else {
		ropts = append(ropts, webauthn.WithPublicKeyCredentialHints([]protocol.PublicKeyCredentialHints{protocol.PublicKeyCredentialHintClientDevice}))
	}
	opts, sd, err := s.wa.BeginRegistration(u, ropts...)
	if err == nil {
		err = s.saveSession(r.Context(), "enrol:"+hash, sd)
	}
	if err != nil {
		s.linkError(w, err)
		return
	}
	jsonReply(w, http.StatusOK, opts)
}

func (s *Service) enrolFinish(w http.ResponseWriter, r *http.Request) {
	e, hash, err := s.enrolment(r)
	if err != nil {
		s.linkError(w, err)
		return
	}
	sd, err := s.takeSession(r.Context(), "enrol:"+hash)
	if errors.Is(err, store.ErrNotFound) {
		jsonError(w, http.StatusConflict, "no registration in progress for this link: reload the page and try again")
		return
	} else if err != nil {
		s.linkError(w, err)
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(io.LimitReader(r.Body, maxBody))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "the browser's answer could not be read")
		return
	}
	u, _, err := s.loadUser(r.Context(), e.Person, sd.UserID)
	if err != nil {
		s.linkError(w, err)
		return
	}
	cred, err := s.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		s.log.Warn("presence enrolment refused", "person", e.Person, "err", err)
		jsonError(w, http.StatusBadRequest, "the registration did not verify; user verification (fingerprint, face or PIN) is required")
		return
	}
	if !e.Roaming && cred.Authenticator.Attachment != protocol.Platform {
		jsonError(w, http.StatusBadRequest, "this laptop's own authenticator (Windows Hello, Touch ID) is required; ask IT for a link that accepts a security key")
		return
	}
	record, err := json.Marshal(cred)
	if err != nil {
		s.linkError(w, err)
		return
	}
	att := cred.AttestationFormat
	if att == "" {
		att = "none"
	}
	err = s.checks.AddCredential(r.Context(), hash, presencestore.Credential{
		ID: base64.RawURLEncoding.EncodeToString(cred.ID), Person: e.Person, DeviceID: e.DeviceID,
		UserHandle: base64.RawURLEncoding.EncodeToString(u.handle), Record: record, Attestation: att,
		CreatedBy: e.CreatedBy, CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	})
	if err != nil {
		s.linkError(w, err)
		return
	}
	s.log.Info("presence credential enrolled", "person", e.Person, "device", e.DeviceID, "attestation", att)
	jsonReply(w, http.StatusOK, map[string]string{"state": "enrolled"})
}

// check reads the check of the request's token.
func (s *Service) check(r *http.Request) (presencestore.Check, error) {
	token := r.PathValue("token")
	if !validToken(token) {
		return presencestore.Check{}, store.ErrNotFound
	}
	return s.checks.CheckByToken(r.Context(), tokenHash(token))
}

// open reports whether a person may still answer c.
func (s *Service) open(c presencestore.Check) bool {
	return c.State == presencestore.Pending && s.now().Before(c.ExpiresAt)
}

func (s *Service) checkPage(w http.ResponseWriter, r *http.Request, page *template.Template) {
	c, err := s.check(r)
	d := pageData{Kind: "check"}
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.Problem = "This presence check link is not valid."
		s.render(w, page, http.StatusNotFound, d)
		return
	case err != nil:
		s.log.Error("presence check page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.State, d.Reasons, d.ExpiresAt, d.Hostname = c.State, c.Reasons, c.ExpiresAt, c.Hostname
	if c.State == presencestore.Pending && !s.open(c) {
		d.State, d.Reasons = presencestore.Failed, []string{ReasonExpired}
	}
	if p, err := s.st.GetPerson(r.Context(), c.Person); err == nil {
		d.Name = p.Name
	}
	s.render(w, page, http.StatusOK, d)
}

// checkReply is what the check endpoints answer.
type checkReply struct {
	State   string   `json:"state"`
	Reasons []string `json:"reasons"`
}

func (s *Service) checkBegin(w http.ResponseWriter, r *http.Request) {
	c, err := s.check(r)
	if err == nil && !s.open(c) {
		err = presencestore.ErrDone
	}
	if err != nil {
		s.linkError(w, err)
		return
	}
	u, _, err := s.loadUser(r.Context(), c.Person, nil)
	if err != nil {
		s.linkError(w, err)
		return
	}
	if len(u.creds) == 0 {
		jsonError(w, http.StatusConflict, "no presence credential is enrolled for you")
		return
	}
	opts, sd, err := s.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err == nil {
		err = s.saveSession(r.Context(), "check:"+c.ID, sd)
	}
	if err != nil {
		s.linkError(w, err)
		return
	}
	jsonReply(w, http.StatusOK, opts)
}

func (s *Service) checkFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.check(r)
	if err != nil {
		s.linkError(w, err)
		return
	}
	if c.State == presencestore.Pending && !s.open(c) {
		c, err = s.finish(ctx, c, []string{presencestore.Pending}, []string{ReasonExpired}, presencestore.Result{})
		if err != nil && !errors.Is(err, presencestore.ErrDone) {
			s.linkError(w, err)
			return
		}
	}
	if c.State != presencestore.Pending {
		jsonError(w, http.StatusConflict, "this check was already answered or has expired")
		return
	}
	sd, err := s.takeSession(ctx, "check:"+c.ID)
	if errors.Is(err, store.ErrNotFound) {
		jsonError(w, http.StatusConflict, "no confirmation in progress for this check: reload the page and try again")
		return
	} else if err != nil {
		s.linkError(w, err)
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(io.LimitReader(r.Body, maxBody))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "the browser's answer could not be read")
		return
	}
	u, creds, err := s.loadUser(ctx, c.Person, nil)
	if err != nil {
		s.linkError(w, err)
		return
	}
	browserIP := ""
	if ip := proxyproto.HTTPClientIP(r, s.cfg.TrustedProxies); ip.IsValid() {
		browserIP = ip.Unmap().String()
	}
	c.BrowserIP = browserIP
	reasons := []string{}
	cred, err := s.wa.ValidateLogin(u, sd, parsed)
	if err != nil || cred.Authenticator.CloneWarning {
		s.log.Warn("presence assertion refused", "check", c.ID, "person", c.Person, "err", err)
		reasons = append(reasons, ReasonVerificationFailed)
	}
	var stored presencestore.Credential
	if len(reasons) == 0 {
		id := base64.RawURLEncoding.EncodeToString(cred.ID)
		for _, sc := range creds {
			if sc.ID == id {
				stored = sc
			}
		}
		if stored.DeviceID != c.DeviceID {
			reasons = append(reasons, ReasonWrongDevice)
		}
	}
	if len(reasons) > 0 {
		done, err := s.finish(ctx, c, []string{presencestore.Pending}, reasons, presencestore.Result{BrowserIP: browserIP})
		if err != nil {
			s.linkError(w, err)
			return
		}
		jsonReply(w, http.StatusOK, checkReply{State: done.State, Reasons: done.Reasons})
		return
	}
	record, err := json.Marshal(cred)
	if err == nil {
		now := s.now().UTC().Truncate(time.Microsecond)
		err = s.checks.AssertCheck(ctx, c.ID, stored.ID, record, browserIP, now, now.Add(s.cfg.Expiry))
	}
	if err != nil {
		s.linkError(w, err)
		return
	}
	jsonReply(w, http.StatusOK, checkReply{State: presencestore.Verifying, Reasons: []string{}})
}

func (s *Service) checkStatus(w http.ResponseWriter, r *http.Request) {
	c, err := s.check(r)
	if err != nil {
		s.linkError(w, err)
		return
	}
	jsonReply(w, http.StatusOK, checkReply{State: c.State, Reasons: c.Reasons})
}
